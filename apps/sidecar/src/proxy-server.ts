/**
 * The proxy port: a plain node:http server whose every request and upgrade goes admit → forward, or
 * admit → refuse. It also owns what Node leaves to the application on this port: CONNECT, the
 * 100-continue invitation, parse errors, and the order of answers on a pipelined connection.
 */
import * as http from 'http';
import type { Duplex } from 'stream';
import type { Admit, ClientErrorReason, Refusal, RequestKind } from './admission';
import { answeredWithClose, hasResponsesOwed, markAnsweredWithClose, responseDone, responseOwed, whenSettled } from './connections';
import { contextOf, existingContextOf, logPath } from './context';
import type { RequestContext } from './context';
import type { Forwarder } from './forward';
import { hasPendingBody } from './framing';
import type { Logger } from './log';
import { createAccessLog, errorFields } from './log';
import type { SidecarMetrics } from './metrics';
import { refuse, refuseSocket } from './refusals';
import type { RefusalExtras } from './refusals';

/** Idle time before we close a client's keep-alive connection. */
export const CLIENT_KEEPALIVE_TIMEOUT_MS = 5_000;
/** Node only checks headersTimeout at this interval (default 30 s). */
const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;
const MAX_HEADER_BYTES = 16 * 1024;
const CONNECT_ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** Where the sidecar is in its life; shutdown.ts moves it forward. */
export interface Lifecycle {
  /** From SIGTERM on: readiness fails and every response closes its connection. */
  shuttingDown: boolean;
  /** From the end of the drain on: new upgrades are refused with 503. */
  closingConnections: boolean;
}

export interface ProxyServerOptions {
  readonly headersTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly admit: Admit;
  readonly forwarder: Forwarder;
  readonly metrics: SidecarMetrics;
  readonly logger: Logger;
  readonly lifecycle: Lifecycle;
}

export interface ProxyServer {
  readonly server: http.Server;
  /** Requests being answered now. */
  inFlight(): number;
  /** Upgraded connections (WebSockets) open now. */
  readonly webSockets: ReadonlySet<Duplex>;
}

