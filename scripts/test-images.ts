/**
 * `npm run test:images`: build both images and run them the way the synthesized manifest runs them.
 *
 * Needs a Docker daemon on this machine (`docker info` must answer; DOCKER_HOST is honoured). Not part
 * of `npm test`. Steps:
 *   1. synthesize the default chart in memory (main.ts buildApp → synthYaml), take the Deployment;
 *   2. build apps/main and apps/sidecar with the legacy builder (DOCKER_BUILDKIT=0, --network host),
 *      tagged as the manifest's images (sidecar-app-<app>:<lib version>);
 *   3. run both with --read-only --user <runAsUser>:<runAsGroup> --cap-drop ALL
 *      --security-opt no-new-privileges --network host and each container's env from the manifest;
 *      the tokens Secret is a temp dir in the kubelet layout, bind-mounted read-only, and
 *      SIDECAR_TOKENS_DIR is rewritten to it;
 *   4. check 401 without a token, 200 + WELCOME_TEXT with one, /readyz 200 on the admin port;
 *   5. stop as the kubelet does: each preStop hook, then SIGTERM; every container must exit 0 within
 *      the manifest's terminationGracePeriodSeconds.
 * Prints every step and a PASS/FAIL summary; exits 1 on any failure. Removes its containers and temp dir.
 *
 * Environment:
 *   BASE_IMAGE            passed as --build-arg BASE_IMAGE (default: the Dockerfiles' node:20-bookworm-slim)
 *   TEST_IMAGES_VERBOSE=1 stream the whole docker build output
 *   SIDECAR_APP_SIDECAR_MODE synthesize with that sidecar mode (e.g. native) instead of the default
 * See docs/images.md.
 */
import { spawn } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { WELCOME_TEXT } from '../apps/main/src/app';
import { ADDRESSES, CONTAINER_NAMES, SIDECAR_ENV } from '../lib/src/contract';
import { MODE_ENV, buildApp } from '../main';
import { Container, Deployment, HttpGetAction, containerEnv, findDeployment, mountsOf, podContainers, prepareVolumes, secretNamesOf } from '../tools/pod';
import { REPO_ROOT } from '../tools/repo-root';

/** Name of the token file in the stand-in tokens Secret; the sidecar reports it as X-Auth-Subject. */
const TOKEN_NAME = 'test-images';
const READY_TIMEOUT_MS = 60_000;
const HTTP_TIMEOUT_MS = 5_000;
const VERBOSE = process.env.TEST_IMAGES_VERBOSE === '1';
const RUN_ID = `${process.pid}-${randomBytes(3).toString('hex')}`;

// ---------------------------------------------------------------------------------------------------
// Reporting

interface Result {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}
const results: Result[] = [];

class StepFailed extends Error {}

function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function indent(text: string, prefix = '    '): string {
  return text
    .replace(/\s+$/, '')
    .split('\n')
    .map((l) => `${prefix}${l}`)
    .join('\n');
}

/** Run one step: print its name, then ok/FAIL with a detail. A failed step stops the run (cleanup still runs). */
async function step<T>(name: string, fn: () => Promise<{ value: T; detail: string }>): Promise<T> {
  log(`\n==> ${name}`);
  const began = Date.now();
  try {
    const { value, detail } = await fn();
    const secs = ((Date.now() - began) / 1000).toFixed(1);
    results.push({ name, ok: true, detail });
    log(`    ok   ${detail} (${secs}s)`);
    return value;
  } catch (err) {
    const detail = (err as Error).message;
    results.push({ name, ok: false, detail });
    log(indent(`FAIL ${detail}`));
    throw new StepFailed(detail);
  }
}

