/** Entry point of the main service: read the env, listen, shut down gracefully on SIGTERM/SIGINT. */
import pino from 'pino';
import { ConfigError, loadConfig } from './config';
import { RunningMain, startMain } from './server';

function failConfig(err: ConfigError): void {
  // One line, no stack: this is a deployment mistake, not a bug.
  process.stderr.write(`main: ${err.message}\n`);
  process.exitCode = 2;
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) return failConfig(err);
    throw err;
  }

  const destination = pino.destination({ sync: false });
  const logger = pino(
    {
      // Same shape as the sidecar's lines, so one log query covers both containers.
      base: { service: 'main' },
      level: config.logLevel,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  const exit = (code: number) => {
    // flush(cb), not flushSync(): a sync write during a pending async one could reorder the last lines.
    const timer = setTimeout(() => process.exit(code), 1_000);
    destination.flush(() => {
      clearTimeout(timer);
      process.exit(code);
    });
  };
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    exit(1);
  });

  let running: RunningMain | undefined;
  // Installed before listening: a signal during start-up has nothing to drain, so it exits at once.
  const onSignal = (signal: NodeJS.Signals) => {
    if (!running) return exit(0);
    void running.shutdown(signal).then(() => exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    running = await startMain(config, logger);
  } catch (err) {
    if (err instanceof ConfigError) {
      destination.flushSync();
      return failConfig(err);
    }
    throw err;
  }
  logger.info({ port: running.port, host: config.host }, 'listening');
}

void main();