export function createProxyServer(opts: ProxyServerOptions): ProxyServer {
  const { admit, forwarder, metrics, logger, lifecycle } = opts;
  let inFlight = 0;
  const webSockets = new Set<Duplex>();
  // From SIGTERM on, every response closes its connection: a busy keep-alive client reconnects (to
  // another pod once the endpoints update) instead of sending its next request on a connection the
  // close phase is about to cut, which it would see as a reset.
  const closing = () => lifecycle.shuttingDown;

  const writeAccessLine = createAccessLog(logger);
  const accessLine = (method: string | undefined, url: string | undefined, status: number, ctx: RequestContext, extra?: { aborted?: boolean; upgrade?: boolean; reason?: string }) => {
    writeAccessLine({
      method,
      path: logPath(url),
      status,
      durationMs: Math.round((performance.now() - ctx.start) * 100) / 100,
      requestId: ctx.requestId,
      subject: ctx.subject,
      reason: extra?.reason ?? ctx.reason,
      rule: ctx.rule,
      upstreamError: ctx.upstreamError,
      aborted: extra?.aborted,
      upgrade: extra?.upgrade,
    });
  };

  /** Count a refusal and say why in the log line; the extras its answer needs. */
  function noteRefusal(refusal: Refusal, ctx: RequestContext): RefusalExtras | undefined {
    ctx.reason = refusal.reason;
    if (refusal.clientError !== undefined) metrics.clientError(refusal.clientError);
    if (refusal.forbiddenRule !== undefined) metrics.forbidden(refusal.forbiddenRule);
    if (refusal.auth === undefined) return undefined;
    metrics.authFailure(refusal.auth.reason);
    // The refusal carries its challenge: no object per 401.
    return refusal;
  }

  function refuseRequest(req: http.IncomingMessage, res: http.ServerResponse, refusal: Refusal, ctx: RequestContext): void {
    const extras = noteRefusal(refusal, ctx);
    // A 401 or 403 keeps the connection unless there is an unread body (a refused client does not
    // get to stream one at us) or the pod is draining; every other refusal closes it.
    const close = refusal.keepAlive !== true || hasPendingBody(req) || closing();
    if (close) markAnsweredWithClose(res.socket ?? res);
    refuse(res, refusal.status, ctx.requestId, close, extras);
  }

  // One shared listener (no closure per request): `this` is the response.
  function onResponseClose(this: http.ServerResponse): void {
    const req = this.req;
    const ctx = contextOf(req);
    inFlight--;
    responseDone(req.socket);
    const finished = this.writableFinished;
    if (!finished) {
      ctx.clientGone = true;
      // Free the upstream request at once; http-proxy alone misses a client leaving a fully-read GET.
      if (ctx.proxyReq !== undefined && !ctx.proxyReq.destroyed) ctx.proxyReq.destroy();
    }
    // 499: the client closed the connection before we could answer (nginx's convention).
    const status = !finished && !this.headersSent ? 499 : this.statusCode;
    metrics.request(status, ctx.subject ?? '');
    accessLine(req.method, req.url, status, ctx, finished ? undefined : { aborted: true });
  }

  function onRequest(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue = false): void {
    const ctx = contextOf(req);
    inFlight++;
    responseOwed(req.socket);
    res.once('close', onResponseClose);
    try {
      if (answeredWithClose(req.socket)) {
        // Left unanswered: Node closes the connection once the earlier response is out.
        ctx.reason = 'after_close';
        return;
      }
      const admission = admit(req, ctx, 'request');
      if (!admission.admitted) {
        refuseRequest(req, res, admission, ctx);
        return;
      }
      // Invite the body only once we know we will forward it.
      if (expectsContinue) res.writeContinue();
      if (closing()) markAnsweredWithClose(req.socket);
      forwarder.forward(req, res);
    } catch (err) {
      logger.error({ err: errorFields(err), requestId: ctx.requestId }, 'request handling failed');
      if (!res.headersSent && !res.destroyed) {
        markAnsweredWithClose(res.socket ?? res);
        refuse(res, 500, ctx.requestId, true);
      } else {
        res.destroy();
      }
    }
  }

  function onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node detaches its own error handling from upgraded sockets: an unhandled 'error' would crash us.
    socket.on('error', () => socket.destroy());
    const ctx = contextOf(req);
    let logged = false;
    const finish = () => {
      if (logged) return;
      logged = true;
      webSockets.delete(socket);
      const status = ctx.upgradeStatus ?? (ctx.upstreamError ? 502 : 499);
      metrics.request(status, ctx.subject ?? '');
      accessLine(req.method, req.url, status, ctx, { upgrade: true });
    };
    socket.once('close', finish);
    const refuseUpgrade = (refusal: Refusal) => {
      const extras = noteRefusal(refusal, ctx);
      ctx.upgradeStatus = refusal.status;
      refuseSocket(socket, refusal.status, ctx.requestId, extras);
    };
    try {
      if (answeredWithClose(socket)) {
        // Pipelined behind an answer that closed the connection: not ours to serve.
        ctx.reason = 'after_close';
        whenSettled(socket, () => socket.end());
        return;
      }
      if (hasResponsesOwed(socket)) {
        // Pipelined behind responses still being written: refuse it after them, never overtake them.
        metrics.clientError('bad_request');
        ctx.reason = 'pipelined_upgrade';
        ctx.upgradeStatus = 400;
        whenSettled(socket, () => refuseSocket(socket, 400, ctx.requestId));
        return;
      }
      if (lifecycle.closingConnections) {
        ctx.upgradeStatus = 503;
        refuseSocket(socket, 503, ctx.requestId);
        return;
      }
      const admission = admit(req, ctx, 'upgrade' satisfies RequestKind);
      if (!admission.admitted) {
        refuseUpgrade(admission);
        return;
      }
      webSockets.add(socket);
      forwarder.upgrade(req, socket, head);
    } catch (err) {
      logger.error({ err: errorFields(err), requestId: ctx.requestId }, 'upgrade handling failed');
      socket.destroy();
    }
  }

  /** The sidecar is not a forward proxy. Without this listener Node would drop the socket wordlessly. */
  function onConnect(req: http.IncomingMessage, socket: Duplex): void {
    socket.on('error', () => socket.destroy());
    const ctx = contextOf(req);
    metrics.request(405, '');
    accessLine(req.method, '', 405, ctx, { reason: 'connect_refused' });
    refuseSocket(socket, 405, ctx.requestId, { allow: CONNECT_ALLOW });
  }

  function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    let status: 400 | 408 | 431 = 400;
    let reason: ClientErrorReason = 'bad_request';
    if (code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      reason = 'headers_too_large';
    } else if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') {
      status = 408;
      reason = 'headers_timeout';
    }
    metrics.clientError(reason);
    // Never the raw packet: it may hold a token.
    logger.info({ status, reason, code }, 'client error');
    const current = (socket as { _httpMessage?: http.ServerResponse })._httpMessage;
    if (current !== undefined && current !== null && !current.req.complete) {
      // The error is in the body of the request being forwarded: it must never complete upstream.
      const proxyReq = existingContextOf(current.req)?.proxyReq;
      if (proxyReq !== undefined && !proxyReq.destroyed) proxyReq.destroy();
      if (current.headersSent) socket.destroy();
      else refuseSocket(socket, status, undefined);
      return;
    }
    // Bytes after a `Connection: close` request: the answer owed is the last thing on this connection.
    if (code === 'HPE_CLOSED_CONNECTION') {
      whenSettled(socket, () => socket.end());
      return;
    }
    // Earlier pipelined requests still get their answers first; then the refusal, then close.
    whenSettled(socket, () => refuseSocket(socket, status, undefined));
  }

  const server = http.createServer(
    {
      headersTimeout: opts.headersTimeoutMs,
      // Bodies stream for as long as they need; stalls are cut by the inactivity timeout below.
      requestTimeout: 0,
      keepAliveTimeout: CLIENT_KEEPALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
    },
    onRequest,
  );
  // Count headers ourselves (431 above admission's MAX_HEADERS); Node's cap would silently drop the excess instead.
  server.maxHeadersCount = 0;
  // Socket inactivity: longer than the upstream timeout, so a slow upstream yields a 504, not a cut.
  server.timeout = opts.upstreamTimeoutMs + opts.headersTimeoutMs;
  server.on('upgrade', onUpgrade);
  server.on('connect', onConnect);
  // Without this listener Node answers "100 Continue" before we have looked at the token.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => onRequest(req, res, true));
  server.on('clientError', onClientError);

  return { server, inFlight: () => inFlight, webSockets };
}
