/**
 * The forwarding passes the sidecar installs in http-proxy, replacing all of its own.
 * http-proxy-middleware stays the entry point (its options, plugins and events); these passes
 * decide what goes on the wire. Why each built-in pass is replaced: SECURITY.md, "Forwarding passes".
 *
 * The invariant they keep:
 *  - every forwarded request reaches the upstream as exactly one request, framed as Node parsed it;
 *  - no client byte reaches the upstream outside a request the sidecar judged;
 *  - an upstream connection is reused only after a complete, well-framed exchange.
 *
 * Listeners are shared functions reading their exchange from the request object: no closures per request.
 */
import * as http from 'http';
import type { Socket } from 'net';
import type { Duplex } from 'stream';
import { contextOf } from './context';
import type { RequestContext } from './context';
import { requestFraming } from './framing';
import type { BodyFraming } from './framing';
import { clientResponseHeaders, rawResponseHead, upstreamRequestHeaders, upstreamTarget } from './upstream-headers';
import { UpstreamPool } from './upstream-pool';

/** The parts of http-proxy's ProxyServer a pass uses. */
export interface PassServer {
  emit(event: string, ...args: unknown[]): boolean;
}

export interface PassOptions {
  readonly pool: UpstreamPool;
  /** Upstream host and port, validated once at start-up. */
  readonly hostname: string;
  readonly port: number;
  /** Host header for clients that sent none. */
  readonly fallbackHost: string;
  readonly upstreamTimeoutMs: number;
  readonly forwardAuthorization: boolean;
  /** SIDECAR_TRUSTED_PROXY_HOPS: whose X-Forwarded-For and -Proto are kept (upstream-headers.ts). */
  readonly trustedProxyHops: number;
  /** Whether responses should close the client connection (shutting down). */
  readonly closing: () => boolean;
  /** Seconds from forwarding to the upstream's response headers. */
  readonly onUpstreamResponse?: (seconds: number) => void;
}

export const UPSTREAM_TIMEOUT = 'UPSTREAM_TIMEOUT';
/** Our code for a failure that is the client's request, not the upstream (mapped to 400). */
export const UNFORWARDABLE = 'UNFORWARDABLE';
/** The upstream answered something no HTTP/1.1 server may send here (mapped to 502). */
export const UPSTREAM_BAD_RESPONSE = 'UPSTREAM_BAD_RESPONSE';

type WebPass = (req: http.IncomingMessage, res: http.ServerResponse, options: unknown, head: unknown, server: PassServer) => boolean;
type WsPass = (req: http.IncomingMessage, socket: Duplex, options: unknown, head: Buffer, server: PassServer) => boolean;

interface Exchange {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly ctx: RequestContext;
  readonly server: PassServer;
}

const kExchange = Symbol('sidecar.exchange');
type ProxyRequest = http.ClientRequest & { [kExchange]: Exchange };
type ClientRequestWithExchange = http.IncomingMessage & { [kExchange]?: ProxyRequest };

function onUpstreamTimeout(this: http.ClientRequest): void {
  this.destroy(Object.assign(new Error('upstream timeout'), { code: UPSTREAM_TIMEOUT }));
}

/** Framing decided at admission; recomputed (and refused) if a request arrives here without it. */
function framingOf(req: http.IncomingMessage, ctx: RequestContext, upgrade: boolean): BodyFraming | undefined {
  if (ctx.framing !== undefined) return ctx.framing;
  const verdict = requestFraming(req, upgrade);
  return verdict.ok ? verdict.framing : undefined;
}

function unforwardable(message: string): Error {
  return Object.assign(new Error(message), { code: UNFORWARDABLE });
}

function badResponse(message: string): Error {
  return Object.assign(new Error(message), { code: UPSTREAM_BAD_RESPONSE });
}

