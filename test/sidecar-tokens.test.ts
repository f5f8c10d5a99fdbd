/**
 * Token loading and rotation (kubelet `..data` swaps, plain directories, bad files, fail-closed)
 * and start-up configuration errors, through the real compiled sidecar.
 */
import * as fs from 'fs';
import * as path from 'path';
import { HEALTH_PATHS, SIDECAR_ENV } from '../lib/src/contract';
import { RunningApp, runToExit, startApp, localSidecarEnv } from './support/apps';
import { eventually, request, tempDir } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';

let upstream: TestUpstream;
const cleanups: (() => void | Promise<unknown>)[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await upstream?.close();
});

function baseEnv(tokensDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...localSidecarEnv(upstream.url, tokensDir),
    [SIDECAR_ENV.tokensPollIntervalMs]: '200',
    [SIDECAR_ENV.drainDelayMs]: '0',
    ...extra,
  };
}

async function start(tokensDir: string, extra?: Record<string, string>): Promise<RunningApp> {
  const app = await startApp('sidecar', { env: baseEnv(tokensDir, extra) });
  cleanups.push(() => app.stop());
  return app;
}

function newDir(prefix: string): string {
  const t = tempDir(prefix);
  cleanups.push(t.cleanup);
  return t.dir;
}

const statusWith = async (app: RunningApp, token: string) =>
  (await request(app.port, { path: '/t', headers: { authorization: `Bearer ${token}` } })).status;

/** Write a Secret version the way the kubelet does: a `..<timestamp>` dir, then an atomic `..data` swap. */
function kubeletWrite(dir: string, version: string, files: Record<string, string>): void {
  const versionDir = path.join(dir, `..${version}`);
  fs.mkdirSync(versionDir);
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(versionDir, name), content);
  const dataLink = path.join(dir, '..data');
  const old = fs.existsSync(dataLink) ? fs.readlinkSync(dataLink) : undefined;
  fs.symlinkSync(`..${version}`, path.join(dir, '..data_tmp'));
  fs.renameSync(path.join(dir, '..data_tmp'), dataLink);
  // User-visible names point through ..data; stale ones are removed, new ones added.
  for (const entry of fs.readdirSync(dir)) {
    if (entry.startsWith('.')) continue;
    if (!(entry in files)) fs.unlinkSync(path.join(dir, entry));
  }
  for (const name of Object.keys(files)) {
    if (!fs.existsSync(path.join(dir, name))) fs.symlinkSync(path.join('..data', name), path.join(dir, name));
  }
  if (old) fs.rmSync(path.join(dir, old), { recursive: true, force: true });
}

describe('kubelet Secret layout', () => {
  it('rotates tokens by a ..data symlink swap, without a restart', async () => {
    const dir = newDir('sidecar-kubelet-');
    kubeletWrite(dir, '2026_11_25_10_00_00.1', { ci: 'token-a-1111\n', deploy: 'token-d-2222' });
    const app = await start(dir);
    expect(await statusWith(app, 'token-a-1111')).toBe(200);
    expect(await statusWith(app, 'token-d-2222')).toBe(200);
    expect(upstream.received[upstream.received.length - 1].headers['x-auth-subject']).toBe('deploy');

    // Rotate: ci gets a new value, deploy goes away.
    kubeletWrite(dir, '2026_11_25_10_05_00.2', { ci: 'token-a-3333\n' });
    expect(await eventually(async () => (await statusWith(app, 'token-a-3333')) === 200)).toBe(true);
    expect(await statusWith(app, 'token-a-1111')).toBe(401);
    expect(await statusWith(app, 'token-d-2222')).toBe(401);
    await app.waitForLog((l) => l.msg === 'tokens loaded' && Array.isArray(l.tokens) && (l.tokens as string[]).join() === 'ci');
  });

  it('keeps the last good set when a reload finds no valid token, and logs why', async () => {
    const dir = newDir('sidecar-empty-');
    kubeletWrite(dir, 'v1', { ci: 'token-keep-1' });
    const app = await start(dir);
    expect(await statusWith(app, 'token-keep-1')).toBe(200);
    kubeletWrite(dir, 'v2', { ci: '   \n' });
    const err = await app.waitForLog((l) => l.msg === 'token reload failed; keeping the last good set');
    expect(err.level).toBe('error');
    expect(await statusWith(app, 'token-keep-1')).toBe(200);
    const ready = await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
    expect(ready.status).toBe(200);
    const metrics = (await request(app.adminPort!, { path: HEALTH_PATHS.metrics })).text();
    expect(metrics).toMatch(/sidecar_token_reloads_total\{result="failure"\} [1-9]/);
    expect(metrics).toMatch(/sidecar_tokens_loaded 1/);
  });
});

