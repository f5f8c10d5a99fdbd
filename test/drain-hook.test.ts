/**
 * The drain hook on the sidecar's admin port (native-sidecar mode: main's preStop). It drains for
 * `?ms=`, closes the proxy listener, and answers once every proxy connection is closed; the process
 * stays up for the SIGTERM that follows main's exit, and then exits at once. Real process, real sockets.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DRAIN_HOOK_QUERY, HEALTH_PATHS, SIDECAR_ENV, encodeDrainHook } from '../lib/src/contract';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { adminGet, closedPort, request, tempDir, until } from './support/http';
import { startUpstream } from './support/upstream';

const TOKEN = 'drain-hook-token-0123456789abcdef';
/** The sidecar's own drain: the hook's ?ms= must be what counts, and the later SIGTERM must not drain again. */
const OWN_DRAIN_MS = 60_000;
/** The hook's drain: long enough for a readiness check and a request during it on a busy machine. */
const HOOK_DRAIN_MS = 2_000;
const tokens = tempDir('drain-hook-');
fs.writeFileSync(path.join(tokens.dir, 'ci'), TOKEN);
afterAll(() => tokens.cleanup());

async function sidecarBefore(upstreamUrl: string): Promise<RunningApp> {
  return startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstreamUrl, tokens.dir),
      [SIDECAR_ENV.drainHook]: 'true',
      [SIDECAR_ENV.drainDelayMs]: String(OWN_DRAIN_MS),
      [SIDECAR_ENV.shutdownTimeoutMs]: String(OWN_DRAIN_MS + 30_000),
    },
  });
}

it.each(['', '?ms=', '?ms=abc', '?ms=-1', '?ms=1e3', '?ms=600001', `?${DRAIN_HOOK_QUERY}=1&${DRAIN_HOOK_QUERY}=2`])('refuses %j with 400 and keeps serving', async (query) => {
  const upstream = await startUpstream();
  const sidecar = await sidecarBefore(upstream.url);
  try {
    const answer = await adminGet(sidecar.adminPort!, `${HEALTH_PATHS.drain}${query}`);
    expect(answer.status).toBe(400);
    expect((await adminGet(sidecar.adminPort!, HEALTH_PATHS.sidecarReadiness)).status).toBe(200);
  } finally {
    await sidecar.stop('SIGKILL');
    await upstream.close();
  }
});

it('drains for ?ms=, closes the proxy, answers once closed; the later SIGTERM exits at once with 0', async () => {
  const upstream = await startUpstream();
  const sidecar = await sidecarBefore(upstream.url);
  try {
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await request(sidecar.port, { path: '/', headers: auth })).status).toBe(200);

    const hook = adminGet(sidecar.adminPort!, encodeDrainHook(HOOK_DRAIN_MS));
    // Draining: readiness fails at once, requests are still forwarded and told to close.
    await until('readiness 503 once the hook is called', async () => (await adminGet(sidecar.adminPort!, HEALTH_PATHS.sidecarReadiness)).status === 503, undefined, 10);
    const during = await request(sidecar.port, { path: '/', headers: auth });
    expect(during.status).toBe(200);
    expect(during.headers.connection).toBe('close');

    const answer = await hook;
    expect(answer).toMatchObject({ status: 200, body: 'closed\n' });
    expect(answer.ms).toBeGreaterThanOrEqual(HOOK_DRAIN_MS - 20);
    // The proxy is closed, the process is not.
    await expect(request(sidecar.port, { path: '/', headers: auth })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(sidecar.child.exitCode).toBeNull();
    // A second call shares the first drain.
    expect((await adminGet(sidecar.adminPort!, encodeDrainHook(5000))).body).toBe('closed\n');

    const signalled = performance.now();
    sidecar.child.kill('SIGTERM');
    expect(await sidecar.exited).toBe(0);
    // Not another drain of its own.
    expect(performance.now() - signalled).toBeLessThan(OWN_DRAIN_MS);
  } finally {
    await sidecar.stop('SIGKILL');
    await upstream.close();
  }
});

it('without SIDECAR_DRAIN_HOOK there is no hook (404), and SIGTERM runs the whole sequence (container mode)', async () => {
  const port = await closedPort();
  const sidecar = await startApp('sidecar', { env: { ...localSidecarEnv(`http://127.0.0.1:${port}`, tokens.dir), [SIDECAR_ENV.drainDelayMs]: '200' } });
  expect((await adminGet(sidecar.adminPort!, encodeDrainHook(100))).status).toBe(404);
  expect((await adminGet(sidecar.adminPort!, HEALTH_PATHS.sidecarLiveness)).status).toBe(200);
  sidecar.child.kill('SIGTERM');
  expect(await sidecar.exited).toBe(0);
  const phases = sidecar.logs().filter((l) => typeof l.phase === 'string').map((l) => l.phase);
  expect(phases).toEqual(['drain', 'close', 'closed', 'exit']);
});
