/**
 * The pod's containers run as the manifest runs them: detached, --read-only, its user and group,
 * --cap-drop ALL, no-new-privileges, --network host (one network namespace, like a pod's), exactly
 * its env; its Secret volumes written to a temp dir in the kubelet's layout and bind-mounted at
 * their own paths (the env's paths under them rewritten). Started in the pod's order, a native
 * sidecar ready before the next; and the run's logs and cleanup.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Container, LocalMount, containerEnv, mountsOf, prepareVolumes, secretNamesOf } from '../pod';
import { containerState, docker, dockerOk } from './docker';
import { get, sleep } from './http';
import { Plan, fsGroupOf, portOf, securityOf } from './plan';
import { Steps, indent, log } from './steps';

/** Name of the token file in the stand-in tokens Secret; the sidecar reports it as X-Auth-Subject. */
export const TOKEN_NAME = 'test-images';
const READY_TIMEOUT_MS = 60_000;

/** A container this run started. */
export interface Started {
  readonly container: Container;
  /** Docker container name. */
  readonly name: string;
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

/** `docker run` arguments for one container: the manifest's hardening, mounts, env, command and args. */
export function runArgs(plan: Plan, c: Container, name: string, mounts: readonly LocalMount[]): string[] {
  const { deployment } = plan;
  const fsGroup = fsGroupOf(deployment);
  // Paths under a mount (SIDECAR_TOKENS_DIR) are rewritten to the temp dir, which is mounted at its own path.
  const env = containerEnv(c, deployment, mounts);
  const { user, group } = securityOf(deployment, c);
  const readOnly = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath.replace(/\/+$/, ''), m.readOnly === true]));
  return [
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
}

/** What the run step prints: the command, and where each mount went. */
function describeRun(id: string, args: readonly string[], mounts: readonly LocalMount[]): string {
  const shown = args
    .slice(1)
    .map((a) => (/\s/.test(a) ? `'${a}'` : a))
    .join(' ');
  const rewritten = mounts.map((m) => `\n    ${m.mountPath} (manifest) → ${m.dir}`).join('');
  return `${id.slice(0, 12)}: docker ${shown}${rewritten ? `\n    volume mounts rewritten:${rewritten}` : ''}`;
}

export class PodRun {
  /** The containers started so far, in start order. */
  readonly started: Started[] = [];
  /** Docker names of every container created, for cleanup. */
  private readonly created: string[] = [];
  private readonly readyChecked = new Set<string>();
  private workDir: string | undefined;

  constructor(
    private readonly steps: Steps,
    private readonly plan: Plan,
    /** Part of every container name, so parallel runs do not collide. */
    private readonly runId: string,
  ) {}

  /** The Secret volumes in a temp dir, each Secret holding one token: TOKEN_NAME. */
  private prepareVolumes(token: string): Record<string, string> {
    const { deployment } = this.plan;
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'test-images-'));
    this.workDir = workDir;
    fs.chmodSync(workDir, 0o755);
    const secrets = Object.fromEntries(secretNamesOf(deployment).map((name) => [name, { [TOKEN_NAME]: token }]));
    const volumes = prepareVolumes(deployment.spec.template.spec, workDir, { secrets });
    for (const dir of Object.values(volumes)) applyFsGroup(dir, fsGroupOf(deployment));
    fs.chmodSync(path.join(workDir, 'volumes'), 0o755);
    return volumes;
  }

  /** Start every container, one step each; KEP-753: a native sidecar must pass its startup probe before the next starts. */
  async start(token: string): Promise<void> {
    const volumes = this.prepareVolumes(token);
    for (const c of this.plan.containers) {
      const name = `sidecar-app-test-images-${this.runId}-${c.name}`;
      const mounts = mountsOf(c, volumes);
      const args = runArgs(this.plan, c, name, mounts);
      await this.steps.run(`run ${c.name}`, async () => {
        const id = await dockerOk(args, `start container ${c.name}`);
        this.created.push(name);
        this.started.push({ container: c, name });
        return { value: undefined, detail: describeRun(id, args, mounts) };
      });
      if (this.plan.nativeSidecars.has(c.name)) await this.waitReady(this.started.slice(-1));
    }
  }

  /** Each started container's startup or readiness probe until it answers 2xx/3xx; one step each, once. */
  async waitReady(started: readonly Started[] = this.started): Promise<void> {
    for (const s of started) {
      if (this.readyChecked.has(s.name)) continue;
      this.readyChecked.add(s.name);
      const probe = s.container.startupProbe?.httpGet ?? s.container.readinessProbe?.httpGet;
      if (!probe) continue;
      const port = portOf(s.container, probe.port);
      const probePath = probe.path ?? '/';
      const kind = s.container.startupProbe?.httpGet ? 'startup' : 'readiness';
      await this.steps.run(`${s.container.name} is ready (GET :${port}${probePath}, its ${kind} probe)`, () => probeUntilReady(s, port, probePath));
    }
  }

  async printLogs(): Promise<void> {
    for (const { container, name } of this.started) {
      const r = await docker(['logs', name]);
      const text = `${r.stdout}${r.stderr}`.trim();
      log(`\n--- logs of ${container.name} ---`);
      log(text ? indent(text, `[${container.name}] `) : `[${container.name}] (no output)`);
    }
  }

  /** Remove the containers (by the names this run gave them) and the temp dir; safe to call twice. */
  async cleanup(): Promise<void> {
    if (this.created.length) {
      const names = this.created.splice(0);
      const r = await docker(['rm', '--force', ...names]);
      log(`\ncleanup: docker rm --force ${names.join(' ')} → ${r.code === 0 ? 'removed' : `exit ${r.code}: ${r.stderr.trim()}`}`);
    }
    if (this.workDir) {
      fs.rmSync(this.workDir, { recursive: true, force: true });
      log(`cleanup: removed ${this.workDir}`);
      this.workDir = undefined;
    }
  }
}

/** GET the probe every 250 ms for READY_TIMEOUT_MS; a container that exits meanwhile fails at once. */
async function probeUntilReady(s: Started, port: number, probePath: string): Promise<{ value: undefined; detail: string }> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const st = await containerState(s.name);
    if (!st.running) throw new Error(`container ${s.container.name} is ${st.status} (exit code ${st.exitCode}) before it got ready`);
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
}
