/**
 * Every answer the sidecar writes itself, rather than forwards: a short plain-text refusal with the
 * same headers whether it goes to a ServerResponse or straight to a socket (upgrades, CONNECT,
 * parse errors). The body is the status text; nothing from the request is ever echoed.
 */
import type { ServerResponse } from 'http';
import type { Duplex } from 'stream';
import { FORWARDED_HEADERS } from '../../../lib/src/contract';

const STATUS_TEXT = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
} as const;

export type RefusalStatus = keyof typeof STATUS_TEXT;

const PLAIN = 'text/plain; charset=utf-8';
const BODY: Record<number, { readonly text: string; readonly length: string }> = {};
for (const [status, text] of Object.entries(STATUS_TEXT)) BODY[Number(status)] = { text: `${text}\n`, length: String(Buffer.byteLength(`${text}\n`)) };

/** Headers some refusals add. */
export interface RefusalExtras {
  /** WWW-Authenticate challenge of a 401. */
  readonly challenge?: string;
  /** Allow header of a 405. */
  readonly allow?: string;
}

/** Answer on a response. `close` ends the connection after it. */
export function refuse(res: ServerResponse, status: RefusalStatus, requestId: string, close: boolean, extras?: RefusalExtras): void {
  const body = BODY[status];
  const headers: Record<string, string> = {
    'content-type': PLAIN,
    'content-length': body.length,
    'cache-control': 'no-store',
    [FORWARDED_HEADERS.requestId]: requestId,
  };
  if (extras?.challenge !== undefined) headers['www-authenticate'] = extras.challenge;
  if (extras?.allow !== undefined) headers.allow = extras.allow;
  if (close) headers.connection = 'close';
  res.writeHead(status, headers).end(body.text);
}

/** Answer on a bare socket and close it. `requestId` is undefined when no request was parsed. */
export function refuseSocket(socket: Duplex, status: RefusalStatus, requestId: string | undefined, extras?: RefusalExtras): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = BODY[status];
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\ncontent-type: ${PLAIN}\r\ncontent-length: ${body.length}\r\ncache-control: no-store\r\n`;
  if (requestId !== undefined) head += `${FORWARDED_HEADERS.requestId}: ${requestId}\r\n`;
  if (extras?.challenge !== undefined) head += `www-authenticate: ${extras.challenge}\r\n`;
  if (extras?.allow !== undefined) head += `allow: ${extras.allow}\r\n`;
  socket.end(`${head}connection: close\r\n\r\n${body.text}`, () => socket.destroy());
}
