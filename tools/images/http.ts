/** The containers share this machine's network (--network host): plain GETs on loopback, and whether a port is free. */
import * as http from 'http';
import * as net from 'net';
import { ADDRESSES } from '../../lib/src/contract';

const HTTP_TIMEOUT_MS = 5_000;

export interface Reply {
  readonly status: number;
  readonly body: string;
}

/** One GET on its own connection; rejects on no answer within `timeoutMs`. */
export function get(port: number, urlPath: string, headers: Record<string, string> = {}, timeoutMs = HTTP_TIMEOUT_MS): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: ADDRESSES.loopback, port, path: urlPath, headers: { connection: 'close', ...headers }, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Whether a port is free on this machine. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: ADDRESSES.all, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
