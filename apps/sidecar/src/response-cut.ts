/**
 * Cutting a response that has begun, and telling afterwards what the client got. The access line
 * and the request counter must say what the client received, and Node's own state does not:
 * `headersSent` is true as soon as a head is stored, though Node sends it only with the first body
 * byte or the end; and a pipe may still end() a response after it was destroyed, which makes
 * `writableFinished` true.
 */
import type { ServerResponse } from 'http';
import type { Duplex } from 'stream';
import type { RequestContext } from './context';

/**
 * Cut the client's response so that it sees it incomplete. A head still held back goes out first:
 * the client then gets the status the log will name, followed by the cut, instead of a bare close.
 */
export function cutResponse(res: ServerResponse, ctx: RequestContext | undefined): void {
  if (ctx !== undefined) ctx.responseCut = true;
  if (res.headersSent && !res.destroyed && !headReachedSocket(res)) res.flushHeaders();
  res.destroy();
}

/** Cut an upgrade's socket in the middle of an answer relayed from the upstream. */
export function cutUpgradeAnswer(socket: Duplex, ctx: RequestContext | undefined): void {
  if (ctx !== undefined) ctx.responseCut = true;
  socket.destroy();
}

/**
 * Whether the response head has been handed to the socket. Node keeps this as `_headerSent` (set in
 * OutgoingMessage#_send, where the head joins the first bytes written); there is no public
 * equivalent, and test/head-logging.test.ts fails should a Node version stop setting it.
 */
export function headReachedSocket(res: ServerResponse): boolean {
  return (res as ServerResponse & { _headerSent?: boolean })._headerSent === true;
}
