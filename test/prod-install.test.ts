/**
 * The images cannot be built here (no Docker daemon), so this test does what their runtime stage does:
 * a production install of each app's own package.json + lockfile into a temp folder, the compiled code
 * copied in with the image's layout, the folder made read-only, the process run as the image's numeric
 * user, and a real request answered 200 through it.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import { builtinModules } from 'module';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import * as http from 'http';
import { DEFAULT_PORTS, MAIN_ENV, NODE_OPTIONS_ENV, RUN_AS } from '../lib/src/contract';
import { AppName, REPO_ROOT, RunningApp, entryOf, startApp, localSidecarEnv } from './support/apps';
import { TOOL_TEST_TIMEOUT_MS, TOOL_TIMEOUT_MS } from '../tools/waits';

const execFileAsync = promisify(execFile);
const APPS: AppName[] = ['main', 'sidecar'];
/** Entry relative to the image's WORKDIR, as in the Dockerfiles' ENTRYPOINT. */
const entryRel = (app: AppName) => path.relative(REPO_ROOT, entryOf(app));
/** The image tag the manifests expect (SidecarApp's default images). */
const libVersion = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'lib', 'package.json'), 'utf8')) as { version: string }).version;
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

const rootPkg = readJson(path.join(REPO_ROOT, 'package.json'));
const rootLock = readJson(path.join(REPO_ROOT, 'package-lock.json'));

function compiledFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => path.join(e.parentPath, e.name));
}

describe.each(APPS)('apps/%s packaging', (app) => {
  const dir = path.join(REPO_ROOT, 'apps', app);
  const pkg = readJson(path.join(dir, 'package.json'));
  const lock = readJson(path.join(dir, 'package-lock.json'));

  test('package.json has runtime dependencies only, with the same ranges as the repo', () => {
    expect(pkg.private).toBe(true);
    expect(pkg.devDependencies).toBeUndefined();
    expect(Object.keys(pkg.dependencies).length).toBeGreaterThan(0);
    for (const [name, range] of Object.entries(pkg.dependencies)) {
      expect({ name, range }).toEqual({ name, range: rootPkg.dependencies[name] });
    }
  });

  test('package-lock.json is in sync and pins exactly the versions of the repo lockfile', () => {
    expect(lock.packages[''].dependencies).toEqual(pkg.dependencies);
    const drift = Object.entries(lock.packages as Record<string, { version: string }>)
      .filter(([key]) => key !== '')
      .filter(([key, entry]) => rootLock.packages[key]?.version !== entry.version)
      .map(([key, entry]) => `${key}: app ${entry.version}, repo ${rootLock.packages[key]?.version ?? 'absent'}`);
    expect(drift).toEqual([]);
  });

  test('every package the compiled app requires is a declared dependency', () => {
    const srcDir = path.join(REPO_ROOT, 'build', 'apps', app, 'src');
    if (!fs.existsSync(srcDir)) throw new Error(`${srcDir} is missing: run \`npm run build\` first`);
    const required = new Set<string>();
    for (const file of compiledFiles(srcDir)) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/require\("([^"]+)"\)/g)) {
        const spec = m[1];
        if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        required.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
      }
    }
    expect([...required].filter((name) => !(name in pkg.dependencies))).toEqual([]);
  });

  test('Dockerfile: multi-stage, production install, numeric non-root user, contract ports, compiled entry', () => {
    const dockerfile = fs.readFileSync(path.join(dir, 'Dockerfile'), 'utf8');
    const lines = dockerfile.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(lines.filter((l) => /^FROM /.test(l)).length).toBeGreaterThanOrEqual(2);
    const runtime = lines.slice(lines.findIndex((l) => /^FROM .* AS runtime$/i.test(l)));
    expect(runtime.length).toBeGreaterThan(1);
    expect(runtime).toContain(`COPY apps/${app}/package.json apps/${app}/package-lock.json ./`);
    expect(runtime.some((l) => /^RUN npm ci --omit=dev\b/.test(l))).toBe(true);
    expect(runtime).toContain('COPY --from=build /src/build/lib/src/contract/ build/lib/src/contract/');
    expect(runtime).toContain(`COPY --from=build /src/build/apps/${app}/src/ build/apps/${app}/src/`);
    expect(RUN_AS.user).toBeGreaterThanOrEqual(10_000);
    expect(runtime).toContain(`USER ${RUN_AS.user}:${RUN_AS.group}`);
    const ports = app === 'main' ? [DEFAULT_PORTS.main] : [DEFAULT_PORTS.sidecar, DEFAULT_PORTS.admin];
    expect(runtime).toContain(`EXPOSE ${ports.join(' ')}`);
    expect(runtime[runtime.length - 1]).toBe(`ENTRYPOINT ["node", "${entryRel(app)}"]`);
  });

  test('Dockerfile: builds anywhere — the base image is a build argument of both stages, no BuildKit frontend to pull', () => {
    const dockerfile = fs.readFileSync(path.join(dir, 'Dockerfile'), 'utf8');
    expect(dockerfile).not.toMatch(/^#\s*syntax=/m);
    const lines = dockerfile.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('ARG BASE_IMAGE=node:24-bookworm-slim');
    expect(lines.filter((l) => /^FROM /.test(l))).toEqual(['FROM ${BASE_IMAGE} AS build', 'FROM ${BASE_IMAGE} AS runtime']);
    // The header shows the tag the manifests expect, never :latest.
    expect(dockerfile).not.toMatch(/:latest\b/);
    expect(dockerfile).toContain(`sidecar-app-${app}:${libVersion}`);
  });
});

