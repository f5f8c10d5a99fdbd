/**
 * CONNECT on the proxy port: the sidecar is not a forward proxy. Without a 'connect' listener Node
 * would drop the socket wordlessly; this one answers 405 with the methods it does serve.
 */
import type * as http from 'http';
import type { Duplex } from 'stream';
import { destroyOnError } from './connections';
import { contextOf } from './context';
import { refuseSocket } from './refusals';
import type { OutcomeRecorder } from './request-outcome';

const CONNECT_ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
const ALLOW_EXTRAS = Object.freeze({ allow: CONNECT_ALLOW });

export function createConnectHandler(recorder: OutcomeRecorder): (req: http.IncomingMessage, socket: Duplex) => void {
  return function onConnect(req, socket) {
    socket.on('error', destroyOnError);
    const ctx = contextOf(req);
    recorder.answered(req.method, '', 405, ctx, { reason: 'connect_refused' });
    refuseSocket(socket, 405, ctx.requestId, ALLOW_EXTRAS);
  };
}
