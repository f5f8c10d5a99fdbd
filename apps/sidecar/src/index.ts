/**
 * Sidecar entry point: validate config (one line on stderr and exit 2 if bad), start, and shut down
 * gracefully on SIGTERM/SIGINT. The config check runs before the heavy modules load, so a bad value
 * fails fast.
 */
import { ConfigError, loadConfig } from './config';
import type { SidecarConfig } from './config';

function configOrExit(): SidecarConfig {
  try {
    return loadConfig(process.env);
  } catch (err) {
    const line = err instanceof ConfigError ? err.message : `configuration: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`sidecar: ${line}\n`);
    process.exit(2);
  }
}

async function main(config: SidecarConfig): Promise<void> {
  const { createLogger, errorFields, flushLogs, flushLogsSoon } = await import('./log');
  const { createSidecar } = await import('./server');
  const logger = createLogger(config.logLevel);
  const sidecar = createSidecar(config, logger);
  const exitWith = (code: number): never => {
    flushLogs();
    process.exit(code);
  };

  // A bug must not take the pod's traffic down with it; log it (no stack: house rule) and carry on.
  process.on('uncaughtException', (err) => logger.error({ err: errorFields(err) }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => logger.error({ err: errorFields(err) }, 'unhandled rejection'));

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      void sidecar.shutdown(signal).then(exitWith);
    });
  }

  try {
    const { port, adminPort } = await sidecar.start();
    logger.info(
      { port, adminPort, host: config.host, upstream: config.upstream.origin, tokensDir: config.tokensDir, credentialSources: config.credentialSources, routeRules: config.routes.rules.length, routeDefault: config.routes.default },
      'listening',
    );
    flushLogsSoon();
  } catch (err) {
    const e = errorFields(err);
    logger.fatal({ err: e }, 'cannot start');
    flushLogs();
    if (err instanceof ConfigError) {
      process.stderr.write(`sidecar: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`sidecar: cannot start: ${e.code ? `${e.code} ` : ''}${e.message}\n`);
    exitWith(1);
  }
}

void main(configOrExit());
