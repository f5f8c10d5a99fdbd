/**
 * The upgrade (WebSocket) pass: an admitted upgrade gets an upstream connection of its own. A 101
 * joins the two sockets; any other answer is passed on and both sides close, since nothing after
 * a refused upgrade is trusted.
 *
 * Listeners are shared functions reading their exchange from the upstream request (or socket)
 * object: no closures per upgrade.
 */
import * as http from 'http';
import type { Socket } from 'net';
import type { Duplex } from 'stream';
import { destroyOnError } from './connections';
import { contextOf } from './context';
import type { RequestContext } from './context';
import type { BodyFraming } from './framing';
import { framingOf } from './pass-inputs';
import type { PassOptions, PassServer } from './pass-inputs';
import { cutUpgradeAnswer } from './response-cut';
import { onUpstreamTimeout, unforwardable } from './upstream-errors';
import { clientResponseHeaders, rawResponseHead, upstreamRequestHeaders, upstreamTarget } from './upstream-headers';

export type WsPass = (req: http.IncomingMessage, socket: Duplex, options: unknown, head: Buffer, server: PassServer) => boolean;

interface UpgradeExchange {
  readonly req: http.IncomingMessage;
  /** The client's socket. */
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly ctx: RequestContext;
  readonly server: PassServer;
  readonly onUpstreamResponse: PassOptions['onUpstreamResponse'];
}

const kUpgrade = Symbol('sidecar.upgradeExchange');
const kPeer = Symbol('sidecar.peerSocket');
type UpgradeRequest = http.ClientRequest & { [kUpgrade]: UpgradeExchange };
type PairedSocket = Duplex & { [kPeer]?: Duplex };

function exchangeOf(proxyRes: http.IncomingMessage): UpgradeExchange {
  return (proxyRes as http.IncomingMessage & { req: UpgradeRequest }).req[kUpgrade];
}

function onUpgradeProxyError(this: UpgradeRequest, err: Error): void {
  const { req, socket, server } = this[kUpgrade];
  server.emit('error', err, req, socket);
}

function relayRefusalBody(this: http.IncomingMessage, chunk: Buffer): void {
  exchangeOf(this).socket.write(chunk);
}

/** The refusal is over: end the client's socket after a complete answer, cut it after a partial one. */
function onRefusalClose(this: http.IncomingMessage): void {
  const proxyReq = (this as http.IncomingMessage & { req: UpgradeRequest }).req;
  const { socket, ctx } = proxyReq[kUpgrade];
  proxyReq.destroy();
  if (this.complete) socket.end(() => socket.destroy());
  else cutUpgradeAnswer(socket, ctx);
}

/** The upstream has answered (a 101 or not): time it. */
function upstreamAnswered({ ctx, onUpstreamResponse }: UpgradeExchange): void {
  onUpstreamResponse?.((performance.now() - ctx.upstreamStart) / 1000);
}

/** One side of a joined pair closed: so does the other. */
function destroyPeer(this: PairedSocket): void {
  this[kPeer]?.destroy();
}

/** The 101: join the client's socket and the upstream's, with no inactivity timeout on either. */
function onUpstreamUpgrade(this: UpgradeRequest, proxyRes: http.IncomingMessage, proxySocket: Socket, proxyHead: Buffer): void {
  const exchange = this[kUpgrade];
  const { socket, head, ctx, server } = exchange;
  ctx.upgradeStatus = 101;
  upstreamAnswered(exchange);
  // A WebSocket lives as long as its peers want.
  proxySocket.setTimeout(0);
  proxySocket.setNoDelay(true);
  (socket as Socket).setTimeout?.(0);
  (socket as Socket).setNoDelay?.(true);
  proxySocket.on('error', destroyOnError);
  (proxySocket as PairedSocket)[kPeer] = socket;
  (socket as PairedSocket)[kPeer] = proxySocket;
  proxySocket.once('close', destroyPeer);
  socket.once('close', destroyPeer);
  const headers = clientResponseHeaders(proxyRes.headers, ctx.requestId, 'close');
  headers.connection = 'Upgrade';
  headers.upgrade = proxyRes.headers.upgrade ?? 'websocket';
  socket.write(rawResponseHead(101, 'Switching Protocols', headers));
  if (proxyHead.length > 0) socket.write(proxyHead);
  if (head.length > 0) proxySocket.write(head);
  proxySocket.pipe(socket).pipe(proxySocket);
  server.emit('open', proxySocket);
}

/** Not a 101: pass the answer on, then close both sides. Nothing after it is trusted. */
function onUpstreamRefusal(this: UpgradeRequest, proxyRes: http.IncomingMessage): void {
  const exchange = this[kUpgrade];
  const { socket, ctx } = exchange;
  const status = proxyRes.statusCode ?? 502;
  ctx.upgradeStatus = status;
  upstreamAnswered(exchange);
  socket.write(rawResponseHead(status, http.STATUS_CODES[status] ?? 'Unknown', clientResponseHeaders(proxyRes.headers, ctx.requestId, 'close')));
  proxyRes.on('data', relayRefusalBody);
  proxyRes.once('close', onRefusalClose);
}

/** Opens the upstream request on a connection of its own: after an upgrade (or a refused one) it is never pooled. */
function upstreamUpgradeOpener(opts: PassOptions): (req: http.IncomingMessage, ctx: RequestContext, framing: BodyFraming) => UpgradeRequest {
  const { hostname, port, forwardAuthorization, fallbackHost, trustedProxyHops, upstreamTimeoutMs } = opts;
  return (req, ctx, framing) =>
    http.request({
      agent: false,
      // On the socket from its creation: setTimeout() alone would leave the connect untimed.
      timeout: upstreamTimeoutMs,
      host: hostname,
      port,
      method: 'GET',
      path: upstreamTarget(req.url),
      setHost: false,
      headers: upstreamRequestHeaders(req, { subject: ctx.subject, claimHeaders: ctx.claimHeaders, requestId: ctx.requestId, forwardAuthorization, framing, upgrade: true, fallbackHost, trustedProxyHops }),
    }) as UpgradeRequest;
}

export function createUpgradePass(opts: PassOptions): WsPass {
  const { upstreamTimeoutMs, onUpstreamResponse } = opts;
  const openUpstreamUpgrade = upstreamUpgradeOpener(opts);

  return function ws(req, socket, options, head, server) {
    const ctx = contextOf(req);
    const framing = framingOf(req, ctx, true);
    if (framing === undefined || framing.kind !== 'none') {
      server.emit('error', unforwardable('upgrade with a body'), req, socket);
      return true;
    }
    let proxyReq: UpgradeRequest;
    try {
      proxyReq = openUpstreamUpgrade(req, ctx, framing);
    } catch (err) {
      server.emit('error', unforwardable((err as Error).message), req, socket);
      return true;
    }
    proxyReq[kUpgrade] = { req, socket, head, ctx, server, onUpstreamResponse };
    ctx.proxyReq = proxyReq;
    ctx.upstreamStart = performance.now();
    proxyReq.setTimeout(upstreamTimeoutMs, onUpstreamTimeout);
    proxyReq.on('error', onUpgradeProxyError);
    proxyReq.on('response', onUpstreamRefusal);
    proxyReq.on('upgrade', onUpstreamUpgrade);
    server.emit('proxyReqWs', proxyReq, req, socket, options, head);
    proxyReq.end();
    return true;
  };
}