// Loaded with NODE_OPTIONS=--require before the entry: become the image's USER, as the runtime would.
const DROP_PRIVILEGES = `if (process.getuid && process.getuid() === 0) {
  process.setgroups([]);
  process.setgid(${RUN_AS.group});
  process.setuid(${RUN_AS.user});
}
`;

function get(port: number, urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** path -> size and mtime of every file and folder below dir. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = path.join(e.parentPath, e.name);
    const st = fs.lstatSync(p);
    out[path.relative(dir, p)] = `${st.size}:${st.mtimeMs}`;
  }
  return out;
}

describe('production install of each app', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prod-install-'));
  const appDir = (app: AppName) => path.join(work, app);
  const preload = path.join(work, 'drop-privileges.js');
  const running: RunningApp[] = [];

  // One install per app, in parallel; each test awaits only the app it needs.
  let installs: Record<AppName, Promise<void>>;
  const install = async (app: AppName) => {
    const dir = appDir(app);
    fs.mkdirSync(dir, { mode: 0o755 });
    for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(REPO_ROOT, 'apps', app, f), path.join(dir, f));
    // Offline from the npm cache that the repo's own `npm ci` filled: the lockfiles pin the same versions.
    await execFileAsync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, timeout: TOOL_TIMEOUT_MS });
    for (const sub of ['build/lib/src/contract', `build/apps/${app}/src`]) {
      if (!fs.existsSync(path.join(REPO_ROOT, sub))) throw new Error(`${sub} is missing: run \`npm run build\` first`);
      fs.cpSync(path.join(REPO_ROOT, sub), path.join(dir, sub), { recursive: true });
    }
    // The image's root filesystem is read-only.
    await execFileAsync('chmod', ['-R', 'a-w', dir]);
  };
  const installed = async (...apps: AppName[]) => {
    for (const app of apps) await installs[app];
  };

  beforeAll(() => {
    // mkdtemp makes 0700; the unprivileged app user must be able to enter it.
    fs.chmodSync(work, 0o755);
    fs.writeFileSync(preload, DROP_PRIVILEGES, { mode: 0o644 });
    installs = { main: install('main'), sidecar: install('sidecar') };
    // Reported by the tests that await them; keep Node from calling them unhandled meanwhile.
    for (const p of Object.values(installs)) p.catch(() => undefined);
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop('SIGKILL')));
  });

  afterAll(async () => {
    await Promise.allSettled(Object.values(installs));
    await execFileAsync('chmod', ['-R', 'u+w', work]);
    fs.rmSync(work, { recursive: true, force: true });
  });

  const start = async (app: AppName, env: Record<string, string>) => {
    const r = await startApp(app, { entry: path.join(appDir(app), entryRel(app)), cwd: appDir(app), env: { NODE_ENV: 'production', [NODE_OPTIONS_ENV]: `--require ${preload}`, ...env } });
    running.push(r);
    return r;
  };
  const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

  // The first test of each app waits for its `npm ci`.
  const INSTALL_TIMEOUT_MS = TOOL_TEST_TIMEOUT_MS;

  test.each(APPS)('%s: no dev dependencies are installed', async (app) => {
    await installed(app);
    const modules = path.join(appDir(app), 'node_modules');
    expect(fs.existsSync(path.join(modules, 'express'))).toBe(true);
    for (const dev of ['jest', 'typescript', 'ts-jest', 'tsx', '@types/jest', '@types/express', 'cdk8s', 'cdk8s-cli', 'autocannon', 'ws']) {
      expect({ dev, installed: fs.existsSync(path.join(modules, dev)) }).toEqual({ dev, installed: false });
    }
  }, INSTALL_TIMEOUT_MS);

  test('main: the production install serves GET / as the unprivileged user from a read-only folder', async () => {
    await installed('main');
    const before = snapshot(appDir('main'));
    const main = await start('main', { [MAIN_ENV.port]: '0', [MAIN_ENV.host]: '127.0.0.1' });
    if (process.getuid?.() === 0) expect(uidOf(main.child.pid!)).toBe(RUN_AS.user);
    const res = await get(main.port, '/');
    expect(res).toEqual({ status: 200, body: 'Welcome to the Main Service!' });
    expect(snapshot(appDir('main'))).toEqual(before);
  }, INSTALL_TIMEOUT_MS);

  test('sidecar: the production install forwards an authenticated request to the main service', async () => {
    await installed('main', 'sidecar');
    const tokens = fs.mkdtempSync(path.join(work, 'tokens-'));
    fs.chmodSync(tokens, 0o755);
    const token = 'prod-install-test-token-0123456789';
    fs.writeFileSync(path.join(tokens, 'ci'), `${token}\n`, { mode: 0o644 });
    const before = snapshot(appDir('sidecar'));

    const main = await start('main', { [MAIN_ENV.port]: '0', [MAIN_ENV.host]: '127.0.0.1' });
    const sidecar = await start('sidecar', {
      ...localSidecarEnv(`http://127.0.0.1:${main.port}`, tokens),
    });
    if (process.getuid?.() === 0) expect(uidOf(sidecar.child.pid!)).toBe(RUN_AS.user);
    expect(await get(sidecar.port, '/', { Authorization: `Bearer ${token}` })).toEqual({ status: 200, body: 'Welcome to the Main Service!' });
    expect((await get(sidecar.port, '/')).status).toBe(401);
    expect(snapshot(appDir('sidecar'))).toEqual(before);
  }, INSTALL_TIMEOUT_MS);
});