describe('plain directory', () => {
  it('picks up added and removed files', async () => {
    const dir = newDir('sidecar-plain-');
    fs.writeFileSync(path.join(dir, 'first'), 'plain-token-1');
    const app = await start(dir);
    expect(await statusWith(app, 'plain-token-1')).toBe(200);
    fs.writeFileSync(path.join(dir, 'second'), 'plain-token-2');
    expect(await eventually(async () => (await statusWith(app, 'plain-token-2')) === 200)).toBe(true);
    fs.unlinkSync(path.join(dir, 'first'));
    expect(await eventually(async () => (await statusWith(app, 'plain-token-1')) === 401)).toBe(true);
    expect(await statusWith(app, 'plain-token-2')).toBe(200);
  });

  it('skips bad entries with a warning and never logs their content', async () => {
    const dir = newDir('sidecar-bad-');
    fs.writeFileSync(path.join(dir, 'good'), '\n  good-token-1  \n');
    fs.mkdirSync(path.join(dir, 'subdir'));
    fs.writeFileSync(path.join(dir, 'subdir', 'nested'), 'nested-token');
    fs.writeFileSync(path.join(dir, 'huge'), 'h'.repeat(65 * 1024));
    fs.writeFileSync(path.join(dir, 'blank'), ' \n\t\n');
    fs.writeFileSync(path.join(dir, 'spaces'), 'two words-secret');
    fs.writeFileSync(path.join(dir, 'bad name'), 'badname-token');
    fs.writeFileSync(path.join(dir, '.hidden'), 'hidden-token');
    fs.symlinkSync(path.join(dir, 'missing-target'), path.join(dir, 'dangling'));
    const app = await start(dir);
    expect(await statusWith(app, 'good-token-1')).toBe(200);
    for (const t of ['nested-token', 'hidden-token', 'badname-token', 'words-secret']) expect(await statusWith(app, t)).toBe(401);
    const skipped = app.logs().filter((l) => l.msg === 'token file skipped').map((l) => l.name).sort();
    expect(skipped).toEqual(['bad name', 'blank', 'dangling', 'huge', 'spaces', 'subdir']);
    const all = app.lines.join('\n');
    for (const t of ['good-token-1', 'nested-token', 'two words-secret', 'hhhhhhhh']) expect(all).not.toContain(t);
  });
});

describe('fail closed', () => {
  it('refuses everything and reports why while there was never a token, then recovers', async () => {
    const dir = newDir('sidecar-none-');
    const app = await start(dir);
    const before = upstream.count();
    const res = await request(app.port, { path: '/x', headers: { authorization: 'Bearer anything-at-all' } });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
    expect((await request(app.port, { path: '/x' })).status).toBe(401);
    expect(upstream.count()).toBe(before);
    const ready = await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
    expect(ready.status).toBe(503);
    expect(ready.text()).toContain('no tokens loaded: directory holds no valid token');
    expect((await request(app.adminPort!, { path: HEALTH_PATHS.sidecarLiveness })).status).toBe(200);

    fs.writeFileSync(path.join(dir, 'late'), 'late-token-1');
    expect(await eventually(async () => (await statusWith(app, 'late-token-1')) === 200)).toBe(true);
    expect((await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness })).status).toBe(200);
  });

  it('starts, refusing everything, when the directory does not exist', async () => {
    const dir = path.join(newDir('sidecar-missing-'), 'not-there');
    const app = await start(dir);
    expect((await request(app.port, { path: '/x', headers: { authorization: 'Bearer x' } })).status).toBe(401);
    const ready = await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
    expect(ready.status).toBe(503);
    expect(ready.text()).toContain('no tokens loaded: cannot read directory: ENOENT');
  });
});

