/**
 * The rejected design, for the benchmark only: the sidecar's own request pipeline
 * (authenticate → forward, with its logs and metrics) mounted inside an Express 5
 * app, so each proxied request also pays Express's per-request work.
 * Same env as the sidecar; prints the same "listening" line.
 */
import express from 'express';
import type { RequestListener } from 'http';
import { loadConfig } from '../apps/sidecar/src/config';
import { createLogger } from '../apps/sidecar/src/log';
import { createSidecar } from '../apps/sidecar/src/server';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel);
  const sidecar = createSidecar(config, logger);
  const pipeline = sidecar.proxyServer.listeners('request')[0] as RequestListener;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use((req, res) => pipeline(req, res));
  sidecar.proxyServer.removeAllListeners('request');
  sidecar.proxyServer.on('request', app);
  const { port, adminPort } = await sidecar.start();
  process.stdout.write(JSON.stringify({ msg: 'listening', port, adminPort }) + '\n');
  process.on('SIGTERM', () => process.exit(0));
}

void main();
