/**
 * Failure handling of the real sidecar: upstream down (502), timeouts (504), clients leaving,
 * readiness, slow headers, and the SIGTERM sequence with requests in flight.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import WebSocket from 'ws';
import { HEALTH_PATHS, SIDECAR_ENV, SIDECAR_INTEGERS } from '../lib/src/contract';
import { EVENT_TIMEOUT_MS } from '../tools/waits';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { closedPort, eventually, rawRequest, rawStatus, request, sleep, tempDir, until, within } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';

const TOKEN = 'resilience-token-42';
/**
 * A cut that comes before this came from the behaviour under test, not from the default upstream
 * timeout the tests here leave in force; the rest is slack for a busy machine.
 */
const BEFORE_DEFAULT_TIMEOUT_MS = SIDECAR_INTEGERS.upstreamTimeoutMs.default;
const auth = { authorization: `Bearer ${TOKEN}` };
const cleanups: (() => unknown)[] = [];
let tokensDir: string;

beforeAll(() => {
  const t = tempDir('sidecar-res-');
  tokensDir = t.dir;
  fs.writeFileSync(path.join(tokensDir, 'ci'), TOKEN);
  cleanups.push(t.cleanup);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function startSidecar(upstreamUrl: string, extra: Record<string, string> = {}): Promise<RunningApp> {
  const app = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstreamUrl, tokensDir),
      [SIDECAR_ENV.drainDelayMs]: '0',
      ...extra,
    },
  });
  cleanups.push(() => app.stop('SIGKILL'));
  return app;
}

async function upstream(): Promise<TestUpstream> {
  const u = await startUpstream();
  cleanups.push(() => u.close());
  return u;
}

describe('upstream failures', () => {
  it('answers 502 when the main service is down, and still serves afterwards', async () => {
    const port = await closedPort();
    const app = await startSidecar(`http://127.0.0.1:${port}`);
    const res = await request(app.port, { path: '/down', headers: auth });
    expect(res.status).toBe(502);
    expect(res.text()).toBe('Bad Gateway\n');
    expect(res.headers['x-request-id']).toBeTruthy();
    expect(res.text()).not.toMatch(/ECONNREFUSED|at /);
    // Bring the main service up on that very port: the same sidecar recovers.
    const srv = http.createServer((_q, r) => r.end('back'));
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => srv.close(r)));
    const again = await request(app.port, { path: '/up', headers: auth });
    expect(again.status).toBe(200);
    expect(again.text()).toBe('back');
    const line = await app.waitForLog((l) => l.msg === 'request' && l.status === 502);
    expect(line.upstreamError).toBe('ECONNREFUSED');
  });

  it('answers 504 when the main service does not answer in time, and still serves afterwards', async () => {
    const u = await upstream();
    const app = await startSidecar(u.url, { [SIDECAR_ENV.upstreamTimeoutMs]: '300' });
    const started = Date.now();
    const res = await request(app.port, { path: '/stall', headers: auth });
    expect(res.status).toBe(504);
    expect(res.text()).toBe('Gateway Timeout\n');
    // The configured 300 ms did it, not the default.
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(BEFORE_DEFAULT_TIMEOUT_MS);
    // The stalled upstream request was released, not left hanging.
    await until('the stalled upstream request released', () => u.stallsClosed() >= 1);
    expect((await request(app.port, { path: '/fine', headers: auth })).status).toBe(200);
  });

  it('cuts the client response when the upstream breaks mid-stream', async () => {
    const u = await upstream();
    const app = await startSidecar(u.url);
    const started = Date.now();
    const outcome = await within(
      new Promise<string>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: app.port, path: '/break-mid-stream', headers: auth, agent: false }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve(`ended:${body}`));
          res.on('error', () => resolve(`aborted:${body}`));
          res.on('aborted', () => resolve(`aborted:${body}`));
        });
        req.on('error', () => resolve('error'));
      }),
      BEFORE_DEFAULT_TIMEOUT_MS + EVENT_TIMEOUT_MS,
      'the response to end',
    );
    // Passed on at once, not cut later by the upstream timeout.
    expect(Date.now() - started).toBeLessThan(BEFORE_DEFAULT_TIMEOUT_MS);
    expect(outcome).toBe('aborted:partial\n');
    const line = await app.waitForLog((l) => l.msg === 'request' && l.path === '/break-mid-stream');
    expect(line).toMatchObject({ status: 200, aborted: true, upstreamError: 'UPSTREAM_ABORTED' });
    expect((await request(app.port, { path: '/fine', headers: auth })).status).toBe(200);
  });

  it('frees the upstream request when the client disconnects', async () => {
    const u = await upstream();
    const app = await startSidecar(u.url);
    const req = http.get({ host: '127.0.0.1', port: app.port, path: '/stall', headers: auth, agent: false });
    req.on('error', () => undefined);
    await until('the request at the upstream', () => u.received.some((r) => r.url === '/stall'));
    req.destroy();
    await until('the upstream request released', () => u.stallsClosed() === 1);
    const line = await app.waitForLog((l) => l.msg === 'request' && l.path === '/stall');
    expect(line).toMatchObject({ status: 499, aborted: true });
    const metrics = (await request(app.adminPort!, { path: HEALTH_PATHS.metrics })).text();
    expect(metrics).toMatch(/sidecar_http_requests_in_flight 0/);
  });
});

