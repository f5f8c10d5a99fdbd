/**
 * Forwarding to the main service: http-proxy-middleware 3 called directly as (req, res, next),
 * with every http-proxy pass replaced by ours (passes.ts) and a pool that never reuses a
 * connection after an unclean exchange (upstream-pool.ts). Bodies stream both ways; nothing
 * here buffers or parses them.
 */
import type * as http from 'http';
import type { Duplex } from 'stream';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { RequestHandler } from 'http-proxy-middleware';
import { existingContextOf } from './context';
import type { UpstreamAddress } from './config';
import type { Logger } from './log';
import { errorFields } from './log';
import { createPasses } from './passes';
import { refuse, refuseSocket } from './refusals';
import { cutResponse, cutUpgradeAnswer } from './response-cut';
import { UNFORWARDABLE, UPSTREAM_TIMEOUT } from './upstream-errors';
import { UpstreamPool } from './upstream-pool';

export interface ForwarderOptions {
  /** The main service. */
  readonly upstream: UpstreamAddress;
  /** Upstream inactivity timeout; 504 when it fires before the response starts. */
  readonly upstreamTimeoutMs: number;
  /** Idle timeout of pooled upstream sockets; shorter than the main service's keep-alive timeout. */
  readonly upstreamIdleTimeoutMs: number;
  /** Keep the client's Authorization header on forwarded requests. */
  readonly forwardAuthorization: boolean;
  /** Proxies in front of the sidecar whose X-Forwarded-For entries and X-Forwarded-Proto are kept. @default 0 */
  readonly trustedProxyHops?: number;
  readonly logger: Logger;
  /** Seconds from forwarding to the upstream's response headers. */
  readonly onUpstreamResponse?: (seconds: number) => void;
  /** Whether responses should close the client connection (shutting down). */
  readonly closing?: () => boolean;
}

export interface Forwarder {
  /** Forward an admitted request; its context holds the subject (undefined = public) and framing. */
  forward(req: http.IncomingMessage, res: http.ServerResponse): void;
  /** Proxy an admitted WebSocket upgrade. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Drop pooled upstream sockets. */
  close(): void;
}

function isServerResponse(res: unknown): res is http.ServerResponse {
  return typeof (res as http.ServerResponse)?.writeHead === 'function';
}

function errorStatus(code: string | undefined): 400 | 502 | 504 {
  if (code === UPSTREAM_TIMEOUT) return 504;
  if (code === UNFORWARDABLE) return 400;
  return 502;
}

/** http-proxy's 'error' listener: an upstream failure before or during the response, 502/504 if we can still say so, else a cut. */
function upstreamFailureHandler(closing: () => boolean): (err: NodeJS.ErrnoException, req: http.IncomingMessage, res: http.ServerResponse | Duplex) => void {
  return function onProxyError(err, req, res) {
    const ctx = existingContextOf(req);
    const code = err.code ?? 'EPROXY';
    if (ctx && ctx.upstreamError === undefined) ctx.upstreamError = code;
    const status = errorStatus(code);
    if (isServerResponse(res)) {
      if (res.destroyed || res.writableEnded || ctx?.clientGone) return;
      // Too late for a status: cut the response so the client sees it incomplete.
      if (res.headersSent) cutResponse(res, ctx);
      else refuse(res, status, ctx?.requestId ?? '', closing() || !req.complete);
      return;
    }
    const socket = res as Duplex & { bytesWritten?: number };
    if (socket.destroyed) return;
    if (socket.writable && !socket.bytesWritten) {
      if (ctx) ctx.upgradeStatus = status;
      refuseSocket(socket, status, ctx?.requestId);
    } else {
      cutUpgradeAnswer(socket, ctx);
    }
  };
}

export function createForwarder(opts: ForwarderOptions): Forwarder {
  const pool = new UpstreamPool(opts.upstreamIdleTimeoutMs);
  const { logger } = opts;
  const closing = opts.closing ?? (() => false);
  const { hostname, port } = opts.upstream;
  const passes = createPasses({
    pool,
    hostname,
    port,
    fallbackHost: opts.upstream.authority,
    upstreamTimeoutMs: opts.upstreamTimeoutMs,
    forwardAuthorization: opts.forwardAuthorization,
    trustedProxyHops: opts.trustedProxyHops ?? 0,
    closing,
    onUpstreamResponse: opts.onUpstreamResponse,
  });
  const onProxyError = upstreamFailureHandler(closing);

  const proxy: RequestHandler = createProxyMiddleware({
    // Parsed once here; the passes read host and port from their own options.
    target: { protocol: 'http:', hostname, host: hostname, port: String(port) } as unknown as string,
    // Everything that reaches the forwarder is forwarded; the default "/" filter would skip `OPTIONS *`.
    pathFilter: () => true,
    // Our handlers replace the default plugins (one of them formats a URL per response).
    ejectPlugins: true,
    plugins: [
      (server) => {
        const passServer = server as unknown as { webPasses: unknown[]; wsPasses: unknown[] };
        // Every built-in pass is replaced; SECURITY.md says why, pass by pass.
        passServer.webPasses = [passes.web];
        passServer.wsPasses = [passes.ws];
        server.on('error', onProxyError as never);
      },
    ],
  });

  const failed = (req: http.IncomingMessage, res: http.ServerResponse) => (err?: unknown) => {
    // hpm hands us preparation errors; nothing upstream has happened yet.
    logger.error({ err: errorFields(err), requestId: existingContextOf(req)?.requestId }, 'forwarding failed');
    if (!res.headersSent && !res.destroyed) refuse(res, 502, existingContextOf(req)?.requestId ?? '', true);
    else cutResponse(res, existingContextOf(req));
  };

  return {
    forward(req, res) {
      void proxy(req, res, failed(req, res));
    },
    upgrade(req, socket, head) {
      proxy.upgrade(req, socket as never, head);
    },
    close: () => pool.destroy(),
  };
}