// ---------------------------------------------------------------------------------------------------
// docker CLI

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run the docker CLI (inherits DOCKER_HOST and the rest of the environment). */
function docker(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; onLine?: (line: string) => void; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('docker', args, { cwd: REPO_ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const onData = (chunk: Buffer, isErr: boolean) => {
      const text = chunk.toString('utf8');
      if (isErr) stderr += text;
      else stdout += text;
      if (opts.onLine) {
        partial += text;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) opts.onLine(l);
      }
    };
    child.stdout.on('data', (c: Buffer) => onData(c, false));
    child.stderr.on('data', (c: Buffer) => onData(c, true));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` });
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (opts.onLine && partial) opts.onLine(partial);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

async function dockerOk(args: readonly string[], what: string): Promise<string> {
  const r = await docker(args);
  if (r.code !== 0) throw new Error(`${what}: docker ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout.trim();
}

// ---------------------------------------------------------------------------------------------------
// HTTP

interface Reply {
  readonly status: number;
  readonly body: string;
}

function get(port: number, urlPath: string, headers: Record<string, string> = {}, timeoutMs = HTTP_TIMEOUT_MS): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: ADDRESSES.loopback, port, path: urlPath, headers: { connection: 'close', ...headers }, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Port number of an httpGet action: a number, or the name of one of the container's ports. */
function portOf(container: Container, port: number | string): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const found = (container.ports ?? []).find((p) => p.name === port);
  if (!found) throw new Error(`container ${container.name}: no port named ${port}`);
  return found.containerPort;
}

/** Whether a port is free on this machine (the containers share the host's network). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: ADDRESSES.all, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

// ---------------------------------------------------------------------------------------------------
// The run

interface Plan {
  readonly deployment: Deployment;
  /** Native sidecars first, then the regular containers (podContainers' order). */
  readonly containers: readonly Container[];
  readonly nativeSidecars: ReadonlySet<string>;
  readonly grace: number;
  readonly version: string;
}

interface Started {
  readonly container: Container;
  /** Docker container name. */
  readonly name: string;
}

const created: string[] = [];
let workDir: string | undefined;

function dockerfileOf(container: Container): string {
  const file = path.join('apps', container.name, 'Dockerfile');
  if (!fs.existsSync(path.join(REPO_ROOT, file))) throw new Error(`container ${container.name}: no ${file} to build its image from`);
  return file;
}

function securityOf(deployment: Deployment, container: Container): { user: number; group: number } {
  type Sc = { runAsUser?: number; runAsGroup?: number };
  const pod = (deployment.spec.template.spec as { securityContext?: Sc }).securityContext ?? {};
  const own = (container as { securityContext?: Sc }).securityContext ?? {};
  const user = own.runAsUser ?? pod.runAsUser;
  const group = own.runAsGroup ?? pod.runAsGroup;
  if (user === undefined || group === undefined) throw new Error(`container ${container.name}: the manifest sets no runAsUser/runAsGroup`);
  return { user, group };
}

function fsGroupOf(deployment: Deployment): number | undefined {
  return (deployment.spec.template.spec as { securityContext?: { fsGroup?: number } }).securityContext?.fsGroup;
}

/** What the kubelet's fsGroup does to a Secret volume: group-own it so the app user can read it. */
function applyFsGroup(dir: string, gid: number | undefined): void {
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    try {
      if (gid !== undefined) fs.chownSync(p, st.uid, gid);
    } catch {
      // Not root: make it readable by everyone instead.
      fs.chmodSync(p, st.mode | (st.isDirectory() ? 0o005 : 0o004));
    }
    if (st.isDirectory()) {
      fs.chmodSync(p, (st.mode & 0o7777) | 0o055);
      for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    }
  };
  walk(dir);
}

async function synthesize(): Promise<Plan> {
  return step('synthesize the default chart (main.ts buildApp → synthYaml)', async () => {
    // The default chart, whatever SIDECAR_APP_*_IMAGE this shell has set; only the sidecar mode is taken from it.
    const mode = process.env[MODE_ENV];
    const docs = parseAllDocuments(buildApp({ outdir: undefined, env: mode ? { [MODE_ENV]: mode } : {} }).synthYaml()).map((d) => d.toJS() as unknown);
    const deployment = findDeployment(docs);
    const spec = deployment.spec.template.spec;
    const containers = podContainers(spec);
    const nativeSidecars = new Set((spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
    const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'lib', 'package.json'), 'utf8')) as { version: string }).version;
    for (const c of containers) {
      const expected = `sidecar-app-${c.name}:${version}`;
      if (c.image !== expected) throw new Error(`container ${c.name} runs image ${c.image ?? '(none)'}, expected ${expected} (lib/package.json version)`);
    }
    for (const name of Object.values(CONTAINER_NAMES)) {
      if (!containers.some((c) => c.name === name)) throw new Error(`the Deployment has no container ${name}`);
    }
    const grace = spec.terminationGracePeriodSeconds ?? 30;
    const list = containers.map((c) => `${c.name}=${c.image}${nativeSidecars.has(c.name) ? ' (native sidecar)' : ''}`).join(', ');
    return { value: { deployment, containers, nativeSidecars, grace, version }, detail: `${mode ? `${MODE_ENV}=${mode}: ` : ''}Deployment ${deployment.metadata?.name ?? ''}: ${list}; terminationGracePeriodSeconds ${grace}` };
  });
}

