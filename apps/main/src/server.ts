import * as http from 'http';
import type { AddressInfo } from 'net';
import type { Logger } from 'pino';
import { MAIN_ENV } from '../../../lib/src/contract';
import { createApp, Lifecycle } from './app';
import { ConfigError, MainConfig } from './config';

export interface RunningMain {
  readonly server: http.Server;
  readonly port: number;
  /** Drain, close the listener, finish in-flight requests. Calling it again skips the rest of the drain. */
  shutdown(reason: string): Promise<void>;
}

/** Listen errors that mean the configuration is wrong rather than the process broken. */
function listenErrorAsConfig(err: NodeJS.ErrnoException, config: MainConfig): Error {
  switch (err.code) {
    case 'EADDRINUSE':
      return new ConfigError(MAIN_ENV.port, `port ${config.port} is already in use`);
    case 'EACCES':
      return new ConfigError(MAIN_ENV.port, `no permission to bind port ${config.port}`);
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError(MAIN_ENV.host, `cannot bind address ${JSON.stringify(config.host)} (${err.code})`);
    default:
      return err;
  }
}

export async function startMain(config: MainConfig, logger: Logger): Promise<RunningMain> {
  const lifecycle: Lifecycle = { closing: false };
  const app = createApp(logger, lifecycle);
  const server = http.createServer(
    {
      keepAliveTimeout: config.keepAliveTimeoutMs,
      // Must outlast keepAliveTimeout, or an idle keep-alive socket could be cut by the headers timer first.
      headersTimeout: config.keepAliveTimeoutMs + 1_000,
      requestTimeout: Math.max(300_000, config.keepAliveTimeoutMs + 1_000),
    },
    app,
  );

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenErrorAsConfig(err, config));
    server.once('error', onError);
    server.listen(config.port, config.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.error({ err }, 'server error'));
  const port = (server.address() as AddressInfo).port;

  // Responses in progress, so that their connections can be closed once they finish.
  const openResponses = new Set<http.ServerResponse>();
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    openResponses.add(res);
    res.once('close', () => openResponses.delete(res));
  });

  let shuttingDown: Promise<void> | undefined;
  let skipDrain: () => void = () => {};

  const shutdown = (reason: string): Promise<void> => {
    if (shuttingDown) {
      logger.info({ reason }, 'shutdown: skipping the rest of the drain delay');
      skipDrain();
      return shuttingDown;
    }
    shuttingDown = (async () => {
      // The sidecar keeps forwarding while the endpoints are removed; keep answering it meanwhile.
      logger.info({ reason, drainDelayMs: config.drainDelayMs }, 'shutdown: draining');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, config.drainDelayMs);
        skipDrain = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      lifecycle.closing = true;
      logger.info({}, 'shutdown: closing the listener, finishing in-flight requests');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // A keep-alive connection becomes idle once its in-flight response is done; close it then.
      for (const res of openResponses) res.once('finish', () => setImmediate(() => server.closeIdleConnections()));
      await closed;
      logger.info({}, 'shutdown: done');
    })();
    return shuttingDown;
  };

  return { server, port, shutdown };
}
