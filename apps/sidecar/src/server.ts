/**
 * The sidecar: a plain node:http proxy port running `authenticate → forward`, and an Express admin port.
 * The proxy port deliberately avoids Express: its per-request machinery doubled the CPU cost of a
 * proxied request in our measurements (see the README, "Performance").
 */
import * as http from 'http';
import type { AddressInfo } from 'net';
import type { Duplex } from 'stream';
import { createAdminApp } from './admin';
import { createAuthenticator, hasPendingBody } from './authenticate';
import { ConfigError } from './config';
import type { SidecarConfig } from './config';
import { SIDECAR_ENV } from '../../../contract';
import { contextOf, existingContextOf, logPath } from './context';
import type { RequestContext } from './context';
import { createForwarder } from './forward';
import { requestFraming } from './framing';
import type { FramingVerdict } from './framing';
import type { Logger } from './log';
import { createAccessLog, errorFields } from './log';
import { createMetrics } from './metrics';
import type { ClientErrorReason, SidecarMetrics } from './metrics';
import { TokenStore } from './tokens';

/** Idle time before we close a client's keep-alive connection. */
const CLIENT_KEEPALIVE_TIMEOUT_MS = 5_000;
/** More headers than this is abuse, not a client. */
const MAX_HEADERS = 100;
/** Node only checks headersTimeout at this interval (default 30 s). */
const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;
const MAX_HEADER_BYTES = 16 * 1024;

export interface Sidecar {
  readonly proxyServer: http.Server;
  readonly adminServer: http.Server;
  readonly tokens: TokenStore;
  readonly metrics: SidecarMetrics;
  /** Load tokens, bind both ports; resolves with the bound ports. */
  start(): Promise<{ port: number; adminPort: number }>;
  /** The graceful shutdown sequence; resolves with the exit code (0 clean, 1 deadline hit). */
  shutdown(signal: string): Promise<number>;
}

const PLAIN = 'text/plain; charset=utf-8';

function writeSimple(res: http.ServerResponse, status: number, body: string, requestId: string, close: boolean): void {
  const headers: Record<string, string> = {
    'content-type': PLAIN,
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  };
  if (close) {
    headers.connection = 'close';
    finishedSockets.add(res.socket ?? res);
  }
  res.writeHead(status, headers).end(body);
}