async function checkDocker(): Promise<void> {
  await step(`docker daemon answers (DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset: the default socket'})`, async () => {
    const r = await docker(['info', '--format', '{{.ServerVersion}} {{.OperatingSystem}} storage={{.Driver}}'], { timeoutMs: 30_000 });
    if (r.code !== 0) {
      throw new Error(
        `\`docker info\` failed, so there is no daemon to build and run the images with:\n${indent((r.stderr || r.stdout).trim(), '      ')}\n` +
          '    Start one (or point DOCKER_HOST at one); docs/images.md shows how on a machine without systemd.',
      );
    }
    return { value: undefined, detail: `server ${r.stdout.trim()}` };
  });
}

async function build(plan: Plan): Promise<void> {
  const base = process.env.BASE_IMAGE;
  await step(`base image ${base ?? 'node:20-bookworm-slim (the Dockerfiles\' default)'} is present`, async () => {
    const ref = base ?? 'node:20-bookworm-slim';
    const r = await docker(['image', 'inspect', '--format', '{{.Id}} {{.Comment}}', ref]);
    if (r.code === 0) {
      const [id, ...comment] = r.stdout.trim().split(' ');
      return { value: undefined, detail: `${ref} ${id.slice(0, 19)}${comment.length ? ` (${comment.join(' ')})` : ''}` };
    }
    return { value: undefined, detail: `${ref} is not here yet: docker build will pull it (offline: scripts/images/stand-in-base.sh builds a stand-in)` };
  });
  for (const c of plan.containers) {
    const file = dockerfileOf(c);
    const args = ['build', '--network', 'host', '-f', file, '-t', c.image!, ...(base ? ['--build-arg', `BASE_IMAGE=${base}`] : []), '.'];
    await step(`build ${c.image} (DOCKER_BUILDKIT=0 docker ${args.join(' ')})`, async () => {
      const r = await docker(args, {
        env: { DOCKER_BUILDKIT: '0' },
        // The Dockerfile's steps are the progress report; everything else only with TEST_IMAGES_VERBOSE=1.
        onLine: (line) => {
          if (VERBOSE || /^Step \d+\/\d+ :/.test(line)) log(`    | ${line}`);
        },
      });
      if (r.code !== 0) {
        const lines = `${r.stdout}\n${r.stderr}`.trim().split('\n');
        const firstError = lines.find((l) => /\berror\b|ERR!/i.test(l))?.trim();
        throw new Error(`docker build exited ${r.code}${firstError ? `: ${firstError}` : ''}; last lines:\n${indent(lines.slice(-40).join('\n'), '    | ')}`);
      }
      const info = await dockerOk(['image', 'inspect', '--format', '{{.Id}} {{.Size}} {{.Config.User}}', c.image!], 'inspect the image');
      const [id, size, user] = info.split(' ');
      return { value: undefined, detail: `${c.image} ${id.slice(0, 19)}, ${(Number(size) / 1e6).toFixed(0)} MB, USER ${user || '(none)'}` };
    });
  }
}

async function checkPorts(plan: Plan): Promise<void> {
  const ports = plan.containers.flatMap((c) => (c.ports ?? []).map((p) => ({ port: p.containerPort, container: c.name })));
  await step(`ports ${ports.map((p) => p.port).join(', ')} are free (the containers use --network host)`, async () => {
    const busy: string[] = [];
    for (const { port, container } of ports) if (!(await portFree(port))) busy.push(`${port} (${container})`);
    if (busy.length) {
      throw new Error(
        `port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} already in use on this machine. The containers share the host's network ` +
          '(--network host: there is no bridge here), so they need these ports; stop what listens there (an `npm start`? `ss -ltnp`) and run again.',
      );
    }
    return { value: undefined, detail: 'none in use' };
  });
}

