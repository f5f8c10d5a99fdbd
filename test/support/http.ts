/** Small HTTP helpers for tests: one fresh connection per call, nothing mocked. */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { EVENT_TIMEOUT_MS } from '../../tools/waits';

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  text(): string;
}

export interface RequestOptions {
  readonly method?: string;
  readonly path?: string;
  /** An object, or a flat raw list [name, value, name, value, …] to send duplicates. */
  readonly headers?: http.OutgoingHttpHeaders | string[];
  readonly body?: string | Buffer;
  /** Socket inactivity after which the request fails. @default EVENT_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

/** One request on a fresh connection to 127.0.0.1:port. */
export function request(port: number, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers as http.OutgoingHttpHeaders, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: () => body.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? EVENT_TIMEOUT_MS, () => req.destroy(new Error(`test request ${opts.method ?? 'GET'} ${opts.path ?? '/'} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Write raw bytes on a fresh socket; resolve with everything received until the server closes, or
 * until `idleMs` of silence after the first byte. Before the first byte the wait is EVENT_TIMEOUT_MS:
 * a busy machine may take seconds to answer, and only a server that answers and then keeps the
 * connection open needs the short idle time.
 */
export function rawRequest(port: number, data: string, idleMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.setTimeout(EVENT_TIMEOUT_MS, () => socket.destroy());
    socket.on('data', (c) => {
      if (out === '') socket.setTimeout(idleMs);
      out += c.toString('latin1');
    });
    socket.on('close', () => resolve(out));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(out) : reject(err)));
    socket.write(data);
  });
}

/** Parse the status code of a raw HTTP response. */
export function rawStatus(response: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(response);
  return m ? Number(m[1]) : 0;
}

/** A header of a raw HTTP response (first occurrence, case-insensitive). */
export function rawHeader(response: string, name: string): string | undefined {
  const head = response.split('\r\n\r\n')[0];
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i > 0 && line.slice(0, i).toLowerCase() === name.toLowerCase()) return line.slice(i + 1).trim();
  }
  return undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `check` until it returns true or `timeoutMs` passes; returns the last result. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = EVENT_TIMEOUT_MS, everyMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
}

/** Poll `check` until it returns true; reject naming `what` if `timeoutMs` passes first. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = EVENT_TIMEOUT_MS, everyMs = 50): Promise<void> {
  if (!(await eventually(check, timeoutMs, everyMs))) throw new Error(`waited ${timeoutMs} ms for ${what}, in vain`);
}

/** `promise`, or a rejection naming `what` if it has not settled within `timeoutMs`. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`waited ${timeoutMs} ms for ${what}, in vain`)), timeoutMs)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    // A pending timer would keep the jest worker alive past the test.
    clearTimeout(timer);
  }
}

/** A fresh temp directory, removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A port nothing listens on (bound then released). */
export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A GET with no agent: the status, the body and how long the answer took (admin endpoints that wait). */
export function adminGet(port: number, urlPath: string): Promise<{ status: number; body: string; ms: number }> {
  const began = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - began }));
      })
      .on('error', reject);
  });
}
