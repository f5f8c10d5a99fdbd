/**
 * SIDECAR_UPSTREAM_CHECK (issue 19): how the sidecar's /readyz checks the main service, so that it
 * can stand in front of any image. `http` (default) GETs SIDECAR_UPSTREAM_HEALTH_PATH; `tcp` is
 * ready once a connect to the upstream's port succeeds, whatever speaks there; `none` does not ask
 * main at all. Real sidecar processes, a real raw TCP listener, real sockets.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { HEALTH_PATHS, SIDECAR_ENV, UPSTREAM_CHECKS } from '../lib/src/contract';
import { RunningApp, localSidecarEnv, runToExit, startApp } from './support/apps';
import { closedPort, request, tempDir } from './support/http';
import { startUpstream, TestUpstream } from './support/upstream';

const TOKEN = 'upstream-check-token-0123456789abcdef';
const tokens = tempDir('upstream-check-');
fs.writeFileSync(path.join(tokens.dir, 'ci'), TOKEN);

/** A TCP listener that accepts and never says a byte: a main that is not HTTP, or not on that path. */
interface SilentListener {
  readonly url: string;
  /** Connections accepted so far. */
  accepted(): number;
  /** Bytes received so far. */
  bytesReceived(): number;
  close(): Promise<void>;
}

async function startSilentListener(): Promise<SilentListener> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let bytes = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('data', (c) => (bytes += c.length));
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    accepted: () => accepted,
    bytesReceived: () => bytes,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

let silent: SilentListener;
let upstream: TestUpstream;
const started: RunningApp[] = [];
beforeAll(async () => {
  silent = await startSilentListener();
  upstream = await startUpstream();
});
afterAll(async () => {
  // SIGKILL: a graceful stop would wait out the drain for nothing.
  await Promise.all(started.map((s) => s.stop('SIGKILL')));
  await silent?.close();
  await upstream?.close();
  tokens.cleanup();
});

async function sidecarFor(upstreamUrl: string, env: Record<string, string> = {}): Promise<RunningApp> {
  const app = await startApp('sidecar', { env: { ...localSidecarEnv(upstreamUrl, tokens.dir), ...env } });
  started.push(app);
  return app;
}

const readyz = (app: RunningApp) => request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });

describe('tcp', () => {
  it('is ready against a listener that accepts and never answers, and sends it nothing', async () => {
    const app = await sidecarFor(silent.url, { [SIDECAR_ENV.upstreamCheck]: UPSTREAM_CHECKS.tcp });
    const before = silent.accepted();
    const res = await readyz(app);
    expect({ status: res.status, body: res.text() }).toEqual({ status: 200, body: 'ready\ntokens: ready\n' });
    expect(silent.accepted()).toBeGreaterThan(before);
    expect(silent.bytesReceived()).toBe(0);
  });

  it('is 503 when nothing listens on the upstream port, naming why', async () => {
    const app = await sidecarFor(`http://127.0.0.1:${await closedPort()}`, { [SIDECAR_ENV.upstreamCheck]: UPSTREAM_CHECKS.tcp });
    const res = await readyz(app);
    expect(res.status).toBe(503);
    expect(res.text()).toBe('main service not accepting connections: ECONNREFUSED\ntokens: ready\n');
  });
});

describe('none', () => {
  it('is ready with nothing listening on the upstream port: main is not consulted', async () => {
    const app = await sidecarFor(`http://127.0.0.1:${await closedPort()}`, { [SIDECAR_ENV.upstreamCheck]: UPSTREAM_CHECKS.none });
    const res = await readyz(app);
    expect({ status: res.status, body: res.text() }).toEqual({ status: 200, body: 'ready\ntokens: ready\n' });
  });
});

describe('http (the default), unchanged', () => {
  it.each([undefined, UPSTREAM_CHECKS.http])('SIDECAR_UPSTREAM_CHECK=%s: ready while the health path answers 2xx, 503 with its status when not', async (check) => {
    const app = await sidecarFor(upstream.url, check === undefined ? {} : { [SIDECAR_ENV.upstreamCheck]: check });
    expect((await readyz(app)).status).toBe(200);
    upstream.setHealthy(false);
    try {
      const res = await readyz(app);
      expect({ status: res.status, body: res.text() }).toEqual({ status: 503, body: 'main service not answering: HTTP 503\ntokens: ready\n' });
    } finally {
      upstream.setHealthy(true);
    }
  });

  it('counts 200-399 as ready, as the kubelet counts the probe it is derived from; 400 and up is not', async () => {
    let answer = 302;
    const server = http.createServer((_req, res) => {
      res.writeHead(answer, { location: '/login' });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const app = await sidecarFor(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, { [SIDECAR_ENV.upstreamHealthPath]: '/' });
      const seen: Array<[number, number]> = [];
      for (const status of [302, 399, 400]) {
        answer = status;
        seen.push([status, (await readyz(app)).status]);
      }
      expect(seen).toEqual([[302, 200], [399, 200], [400, 503]]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('is 503 against a listener that accepts and never answers, where tcp is ready', async () => {
    const app = await sidecarFor(silent.url, { [SIDECAR_ENV.upstreamCheck]: UPSTREAM_CHECKS.http });
    const res = await readyz(app);
    expect({ status: res.status, body: res.text() }).toEqual({ status: 503, body: 'main service not answering: no answer within 1000 ms\ntokens: ready\n' });
  });
});

describe('bad settings stop start-up with exit 2 and one line', () => {
  const base = { [SIDECAR_ENV.port]: '0', [SIDECAR_ENV.adminPort]: '0', [SIDECAR_ENV.host]: '127.0.0.1', [SIDECAR_ENV.tokensDir]: tokens.dir };

  it.concurrent.each(['grpc', 'TCP', ' none'])('SIDECAR_UPSTREAM_CHECK=%j names the setting and the allowed values', async (value) => {
    const { code, output } = await runToExit('sidecar', { ...base, [SIDECAR_ENV.upstreamCheck]: value });
    expect({ code, output }).toEqual({ code: 2, output: `sidecar: SIDECAR_UPSTREAM_CHECK: must be one of http, tcp, none, got ${JSON.stringify(value)}\n` });
  });

  it.concurrent.each([UPSTREAM_CHECKS.tcp, UPSTREAM_CHECKS.none])('SIDECAR_UPSTREAM_HEALTH_PATH with SIDECAR_UPSTREAM_CHECK=%s contradicts it', async (check) => {
    const { code, output } = await runToExit('sidecar', { ...base, [SIDECAR_ENV.upstreamCheck]: check, [SIDECAR_ENV.upstreamHealthPath]: '/healthz' });
    expect({ code, output }).toEqual({
      code: 2,
      output: `sidecar: SIDECAR_UPSTREAM_HEALTH_PATH: is set, but SIDECAR_UPSTREAM_CHECK is "${check}", which asks no path: unset one of them\n`,
    });
  });

  it('SIDECAR_UPSTREAM_HEALTH_PATH with SIDECAR_UPSTREAM_CHECK=http is fine', async () => {
    const app = await sidecarFor(upstream.url, { [SIDECAR_ENV.upstreamCheck]: UPSTREAM_CHECKS.http, [SIDECAR_ENV.upstreamHealthPath]: '/healthz' });
    expect((await readyz(app)).status).toBe(200);
  });
});
