/**
 * The preStop wait on the sidecar's admin port (container mode: both containers' preStop, an
 * httpGet the kubelet makes, so no image needs `sleep`). It answers 200 once `?ms=` have passed and
 * does nothing else: no drain, no close. Bad queries get 400; concurrent and abandoned calls are
 * fine; a pending one does not hold the process at SIGTERM. Real process, real sockets.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { DRAIN_HOOK_QUERY, HEALTH_PATHS, PRE_STOP_WAIT_MS, SIDECAR_ENV, encodePreStopWait } from '../lib/src/contract';
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
