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
 *
 * Nothing here counts requests in a stretch of wall-clock time: the load must overlap the signal on
 * a busy machine too. The signal waits until enough requests were answered; when a refusal or reset
 * happened is judged against the time the sidecar logged its own close phase (same clock), and
 * "served during the drain" by the sidecar's access lines between its drain and close lines.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { MAIN_ENV, SIDECAR_ENV, encodeDrainHook } from '../lib/src/contract';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { closedPort, sleep, tempDir, until, within } from './support/http';
import { EVENT_TIMEOUT_MS } from '../tools/waits';

const TOKEN = 'faults-shutdown-token-0123456789';
const SIDECAR_DRAIN_MS = 1_000;
/** Well past the sidecar's drain and close: on a busy machine its last forwarded requests may reach main late. */
const MAIN_DRAIN_MS = SIDECAR_DRAIN_MS + 2_000;
/** Answered requests before the signal, so that the load is in full swing when it comes. */
const ANSWERED_BEFORE_SIGNAL = 50;

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Outcome {
  readonly id: string;
  /** ms relative to the signal (negative: before it). */
  readonly sentAt: number;
  /** Epoch ms when the answer or the error came, on the clock of the sidecar's log lines. */
  readonly endedAt: number;
  readonly status?: number;
  readonly error?: string;
  readonly reusedSocket: boolean;
}

let sequence = 0;

function get(port: number, agent: http.Agent | false, signalAt: () => number): Promise<Outcome> {
  const id = `sd-${++sequence}`;
  const sentAt = performance.now() - signalAt();
  return new Promise((resolve) => {
    const end = (o: Omit<Outcome, 'id' | 'sentAt' | 'endedAt' | 'reusedSocket'>) => resolve({ id, sentAt, endedAt: Date.now(), reusedSocket: req.reusedSocket, ...o });
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent, headers: { authorization: `Bearer ${TOKEN}`, 'x-request-id': id } }, (res) => {
      res.resume();
      res.on('end', () => end({ status: res.statusCode }));
      res.on('error', (err: NodeJS.ErrnoException) => end({ status: res.statusCode, error: `${err.code ?? err.message} after headers` }));
    });
    req.setTimeout(EVENT_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('hung'), { code: 'HUNG' })));
    req.on('error', (err: NodeJS.ErrnoException) => end({ error: err.code ?? err.message }));
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
      // The bound for in-flight requests after the close: generous, a busy machine finishes them late.
      [SIDECAR_ENV.shutdownTimeoutMs]: String(SIDECAR_DRAIN_MS + EVENT_TIMEOUT_MS),
    },
  });
  cleanups.push(() => sidecar.stop('SIGKILL'));

  let signalAt = Infinity;
  let loading = true;
  const outcomes: Outcome[] = [];
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
  cleanups.push(() => ((loading = false), keepAlive.destroy()));
  const worker = (agent: http.Agent | false) => async () => {
    while (loading) {
      const o = await get(sidecar.port, agent, () => signalAt);
      outcomes.push(o);
      if (o.error !== undefined) await sleep(10);
    }
  };
  // Keep-alive clients (like an ingress) and one-request-per-connection clients.
  const workers = [...Array.from({ length: 8 }, worker(keepAlive)), ...Array.from({ length: 4 }, worker(false))];
  const answered = () => outcomes.filter((o) => o.status === 200);

  await until(`${ANSWERED_BEFORE_SIGNAL} answered requests before the signal (${answered().length} so far)`, () => answered().length >= ANSWERED_BEFORE_SIGNAL);
  signalAt = performance.now();
  const termination = TERMINATIONS[mode](sidecar, main);
  let terminationFailed = false;
  termination.catch(() => (terminationFailed = true));
  // The load runs on until a client has seen the closed listener refuse it: from then on the sidecar
  // accepts nothing new, and the workers still wait for their requests in flight.
  const refused = () => outcomes.some((o) => o.error === 'ECONNREFUSED' && o.sentAt > 0);
  await until('a client to see its connection refused after the signal', () => refused() || terminationFailed, SIDECAR_DRAIN_MS + EVENT_TIMEOUT_MS);
  loading = false;
  await Promise.all(workers);
  keepAlive.destroy();
  // Bounded: a process that never exits must fail the test, not hang it.
  await within(termination, MAIN_DRAIN_MS + EVENT_TIMEOUT_MS, 'both processes exiting');
  const [sidecarCode, mainCode] = await Promise.all([sidecar.exited, main.exited]);

  expect({ sidecarCode, mainCode, sidecarOutput: sidecar.lines.filter((l) => !l.includes('"msg":"request"')) }).toEqual({
    sidecarCode: 0,
    mainCode: 0,
    sidecarOutput: expect.anything(),
  });

  const logs = sidecar.logs();
  const accessLog = new Map<string, number>();
  for (const l of logs) if (l.msg === 'request') accessLog.set(String(l.requestId), Number(l.status));

  // Whatever the sidecar read, it answered with 2xx, and the client got that 2xx in full.
  const acceptedNot2xx = [...accessLog].filter(([, status]) => status < 200 || status > 299);
  expect(acceptedNot2xx).toEqual([]);
  expect(outcomes.filter((o) => o.status !== undefined && (o.status !== 200 || o.error !== undefined))).toEqual([]);
  const lostAccepted = outcomes.filter((o) => o.error !== undefined && accessLog.has(o.id));
  expect(lostAccepted).toEqual([]);

  // Failures are only refusals of new connections, or resets of requests the sidecar never read.
  const failures = outcomes.filter((o) => o.error !== undefined);
  const unexplained = failures.filter((o) => o.error !== 'ECONNREFUSED' && !(o.error === 'ECONNRESET' || o.error === 'EPIPE'));
  expect(unexplained).toEqual([]);

  // The story in the sidecar's own log: drain, then close; requests served between the two.
  const phaseAt = (phase: string) => Number(logs.find((l) => l.phase === phase)?.time);
  const [drainAt, closeAt] = [phaseAt('drain'), phaseAt('close')];
  expect(closeAt - drainAt).toBeGreaterThanOrEqual(SIDECAR_DRAIN_MS - 50);
  const servedInDrain = logs.filter((l) => l.msg === 'request' && Number(l.time) >= drainAt && Number(l.time) <= closeAt);
  expect(servedInDrain.length).toBeGreaterThan(0);
  // The clients saw it too: served past the signal, refused only once the listener had closed.
  expect(answered().filter((o) => o.sentAt > 0).length).toBeGreaterThan(0);
  const refusedBeforeClose = failures.filter((o) => o.error === 'ECONNREFUSED' && o.endedAt < closeAt);
  expect(refusedBeforeClose).toEqual([]);
  // Resets happen only in the instant the listener closes, never during the drain, never on a keep-alive connection.
  const resets = failures.filter((o) => o.error !== 'ECONNREFUSED');
  expect(resets.filter((o) => o.endedAt < closeAt)).toEqual([]);
  expect(resets.filter((o) => o.reusedSocket)).toEqual([]);
});
