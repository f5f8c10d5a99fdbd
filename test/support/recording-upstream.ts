/**
 * A raw recording upstream: `net.createServer`, not node:http, so nothing is hidden from the test.
 *
 * It logs every byte per connection and parses requests the lenient way a naive backend does:
 * LF or CRLF line ends, the FIRST Content-Length wins, any Transfer-Encoding that mentions
 * "chunked" means chunked, trailers are skipped. So if the sidecar ever sends an ambiguous or
 * over-long message, this upstream sees a request the sidecar never judged.
 *
 * It answers each request in order with 200 and a JSON body naming the connection and the
 * request's sequence number on it (also as X-Conn / X-Seq headers). A WebSocket upgrade gets
 * `upgradeAnswer`: 101 (then echoes bytes), or a refusal status with a short body.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { RunningApp, localSidecarEnv, startApp } from './apps';
import { tempDir } from './http';

export interface RecordedRequest {
  readonly conn: number;
  readonly seq: number;
  readonly method: string;
  readonly target: string;
  readonly version: string;
  /** Header lines as received, [name, value] in order. */
  readonly headers: [string, string][];
  readonly body: Buffer;
  /** Whether the message was complete when the connection ended (false = cut mid-message). */
  readonly complete: boolean;
}

export interface RecordedConnection {
  readonly id: number;
  /** Every byte received, in order. */
  bytes: Buffer;
  closed: boolean;
  /** Complete requests received on this connection. */
  readonly requests: RecordedRequest[];
}

export interface RecordingUpstream {
  readonly port: number;
  readonly url: string;
  readonly connections: RecordedConnection[];
  /** Complete requests, in arrival order across connections. */
  requests(): RecordedRequest[];
  /** Requests whose body was cut off by the connection closing. */
  incomplete(): RecordedRequest[];
  /** How to answer `Upgrade: websocket`: 101, or a status such as 403 (with a 5-byte body). */
  upgradeAnswer: number;
  /** Answer this many ms late (0 = at once). */
  delayMs: number;
  /** Raw bytes to answer a request with instead of the default (a misbehaving backend); undefined = default. */
  answerWith: ((req: RecordedRequest) => string | undefined) | undefined;
  /** Bytes to write, unasked, this long after each response (a misbehaving backend); undefined = none. */
  stray: { readonly afterMs: number; readonly bytes: string } | undefined;
  /**
   * Forget what was recorded. Connections still open stay listed, emptied, with their ids: a pooled
   * one may carry the next request, and a check over `connections` must see its bytes.
   */
  reset(): void;
  close(): Promise<void>;
}

