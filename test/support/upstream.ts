/**
 * A test-only upstream ("main service") on 127.0.0.1:0 that records what reaches it.
 *
 * Routes:
 *   GET  /healthz            200 "ok" (or 503 after setHealthy(false)); not counted
 *   POST /echo-body          streams the request body back unchanged
 *   GET  /stream             writes "first\n", waits for releaseStream(), then writes "last\n"
 *   GET  /slow?ms=N          answers after N ms
 *   GET  /stall              never answers; closes are recorded
 *   GET  /status/NNN         answers with that status
 *   GET  /break-mid-stream   sends headers and a chunk, then destroys the socket
 *   anything else            200 JSON { method, url, headers }
 *   WebSocket (any path)     echoes every message
 */
import * as http from 'http';
import type { AddressInfo, Socket } from 'net';
import { WebSocketServer } from 'ws';

export interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: string[];
}

export interface TestUpstream {
  readonly port: number;
  readonly url: string;
  /** Requests received, health checks excluded. */
  readonly received: Received[];
  /** WebSocket upgrades received. */
  readonly upgrades: Received[];
  /** Number of /stall requests whose connection the proxy closed. */
  readonly stallsClosed: () => number;
  count(): number;
  /** WebSocket connections the upstream still holds open. */
  openWebSockets(): number;
  setHealthy(healthy: boolean): void;
  releaseStream(): void;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<TestUpstream> {
  const received: Received[] = [];
  const upgrades: Received[] = [];
  let healthy = true;
  let stallsClosed = 0;
  let releaseStream: () => void = () => undefined;
  let streamReleased = new Promise<void>((r) => (releaseStream = r));

  const record = (req: http.IncomingMessage, into: Received[]) =>
    into.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, rawHeaders: [...req.rawHeaders] });

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname === '/healthz') {
      res.writeHead(healthy ? 200 : 503).end(healthy ? 'ok' : 'unhealthy');
      return;
    }
    record(req, received);
    switch (url.pathname) {
      case '/echo-body':
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
        req.pipe(res);
        return;
      case '/stream':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first\n');
        void streamReleased.then(() => res.end('last\n'));
        return;
      case '/slow': {
        const ms = Number(url.searchParams.get('ms') ?? '500');
        const timer = setTimeout(() => res.end(`slept ${ms}\n`), ms);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case '/stall':
        res.on('close', () => stallsClosed++);
        return;
      case '/break-mid-stream':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial\n');
        setTimeout(() => req.socket.destroy(), 50);
        return;
      default:
        if (url.pathname.startsWith('/status/')) {
          res.writeHead(Number(url.pathname.slice('/status/'.length))).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
    }
  });
  server.keepAliveTimeout = 65_000;

  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    record(req, upgrades);
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });

  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    received,
    upgrades,
    stallsClosed: () => stallsClosed,
    count: () => received.length,
    openWebSockets: () => wss.clients.size,
    setHealthy: (h) => (healthy = h),
    releaseStream: () => {
      releaseStream();
      streamReleased = new Promise<void>((r) => (releaseStream = r));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