describe('configuration errors', () => {
  const bad: [string, string][] = [
    [SIDECAR_ENV.port, 'eighty'],
    [SIDECAR_ENV.port, '70000'],
    [SIDECAR_ENV.port, '-1'],
    [SIDECAR_ENV.adminPort, '1.5'],
    [SIDECAR_ENV.host, 'not a host!'],
    [SIDECAR_ENV.upstream, 'localhost:8080'],
    [SIDECAR_ENV.upstream, 'https://127.0.0.1:8080'],
    [SIDECAR_ENV.upstream, 'http://user:pw@127.0.0.1:8080'],
    [SIDECAR_ENV.upstream, 'http://127.0.0.1:8080/api'],
    [SIDECAR_ENV.upstream, 'http://127.0.0.1:8080/?q=1'],
    [SIDECAR_ENV.upstream, 'http://127.0.0.1'],
    [SIDECAR_ENV.publicPaths, 'healthz'],
    [SIDECAR_ENV.publicPaths, '/a,/a'],
    [SIDECAR_ENV.publicPaths, '/a,,/b'],
    [SIDECAR_ENV.publicPaths, '/a?x=1'],
    [SIDECAR_ENV.upstreamHealthPath, 'healthz'],
    [SIDECAR_ENV.upstreamTimeoutMs, '0'],
    [SIDECAR_ENV.upstreamTimeoutMs, 'soon'],
    [SIDECAR_ENV.upstreamIdleTimeoutMs, '99999999999'],
    [SIDECAR_ENV.headersTimeoutMs, '0'],
    [SIDECAR_ENV.drainDelayMs, '-5'],
    [SIDECAR_ENV.shutdownTimeoutMs, '0'],
    [SIDECAR_ENV.forwardAuthorization, 'yes'],
    [SIDECAR_ENV.realm, 'say "hi"'],
    [SIDECAR_ENV.tokensPollIntervalMs, '1'],
    [SIDECAR_ENV.logLevel, 'verbose'],
  ];

  it.each(bad)('%s=%j exits non-zero with one line naming the variable', async (name, value) => {
    const { code, output } = await runToExit('sidecar', { [SIDECAR_ENV.tokensDir]: '/tmp', [name]: value });
    expect(code).toBe(2);
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^sidecar: ${name}: `));
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('requires the tokens directory', async () => {
    const { code, output } = await runToExit('sidecar', {});
    expect(code).toBe(2);
    expect(output.trim()).toMatch(new RegExp(`^sidecar: ${SIDECAR_ENV.tokensDir}: `));
  });

  it('refuses the same port for proxy and admin, and a shutdown bound shorter than the drain', async () => {
    const same = await runToExit('sidecar', { [SIDECAR_ENV.tokensDir]: '/tmp', [SIDECAR_ENV.port]: '9000', [SIDECAR_ENV.adminPort]: '9000' });
    expect(same.code).toBe(2);
    expect(same.output).toContain(SIDECAR_ENV.adminPort);
    const short = await runToExit('sidecar', { [SIDECAR_ENV.tokensDir]: '/tmp', [SIDECAR_ENV.drainDelayMs]: '5000', [SIDECAR_ENV.shutdownTimeoutMs]: '4000' });
    expect(short.code).toBe(2);
    expect(short.output).toContain(SIDECAR_ENV.shutdownTimeoutMs);
  });
});
