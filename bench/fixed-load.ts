/**
 * An exact load: `total` GET requests over `connections` keep-alive connections, each connection
 * sending its next request as soon as the previous response is complete (with fixedLoadWithTokens,
 * each carrying the next bearer value of a list). Exact counts (not a
 * duration) are what make instruction counts comparable between runs.
 */
import * as net from 'net';

export interface FixedLoadResult {
  readonly responses: number;
  /** Responses whose status was not `expectStatus`. */
  readonly unexpected: number;
}

export function fixedLoad(port: number, total: number, connections: number, headers: Record<string, string>, expectStatus: number): Promise<FixedLoadResult> {
  let head = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n';
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return load(port, total, connections, [Buffer.from(`${head}\r\n`)], expectStatus);
}

/** The same load, each request carrying the next bearer value of `tokens` (in a cycle). */
export function fixedLoadWithTokens(port: number, total: number, connections: number, tokens: readonly string[], expectStatus: number): Promise<FixedLoadResult> {
  if (tokens.length === 0) throw new Error('no tokens to send');
  // Built before the load starts, so the client's own work per request stays as in fixedLoad.
  return load(port, total, connections, tokens.map((t) => Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nauthorization: Bearer ${t}\r\n\r\n`)), expectStatus);
}

function load(port: number, total: number, connections: number, requests: readonly Buffer[], expectStatus: number): Promise<FixedLoadResult> {
  let sent = 0;
  let responses = 0;
  let unexpected = 0;
  return new Promise((resolve, reject) => {
    let open = 0;
    const one = () => {
      open++;
      const socket = net.connect(port, '127.0.0.1');
      socket.setNoDelay(true);
      let buf = '';
      const next = () => {
        if (sent >= total) {
          socket.destroy();
          return;
        }
        socket.write(requests[sent++ % requests.length]);
      };
      socket.on('connect', next);
      socket.on('data', (chunk: Buffer) => {
        buf += chunk.toString('latin1');
        // Responses are small and Content-Length framed: split on the head, then skip the body.
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end === -1) return;
          const headText = buf.slice(0, end);
          const m = /content-length: *(\d+)/i.exec(headText);
          const length = m ? Number(m[1]) : 0;
          if (buf.length < end + 4 + length) return;
          const status = Number(buf.slice(9, 12));
          buf = buf.slice(end + 4 + length);
          responses++;
          if (status !== expectStatus) unexpected++;
          if (/\r\nconnection: *close/i.test(headText)) {
            socket.destroy();
            return;
          }
          next();
        }
      });
      // A reset ends the load: an exact count cannot be made up. Say where it happened.
      socket.on('error', (err) => reject(new Error(`${err.message} on a load connection to port ${port}, after ${responses} of ${total} responses`)));
      socket.on('close', () => {
        open--;
        if (open === 0) resolve({ responses, unexpected });
        else if (sent < total) one();
      });
    };
    for (let i = 0; i < connections; i++) one();
  });
}
