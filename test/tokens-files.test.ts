/**
 * Hostile or broken entries in the tokens directory, through the compiled sidecar on real files:
 * empty and whitespace-only files are ignored with a warning, a huge file is refused, and
 * subdirectories, dangling symlinks, FIFOs and devices neither crash nor block the loader.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { HEALTH_PATHS, SIDECAR_ENV } from '../lib/src/contract';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { eventually, request, tempDir } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';

const GOOD = 'good-token-Zq81';
/** Each bad entry holds (or points to) a well-formed token, so only the entry's kind can be why it is refused. */
const EMPTY_TOKENLESS = '';
const HUGE_TOKEN = 'huge-token-Yx55';
const NESTED_TOKEN = 'nested-token-Wv13';
/** Over the 64 KiB limit, yet a valid token once trimmed: the size alone must refuse it. */
const HUGE_CONTENT = `${HUGE_TOKEN}${'\n'.repeat(70 * 1024)}`;

let upstream: TestUpstream;
const cleanups: (() => void | Promise<unknown>)[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await upstream?.close();
});

function newDir(): string {
  const t = tempDir('tokens-files-');
  cleanups.push(t.cleanup);
  return t.dir;
}

async function start(dir: string): Promise<RunningApp> {
  const app = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstream.url, dir),
      [SIDECAR_ENV.tokensPollIntervalMs]: '100',
      [SIDECAR_ENV.drainDelayMs]: '0',
    },
  });
  cleanups.push(() => app.stop());
  return app;
}

const statusWith = async (app: RunningApp, token: string) =>
  (await request(app.port, { path: '/t', headers: { authorization: `Bearer ${token}` } })).status;

/** Reason of the warning that names `name`, or undefined. */
const skipReason = (app: RunningApp, name: string) => {
  const line = app.logs().find((l) => l.msg === 'token file skipped' && l.name === name);
  if (line) expect(line.level).toBe('warn');
  return line?.reason as string | undefined;
};

/** True while nothing has the FIFO open for reading (a non-blocking writer then gets ENXIO). */
function fifoHasNoReader(fifo: string): boolean {
  try {
    fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENXIO';
  }
}

/** Lay out every awkward entry; returns the names that must be skipped. */
function populate(dir: string, suffix = ''): string[] {
  const outside = newDir();
  fs.writeFileSync(path.join(dir, `empty${suffix}`), EMPTY_TOKENLESS);
  fs.writeFileSync(path.join(dir, `blank${suffix}`), ' \n\t \r\n  ');
  fs.writeFileSync(path.join(dir, `huge${suffix}`), HUGE_CONTENT);
  fs.mkdirSync(path.join(dir, `subdir${suffix}`));
  fs.writeFileSync(path.join(dir, `subdir${suffix}`, 'nested'), NESTED_TOKEN);
  fs.symlinkSync(path.join(outside, 'nothing-here'), path.join(dir, `dangling${suffix}`));
  fs.symlinkSync(outside, path.join(dir, `dirlink${suffix}`));
  fs.symlinkSync('/dev/zero', path.join(dir, `devzero${suffix}`));
  execFileSync('mkfifo', [path.join(dir, `fifo${suffix}`)]);
  return ['empty', 'blank', 'huge', 'subdir', 'dangling', 'dirlink', 'devzero', 'fifo'].map((n) => `${n}${suffix}`);
}

