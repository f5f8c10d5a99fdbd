/**
 * Forwarding to the main service: http-proxy-middleware 3 called directly as (req, res, next),
 * over a keep-alive agent, with the identity and forwarding headers rewritten first.
 * Bodies stream both ways; nothing here buffers or parses them.
 */
import * as http from 'http';
import type { Duplex } from 'stream';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { RequestHandler } from 'http-proxy-middleware';
import { FORWARDED_HEADERS } from '../../../contract';
import { contextOf, existingContextOf } from './context';
import type { Logger } from './log';
import { errorFields } from './log';

export interface ForwarderOptions {
  /** Origin of the main service (http://host:port). */
  readonly upstream: URL;
  /** Upstream inactivity timeout; 504 when it fires before the response starts. */
  readonly upstreamTimeoutMs: number;
  /** Idle timeout of pooled upstream sockets; shorter than the main service's keep-alive timeout. */
  readonly upstreamIdleTimeoutMs: number;
  /** Keep the client's Authorization header on forwarded requests. */
  readonly forwardAuthorization: boolean;
  readonly logger: Logger;
  /** Seconds from forwarding to the upstream's response headers. */
  readonly onUpstreamResponse?: (seconds: number) => void;
  /** Whether responses should close the client connection (shutting down). */
  readonly closing?: () => boolean;
}

export interface Forwarder {
  /** Forward an authenticated (or public) request. `subject` undefined = no identity header. */
  forward(req: http.IncomingMessage, res: http.ServerResponse, subject: string | undefined): void;
  /** Proxy an authenticated WebSocket upgrade. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, subject: string | undefined): void;
  /** Express-style stage: forwards with the subject an earlier stage recorded. For benchmarks and embedding. */
  middleware(req: http.IncomingMessage, res: http.ServerResponse, next: (err?: unknown) => void): void;
  readonly agent: http.Agent;
  /** Drop pooled upstream sockets. */
  close(): void;
}

/** Identity header spellings a client might send; Node lowercases names, so these cover every case. */
const SUBJECT_VARIANTS = ['x-auth-subject', 'x_auth_subject', 'x-auth_subject', 'x_auth-subject'];
/** Hop-by-hop request headers (RFC 9110 §7.6.1) plus Expect, which Node has already answered. */
const HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'expect'];
/** Never drop these even if Connection lists them: they frame the message or route it. */
const PROTECTED = new Set(['host', 'content-length', 'transfer-encoding', 'close', 'keep-alive', 'upgrade']);

const UPSTREAM_TIMEOUT = 'UPSTREAM_TIMEOUT';

function onUpstreamTimeout(this: http.ClientRequest): void {
  this.destroy(Object.assign(new Error('upstream timeout'), { code: UPSTREAM_TIMEOUT }));
}

function isServerResponse(res: unknown): res is http.ServerResponse {
  return typeof (res as http.ServerResponse)?.writeHead === 'function';
}

/** Strip client identity and hop-by-hop headers, then set ours. Mutates req.headers before http-proxy copies them. */
export function rewriteRequestHeaders(
  req: http.IncomingMessage,
  subject: string | undefined,
  requestId: string,
  forwardAuthorization: boolean,
  upgrade: boolean,
): void {
  const h = req.headers;
  const connection = h.connection;
  if (connection !== undefined) {
    for (const part of connection.split(',')) {
      const name = part.trim().toLowerCase();
      if (name !== '' && !PROTECTED.has(name)) delete h[name];
    }
    delete h.connection;
  }
  for (const name of HOP_BY_HOP) if (h[name] !== undefined && !(upgrade && name === 'upgrade')) delete h[name];
  if (upgrade) h.connection = 'Upgrade';
  if (!forwardAuthorization) delete h.authorization;
  for (const name of SUBJECT_VARIANTS) if (h[name] !== undefined) delete h[name];
  if (subject !== undefined) h[FORWARDED_HEADERS.subject] = subject;
  const ip = req.socket.remoteAddress;
  if (ip !== undefined) {
    const prior = h['x-forwarded-for'];
    h['x-forwarded-for'] = prior ? `${prior}, ${ip}` : ip;
  }
  // The sidecar terminates plain HTTP (TLS, if any, ended before it).
  h['x-forwarded-proto'] = 'http';
  if (h.host !== undefined) h['x-forwarded-host'] = h.host;
  else delete h['x-forwarded-host'];
  h[FORWARDED_HEADERS.requestId] = requestId;
}

const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/**
 * The request target exactly as the client sent it (origin-form; absolute-form reduced to it).
 * http-proxy would url.parse it and collapse "//": the upstream must get the resource we judged.
 */
