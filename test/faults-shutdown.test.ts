/**
 * The pod's termination, mid-load, in both sidecar modes:
 * - container: SIGTERM to the sidecar and the main service at the same instant, as the kubelet does
 *   once preStop has passed. The sidecar drains shorter than main, so everything it accepts still finds main;
 * - native: main's preStop (the sidecar's drain hook) drains and closes the sidecar, then main gets
 *   SIGTERM and exits, then the sidecar gets its SIGTERM (KEP-753 order).
 *
 * "Accepted" is what the sidecar's own access log says it read: every such request must get a 2xx on
 * the client side. A client may only see its connection refused (listener closed), or a reset of a
 * new connection still in the kernel's accept queue when the listener closed. Never a reset on a
 * keep-alive connection: from the signal on, responses say Connection: close, so a busy client is not
 * holding an idle connection when the listener and idle connections close.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { MAIN_ENV, SIDECAR_ENV, encodeDrainHook } from '../lib/src/contract';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { closedPort, sleep, tempDir } from './support/http';

const TOKEN = 'faults-shutdown-token-0123456789';
const SIDECAR_DRAIN_MS = 300;
const MAIN_DRAIN_MS = 800;

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Outcome {
  readonly id: string;
  /** ms relative to the signal (negative: before it). */
  readonly sentAt: number;
  readonly status?: number;
  readonly error?: string;
  readonly reusedSocket: boolean;
}

let sequence = 0;

function get(port: number, agent: http.Agent | false, signalAt: () => number): Promise<Outcome> {
  const id = `sd-${++sequence}`;
  const sentAt = performance.now() - signalAt();
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent, headers: { authorization: `Bearer ${TOKEN}`, 'x-request-id': id } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ id, sentAt, status: res.statusCode, reusedSocket: req.reusedSocket }));
      res.on('error', (err: NodeJS.ErrnoException) =>
        resolve({ id, sentAt, status: res.statusCode, error: `${err.code ?? err.message} after headers`, reusedSocket: req.reusedSocket }),
      );
    });
    req.setTimeout(5_000, () => req.destroy(Object.assign(new Error('hung'), { code: 'HUNG' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ id, sentAt, error: err.code ?? err.message, reusedSocket: req.reusedSocket }));
  });
}

/** What the kubelet does to the pod, from its deletion on. */
const TERMINATIONS = {
  container: async (sidecar: RunningApp, main: RunningApp) => {
    sidecar.child.kill('SIGTERM');
    main.child.kill('SIGTERM');
    await Promise.all([sidecar.exited, main.exited]);
  },
  native: async (sidecar: RunningApp, main: RunningApp) => {
    const hook = await new Promise<number | undefined>((resolve) =>
      http.get({ host: '127.0.0.1', port: sidecar.adminPort, path: encodeDrainHook(SIDECAR_DRAIN_MS), agent: false }, (res) => (res.resume(), resolve(res.statusCode))).on('error', () => resolve(undefined)),
    );
    expect(hook).toBe(200);
    main.child.kill('SIGTERM');
    await main.exited;
    sidecar.child.kill('SIGTERM');
    await sidecar.exited;
  },
} as const;