describe('awkward entries at start-up', () => {
  let dir: string;
  let app: RunningApp;
  let skipped: string[];

  beforeAll(async () => {
    dir = newDir();
    fs.writeFileSync(path.join(dir, 'good'), `${GOOD}\n`);
    skipped = populate(dir);
    // Starts at all (a blocking FIFO read or reading /dev/zero would hang it past the timeout).
    app = await start(dir);
  });

  it('serves the valid token and is ready', async () => {
    expect(await statusWith(app, GOOD)).toBe(200);
    expect((await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness })).status).toBe(200);
    const loaded = await app.waitForLog((l) => l.msg === 'tokens loaded');
    expect(loaded.tokens).toEqual(['good']);
  });

  it('ignores an empty and a whitespace-only file, with a warning naming the file', () => {
    expect(skipReason(app, 'empty')).toBe('empty');
    expect(skipReason(app, 'blank')).toBe('empty');
  });

  it('refuses a file over 64 KiB even when its content trims to a valid token, and says so', async () => {
    expect(skipReason(app, 'huge')).toMatch(/too large/);
    expect(await statusWith(app, HUGE_TOKEN)).toBe(401);
  });

  it('skips a subdirectory (and does not read inside it), a dangling symlink, a link to a directory, a device and a FIFO', async () => {
    expect(skipReason(app, 'subdir')).toMatch(/directory/);
    expect(skipReason(app, 'dirlink')).toMatch(/directory/);
    expect(skipReason(app, 'dangling')).toMatch(/dangling/);
    expect(skipReason(app, 'devzero')).toMatch(/not a regular file/);
    expect(skipReason(app, 'fifo')).toMatch(/not a regular file/);
    expect(await statusWith(app, NESTED_TOKEN)).toBe(401);
    // Nobody holds the FIFO open: the loader never tried to read it.
    expect(fifoHasNoReader(path.join(dir, 'fifo'))).toBe(true);
  });

  it('warns about exactly the awkward entries, and never logs a file content', () => {
    const warned = new Set(app.logs().filter((l) => l.msg === 'token file skipped').map((l) => l.name as string));
    expect([...warned].sort()).toEqual([...skipped].sort());
    const all = app.lines.join('\n');
    for (const secret of [GOOD, HUGE_TOKEN, NESTED_TOKEN]) expect(all).not.toContain(secret);
  });

  it('is still alive and answers liveness', async () => {
    expect(app.child.exitCode).toBeNull();
    expect((await request(app.adminPort!, { path: HEALTH_PATHS.sidecarLiveness })).status).toBe(200);
  });
});

describe('awkward entries appearing while running', () => {
  it('a reload that meets them still picks up a new token and keeps the old one', async () => {
    const dir = newDir();
    fs.writeFileSync(path.join(dir, 'first'), GOOD);
    const app = await start(dir);
    expect(await statusWith(app, GOOD)).toBe(200);

    const skipped = populate(dir, '-late');
    fs.writeFileSync(path.join(dir, 'second'), 'second-token-Uu21');
    expect(await eventually(async () => (await statusWith(app, 'second-token-Uu21')) === 200)).toBe(true);
    expect(await statusWith(app, GOOD)).toBe(200);
    expect(await statusWith(app, HUGE_TOKEN)).toBe(401);
    expect(await statusWith(app, NESTED_TOKEN)).toBe(401);
    // Logging is asynchronous: the warning may trail the response that proved the reload.
    for (const name of skipped) await app.waitForLog((l) => l.msg === 'token file skipped' && l.name === name);
    expect(fifoHasNoReader(path.join(dir, 'fifo-late'))).toBe(true);
    expect(app.child.exitCode).toBeNull();
  });

  it('a directory holding only awkward entries fails closed: nothing passes, readiness says why', async () => {
    const dir = newDir();
    populate(dir);
    const app = await start(dir);
    expect(await statusWith(app, HUGE_TOKEN)).toBe(401);
    expect(await statusWith(app, NESTED_TOKEN)).toBe(401);
    const ready = await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
    expect(ready.status).toBe(503);
    expect(ready.text()).toContain('no valid token');
  });
});

describe('symlink loops', () => {
  it('a looping symlink is skipped with a warning; it does not take the other tokens down', async () => {
    const dir = newDir();
    fs.writeFileSync(path.join(dir, 'good'), GOOD);
    fs.symlinkSync('self', path.join(dir, 'self'));
    fs.symlinkSync('pong', path.join(dir, 'ping'));
    fs.symlinkSync('ping', path.join(dir, 'pong'));
    const app = await start(dir);
    expect(await statusWith(app, GOOD)).toBe(200);
    expect((await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness })).status).toBe(200);
    for (const name of ['self', 'ping', 'pong']) expect(skipReason(app, name)).toMatch(/ELOOP|loop/i);

    // The same on a reload: a new token next to a new loop is picked up, the old one kept.
    fs.symlinkSync('loop-late', path.join(dir, 'loop-late'));
    fs.writeFileSync(path.join(dir, 'second'), 'second-token-Uu22');
    expect(await eventually(async () => (await statusWith(app, 'second-token-Uu22')) === 200)).toBe(true);
    expect(await statusWith(app, GOOD)).toBe(200);
  });
});
