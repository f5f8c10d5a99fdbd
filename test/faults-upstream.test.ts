/**
 * Faults of the main service, through the real compiled sidecar: killed under load (then back on the
 * same port), too slow to answer, and stalled mid-body. Nothing may hang, and nothing may leak.
 */
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo, Socket } from 'net';
import * as path from 'path';
import { HEALTH_PATHS, MAIN_ENV, SIDECAR_ENV, SIDECAR_INTEGERS } from '../lib/src/contract';
import { EVENT_TIMEOUT_MS } from '../tools/waits';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { closedPort, eventually, request, sleep, tempDir, until } from './support/http';

const TOKEN = 'faults-upstream-token-0123456789';
/** Long enough that a slow but steady body (/trickle) is never silent that long, even on a busy machine. */
const UPSTREAM_TIMEOUT_MS = 1_500;
/** The upstream timeout of the slow-but-steady case: long, so that its gaps leave a busy machine seconds of slack. */
const TRICKLE_TIMEOUT_MS = 6_000;
/**
 * Every request ends before this: the configured timeout, or none, ended it, never the default
 * (15 s) the sidecar would fall back to; the rest is slack for a busy machine.
 */
const ENDED_BY_MS = SIDECAR_INTEGERS.upstreamTimeoutMs.default;
/** Client-side cut-off: a request still open then has hung. */
const HANG_MS = ENDED_BY_MS + EVENT_TIMEOUT_MS;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tokensDir(): string {
  const t = tempDir('faults-upstream-');
  cleanups.push(t.cleanup);
  fs.writeFileSync(path.join(t.dir, 'load'), TOKEN);
  return t.dir;
}

async function startSidecar(upstreamUrl: string, extra: Record<string, string> = {}): Promise<RunningApp> {
  const app = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstreamUrl, tokensDir()),
      [SIDECAR_ENV.upstreamTimeoutMs]: String(UPSTREAM_TIMEOUT_MS),
      [SIDECAR_ENV.drainDelayMs]: '0',
      ...extra,
    },
    // A line per request; the "listening" line is all we need.
    discardOutputAfterStart: true,
  });
  cleanups.push(() => app.stop('SIGKILL'));
  return app;
}

async function startMain(port: number): Promise<RunningApp> {
  const app = await startApp('main', {
    env: { [MAIN_ENV.port]: String(port), [MAIN_ENV.host]: '127.0.0.1', [MAIN_ENV.drainDelayMs]: '0' },
    discardOutputAfterStart: true,
  });
  cleanups.push(() => app.stop('SIGKILL'));
  return app;
}

interface Outcome {
  readonly status?: number;
  /** Error code (or message) when no complete response arrived. */
  readonly error?: string;
  /** Body bytes received before the end or the error. */
  readonly bytes: number;
  readonly ms: number;
}

/** One GET; never rejects, never outlives HANG_MS. */
function get(port: number, urlPath: string, agent: http.Agent | false): Promise<Outcome> {
  const began = performance.now();
  return new Promise((resolve) => {
    let bytes = 0;
    let status: number | undefined;
    let settled = false;
    const done = (o: { status?: number; error?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(hang);
      resolve({ ...o, bytes, ms: performance.now() - began });
    };
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
      status = res.statusCode;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => done({ status }));
      // Once headers are in, any cut is "aborted", whichever event reports it first.
      res.on('error', () => done({ status, error: 'aborted' }));
      res.on('close', () => done(res.complete ? { status } : { status, error: 'aborted' }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => done(status === undefined ? { error: err.code ?? err.message } : { status, error: 'aborted' }));
    const hang = setTimeout(() => {
      done({ status, error: 'HUNG' });
      req.destroy();
    }, HANG_MS);
  });
}

/** Keep `workers` keep-alive clients busy until stop() is called; every outcome is kept. */
function load(port: number, workers: number): { outcomes: Outcome[]; stop: () => Promise<void> } {
  const outcomes: Outcome[] = [];
  let running = true;
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const o = await get(port, '/', agent);
      outcomes.push(o);
      // A refused connection returns at once; do not spin the CPU the apps need.
      if (o.status !== 200) await sleep(5);
    }
  });
  return {
    outcomes,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

const readyStatus = async (sidecar: RunningApp) => (await request(sidecar.adminPort!, { path: HEALTH_PATHS.sidecarReadiness })).status;

function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const o of outcomes) {
    const key = o.error !== undefined ? `${o.status ?? '-'}:${o.error}` : String(o.status);
    t[key] = (t[key] ?? 0) + 1;
  }
  return t;
}

