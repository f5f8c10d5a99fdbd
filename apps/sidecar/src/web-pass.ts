/**
 * The web pass: one admitted plain request becomes exactly one upstream request, framed as Node
 * parsed it, and the upstream's answer is relayed under our own response head.
 *
 * Listeners are shared functions reading their exchange from the upstream request object: no
 * closures per request.
 */
import * as http from 'http';
import type { Socket } from 'net';
import { contextOf } from './context';
import type { RequestContext } from './context';
import type { BodyFraming } from './framing';
import { framingOf } from './pass-inputs';
import type { PassOptions, PassServer } from './pass-inputs';
import { cutResponse } from './response-cut';
import { UPSTREAM_ABORTED, UPSTREAM_TIMEOUT, badResponse, onUpstreamTimeout, unforwardable } from './upstream-errors';
import { clientResponseHeaders, upstreamRequestHeaders, upstreamTarget } from './upstream-headers';

export type WebPass = (req: http.IncomingMessage, res: http.ServerResponse, options: unknown, head: unknown, server: PassServer) => boolean;

interface Exchange {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly ctx: RequestContext;
  readonly server: PassServer;
}

const kExchange = Symbol('sidecar.exchange');
type ProxyRequest = http.ClientRequest & { [kExchange]: Exchange };
type ClientRequestWithExchange = http.IncomingMessage & { [kExchange]?: ProxyRequest };

/** The upstream's response, once it has begun (Node keeps it on the request as `res`). */
function upstreamResponseOf(proxyReq: http.ClientRequest): http.IncomingMessage | undefined {
  return (proxyReq as http.ClientRequest & { res?: http.IncomingMessage | null }).res ?? undefined;
}

function onProxyError(this: ProxyRequest, err: NodeJS.ErrnoException): void {
  const { req, res, ctx, server } = this[kExchange];
  // After a whole response (bytes after it, a reset): Node has closed that connection already, and
  // the client's response completes from what was read, so it is noted, not cut. A HEAD, 204 or 304
  // ends with its head, and such bytes arrive while the head is still held back: a cut would leave
  // the client nothing while the log said 200. Our own timeout is not one of these: destroying the
  // request discards what it had read.
  if (err.code !== UPSTREAM_TIMEOUT && upstreamResponseOf(this)?.complete === true) {
    if (ctx.upstreamError === undefined) ctx.upstreamError = err.code ?? 'EPROXY';
    return;
  }
  server.emit('error', err, req, res);
}

/** An upstream that dies mid-body ends the response without an error: cut the client's too. */
function onProxyResponseClose(this: http.IncomingMessage): void {
  const proxyReq = (this as http.IncomingMessage & { req: ProxyRequest }).req;
  const { res, ctx } = proxyReq[kExchange];
  if (!this.complete && !res.writableEnded && !res.destroyed) {
    if (ctx.upstreamError === undefined) ctx.upstreamError = UPSTREAM_ABORTED;
    cutResponse(res, ctx);
  }
}

/** A 101 to a request that asked for no upgrade: the connection now speaks who knows what. */
function onUnexpectedUpgrade(this: ProxyRequest, _proxyRes: http.IncomingMessage, socket: Socket): void {
  socket.destroy();
  const { req, res, server } = this[kExchange];
  server.emit('error', badResponse('101 to a request without Upgrade'), req, res);
}

/** The client left before sending its whole body: the upstream request must not complete. */
function onClientRequestClose(this: ClientRequestWithExchange): void {
  const proxyReq = this[kExchange];
  if (!this.complete && proxyReq !== undefined && !proxyReq.destroyed) proxyReq.destroy();
}

/** Send the body as framed at admission: nothing to send ends the request at once, else it streams. */
function sendBody(req: http.IncomingMessage, proxyReq: ProxyRequest, framing: BodyFraming): void {
  if (framing.kind === 'none' || (framing.kind === 'length' && framing.length === '0')) {
    proxyReq.end();
    return;
  }
  (req as ClientRequestWithExchange)[kExchange] = proxyReq;
  req.once('close', onClientRequestClose);
  req.pipe(proxyReq);
}

/** Opens the upstream request, headers and all; it throws on what Node refuses to send. */
function upstreamRequestOpener(opts: PassOptions): (req: http.IncomingMessage, ctx: RequestContext, framing: BodyFraming) => ProxyRequest {
  const { pool, hostname, port, forwardAuthorization, fallbackHost, trustedProxyHops, upstreamTimeoutMs } = opts;
  return (req, ctx, framing) =>
    http.request({
      agent: pool,
      // The request's own timeout is set on the socket as soon as the pool hands it over, connecting
      // or not; setTimeout() alone waits for the connect, leaving a pending one to the pool's idle timeout.
      timeout: upstreamTimeoutMs,
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
        // A HEAD answer's length says nothing about the bytes on the wire: never pool that connection.
        closeAfter: req.method === 'HEAD',
        trustedProxyHops,
      }),
    }) as ProxyRequest;
}

/** The upstream request's 'response' listener: the upstream's answer, under our own head. */
function responseRelay(opts: PassOptions): (this: ProxyRequest, proxyRes: http.IncomingMessage) => void {
  const { closing, onUpstreamResponse } = opts;
  return function onProxyResponse(proxyRes) {
    const { req, res, ctx, server } = this[kExchange];
    onUpstreamResponse?.((performance.now() - ctx.upstreamStart) / 1000);
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
    const keepAlive = res.shouldKeepAlive && !closing();
    // The upstream's reason phrase is not forwarded: it carries nothing, and Node would throw on some bytes it accepts.
    res.writeHead(status, clientResponseHeaders(proxyRes.headers, ctx.requestId, keepAlive ? 'keep-alive' : 'close'));
    proxyRes.once('close', onProxyResponseClose);
    proxyRes.pipe(res);
  };
}

export function createWebPass(opts: PassOptions): WebPass {
  const { upstreamTimeoutMs } = opts;
  const openUpstreamRequest = upstreamRequestOpener(opts);
  const onProxyResponse = responseRelay(opts);

  return function web(req, res, _options, _head, server) {
    const ctx = contextOf(req);
    const framing = framingOf(req, ctx, false);
    if (framing === undefined) {
      server.emit('error', unforwardable('request framing refused'), req, res);
      return true;
    }
    let proxyReq: ProxyRequest;
    try {
      proxyReq = openUpstreamRequest(req, ctx, framing);
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
    sendBody(req, proxyReq, framing);
    return true;
  };
}