/** Header value of `name` (case-insensitive), first occurrence. */
export function headerOf(req: RecordedRequest, name: string): string | undefined {
  const lower = name.toLowerCase();
  return req.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

export function headerNames(req: RecordedRequest): string[] {
  return req.headers.map(([n]) => n);
}

type Parse = { kind: 'need' } | { kind: 'done'; used: number; req: Omit<RecordedRequest, 'conn' | 'seq'> };

function lineEnd(buf: Buffer, from: number): { at: number; len: number } | undefined {
  const lf = buf.indexOf(0x0a, from);
  if (lf === -1) return undefined;
  return lf > from && buf[lf - 1] === 0x0d ? { at: lf - 1, len: 2 } : { at: lf, len: 1 };
}

/** Parse one request leniently from `buf`. */
function parseOne(buf: Buffer, eof: boolean): Parse | { kind: 'partial'; req: Omit<RecordedRequest, 'conn' | 'seq'> } {
  let pos = 0;
  // Skip blank lines between messages, as lenient servers do.
  for (;;) {
    const e = lineEnd(buf, pos);
    if (e === undefined || e.at !== pos) break;
    pos += e.len;
  }
  const first = lineEnd(buf, pos);
  if (first === undefined) return { kind: 'need' };
  const [method = '', target = '', version = ''] = buf.toString('latin1', pos, first.at).split(' ');
  pos = first.at + first.len;
  const headers: [string, string][] = [];
  for (;;) {
    const e = lineEnd(buf, pos);
    if (e === undefined) return { kind: 'need' };
    if (e.at === pos) {
      pos += e.len;
      break;
    }
    const line = buf.toString('latin1', pos, e.at);
    const colon = line.indexOf(':');
    headers.push(colon === -1 ? [line, ''] : [line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    pos = e.at + e.len;
  }
  const head = { method, target, version, headers };
  const te = headers.find(([n]) => n.toLowerCase() === 'transfer-encoding')?.[1] ?? '';
  const cl = headers.find(([n]) => n.toLowerCase() === 'content-length')?.[1];
  const isUpgrade = headers.some(([n, v]) => n.toLowerCase() === 'upgrade' && v.toLowerCase() === 'websocket');
  if (/chunked/i.test(te)) {
    const parts: Buffer[] = [];
    for (;;) {
      const e = lineEnd(buf, pos);
      if (e === undefined) return eof ? { kind: 'partial', req: { ...head, body: Buffer.concat(parts), complete: false } } : { kind: 'need' };
      const size = parseInt(buf.toString('latin1', pos, e.at).split(';')[0].trim() || 'x', 16);
      if (Number.isNaN(size)) {
        // A naive backend gives up on the body here and treats the rest as the next request.
        return { kind: 'done', used: pos, req: { ...head, body: Buffer.concat(parts), complete: false } };
      }
      pos = e.at + e.len;
      if (size === 0) {
        for (;;) {
          const t = lineEnd(buf, pos);
          if (t === undefined) return eof ? { kind: 'partial', req: { ...head, body: Buffer.concat(parts), complete: false } } : { kind: 'need' };
          const blank = t.at === pos;
          pos = t.at + t.len;
          if (blank) return { kind: 'done', used: pos, req: { ...head, body: Buffer.concat(parts), complete: true } };
        }
      }
      if (buf.length < pos + size) {
        return eof ? { kind: 'partial', req: { ...head, body: Buffer.concat([...parts, buf.subarray(pos)]), complete: false } } : { kind: 'need' };
      }
      parts.push(buf.subarray(pos, pos + size));
      pos += size;
      const after = lineEnd(buf, pos);
      if (after === undefined) return eof ? { kind: 'partial', req: { ...head, body: Buffer.concat(parts), complete: false } } : { kind: 'need' };
      pos = after.at + after.len;
    }
  }
  const length = cl === undefined ? 0 : parseInt(cl, 10) || 0;
  if (isUpgrade && cl === undefined) return { kind: 'done', used: pos, req: { ...head, body: Buffer.alloc(0), complete: true } };
  if (buf.length < pos + length) {
    return eof ? { kind: 'partial', req: { ...head, body: buf.subarray(pos), complete: false } } : { kind: 'need' };
  }
  return { kind: 'done', used: pos + length, req: { ...head, body: buf.subarray(pos, pos + length), complete: true } };
}

export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const connections: RecordedConnection[] = [];
  const sockets = new Set<net.Socket>();
  let nextId = 1;
  let recorded: RecordedRequest[] = [];
  let cut: RecordedRequest[] = [];

  const api: RecordingUpstream = {
    port: 0,
    url: '',
    connections,
    requests: () => recorded,
    incomplete: () => cut,
    upgradeAnswer: 101,
    delayMs: 0,
    stray: undefined,
    answerWith: undefined,
    reset() {
      recorded = [];
      cut = [];
      const open = connections.filter((c) => !c.closed);
      for (const c of open) {
        c.bytes = Buffer.alloc(0);
        c.requests.length = 0;
      }
      connections.splice(0, connections.length, ...open);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    const conn: RecordedConnection = { id: nextId++, bytes: Buffer.alloc(0), closed: false, requests: [] };
    connections.push(conn);
    let pending = Buffer.alloc(0);
    let seq = 0;
    let upgraded = false;
    let answering = Promise.resolve();

    const answer = (req: RecordedRequest) => {
      const isUpgrade = req.headers.some(([n, v]) => n.toLowerCase() === 'upgrade' && v.toLowerCase() === 'websocket');
      answering = answering.then(async () => {
        if (api.delayMs > 0) await new Promise((r) => setTimeout(r, api.delayMs));
        if (socket.destroyed) return;
        const custom = api.answerWith?.(req);
        if (custom !== undefined) {
          socket.write(custom);
          return;
        }
        if (isUpgrade && api.upgradeAnswer === 101) {
          socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Conn: ${req.conn}\r\nX-Seq: ${req.seq}\r\n\r\n`);
          return;
        }
        if (isUpgrade) {
          socket.write(`HTTP/1.1 ${api.upgradeAnswer} Refused\r\nContent-Length: 5\r\nX-Conn: ${req.conn}\r\nX-Seq: ${req.seq}\r\n\r\nnope\n`);
          return;
        }
        const body = JSON.stringify({ conn: req.conn, seq: req.seq, method: req.method, target: req.target, bodyLength: req.body.length });
        const noBody = req.method === 'HEAD';
        socket.write(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Conn: ${req.conn}\r\nX-Seq: ${req.seq}\r\n\r\n${noBody ? '' : body}`,
        );
        const stray = api.stray;
        if (stray !== undefined) setTimeout(() => socket.destroyed || socket.write(stray.bytes), stray.afterMs);
      });
    };

    const drain = (eof: boolean) => {
      while (!upgraded && pending.length > 0) {
        const r = parseOne(pending, eof);
        if (r.kind === 'need') return;
        if (r.kind === 'partial') {
          cut.push({ ...r.req, conn: conn.id, seq: ++seq });
          pending = Buffer.alloc(0);
          return;
        }
        pending = pending.subarray(r.used);
        const req: RecordedRequest = { ...r.req, conn: conn.id, seq: ++seq };
        if (!req.complete) {
          cut.push(req);
        } else {
          conn.requests.push(req);
          recorded.push(req);
        }
        answer(req);
        if (req.headers.some(([n, v]) => n.toLowerCase() === 'upgrade' && v.toLowerCase() === 'websocket') && api.upgradeAnswer === 101) upgraded = true;
      }
    };

    socket.on('data', (chunk: Buffer) => {
      conn.bytes = Buffer.concat([conn.bytes, chunk]);
      if (upgraded) {
        socket.write(chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      drain(false);
    });
    socket.on('end', () => {
      drain(true);
      socket.end();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (pending.length > 0) drain(true);
      conn.closed = true;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  Object.assign(api, { port, url: `http://127.0.0.1:${port}` });
  return api;
}

/** A real sidecar process in front of a fresh recording upstream, with these tokens (name → token). */
export async function sidecarBeforeRecorder(
  tokens: Record<string, string>,
  env: Record<string, string>,
): Promise<{ upstream: RecordingUpstream; sidecar: RunningApp; stop: () => Promise<void> }> {
  const upstream = await startRecordingUpstream();
  const dir = tempDir('recorded-sidecar-');
  for (const [name, token] of Object.entries(tokens)) fs.writeFileSync(path.join(dir.dir, name), token);
  try {
    const sidecar = await startApp('sidecar', { env: { ...localSidecarEnv(upstream.url, dir.dir), ...env }, discardOutputAfterStart: true });
    const stop = async () => {
      await sidecar.stop('SIGKILL');
      await upstream.close();
      dir.cleanup();
    };
    return { upstream, sidecar, stop };
  } catch (err) {
    await upstream.close();
    dir.cleanup();
    throw err;
  }
}
