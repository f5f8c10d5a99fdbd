/**
 * The graceful shutdown sequence:
 *   drain  — readiness is 503 and every response closes its connection, while the endpoint removal
 *            spreads; requests are still forwarded;
 *   close  — the listener closes, idle connections are cut as they turn idle, WebSockets are cut;
 *   exit   — when the last proxy connection is gone, or at the shutdown bound (exit code 1).
 * Between close and exit, the preStop waits `?until=closed` are answered (and the answers written)
 * before the admin server goes. SIGTERM runs all three. The drain hook (native-sidecar mode: main's
 * preStop) runs the first two and answers once the proxy is closed; the SIGTERM that comes after
 * main has exited then only exits.
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
  /** undefined: static tokens are no source. */
  readonly tokens: TokenStore | undefined;
  /** The JWT key sources (files, URLs, the API server): their watches, polls and refresh timers stop. */
  readonly keySources?: readonly { close(): void }[];
  readonly forwarder: Forwarder;
  readonly logger: Logger;
  /**
   * Runs once the proxy is closed (cleanly or at the bound), before drainAndClose resolves and so
   * before the admin server closes: answers whoever waits on the admin port for the close (main's
   * preStop in container mode). @default nothing
   */
  readonly afterProxyClosed?: (clean: boolean) => Promise<void>;
}

export interface Shutdown {
  /** Drain for `drainMs`, then close the proxy; resolves true once it is closed, false if the bound cut it. Later calls share the first. */
  drainAndClose(drainMs: number, why: string): Promise<boolean>;
  /** The whole sequence; resolves with the exit code (0 clean, 1 bound hit). Later calls share the first. */
  shutdown(signal: string): Promise<number>;
}

export function createShutdown(opts: ShutdownOptions): Shutdown {
  const { lifecycle, proxy, adminServer, tokens, forwarder, logger } = opts;
  let closed: Promise<boolean> | undefined;
  let shutdownPromise: Promise<number> | undefined;
  let deadline: NodeJS.Timeout | undefined;

  function drainAndClose(drainMs: number, why: string): Promise<boolean> {
    if (closed) return closed;
    closed = new Promise<boolean>((resolve) => {
      const began = performance.now();
      const elapsed = () => Math.round(performance.now() - began);
      lifecycle.shuttingDown = true;
      logger.info({ why, drainDelayMs: drainMs, phase: 'drain' }, 'shutdown: readiness is 503; still forwarding while endpoints are removed');

      deadline = setTimeout(() => {
        logger.error(
          { phase: 'deadline', elapsedMs: elapsed(), inFlight: proxy.inFlight(), webSockets: proxy.webSockets.size },
          'shutdown: deadline reached; cutting remaining connections',
        );
        proxy.server.closeAllConnections();
        for (const s of proxy.webSockets) s.destroy();
        resolve(false);
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
          clearTimeout(deadline);
          logger.info({ phase: 'closed', elapsedMs: elapsed() }, 'shutdown: all proxy connections closed');
          resolve(true);
        });
        proxy.server.closeIdleConnections();
        // WebSockets have no request boundary to wait for.
        for (const s of proxy.webSockets) s.destroy();
      }, drainMs);
    }).then(async (clean) => {
      await opts.afterProxyClosed?.(clean);
      return clean;
    });
    return closed;
  }

  function shutdown(signal: string): Promise<number> {
    if (shutdownPromise) {
      logger.info({ signal }, 'shutdown already in progress');
      return shutdownPromise;
    }
    shutdownPromise = drainAndClose(opts.drainDelayMs, signal).then((clean) => {
      clearTimeout(deadline);
      tokens?.close();
      for (const source of opts.keySources ?? []) source.close();
      forwarder.close();
      adminServer.close();
      adminServer.closeAllConnections();
      logger.info({ phase: 'exit', signal }, 'shutdown: done');
      return clean ? 0 : 1;
    });
    return shutdownPromise;
  }

  return { drainAndClose, shutdown };
}