async function start(plan: Plan, token: string): Promise<Started[]> {
  const { deployment } = plan;
  const spec = deployment.spec.template.spec;
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'test-images-'));
  fs.chmodSync(workDir, 0o755);
  const secrets = Object.fromEntries(secretNamesOf(deployment).map((name) => [name, { [TOKEN_NAME]: token }]));
  const volumes = prepareVolumes(spec, workDir, { secrets });
  const fsGroup = fsGroupOf(deployment);
  for (const dir of Object.values(volumes)) applyFsGroup(dir, fsGroup);
  fs.chmodSync(path.join(workDir, 'volumes'), 0o755);

  const started: Started[] = [];
  for (const c of plan.containers) {
    const name = `sidecar-app-test-images-${RUN_ID}-${c.name}`;
    const mounts = mountsOf(c, volumes);
    // Paths under a mount (SIDECAR_TOKENS_DIR) are rewritten to the temp dir, which is mounted at its own path.
    const env = containerEnv(c, deployment, mounts);
    const { user, group } = securityOf(deployment, c);
    const readOnly = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath.replace(/\/+$/, ''), m.readOnly === true]));
    const args = [
      'run', '--detach', '--name', name,
      '--network', 'host',
      '--read-only',
      '--user', `${user}:${group}`,
      ...(fsGroup !== undefined && fsGroup !== group ? ['--group-add', String(fsGroup)] : []),
      '--cap-drop', 'ALL',
      '--security-opt', 'no-new-privileges',
      ...mounts.flatMap((m) => ['--volume', `${m.dir}:${m.dir}${readOnly.get(m.mountPath) ? ':ro' : ''}`]),
      ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      ...(c.command ? ['--entrypoint', c.command[0]] : []),
      c.image!,
      ...(c.command ? c.command.slice(1) : []),
      ...(c.args ?? []),
    ];
    await step(`run ${c.name}`, async () => {
      const id = await dockerOk(args, `start container ${c.name}`);
      created.push(name);
      started.push({ container: c, name });
      const shown = args
        .slice(1)
        .map((a) => (/\s/.test(a) ? `'${a}'` : a))
        .join(' ');
      const rewritten = mounts.map((m) => `\n    ${m.mountPath} (manifest) → ${m.dir}`).join('');
      return { value: undefined, detail: `${id.slice(0, 12)}: docker ${shown}${rewritten ? `\n    volume mounts rewritten:${rewritten}` : ''}` };
    });
    // KEP-753: a native sidecar must pass its startup probe before the next container starts.
    if (plan.nativeSidecars.has(c.name)) await waitReady(started.slice(-1));
  }
  return started;
}

async function state(name: string): Promise<{ running: boolean; exitCode: number; status: string }> {
  const out = await dockerOk(['inspect', '--format', '{{.State.Running}} {{.State.ExitCode}} {{.State.Status}}', name], `inspect ${name}`);
  const [running, exitCode, status] = out.split(' ');
  return { running: running === 'true', exitCode: Number(exitCode), status };
}

const readyChecked = new Set<string>();

async function waitReady(started: readonly Started[]): Promise<void> {
  for (const { container, name } of started) {
    if (readyChecked.has(name)) continue;
    readyChecked.add(name);
    const probe = container.startupProbe?.httpGet ?? container.readinessProbe?.httpGet;
    if (!probe) continue;
    const port = portOf(container, probe.port);
    const probePath = probe.path ?? '/';
    await step(`${container.name} is ready (GET :${port}${probePath}, its ${container.startupProbe?.httpGet ? 'startup' : 'readiness'} probe)`, async () => {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      let last = 'no answer yet';
      while (Date.now() < deadline) {
        const s = await state(name);
        if (!s.running) throw new Error(`container ${container.name} is ${s.status} (exit code ${s.exitCode}) before it got ready`);
        try {
          const r = await get(port, probePath);
          if (r.status >= 200 && r.status < 400) return { value: undefined, detail: `${r.status} ${r.body.trim().slice(0, 60)}` };
          last = `${r.status} ${r.body.trim().slice(0, 200)}`;
        } catch (err) {
          last = (err as Error).message;
        }
        await sleep(250);
      }
      throw new Error(`not ready within ${READY_TIMEOUT_MS / 1000} s; last answer: ${last}`);
    });
  }
}