export function upstreamTarget(url: string | undefined): string {
  if (url === undefined || url === '') return '/';
  if (url.charCodeAt(0) === 47 /* / */ || url === '*') return url;
  const m = ABSOLUTE_FORM.exec(url);
  if (m === null) return url;
  const rest = url.slice(m[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

function errorStatus(code: string | undefined): number {
  return code === UPSTREAM_TIMEOUT ? 504 : 502;
}

const STATUS_BODY: Record<number, string> = { 502: 'Bad Gateway\n', 504: 'Gateway Timeout\n' };

export function createForwarder(opts: ForwarderOptions): Forwarder {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: Infinity,
    maxFreeSockets: 256,
    timeout: opts.upstreamIdleTimeoutMs,
    scheduling: 'lifo',
  });
  const { logger } = opts;
  const closing = opts.closing ?? (() => false);
  const hostname = opts.upstream.hostname.replace(/^\[(.*)\]$/, '$1');
  // A pre-parsed target saves http-proxy a url.parse per request.
  const target = { protocol: 'http:', hostname, host: hostname, port: opts.upstream.port || '80', path: '' };

  /** HTTP and WebSocket alike: send the target as judged, start the upstream clock and timeout. */
  const beginUpstream = (proxyReq: http.ClientRequest, req: http.IncomingMessage) => {
    const ctx = contextOf(req);
    // Emitted on 'socket', before the request line is written.
    if (!proxyReq.headersSent) proxyReq.path = upstreamTarget(req.url);
    ctx.proxyReq = proxyReq;
    ctx.upstreamStart = performance.now();
    proxyReq.setTimeout(opts.upstreamTimeoutMs, onUpstreamTimeout);
    return ctx;
  };

  const proxy: RequestHandler = createProxyMiddleware({
    target: target as unknown as string,
    agent,
    xfwd: false,
    changeOrigin: false,
    // Everything that reaches the forwarder is forwarded; the default "/" filter would skip `OPTIONS *`.
    pathFilter: () => true,
    // Our handlers replace the default plugins (one of them formats a URL per response).
    ejectPlugins: true,
    plugins: [
      (server) => {
        server.on('proxyReq', (proxyReq, req, res) => {
          const ctx = beginUpstream(proxyReq, req);
          // The client left before we even had a socket: free it now.
          if (ctx.clientGone || res.destroyed) proxyReq.destroy();
        });
        server.on('proxyRes', (proxyRes, req, res) => {
          const ctx = contextOf(req);
          opts.onUpstreamResponse?.((performance.now() - ctx.upstreamStart) / 1000);
          const h = proxyRes.headers;
          h[FORWARDED_HEADERS.requestId] = ctx.requestId;
          // Our client connection's lifetime is ours to decide, not the main service's.
          delete h['keep-alive'];
          delete h['proxy-connection'];
          h.connection = !res.shouldKeepAlive || closing() ? 'close' : 'keep-alive';
          // An upstream that dies mid-body ends proxyRes without an error; http-proxy would leave the
          // client waiting for the rest. Cut the client response so it sees the truncation at once.
          proxyRes.once('close', () => {
            if (!proxyRes.complete && !res.writableEnded && !res.destroyed) {
              if (ctx.upstreamError === undefined) ctx.upstreamError = 'UPSTREAM_ABORTED';
              res.destroy();
            }
          });
        });
        server.on('proxyReqWs', (proxyReq, req, socket) => {
          const ctx = beginUpstream(proxyReq, req);
          proxyReq.on('response', (r) => (ctx.upgradeStatus = r.statusCode));
          proxyReq.on('upgrade', (_r, proxySocket: Duplex) => {
            ctx.upgradeStatus = 101;
            opts.onUpstreamResponse?.((performance.now() - ctx.upstreamStart) / 1000);
            // http-proxy pipes the two sockets but does not tie their teardown together.
            proxySocket.once('close', () => socket.destroy());
            socket.once('close', () => proxySocket.destroy());
          });
        });
        server.on('econnreset', (_err, req) => {
          contextOf(req).clientGone = true;
        });
        server.on('error', (err: NodeJS.ErrnoException, req, res) => {
          const ctx = existingContextOf(req);
          const code = err.code ?? 'EPROXY';
          if (ctx && ctx.upstreamError === undefined) ctx.upstreamError = code;
          if (isServerResponse(res)) {
            if (res.destroyed || res.writableEnded || ctx?.clientGone) return;
            if (res.headersSent) {
              // Too late for a status: cut the response so the client sees it incomplete.
              res.destroy();
              return;
            }
            const status = errorStatus(code);
            const headers: Record<string, string> = {
              'content-type': 'text/plain; charset=utf-8',
              'content-length': String(STATUS_BODY[status].length),
              'cache-control': 'no-store',
              [FORWARDED_HEADERS.requestId]: ctx?.requestId ?? '',
            };
            if (closing() || !req.complete) headers.connection = 'close';
            res.writeHead(status, headers).end(STATUS_BODY[status]);
            return;
          }
          const socket = res as unknown as Duplex & { bytesWritten?: number };
          if (socket.destroyed) return;
          if (socket.writable && !socket.bytesWritten) {
            const status = errorStatus(code);
            if (ctx) ctx.upgradeStatus = status;
            const reason = status === 504 ? 'Gateway Timeout' : 'Bad Gateway';
            socket.end(
              `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${STATUS_BODY[status].length}\r\n` +
                `X-Request-Id: ${ctx?.requestId ?? ''}\r\nConnection: close\r\n\r\n${STATUS_BODY[status]}`,
              () => socket.destroy(),
            );
          } else {
            socket.destroy();
          }
        });
      },
    ],
  });

  const failed = (req: http.IncomingMessage, res: http.ServerResponse) => (err?: unknown) => {
    // hpm hands us preparation errors; nothing upstream has happened yet.
    logger.error({ err: errorFields(err), requestId: existingContextOf(req)?.requestId }, 'forwarding failed');
    if (!res.headersSent && !res.destroyed) {
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(STATUS_BODY[502]);
    } else {
      res.destroy();
    }
  };

  function forward(req: http.IncomingMessage, res: http.ServerResponse, subject: string | undefined): void {
    const ctx = contextOf(req);
    rewriteRequestHeaders(req, subject, ctx.requestId, opts.forwardAuthorization, false);
    void proxy(req, res, failed(req, res));
  }

  function upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, subject: string | undefined): void {
    const ctx = contextOf(req);
    rewriteRequestHeaders(req, subject, ctx.requestId, opts.forwardAuthorization, true);
    proxy.upgrade(req, socket as never, head);
  }

  function middleware(req: http.IncomingMessage, res: http.ServerResponse, _next: (err?: unknown) => void): void {
    forward(req, res, contextOf(req).subject);
  }

  return {
    forward,
    upgrade,
    middleware,
    agent,
    close: () => agent.destroy(),
  };
}