describe('main service killed under load', () => {
  it('answers 502 or 200 to every request, turns unready, and recovers when main is back on the same port', async () => {
    const mainPort = await closedPort();
    let main = await startMain(mainPort);
    const sidecar = await startSidecar(`http://127.0.0.1:${mainPort}`);
    expect(await readyStatus(sidecar)).toBe(200);

    const before = load(sidecar.port, 12);
    try {
      await until('200 answered requests before the kill', () => before.outcomes.filter((o) => o.status === 200).length >= 200);
      const killedAt = before.outcomes.length;
      main.child.kill('SIGKILL');
      await main.exited;
      // Keep the load on while main is gone: the kill is seen (502s), and readiness turns.
      await until('more than 10 502s after the kill', () => before.outcomes.slice(killedAt).filter((o) => o.status === 502).length > 10);
      await until('readiness 503 with main gone', async () => (await readyStatus(sidecar)) === 503);
    } finally {
      await before.stop();
    }

    const outcomes = before.outcomes;
    // Every request got a whole answer, 200 or 502: no reset, no truncation, no hang.
    expect(tally(outcomes.filter((o) => o.error !== undefined || (o.status !== 200 && o.status !== 502)))).toEqual({});
    expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(ENDED_BY_MS);

    main = await startMain(mainPort);
    // No sidecar restart: the same process finds main again.
    await until('readiness 200 with main back', async () => (await readyStatus(sidecar)) === 200);
    const after = load(sidecar.port, 12);
    try {
      await until('300 requests with main back', () => after.outcomes.length >= 300);
    } finally {
      await after.stop();
    }
    expect(after.outcomes.length).toBeGreaterThanOrEqual(300);
    expect(tally(after.outcomes)).toEqual({ '200': after.outcomes.length });
    expect(sidecar.child.exitCode).toBeNull();
  });
});

/**
 * A main service that is slow in three ways: /no-headers never answers, /stall-body answers part of a
 * body then stalls, /trickle takes longer than the timeout in total but is never silent that long.
 */
async function startStallingUpstream(): Promise<{ url: string; server: http.Server; open: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    if (req.url === HEALTH_PATHS.main || req.url === '/warm') {
      res.end('ok');
    } else if (req.url === '/stall-body') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('x'.repeat(400));
    } else if (req.url === '/trickle') {
      // Slow but never silent for a whole timeout: 7 chunks a sixth of TRICKLE_TIMEOUT_MS apart,
      // longer than one timeout in all; each gap leaves five sixths of it (5 s) as slack, which a
      // starved process on a machine at load 25 still needed (1.2 s was not enough).
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '7' });
      let sent = 0;
      const timer = setInterval(() => {
        res.write('t');
        if (++sent === 7) {
          clearInterval(timer);
          res.end();
        }
      }, TRICKLE_TIMEOUT_MS / 6);
      res.on('close', () => clearInterval(timer));
    }
    // '/no-headers': nothing, ever.
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    open: () => sockets.size,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('main service that is slow or stalls mid-body', () => {
  it('gives 504 or a clean abort within the timeout, and leaks no socket on either side', async () => {
    const upstream = await startStallingUpstream();
    cleanups.push(upstream.close);
    const sidecar = await startSidecar(upstream.url, { [SIDECAR_ENV.upstreamIdleTimeoutMs]: '200' });
    const pid = sidecar.child.pid!;

    // Baseline: the descriptors of the idle sidecar (the least of a few looks: a token poll may hold
    // a file open for an instant); a warm-up request opens a pooled socket, which expires.
    const baseline = Math.min(openFds(pid), openFds(pid), openFds(pid));
    expect((await get(sidecar.port, '/warm', false)).status).toBe(200);
    await until('the warm-up connections closed on both ends', () => upstream.open() === 0 && openFds(pid) <= baseline);

    const rounds = await Promise.all([
      ...Array.from({ length: 10 }, () => get(sidecar.port, '/no-headers', false)),
      ...Array.from({ length: 10 }, () => get(sidecar.port, '/stall-body', false)),
    ]);
    const noHeaders = rounds.slice(0, 10);
    const stalled = rounds.slice(10);

    expect(tally(noHeaders)).toEqual({ '504': 10 });
    // Headers and part of the body went out; the rest never comes, so the client must see the cut, not a short "complete" body.
    expect(tally(stalled)).toEqual({ '200:aborted': 10 });
    for (const o of stalled) expect(o.bytes).toBe(400);
    for (const o of rounds) {
      expect(o.ms).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS - 50);
      expect(o.ms).toBeLessThan(ENDED_BY_MS);
    }

    // Both ends let go: the upstream sees every connection closed, the sidecar is back to its file descriptors.
    expect(await eventually(() => upstream.open() === 0)).toBe(true);
    let fds = openFds(pid);
    await eventually(() => (fds = openFds(pid)) <= baseline);
    expect(fds).toBe(baseline);

    // And it still serves.
    expect((await get(sidecar.port, '/warm', false)).status).toBe(200);
  });

  it('lets a slow but steady body through: the timeout is for inactivity, not for the whole response', async () => {
    const upstream = await startStallingUpstream();
    cleanups.push(upstream.close);
    const sidecar = await startSidecar(upstream.url, { [SIDECAR_ENV.upstreamTimeoutMs]: String(TRICKLE_TIMEOUT_MS) });
    const trickled = await Promise.all(Array.from({ length: 3 }, () => get(sidecar.port, '/trickle', false)));
    expect(tally(trickled)).toEqual({ '200': 3 });
    for (const o of trickled) {
      expect(o.bytes).toBe(7);
      // Longer than one timeout in all.
      expect(o.ms).toBeGreaterThan(TRICKLE_TIMEOUT_MS);
    }
  });
});
