/**
 * The graceful shutdown sequence, from SIGTERM:
 *   drain  — readiness is 503 and every response closes its connection, while the endpoint removal
 *            spreads; requests are still forwarded;
 *   close  — the listener closes, idle connections are cut as they turn idle, WebSockets are cut;
 *   exit   — when the last proxy connection is gone, or at the shutdown bound (exit code 1).
 * The durations come from the config, whose defaults come from the contract's timing budget.
 */
import type * as http from 'http';
import type { Forwarder } from './forward';
import type { Logger } from './log';
import type { Lifecycle, ProxyServer } from './proxy-server';
import type { TokenStore } from './tokens';

/** How often idle connections are swept in the close phase: Node does not close them by itself. */
const IDLE_SWEEP_MS = 50;

export interface ShutdownOptions {
  readonly drainDelayMs: number;
  readonly shutdownTimeoutMs: number;
  readonly lifecycle: Lifecycle;
  readonly proxy: ProxyServer;
  readonly adminServer: http.Server;
  readonly tokens: TokenStore;
  readonly forwarder: Forwarder;
  readonly logger: Logger;
}

/** Returns `shutdown(signal)`: resolves with the exit code (0 clean, 1 bound hit). Later calls share the first. */
export function createShutdown(opts: ShutdownOptions): (signal: string) => Promise<number> {
  const { lifecycle, proxy, adminServer, tokens, forwarder, logger } = opts;
  let shutdownPromise: Promise<number> | undefined;

  const release = () => {
    tokens.close();
    forwarder.close();
  };

  return function shutdown(signal) {
    if (shutdownPromise) {
      logger.info({ signal }, 'shutdown already in progress');
      return shutdownPromise;
    }
    shutdownPromise = new Promise<number>((resolve) => {
      const began = performance.now();
      const elapsed = () => Math.round(performance.now() - began);
      lifecycle.shuttingDown = true;
      logger.info({ signal, drainDelayMs: opts.drainDelayMs, phase: 'drain' }, 'shutdown: readiness is 503; still forwarding while endpoints are removed');

      const deadline = setTimeout(() => {
        logger.error(
          { phase: 'deadline', elapsedMs: elapsed(), inFlight: proxy.inFlight(), webSockets: proxy.webSockets.size },
          'shutdown: deadline reached; cutting remaining connections',
        );
        proxy.server.closeAllConnections();
        for (const s of proxy.webSockets) s.destroy();
        adminServer.closeAllConnections();
        release();
        resolve(1);
      }, opts.shutdownTimeoutMs);
      deadline.unref();

      setTimeout(() => {
        lifecycle.closingConnections = true;
        logger.info(
          { phase: 'close', elapsedMs: elapsed(), inFlight: proxy.inFlight(), webSockets: proxy.webSockets.size },
          'shutdown: closing the listener; finishing in-flight requests',
        );
        const sweep = setInterval(() => proxy.server.closeIdleConnections(), IDLE_SWEEP_MS);
        sweep.unref();
        proxy.server.close(() => {
          clearInterval(sweep);
          logger.info({ phase: 'closed', elapsedMs: elapsed() }, 'shutdown: all proxy connections closed');
          release();
          adminServer.close();
          adminServer.closeAllConnections();
          clearTimeout(deadline);
          logger.info({ phase: 'exit', elapsedMs: elapsed() }, 'shutdown: done');
          resolve(0);
        });
        proxy.server.closeIdleConnections();
        // WebSockets have no request boundary to wait for.
        for (const s of proxy.webSockets) s.destroy();
      }, opts.drainDelayMs);
    });
    return shutdownPromise;
  };
}
