/**
 * Sidecar entry point: validate config (one line on stderr and exit 2 if bad), start, and shut down
 * gracefully on SIGTERM/SIGINT.
 */
import { ConfigError, loadConfig } from './config';
import type { SidecarConfig } from './config';
import { createLogger, errorFields, flushLogs } from './log';
import { createSidecar } from './server';

function exitWith(code: number): never {
  flushLogs();
  process.exit(code);
}

let config: SidecarConfig;
try {
  config = loadConfig(process.env);
} catch (err) {
  const line = err instanceof ConfigError ? err.message : `configuration: ${errorFields(err).message}`;
  process.stderr.write(`sidecar: ${line}\n`);
  process.exit(2);
}

const logger = createLogger(config.logLevel);
const sidecar = createSidecar(config, logger);

// A bug must not take the pod's traffic down with it; log it (no stack: house rule) and carry on.
process.on('uncaughtException', (err) => logger.error({ err: errorFields(err) }, 'uncaught exception'));
process.on('unhandledRejection', (err) => logger.error({ err: errorFields(err) }, 'unhandled rejection'));

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    void sidecar.shutdown(signal).then(exitWith);
  });
}

sidecar.start().then(
  ({ port, adminPort }) => {
    logger.info(
      {
        port,
        adminPort,
        host: config.host,
        upstream: config.upstream.origin,
        tokensDir: config.tokensDir,
        publicPaths: [...config.publicPaths],
      },
      'listening',
    );
  },
  (err) => {
    const e = errorFields(err);
    process.stderr.write(`sidecar: cannot start: ${e.code ?? ''} ${e.message}\n`);
    logger.fatal({ err: e }, 'cannot start');
    exitWith(1);
  },
);
