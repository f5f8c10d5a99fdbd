/**
 * Parse errors on the proxy port ('clientError'): a clear 400, 408 or 431 on the bare socket, in
 * turn behind the answers earlier pipelined requests are still owed, and never a request half-sent
 * upstream. Never the raw packet in the log: it may hold a token.
 */
import type * as http from 'http';
import type { Duplex } from 'stream';
import type { ClientErrorReason } from './admission';
import { whenSettled } from './connections';
import { existingContextOf } from './context';
import type { Logger } from './log';
import type { SidecarMetrics } from './metrics';
import { refuseSocket } from './refusals';

interface ClientErrorAnswer {
  readonly status: 400 | 408 | 431;
  readonly reason: ClientErrorReason;
}

const BAD_REQUEST: ClientErrorAnswer = Object.freeze({ status: 400, reason: 'bad_request' });
const HEADERS_TOO_LARGE: ClientErrorAnswer = Object.freeze({ status: 431, reason: 'headers_too_large' });
const HEADERS_TIMEOUT: ClientErrorAnswer = Object.freeze({ status: 408, reason: 'headers_timeout' });

function answerFor(code: string): ClientErrorAnswer {
  if (code === 'HPE_HEADER_OVERFLOW') return HEADERS_TOO_LARGE;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') return HEADERS_TIMEOUT;
  return BAD_REQUEST;
}

/** The response being written on this socket, if any (Node keeps no public handle on it). */
function currentResponse(socket: Duplex): http.ServerResponse | undefined {
  return (socket as { _httpMessage?: http.ServerResponse | null })._httpMessage ?? undefined;
}

/** The error is in the body of the request being forwarded: it must never complete upstream. */
function cutForwardedRequest(socket: Duplex, current: http.ServerResponse, status: ClientErrorAnswer['status']): void {
  const proxyReq = existingContextOf(current.req)?.proxyReq;
  if (proxyReq !== undefined && !proxyReq.destroyed) proxyReq.destroy();
  if (current.headersSent) socket.destroy();
  else refuseSocket(socket, status, undefined);
}

export function createClientErrorHandler(metrics: SidecarMetrics, logger: Logger): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return function onClientError(err, socket) {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    const { status, reason } = answerFor(code);
    metrics.clientError(reason);
    logger.info({ status, reason, code }, 'client error');
    const current = currentResponse(socket);
    if (current !== undefined && !current.req.complete) {
      cutForwardedRequest(socket, current, status);
      return;
    }
    // Bytes after a `Connection: close` request: the answer owed is the last thing on this connection.
    if (code === 'HPE_CLOSED_CONNECTION') {
      whenSettled(socket, () => socket.end());
      return;
    }
    // Earlier pipelined requests still get their answers first; then the refusal, then close.
    whenSettled(socket, () => refuseSocket(socket, status, undefined));
  };
}