describe('WebSocket failures and options', () => {
  it('answers 502 to an authenticated upgrade when the main service is down', async () => {
    const app = await startSidecar(`http://127.0.0.1:${await closedPort()}`);
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws`, { headers: auth });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => reject(new Error('upgrade accepted with no upstream')));
      ws.once('error', (err) => reject(err));
    });
    expect(status).toBe(502);
    const line = await app.waitForLog((l) => l.msg === 'request' && l.upgrade === true);
    expect(line).toMatchObject({ status: 502, subject: 'ci', upstreamError: 'ECONNREFUSED' });
    expect((await request(app.port, { path: '/x', headers: auth })).status).toBe(502);
  });

  it('keeps Authorization when told to', async () => {
    const u = await upstream();
    const app = await startSidecar(u.url, { [SIDECAR_ENV.forwardAuthorization]: 'true' });
    expect((await request(app.port, { path: '/keep', headers: auth })).status).toBe(200);
    expect(u.received[0].headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(u.received[0].headers['x-auth-subject']).toBe('ci');
  });
});

describe('readiness', () => {
  it('flips to 503 when the main service stops, and back when it returns', async () => {
    const u = await upstream();
    const app = await startSidecar(u.url);
    const ready = () => request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
    expect((await ready()).status).toBe(200);
    u.setHealthy(false);
    const unhealthy = await ready();
    expect(unhealthy.status).toBe(503);
    expect(unhealthy.text()).toContain('main service not answering: HTTP 503');
    u.setHealthy(true);
    expect((await ready()).status).toBe(200);
    await u.close();
    const stopped = await ready();
    expect(stopped.status).toBe(503);
    expect(stopped.text()).toContain('main service not answering: ECONNREFUSED');
    expect((await request(app.adminPort!, { path: HEALTH_PATHS.sidecarLiveness })).status).toBe(200);
  });
});

describe('slow clients', () => {
  it('answers 408 to headers that do not arrive in time', async () => {
    const u = await upstream();
    const app = await startSidecar(u.url, { [SIDECAR_ENV.headersTimeoutMs]: '300' });
    const started = Date.now();
    const res = await rawRequest(app.port, `GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n`);
    expect(rawStatus(res)).toBe(408);
    // The configured 300 ms (checked once a second), far below Node's default of 60 s; the rest is slack.
    expect(Date.now() - started).toBeLessThan(300 + 1_000 + EVENT_TIMEOUT_MS / 2);
    expect(u.count()).toBe(0);
  });

  it('answers 431 to oversized headers', async () => {
    const u = await upstream();
    const app = await startSidecar(u.url);
    const res = await request(app.port, { path: '/', headers: { ...auth, 'x-big': 'b'.repeat(20_000) } });
    expect(res.status).toBe(431);
    expect(u.count()).toBe(0);
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM: readiness 503 at once, keeps forwarding through the drain, finishes in-flight requests, exits 0', async () => {
    const u = await upstream();
    // The drain is long enough for a readiness check and a request on a busy machine; the slow
    // requests outlast it, so they are still in flight when the listener closes.
    const drainMs = 2_000;
    const slowMs = drainMs + 1_000;
    const app = await startSidecar(u.url, { [SIDECAR_ENV.drainDelayMs]: String(drainMs), [SIDECAR_ENV.shutdownTimeoutMs]: String(slowMs + EVENT_TIMEOUT_MS) });
    const admin = app.adminPort!;
    expect((await request(admin, { path: HEALTH_PATHS.sidecarReadiness })).status).toBe(200);

    // Five slow requests, all received by the upstream before the signal.
    const inFlight = Array.from({ length: 5 }, (_, i) => request(app.port, { path: `/slow?ms=${slowMs}&i=${i}`, headers: auth }));
    await until('the five slow requests at the upstream', () => u.received.filter((r) => r.url.startsWith('/slow')).length === 5);
    app.child.kill('SIGTERM');

    await app.waitForLog((l) => l.phase === 'drain');
    const ready = await request(admin, { path: HEALTH_PATHS.sidecarReadiness });
    expect(ready.status).toBe(503);
    expect(ready.text()).toContain('shutting down');
    // Still forwarding new requests during the drain delay.
    const duringDrain = await request(app.port, { path: '/during-drain', headers: auth });
    expect(duringDrain.status).toBe(200);

    const results = await Promise.all(inFlight);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.text()).toBe(`slept ${slowMs}\n`);
    }
    expect(await app.exited).toBe(0);
    const phases = app.logs().filter((l) => typeof l.phase === 'string').map((l) => l.phase);
    expect(phases).toEqual(['drain', 'close', 'closed', 'exit']);
    await expect(request(app.port, { path: '/after', headers: auth })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('closes idle keep-alive connections and marks responses Connection: close once draining ends', async () => {
    const u = await upstream();
    const app = await startSidecar(u.url, { [SIDECAR_ENV.drainDelayMs]: '200', [SIDECAR_ENV.shutdownTimeoutMs]: '5000' });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    const get = (p: string) =>
      new Promise<http.IncomingMessage & { body?: string }>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: app.port, path: p, headers: auth, agent }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve(Object.assign(res, { body })));
        }).on('error', reject);
      });
    const first = await get('/x');
    expect(first.headers.connection).toBe('keep-alive');
    // A long request spanning the close phase must end with Connection: close.
    const slow = get('/slow?ms=600');
    await until('the slow request at the upstream', () => u.received.some((r) => r.url.startsWith('/slow')));
    app.child.kill('SIGTERM');
    const res = await slow;
    expect(res.statusCode).toBe(200);
    expect(res.headers.connection).toBe('close');
    expect(await app.exited).toBe(0);
  });

  it('closes open WebSockets when the drain delay ends, and exits 0', async () => {
    const u = await upstream();
    // Long enough for an echo during the drain on a busy machine.
    const drainMs = 1_500;
    const app = await startSidecar(u.url, { [SIDECAR_ENV.drainDelayMs]: String(drainMs), [SIDECAR_ENV.shutdownTimeoutMs]: String(drainMs + EVENT_TIMEOUT_MS) });
    const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws`, { headers: auth });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    expect(await eventually(() => u.openWebSockets() === 1)).toBe(true);
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.on('error', () => undefined);
    const started = Date.now();
    app.child.kill('SIGTERM');
    // Still usable during the drain.
    const echoed = new Promise<string>((resolve) => {
      ws.once('message', (d) => resolve(d.toString()));
      ws.once('close', () => resolve('(closed before the echo)'));
    });
    ws.send('still here');
    expect(await echoed).toBe('still here');
    await within(closed, drainMs + EVENT_TIMEOUT_MS, 'the WebSocket closed by the sidecar');
    expect(Date.now() - started).toBeGreaterThanOrEqual(drainMs - 50);
    expect(await app.exited).toBe(0);
    // The upstream side of the pipe was torn down too.
    expect(u.upgrades).toHaveLength(1);
    expect(await eventually(() => u.openWebSockets() === 0)).toBe(true);
  });

  it('exits 1 when in-flight requests outlive the shutdown deadline', async () => {
    const u = await upstream();
    const app = await startSidecar(u.url, { [SIDECAR_ENV.drainDelayMs]: '100', [SIDECAR_ENV.shutdownTimeoutMs]: '500' });
    const stuck = request(app.port, { path: '/stall', headers: auth }).catch((e: Error) => e);
    await until('the stalled request at the upstream', () => u.received.some((r) => r.url === '/stall'));
    app.child.kill('SIGTERM');
    expect(await app.exited).toBe(1);
    expect(String(await stuck)).toMatch(/socket hang up|ECONNRESET/);
    expect(app.logs().some((l) => l.phase === 'deadline')).toBe(true);
    await sleep(10);
  });
});
