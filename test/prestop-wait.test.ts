/**
 * The preStop wait on the sidecar's admin port (container mode: both containers' preStop, an
 * httpGet the kubelet makes, so no image needs `sleep`). It answers 200 once `?ms=` have passed and
 * does nothing else: no drain, no close. Bad queries get 400; concurrent and abandoned calls are
 * fine; a pending one does not hold the process at SIGTERM. With `?until=closed` (main's preStop,
 * issue 19) the sidecar's own shutdown answers it once the proxy has drained and closed, before the
 * admin server goes. Real process, real sockets.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import {
  DRAIN_HOOK_QUERY,
  HEALTH_PATHS,
  POD_TIMING_INTEGERS,
  PRE_STOP_WAIT_MS,
  PRE_STOP_WAIT_UNTIL_QUERY,
  SIDECAR_ENV,
  SIDECAR_INTEGERS,
  encodePreStopWait,
} from '../lib/src/contract';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { adminGet, request, sleep, tempDir, until, within } from './support/http';
import { startUpstream, TestUpstream } from './support/upstream';

const TOKEN = 'prestop-wait-token-0123456789abcdef';
const WAIT_MS = 1_500;
const tokens = tempDir('prestop-wait-');
fs.writeFileSync(path.join(tokens.dir, 'ci'), TOKEN);

let upstream: TestUpstream;
let sidecar: RunningApp;
beforeAll(async () => {
  upstream = await startUpstream();
  sidecar = await startApp('sidecar', { env: { ...localSidecarEnv(upstream.url, tokens.dir), [SIDECAR_ENV.drainDelayMs]: '200' } });
});
afterAll(async () => {
  await sidecar?.stop('SIGKILL');
  await upstream?.close();
  tokens.cleanup();
});

const auth = { authorization: `Bearer ${TOKEN}` };

it.each(['', '?ms=', '?ms=abc', '?ms=-1', '?ms=1e3', `?ms=${PRE_STOP_WAIT_MS.max + 1}`, `?${DRAIN_HOOK_QUERY}=1&${DRAIN_HOOK_QUERY}=2`])(
  'refuses %j with 400 at once, naming the bounds',
  async (query) => {
    const answer = await adminGet(sidecar.adminPort!, `${HEALTH_PATHS.preStopWait}${query}`);
    expect(answer.status).toBe(400);
    expect(answer.body).toBe(`ms must be an integer in 0..${PRE_STOP_WAIT_MS.max}\n`);
  },
);

it('answers 200 once ?ms= have passed, to concurrent callers, and drains nothing meanwhile', async () => {
  const calls = [WAIT_MS, WAIT_MS, WAIT_MS, 0].map((ms) => adminGet(sidecar.adminPort!, encodePreStopWait(ms)));
  // While they wait: ready and forwarding.
  expect((await request(sidecar.port, { path: '/', headers: auth })).status).toBe(200);
  expect((await adminGet(sidecar.adminPort!, HEALTH_PATHS.sidecarReadiness)).status).toBe(200);

  const answers = await Promise.all(calls);
  for (const a of answers) expect(a).toMatchObject({ status: 200, body: 'waited\n' });
  for (const a of answers.slice(0, 3)) expect(a.ms).toBeGreaterThanOrEqual(WAIT_MS - 20);

  // After: still ready and forwarding, no shutdown phase logged, the process is up.
  expect((await adminGet(sidecar.adminPort!, HEALTH_PATHS.sidecarReadiness)).status).toBe(200);
  expect((await request(sidecar.port, { path: '/', headers: auth })).status).toBe(200);
  expect(sidecar.logs().filter((l) => l.phase !== undefined)).toEqual([]);
  // Log lines may trail the answers.
  await until('four "preStop wait answered" lines', () => sidecar.logs().filter((l) => l.msg === 'preStop wait answered').length === 4);
  expect(sidecar.isRunning()).toBe(true);
});

it('takes the longest wait the contract allows, and a caller that gives up leaves the sidecar serving', async () => {
  const answered: number[] = [];
  const req = http.get({ host: '127.0.0.1', port: sidecar.adminPort!, path: encodePreStopWait(PRE_STOP_WAIT_MS.max), agent: false }, (res) => answered.push(res.statusCode ?? 0));
  req.on('error', () => undefined);
  // Accepted, so not answered at once (a 400 would be).
  await sleep(500);
  expect(answered).toEqual([]);
  req.destroy();
  await sleep(100);
  expect((await adminGet(sidecar.adminPort!, HEALTH_PATHS.sidecarLiveness)).status).toBe(200);
  expect(sidecar.isRunning()).toBe(true);
});

it('a pending wait does not hold the process: SIGTERM still exits 0 after the drain', async () => {
  const own = await startApp('sidecar', { env: { ...localSidecarEnv(upstream.url, tokens.dir), [SIDECAR_ENV.drainDelayMs]: '200' } });
  try {
    const pending = adminGet(own.adminPort!, encodePreStopWait(PRE_STOP_WAIT_MS.max)).catch((err: NodeJS.ErrnoException) => err.code);
    await sleep(200);
    own.child.kill('SIGTERM');
    expect(await within(own.exited, 20_000, 'exit after SIGTERM')).toBe(0);
    // The shutdown cut the pending call instead of answering it.
    expect(await pending).toBe('ECONNRESET');
  } finally {
    await own.stop('SIGKILL');
  }
});

describe('?until=closed (main\'s preStop: SIGTERM for main only once the sidecar has drained)', () => {
  it('the bound of ?ms= holds the longest preStop, drain and upstream timeout a pod may set', () => {
    expect(PRE_STOP_WAIT_MS.max).toBeGreaterThanOrEqual(
      POD_TIMING_INTEGERS.preStopDelaySeconds.max * 1000 + SIDECAR_INTEGERS.drainDelayMs.max + SIDECAR_INTEGERS.upstreamTimeoutMs.max,
    );
    expect(encodePreStopWait(1_000, { untilSidecarClosed: true })).toBe(`${HEALTH_PATHS.preStopWait}?ms=1000&until=closed`);
    expect(encodePreStopWait(1_000, { untilSidecarClosed: false })).toBe(encodePreStopWait(1_000));
  });

  it.each(['open', '', 'CLOSED', 'closed&until=closed'])('refuses until=%j with 400 at once', async (value) => {
    const answer = await adminGet(sidecar.adminPort!, `${encodePreStopWait(WAIT_MS)}&${PRE_STOP_WAIT_UNTIL_QUERY}=${value}`);
    expect(answer).toMatchObject({ status: 400, body: 'until must be closed, or absent\n' });
  });

  it('without a shutdown, answers "waited" once ?ms= have passed, and drains nothing', async () => {
    const answer = await adminGet(sidecar.adminPort!, encodePreStopWait(WAIT_MS, { untilSidecarClosed: true }));
    expect(answer).toMatchObject({ status: 200, body: 'waited\n' });
    expect(answer.ms).toBeGreaterThanOrEqual(WAIT_MS - 20);
    expect((await adminGet(sidecar.adminPort!, HEALTH_PATHS.sidecarReadiness)).status).toBe(200);
    expect(sidecar.isRunning()).toBe(true);
  });

  it('at SIGTERM, answers "sidecar closed" after the drain and the last in-flight request, before the exit; a plain wait is still cut', async () => {
    const own = await startApp('sidecar', { env: { ...localSidecarEnv(upstream.url, tokens.dir), [SIDECAR_ENV.drainDelayMs]: '300' } });
    try {
      // In flight past the drain: the close phase waits for it.
      const slow = request(own.port, { path: '/slow?ms=1500', headers: auth }).then((r) => r.status);
      await until('the slow request at the upstream', () => upstream.received.some((r) => r.url === '/slow?ms=1500'));
      const untilClosed = adminGet(own.adminPort!, encodePreStopWait(60_000, { untilSidecarClosed: true }));
      const plain = adminGet(own.adminPort!, encodePreStopWait(60_000)).catch((err: NodeJS.ErrnoException) => err.code);
      await until('both waits called', () => own.logs().filter((l) => l.msg === 'preStop wait called').length === 2);

      own.child.kill('SIGTERM');
      const answer = await within(untilClosed, 20_000, 'the until-closed wait to be answered');
      expect({ status: answer.status, body: answer.body }).toEqual({ status: 200, body: 'sidecar closed\n' });
      expect(await slow).toBe(200);
      expect(await within(own.exited, 20_000, 'exit after SIGTERM')).toBe(0);
      // A plain wait keeps today's behaviour: the shutdown's exit cuts it.
      expect(await plain).toBe('ECONNRESET');

      // In the sidecar's own log (one stream, so in the order it happened): the slow request
      // answered, the proxy closed, then the wait answered, then the exit.
      const msgs = own.logs().map((l) => {
        if (l.msg === 'preStop wait answered') return `wait answered, until ${String(l.until)}: ${String(l.answer)}`;
        if (l.msg === 'request') return `request ${String(l.path)} ${String(l.status)}`;
        return String(l.msg);
      });
      const order = [
        'request /slow 200',
        'shutdown: all proxy connections closed',
        'wait answered, until closed: sidecar closed',
        'shutdown: done',
      ];
      expect(msgs.filter((m) => order.includes(m))).toEqual(order);
    } finally {
      await own.stop('SIGKILL');
    }
  });
});