async function checkRequests(plan: Plan, token: string): Promise<void> {
  const sidecar = plan.containers.find((c) => c.name === CONTAINER_NAMES.sidecar)!;
  const envOf = (n: string) => (sidecar.env ?? []).find((e) => e.name === n)?.value;
  const port = Number(envOf(SIDECAR_ENV.port));
  const adminPort = Number(envOf(SIDECAR_ENV.adminPort));
  if (!port || !adminPort) throw new Error(`the sidecar's env sets no ${SIDECAR_ENV.port}/${SIDECAR_ENV.adminPort}`);

  await step(`GET :${port}/ without a token → 401`, async () => {
    const r = await get(port, '/');
    if (r.status !== 401) throw new Error(`got ${r.status} ${r.body.slice(0, 200)}`);
    return { value: undefined, detail: `401 ${r.body.trim().slice(0, 60)}` };
  });
  await step(`GET :${port}/ with a token → 200 "${WELCOME_TEXT}" (forwarded to main at ${envOf(SIDECAR_ENV.upstream) ?? '?'})`, async () => {
    const r = await get(port, '/', { authorization: `Bearer ${token}` });
    if (r.status !== 200 || r.body !== WELCOME_TEXT) throw new Error(`got ${r.status} ${JSON.stringify(r.body.slice(0, 200))}`);
    return { value: undefined, detail: `200 ${JSON.stringify(r.body)}` };
  });
  await step(`GET :${adminPort}/readyz on the admin port → 200`, async () => {
    const r = await get(adminPort, '/readyz');
    if (r.status !== 200) throw new Error(`got ${r.status} ${r.body.slice(0, 200)}`);
    return { value: undefined, detail: `200 ${r.body.trim().slice(0, 60)}` };
  });
}

/**
 * Run a preStop hook as the kubelet would: exec in the container, GET against the pod, or sleep; bounded
 * by what is left of the grace period. Never throws: the kubelet sends SIGTERM after a failed hook too.
 */
async function runPreStop(s: Started, deadline: number): Promise<{ done: string; error?: string }> {
  const hook = s.container.lifecycle?.preStop;
  const left = () => Math.max(1, deadline - Date.now());
  if (!hook) return { done: 'no preStop' };
  if (hook.exec?.command?.length) {
    const what = `preStop exec ${hook.exec.command.join(' ')}`;
    const r = await docker(['exec', s.name, ...hook.exec.command], { timeoutMs: left() });
    return r.code === 0 ? { done: what } : { done: what, error: `${s.container.name} ${what} exited ${r.code}: ${(r.stderr || r.stdout).trim()}` };
  }
  if (hook.httpGet) {
    const action: HttpGetAction = hook.httpGet;
    const what = `preStop GET :${portOf(s.container, action.port)}${action.path ?? '/'}`;
    try {
      const r = await get(portOf(s.container, action.port), action.path ?? '/', {}, left());
      const ok = r.status >= 200 && r.status < 400;
      return ok ? { done: `${what} → ${r.status} ${r.body.trim().slice(0, 60)}` } : { done: what, error: `${s.container.name} ${what} answered ${r.status} ${r.body.slice(0, 200)}` };
    } catch (err) {
      return { done: what, error: `${s.container.name} ${what}: ${(err as Error).message}` };
    }
  }
  if (hook.sleep) {
    await sleep(Math.min(hook.sleep.seconds * 1000, left()));
    return { done: `preStop sleep ${hook.sleep.seconds}s` };
  }
  return { done: 'preStop of an unknown kind skipped' };
}

/** Wait until the container exits or the deadline passes; SIGKILL it then, as the kubelet does. */
async function waitExit(s: Started, deadline: number): Promise<{ exitCode: number; killed: boolean }> {
  while (Date.now() < deadline) {
    const st = await state(s.name);
    if (!st.running) return { exitCode: st.exitCode, killed: false };
    await sleep(100);
  }
  await docker(['kill', s.name]);
  const st = await state(s.name);
  return { exitCode: st.exitCode, killed: true };
}