function rawResponse(socket: Duplex, status: number, reason: string, extra = ''): void {
  const body = `${reason}\n`;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${PLAIN}\r\nContent-Length: ${body.length}\r\n${extra}Connection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/** Raw path of the request target, before any query; no decoding or normalisation on purpose. */
function rawPathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function framingStatusText(verdict: FramingVerdict & { ok: false }): string {
  return verdict.status === 501 ? 'Not Implemented' : 'Bad Request';
}

/** Connections we answered with `Connection: close`: requests pipelined behind that answer are not ours to serve. */
const finishedSockets = new WeakSet<object>();

/**
 * Responses still owed on a client connection, and what to do once none is. Node emits an upgrade,
 * and a parse error, as soon as it parses them, even while earlier pipelined responses are still
 * being written: anything we write then must wait for those, or it would overtake them.
 */
const kOwed = Symbol('sidecar.responsesOwed');
const kWhenSettled = Symbol('sidecar.whenSettled');
type TrackedSocket = object & { [kOwed]?: number; [kWhenSettled]?: () => void };

function responseOwed(socket: object): void {
  const s = socket as TrackedSocket;
  s[kOwed] = (s[kOwed] ?? 0) + 1;
}

function responseDone(socket: object): void {
  const s = socket as TrackedSocket;
  const left = (s[kOwed] ?? 1) - 1;
  s[kOwed] = left;
  const then = s[kWhenSettled];
  if (left === 0 && then !== undefined) {
    s[kWhenSettled] = undefined;
    then();
  }
}

/** Run `fn` once every response owed on `socket` has been written (at once if none is). */
function whenSettled(socket: object, fn: () => void): void {
  const s = socket as TrackedSocket;
  if (!s[kOwed]) fn();
  else s[kWhenSettled] = fn;
}

export function createSidecar(config: SidecarConfig, logger: Logger): Sidecar {
  const metrics = createMetrics();
  let shuttingDown = false;
  let inFlight = 0;
  metrics.inFlight(() => inFlight);
  let closingConnections = false;
  // From SIGTERM on, every response closes its connection: a busy keep-alive client reconnects (to
  // another pod once the endpoints update) instead of sending its next request on a connection the
  // close phase is about to cut, which it would see as a reset.
  const closing = () => shuttingDown;

  const tokens = new TokenStore({
    dir: config.tokensDir,
    pollIntervalMs: config.tokensPollIntervalMs,
    logger,
    onReload: (result, count) => {
      metrics.tokenReload(result);
      metrics.tokensLoaded(count);
    },
  });

  const authenticator = createAuthenticator({
    tokens: () => tokens.tokens,
    realm: config.realm,
    onFailure: (reason) => metrics.authFailure(reason),
    closing,
  });

  const forwarder = createForwarder({
    upstream: config.upstreamAddress,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    upstreamIdleTimeoutMs: config.upstreamIdleTimeoutMs,
    forwardAuthorization: config.forwardAuthorization,
    logger,
    onUpstreamResponse: (s) => metrics.upstreamDuration(s),
    closing,
  });

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
      upstreamError: ctx.upstreamError,
      aborted: extra?.aborted,
      upgrade: extra?.upgrade,
    });
  };

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

  function handleRequest(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue = false): void {
    const ctx = contextOf(req);
    inFlight++;
    responseOwed(req.socket);
    res.once('close', onResponseClose);
    try {
      if (finishedSockets.has(req.socket)) {
        // Left unanswered: Node closes the connection once the earlier response is out.
        ctx.reason = 'after_close';
        return;
      }
      // Node accepts HTTP/0.9-style and 2.0 request lines; neither is ours to forward.
      if (req.httpVersionMajor !== 1) {
        metrics.clientError('bad_request');
        ctx.reason = 'bad_version';
        if (req.httpVersionMajor > 1) writeSimple(res, 505, 'HTTP Version Not Supported\n', ctx.requestId, true);
        else writeSimple(res, 400, 'Bad Request\n', ctx.requestId, true);
        return;
      }
      if (req.rawHeaders.length > MAX_HEADERS * 2) {
        metrics.clientError('too_many_headers');
        ctx.reason = 'too_many_headers';
        writeSimple(res, 431, 'Request Header Fields Too Large\n', ctx.requestId, true);
        return;
      }
      const framing = requestFraming(req, false);
      if (!framing.ok) {
        metrics.clientError('bad_framing');
        ctx.reason = framing.reason;
        writeSimple(res, framing.status, `${framingStatusText(framing)}\n`, ctx.requestId, true);
        return;
      }
      ctx.framing = framing.framing;
      if (config.publicPaths.size > 0 && config.publicPaths.has(rawPathOf(req.url))) {
        ctx.reason = 'public';
        if (expectsContinue) res.writeContinue();
        if (closing()) finishedSockets.add(req.socket);
        forwarder.forward(req, res);
        return;
      }
      const verdict = authenticator.authenticate(req);
      if (!verdict.ok) {
        authenticator.reject(req, res, verdict);
        if (hasPendingBody(req) || closing()) finishedSockets.add(req.socket);
        return;
      }
      ctx.subject = verdict.subject;
      // Invite the body only once we know we will forward it.
      if (expectsContinue) res.writeContinue();
      if (closing()) finishedSockets.add(req.socket);
      forwarder.forward(req, res);
    } catch (err) {
      logger.error({ err: errorFields(err), requestId: ctx.requestId }, 'request handling failed');
      if (!res.headersSent && !res.destroyed) writeSimple(res, 500, 'Internal Server Error\n', ctx.requestId, true);
      else res.destroy();
    }
  }

  const upgradedSockets = new Set<Duplex>();

  function handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node detaches its own error handling from upgraded sockets: an unhandled 'error' would crash us.
    socket.on('error', () => socket.destroy());
    const ctx = contextOf(req);
    let logged = false;
    const finish = () => {
      if (logged) return;
      logged = true;
      upgradedSockets.delete(socket);
      const status = ctx.upgradeStatus ?? (ctx.upstreamError ? 502 : 499);
      metrics.request(status, ctx.subject ?? '');
      accessLine(req.method, req.url, status, ctx, { upgrade: true });
    };
    socket.once('close', finish);
    try {
      if (finishedSockets.has(socket)) {
        // Pipelined behind an answer that closed the connection: not ours to serve.
        ctx.reason = 'after_close';
        whenSettled(socket, () => socket.end());
        return;
      }
      if ((socket as TrackedSocket)[kOwed]) {
        // Pipelined behind responses still being written: refuse it after them, never overtake them.
        metrics.clientError('bad_request');
        ctx.reason = 'pipelined_upgrade';
        ctx.upgradeStatus = 400;
        whenSettled(socket, () => rawResponse(socket, 400, 'Bad Request', `X-Request-Id: ${ctx.requestId}\r\n`));
        return;
      }
      if (closingConnections) {
        ctx.upgradeStatus = 503;
        rawResponse(socket, 503, 'Service Unavailable', `X-Request-Id: ${ctx.requestId}\r\n`);
        return;
      }
      if (req.httpVersionMajor !== 1 || req.httpVersionMinor !== 1) {
        metrics.clientError('bad_request');
        ctx.upgradeStatus = 400;
        rawResponse(socket, 400, 'Bad Request', `X-Request-Id: ${ctx.requestId}\r\n`);
        return;
      }
      if (req.rawHeaders.length > MAX_HEADERS * 2) {
        metrics.clientError('too_many_headers');
        ctx.upgradeStatus = 431;
        rawResponse(socket, 431, 'Request Header Fields Too Large', `X-Request-Id: ${ctx.requestId}\r\n`);
        return;
      }
      const framing = requestFraming(req, true);
      if (!framing.ok) {
        metrics.clientError('bad_framing');
        ctx.reason = framing.reason;
        ctx.upgradeStatus = framing.status;
        rawResponse(socket, framing.status, framingStatusText(framing), `X-Request-Id: ${ctx.requestId}\r\n`);
        return;
      }
      ctx.framing = framing.framing;
      const isPublic = config.publicPaths.size > 0 && config.publicPaths.has(rawPathOf(req.url));
      if (isPublic) {
        ctx.reason = 'public';
      } else {
        const verdict = authenticator.authenticate(req);
        if (!verdict.ok) {
          authenticator.rejectUpgrade(req, socket, verdict);
          return;
        }
        ctx.subject = verdict.subject;
      }
      // Only WebSocket upgrades are proxied; anything else (h2c, …) is refused plainly.
      if (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
        ctx.upgradeStatus = 400;
        rawResponse(socket, 400, 'Bad Request', `X-Request-Id: ${ctx.requestId}\r\n`);
        return;
      }
      upgradedSockets.add(socket);
      forwarder.upgrade(req, socket, head);
    } catch (err) {
      logger.error({ err: errorFields(err), requestId: ctx.requestId }, 'upgrade handling failed');
      socket.destroy();
    }
  }

  const proxyServer = http.createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      // Bodies stream for as long as they need; stalls are cut by the inactivity timeout below.
      requestTimeout: 0,
      keepAliveTimeout: CLIENT_KEEPALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
    },
    handleRequest,
  );
  // Count headers ourselves (431 above 100); Node's cap would silently drop the excess instead.
  proxyServer.maxHeadersCount = 0;
  // Socket inactivity: longer than the upstream timeout, so a slow upstream yields a 504, not a cut.
  proxyServer.timeout = config.upstreamTimeoutMs + config.headersTimeoutMs;
  proxyServer.on('upgrade', handleUpgrade);
  // The sidecar is not a forward proxy. Without this listener Node would drop the socket wordlessly.
  proxyServer.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    const ctx = contextOf(req);
    metrics.request(405, '');
    accessLine(req.method, '', 405, ctx, { reason: 'connect_refused' });
    rawResponse(socket, 405, 'Method Not Allowed', `Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\nX-Request-Id: ${ctx.requestId}\r\n`);
  });
  // Without this listener Node answers "100 Continue" before we have looked at the token.
  proxyServer.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => handleRequest(req, res, true));
  proxyServer.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    let status = 400;
    let reason: ClientErrorReason = 'bad_request';
    let text = 'Bad Request';
    if (code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      reason = 'headers_too_large';
      text = 'Request Header Fields Too Large';
    } else if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') {
      status = 408;
      reason = 'headers_timeout';
      text = 'Request Timeout';
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
      else rawResponse(socket, status, text);
      return;
    }
    // Bytes after a `Connection: close` request: the answer owed is the last thing on this connection.
    if (code === 'HPE_CLOSED_CONNECTION') {
      whenSettled(socket, () => socket.end());
      return;
    }
    // Earlier pipelined requests still get their answers first; then the refusal, then close.
    whenSettled(socket, () => rawResponse(socket, status, text));
  });

  const adminServer = http.createServer(
    createAdminApp({
      upstream: config.upstreamAddress,
      upstreamHealthPath: config.upstreamHealthPath,
      metrics,
      logger,
      notReadyReason: () => (shuttingDown ? 'shutting down' : tokens.unavailableReason),
    }),
  );
  adminServer.keepAliveTimeout = CLIENT_KEEPALIVE_TIMEOUT_MS;

  /** Bind, turning bind failures into a ConfigError that names the variable to fix. */
  const listen = (server: http.Server, port: number, portVariable: string) =>
    new Promise<number>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'unknown';
        if (code === 'EADDRINUSE' || code === 'EACCES') {
          reject(new ConfigError(portVariable, `cannot listen on port ${port} (${code === 'EADDRINUSE' ? 'already in use' : 'permission denied'})`));
        } else if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') {
          reject(new ConfigError(SIDECAR_ENV.host, `cannot listen on ${JSON.stringify(config.host)} (${code === 'EADDRNOTAVAIL' ? 'not an address of this machine' : 'does not resolve'})`));
        } else {
          reject(err);
        }
      };
      server.once('error', onError);
      server.listen(port, config.host, () => {
        server.off('error', onError);
        resolve((server.address() as AddressInfo).port);
      });
    });

  async function start(): Promise<{ port: number; adminPort: number }> {
    await tokens.start();
    const port = await listen(proxyServer, config.port, SIDECAR_ENV.port);
    const adminPort = await listen(adminServer, config.adminPort, SIDECAR_ENV.adminPort);
    return { port, adminPort };
  }

  let shutdownPromise: Promise<number> | undefined;

  function shutdown(signal: string): Promise<number> {
    if (shutdownPromise) {
      logger.info({ signal }, 'shutdown already in progress');
      return shutdownPromise;
    }
    shutdownPromise = new Promise<number>((resolve) => {
      const began = performance.now();
      const elapsed = () => Math.round(performance.now() - began);
      shuttingDown = true;
      logger.info({ signal, drainDelayMs: config.drainDelayMs, phase: 'drain' }, 'shutdown: readiness is 503; still forwarding while endpoints are removed');

      const deadline = setTimeout(() => {
        const open = upgradedSockets.size;
        logger.error({ phase: 'deadline', elapsedMs: elapsed(), inFlight, webSockets: open }, 'shutdown: deadline reached; cutting remaining connections');
        proxyServer.closeAllConnections();
        for (const s of upgradedSockets) s.destroy();
        adminServer.closeAllConnections();
        tokens.close();
        forwarder.close();
        resolve(1);
      }, config.shutdownTimeoutMs);
      deadline.unref();

      setTimeout(() => {
        closingConnections = true;
        logger.info({ phase: 'close', elapsedMs: elapsed(), inFlight, webSockets: upgradedSockets.size }, 'shutdown: closing the listener; finishing in-flight requests');
        // Connections turn idle as their last response ends; Node does not close those by itself.
        const sweep = setInterval(() => proxyServer.closeIdleConnections(), 50);
        sweep.unref();
        proxyServer.close(() => {
          clearInterval(sweep);
          logger.info({ phase: 'closed', elapsedMs: elapsed() }, 'shutdown: all proxy connections closed');
          tokens.close();
          forwarder.close();
          adminServer.close();
          adminServer.closeAllConnections();
          clearTimeout(deadline);
          logger.info({ phase: 'exit', elapsedMs: elapsed() }, 'shutdown: done');
          resolve(0);
        });
        proxyServer.closeIdleConnections();
        // WebSockets have no request boundary to wait for.
        for (const s of upgradedSockets) s.destroy();
      }, config.drainDelayMs);
    });
    return shutdownPromise;
  }

  return { proxyServer, adminServer, tokens, metrics, start, shutdown };
}
