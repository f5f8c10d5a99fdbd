/**
 * The proxy port: a plain node:http server whose every request and upgrade goes admit → forward, or
 * admit → refuse. Here only its settings and the wiring; each listener has a file of its own:
 * plain requests (web-requests.ts), upgrades (upgrades.ts), CONNECT (connect.ts) and parse errors
 * (client-errors.ts), all recording outcomes through request-outcome.ts.
 */
import * as http from 'http';
import type { Duplex } from 'stream';
import type { Admit } from './admission';
import { createClientErrorHandler } from './client-errors';
import { createConnectHandler } from './connect';
import type { Forwarder } from './forward';
import type { Logger } from './log';
import type { SidecarMetrics } from './metrics';
import { createOutcomeRecorder } from './request-outcome';
import { createUpgrades } from './upgrades';
import { createWebRequests } from './web-requests';

/** Idle time before we close a client's keep-alive connection. */
export const CLIENT_KEEPALIVE_TIMEOUT_MS = 5_000;
/** Node only checks headersTimeout at this interval (default 30 s). */
const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;
const MAX_HEADER_BYTES = 16 * 1024;

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
  const recorder = createOutcomeRecorder(logger, metrics);
  // From SIGTERM on, every response closes its connection: a busy keep-alive client reconnects (to
  // another pod once the endpoints update) instead of sending its next request on a connection the
  // close phase is about to cut, which it would see as a reset.
  const web = createWebRequests({ admit, forwarder, recorder, logger, closing: () => lifecycle.shuttingDown });
  const upgrades = createUpgrades({ admit, forwarder, recorder, logger, closingConnections: () => lifecycle.closingConnections });

  const server = http.createServer(
    {
      headersTimeout: opts.headersTimeoutMs,
      // Bodies stream for as long as they need; stalls are cut by the inactivity timeout below.
      requestTimeout: 0,
      keepAliveTimeout: CLIENT_KEEPALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
    },
    web.onRequest,
  );
  // Count headers ourselves (431 above admission's MAX_HEADERS); Node's cap would silently drop the excess instead.
  server.maxHeadersCount = 0;
  // Socket inactivity: longer than the upstream timeout, so a slow upstream yields a 504, not a cut.
  server.timeout = opts.upstreamTimeoutMs + opts.headersTimeoutMs;
  server.on('upgrade', upgrades.onUpgrade);
  server.on('connect', createConnectHandler(recorder));
  // Without this listener Node answers "100 Continue" before we have looked at the token.
  server.on('checkContinue', web.onCheckContinue);
  server.on('clientError', createClientErrorHandler(metrics, logger));

  return { server, inFlight: web.inFlight, webSockets: upgrades.webSockets };
}