async function shutdown(plan: Plan, started: readonly Started[]): Promise<void> {
  await step(`stop the pod as the kubelet does: preStop hooks, then SIGTERM; all must exit 0 within ${plan.grace} s (terminationGracePeriodSeconds)`, async () => {
    const began = Date.now();
    const deadline = began + plan.grace * 1000;
    const at = () => `${((Date.now() - began) / 1000).toFixed(1)}s`;
    const stopOne = async (s: Started): Promise<string> => {
      const hook = await runPreStop(s, deadline);
      log(`    ${at()}  ${s.container.name}: ${hook.done}${hook.error ? ` FAILED (${hook.error})` : ' done'}; docker kill --signal TERM`);
      await dockerOk(['kill', '--signal', 'TERM', s.name], `SIGTERM ${s.container.name}`);
      const { exitCode, killed } = await waitExit(s, deadline);
      log(`    ${at()}  ${s.container.name}: exited ${exitCode}${killed ? ' (SIGKILLed at the end of the grace period)' : ''}`);
      if (hook.error) throw new Error(hook.error);
      if (killed) throw new Error(`${s.container.name} did not exit within ${plan.grace} s of the preStop hook; SIGKILLed (exit ${exitCode})`);
      if (exitCode !== 0) throw new Error(`${s.container.name} exited ${exitCode}, not 0`);
      return `${s.container.name} 0 at ${at()}`;
    };
    // Regular containers first, in parallel; native sidecars once they have all exited (reverse start order).
    const regular = started.filter((s) => !plan.nativeSidecars.has(s.container.name));
    const sidecars = started.filter((s) => plan.nativeSidecars.has(s.container.name)).reverse();
    const settled = await Promise.allSettled(regular.map(stopOne));
    for (const s of sidecars) settled.push(...(await Promise.allSettled([stopOne(s)])));
    const failures = settled.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    if (failures.length) throw new Error(failures.join('; '));
    return { value: undefined, detail: `exit codes: ${settled.map((r) => (r as PromiseFulfilledResult<string>).value).join(', ')}` };
  });
}

async function printLogs(started: readonly Started[]): Promise<void> {
  for (const { container, name } of started) {
    const r = await docker(['logs', name]);
    const text = `${r.stdout}${r.stderr}`.trim();
    log(`\n--- logs of ${container.name} ---`);
    log(text ? indent(text, `[${container.name}] `) : `[${container.name}] (no output)`);
  }
}

async function cleanup(): Promise<void> {
  if (created.length) {
    const names = created.splice(0);
    const r = await docker(['rm', '--force', ...names]);
    log(`\ncleanup: docker rm --force ${names.join(' ')} → ${r.code === 0 ? 'removed' : `exit ${r.code}: ${r.stderr.trim()}`}`);
  }
  if (workDir) {
    fs.rmSync(workDir, { recursive: true, force: true });
    log(`cleanup: removed ${workDir}`);
    workDir = undefined;
  }
}

function summary(): number {
  const failed = results.filter((r) => !r.ok);
  log('\n==== test:images summary ====');
  for (const r of results) log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name}${r.ok ? '' : `\n      ${r.detail.split('\n')[0]}`}`);
  log(failed.length ? `\nFAIL: ${failed.length} of ${results.length} steps failed` : `\nPASS: all ${results.length} steps passed`);
  return failed.length ? 1 : 0;
}

async function main(): Promise<number> {
  log(`test:images: build the images and run them as the synthesized manifest runs them (repo ${REPO_ROOT})`);
  let started: Started[] = [];
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`\n${sig}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const plan = await synthesize();
    await checkDocker();
    // Before the builds, so a busy port fails in a second, not after a minute of npm ci.
    await checkPorts(plan);
    await build(plan);
    const token = randomBytes(24).toString('base64url');
    started = await start(plan, token);
    try {
      await waitReady(started);
      await checkRequests(plan, token);
    } finally {
      // Stop it even when a check failed, so the logs show the whole life of the containers.
      if (started.length === plan.containers.length) await shutdown(plan, started).catch(() => undefined);
    }
  } catch (err) {
    if (!(err instanceof StepFailed)) {
      results.push({ name: 'unexpected error', ok: false, detail: (err as Error).stack ?? String(err) });
      log(`\nFAIL unexpected error: ${(err as Error).stack ?? String(err)}`);
    }
  } finally {
    if (started.length) await printLogs(started);
    await cleanup();
  }
  return summary();
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