export function createPasses(opts: PassOptions): { web: WebPass; ws: WsPass } {
  const { pool, hostname, port, upstreamTimeoutMs, forwardAuthorization, fallbackHost, trustedProxyHops } = opts;

  function onProxyError(this: ProxyRequest, err: Error): void {
    const { req, res, server } = this[kExchange];
    server.emit('error', err, req, res);
  }

  /** An upstream that dies mid-body ends the response without an error: cut the client's too. */
  function onProxyResponseClose(this: http.IncomingMessage): void {
    const proxyReq = (this as http.IncomingMessage & { req: ProxyRequest }).req;
    const { res, ctx } = proxyReq[kExchange];
    if (!this.complete && !res.writableEnded && !res.destroyed) {
      if (ctx.upstreamError === undefined) ctx.upstreamError = 'UPSTREAM_ABORTED';
      res.destroy();
    }
  }

  /** A 101 to a request that asked for no upgrade: the connection now speaks who knows what. */
  function onUnexpectedUpgrade(this: ProxyRequest, _proxyRes: http.IncomingMessage, socket: Socket): void {
    socket.destroy();
    const { req, res, server } = this[kExchange];
    server.emit('error', badResponse('101 to a request without Upgrade'), req, res);
  }

  function onProxyResponse(this: ProxyRequest, proxyRes: http.IncomingMessage): void {
    const { req, res, ctx, server } = this[kExchange];
    opts.onUpstreamResponse?.((performance.now() - ctx.upstreamStart) / 1000);
    const status = proxyRes.statusCode ?? 0;
    // Node hands 1xx other than 101 to 'information'; a 101 here, or a status outside 2xx–5xx, is an upstream bug.
    if (status < 200 || status > 599) {
      this.destroy();
      server.emit('error', badResponse(`upstream status ${status}`), req, res);
      return;
    }
    server.emit('proxyRes', proxyRes, req, res);
    if (res.headersSent || res.destroyed) {
      this.destroy();
      return;
    }
    const keepAlive = res.shouldKeepAlive && !opts.closing();
    // The upstream's reason phrase is not forwarded: it carries nothing, and Node would throw on some bytes it accepts.
    res.writeHead(status, clientResponseHeaders(proxyRes.headers, ctx.requestId, keepAlive ? 'keep-alive' : 'close'));
    proxyRes.once('close', onProxyResponseClose);
    proxyRes.pipe(res);
  }

  /** The client left before sending its whole body: the upstream request must not complete. */
  function onClientRequestClose(this: ClientRequestWithExchange): void {
    const proxyReq = this[kExchange];
    if (!this.complete && proxyReq !== undefined && !proxyReq.destroyed) proxyReq.destroy();
  }

  const web: WebPass = (req, res, _options, _head, server) => {
    const ctx = contextOf(req);
    const framing = framingOf(req, ctx, false);
    if (framing === undefined) {
      server.emit('error', unforwardable('request framing refused'), req, res);
      return true;
    }
    let proxyReq: ProxyRequest;
    try {
      proxyReq = http.request({
        agent: pool,
        host: hostname,
        port,
        method: req.method,
        path: upstreamTarget(req.url),
        setHost: false,
        headers: upstreamRequestHeaders(req, {
          subject: ctx.subject,
          claimHeaders: ctx.claimHeaders,
          requestId: ctx.requestId,
          forwardAuthorization,
          framing,
          upgrade: false,
          fallbackHost,
          closeAfter: req.method === 'HEAD',
          trustedProxyHops,
        }),
      }) as ProxyRequest;
    } catch (err) {
      // Node refuses some request targets and header bytes its own parser let through.
      server.emit('error', unforwardable((err as Error).message), req, res);
      return true;
    }
    proxyReq[kExchange] = { req, res, ctx, server };
    ctx.proxyReq = proxyReq;
    ctx.upstreamStart = performance.now();
    proxyReq.setTimeout(upstreamTimeoutMs, onUpstreamTimeout);
    proxyReq.on('error', onProxyError);
    proxyReq.on('response', onProxyResponse);
    proxyReq.on('upgrade', onUnexpectedUpgrade);
    server.emit('proxyReq', proxyReq, req, res);
    if (ctx.clientGone || res.destroyed) {
      proxyReq.destroy();
      return true;
    }
    if (framing.kind === 'none' || (framing.kind === 'length' && framing.length === '0')) {
      proxyReq.end();
    } else {
      (req as ClientRequestWithExchange)[kExchange] = proxyReq;
      req.once('close', onClientRequestClose);
      req.pipe(proxyReq);
    }
    return true;
  };

  const ws: WsPass = (req, socket, _options, head, server) => {
    const ctx = contextOf(req);
    const framing = framingOf(req, ctx, true);
    if (framing === undefined || framing.kind !== 'none') {
      server.emit('error', unforwardable('upgrade with a body'), req, socket);
      return true;
    }
    let proxyReq: http.ClientRequest;
    try {
      proxyReq = http.request({
        // A connection of its own: after an upgrade (or a refused one) it is never pooled.
        agent: false,
        host: hostname,
        port,
        method: 'GET',
        path: upstreamTarget(req.url),
        setHost: false,
        headers: upstreamRequestHeaders(req, { subject: ctx.subject, claimHeaders: ctx.claimHeaders, requestId: ctx.requestId, forwardAuthorization, framing, upgrade: true, fallbackHost, trustedProxyHops }),
      });
    } catch (err) {
      server.emit('error', unforwardable((err as Error).message), req, socket);
      return true;
    }
    ctx.proxyReq = proxyReq;
    ctx.upstreamStart = performance.now();
    proxyReq.setTimeout(upstreamTimeoutMs, onUpstreamTimeout);
    proxyReq.on('error', (err) => server.emit('error', err, req, socket));

    proxyReq.on('response', (proxyRes: http.IncomingMessage) => {
      // Not a 101: pass the answer on, then close both sides. Nothing after it is trusted.
      const status = proxyRes.statusCode ?? 502;
      ctx.upgradeStatus = status;
      opts.onUpstreamResponse?.((performance.now() - ctx.upstreamStart) / 1000);
      socket.write(rawResponseHead(status, http.STATUS_CODES[status] ?? 'Unknown', clientResponseHeaders(proxyRes.headers, ctx.requestId, 'close')));
      proxyRes.on('data', (chunk: Buffer) => socket.write(chunk));
      proxyRes.once('close', () => {
        proxyReq.destroy();
        if (proxyRes.complete) socket.end(() => socket.destroy());
        else socket.destroy();
      });
    });

    proxyReq.on('upgrade', (proxyRes: http.IncomingMessage, proxySocket: Socket, proxyHead: Buffer) => {
      ctx.upgradeStatus = 101;
      opts.onUpstreamResponse?.((performance.now() - ctx.upstreamStart) / 1000);
      // A WebSocket lives as long as its peers want: no inactivity timeout on either side.
      proxySocket.setTimeout(0);
      proxySocket.setNoDelay(true);
      (socket as Socket).setTimeout?.(0);
      (socket as Socket).setNoDelay?.(true);
      proxySocket.on('error', () => proxySocket.destroy());
      proxySocket.once('close', () => socket.destroy());
      socket.once('close', () => proxySocket.destroy());
      const headers = clientResponseHeaders(proxyRes.headers, ctx.requestId, 'close');
      headers.connection = 'Upgrade';
      headers.upgrade = proxyRes.headers.upgrade ?? 'websocket';
      socket.write(rawResponseHead(101, 'Switching Protocols', headers));
      if (proxyHead.length > 0) socket.write(proxyHead);
      if (head.length > 0) proxySocket.write(head);
      proxySocket.pipe(socket).pipe(proxySocket);
      server.emit('open', proxySocket);
    });

    server.emit('proxyReqWs', proxyReq, req, socket, _options, head);
    proxyReq.end();
    return true;
  };

  return { web, ws };
}