it.each(Object.keys(TERMINATIONS) as (keyof typeof TERMINATIONS)[])('%s mode: gives every request the sidecar accepts a 2xx, before and after the signal; both exit 0', async (mode) => {
  const mainPort = await closedPort();
  const main = await startApp('main', {
    env: { [MAIN_ENV.port]: String(mainPort), [MAIN_ENV.host]: '127.0.0.1', [MAIN_ENV.drainDelayMs]: String(MAIN_DRAIN_MS) },
  });
  cleanups.push(() => main.stop('SIGKILL'));
  const tokens = tempDir('faults-shutdown-');
  cleanups.push(tokens.cleanup);
  fs.writeFileSync(path.join(tokens.dir, 'load'), TOKEN);
  const sidecar: RunningApp = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(`http://127.0.0.1:${mainPort}`, tokens.dir),
      [SIDECAR_ENV.drainDelayMs]: String(SIDECAR_DRAIN_MS),
      [SIDECAR_ENV.drainHook]: String(mode === 'native'),
      [SIDECAR_ENV.shutdownTimeoutMs]: '3000',
    },
  });
  cleanups.push(() => sidecar.stop('SIGKILL'));

  let signalAt = Infinity;
  let bothExited = false;
  const outcomes: Outcome[] = [];
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
  cleanups.push(() => (bothExited = true));
  const worker = (agent: http.Agent | false) => async () => {
    while (!bothExited) {
      const o = await get(sidecar.port, agent, () => signalAt);
      outcomes.push(o);
      if (o.error !== undefined) await sleep(10);
    }
  };
  // Keep-alive clients (like an ingress) and one-request-per-connection clients.
  const workers = [...Array.from({ length: 8 }, worker(keepAlive)), ...Array.from({ length: 4 }, worker(false))];

  await sleep(500);
  signalAt = performance.now();
  // Bounded: a process that never exits must fail the test, not keep the load running forever.
  let bound: NodeJS.Timeout | undefined;
  const [sidecarCode, mainCode] = await Promise.race([
    TERMINATIONS[mode](sidecar, main).then(() => Promise.all([sidecar.exited, main.exited])),
    new Promise<string[]>((resolve) => (bound = setTimeout(() => resolve(['still running', 'still running']), 8_000))),
  ]);
  // A pending timer would keep this jest worker alive past the test ("failed to exit gracefully").
  clearTimeout(bound);
  await sleep(100);
  bothExited = true;
  await Promise.all(workers);
  keepAlive.destroy();

  expect({ sidecarCode, mainCode, sidecarOutput: sidecar.lines.filter((l) => !l.includes('"msg":"request"')) }).toEqual({
    sidecarCode: 0,
    mainCode: 0,
    sidecarOutput: expect.anything(),
  });

  const accessLog = new Map<string, number>();
  for (const l of sidecar.logs()) if (l.msg === 'request') accessLog.set(String(l.requestId), Number(l.status));

  // Whatever the sidecar read, it answered with 2xx, and the client got that 2xx in full.
  const acceptedNot2xx = [...accessLog].filter(([, status]) => status < 200 || status > 299);
  expect(acceptedNot2xx).toEqual([]);
  const answered = outcomes.filter((o) => o.status !== undefined);
  expect(answered.filter((o) => o.status !== 200 || o.error !== undefined)).toEqual([]);
  const lostAccepted = outcomes.filter((o) => o.error !== undefined && accessLog.has(o.id));
  expect(lostAccepted).toEqual([]);

  // Failures are only refusals of new connections, or resets of requests the sidecar never read.
  const failures = outcomes.filter((o) => o.error !== undefined);
  const unexplained = failures.filter((o) => o.error !== 'ECONNREFUSED' && !(o.error === 'ECONNRESET' || o.error === 'EPIPE'));
  expect(unexplained).toEqual([]);
  const refusedBeforeClose = failures.filter((o) => o.error === 'ECONNREFUSED' && o.sentAt < SIDECAR_DRAIN_MS - 50);
  expect(refusedBeforeClose).toEqual([]);

  // The test covered the whole story: served well past the signal, then refused once the listener closed.
  expect(outcomes.filter((o) => o.status === 200 && o.sentAt < 0).length).toBeGreaterThan(50);
  expect(outcomes.filter((o) => o.status === 200 && o.sentAt > 0).length).toBeGreaterThan(20);
  expect(outcomes.filter((o) => o.status === 200 && o.sentAt > SIDECAR_DRAIN_MS / 2).length).toBeGreaterThan(0);
  expect(failures.filter((o) => o.error === 'ECONNREFUSED').length).toBeGreaterThan(0);
  const resets = failures.filter((o) => o.error !== 'ECONNREFUSED');
  // Resets happen only in the instant the listener closes, never during the drain, never on a keep-alive connection.
  for (const o of resets) expect(o.sentAt).toBeGreaterThan(SIDECAR_DRAIN_MS - 100);
  expect(resets.filter((o) => o.reusedSocket)).toEqual([]);
});
