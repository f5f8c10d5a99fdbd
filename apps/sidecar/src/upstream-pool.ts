/**
 * The keep-alive pool of upstream connections, with one rule Node's Agent does not have:
 * a connection goes back to the pool only after a complete, well-framed exchange, and a pooled
 * connection that receives any byte while no request is outstanding is destroyed, never reused.
 * Stray bytes on an idle connection are a response to a request we never sent (smuggled, or a
 * misbehaving main service); handing that connection to the next client would give it that
 * response (cross-client poisoning).
 */
import * as http from 'http';
import type { Socket } from 'net';

function destroyOnStrayBytes(this: Socket): void {
  this.destroy();
}

export class UpstreamPool extends http.Agent {
  constructor(idleTimeoutMs: number) {
    super({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, timeout: idleTimeoutMs, scheduling: 'lifo' });
  }

  /** Node calls this when a request is done with its connection; false destroys the connection. */
  override keepSocketAlive(socket: Socket): boolean {
    // Bytes already buffered past the response: do not reuse.
    if (socket.readableLength > 0) return false;
    socket.on('data', destroyOnStrayBytes);
    super.keepSocketAlive(socket);
    return true;
  }

  /** Node calls this when a pooled connection is handed to a new request. */
  override reuseSocket(socket: Socket, req: http.ClientRequest): void {
    socket.off('data', destroyOnStrayBytes);
    super.reuseSocket(socket, req);
  }
}
