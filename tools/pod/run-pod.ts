/**
 * Run a Deployment's pod on this machine as the kubelet would, with the compiled apps as processes:
 * manifest in, processes out. From each container it takes env, args, ports, probes, preStop and
 * volume mounts; volumes become folders (volumes.ts), env is expanded and rewritten (env.ts).
 * A container whose image is not ours runs the local program `images` names for that image, with
 * the container's own command and args, as a kubelet runs an image's ENTRYPOINT and CMD.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { ADDRESSES } from '../../lib/src/contract';
import { APP_NAMES, entryOf, isAppName } from '../apps';
import { ExitStatus, LaunchedApp, spawnApp } from '../launcher';
import { REPO_ROOT } from '../repo-root';
import { START_TIMEOUT_MS } from '../waits';
import { containerEnv, expandVars } from './env';
import { Container, Deployment, PodSpec, PodSpecError } from './manifest';
import { probePasses, probeTarget, runProbe } from './probes';
import { mintProjectedTokens, mountsOf, prepareVolumes, VolumeSources } from './volumes';

/**
 * What stands in locally for an image that is not one of our apps: its ENTRYPOINT and CMD as local
 * command lines (programs on this machine's PATH). As on a kubelet, the container's `command`
 * replaces the entrypoint (and drops the CMD), its `args` replace the CMD.
 */
export interface LocalImage {
  /** The image's ENTRYPOINT. @default none: the container must set `command` */
  readonly entrypoint?: readonly string[];
  /** The image's CMD. @default none */
  readonly cmd?: readonly string[];
}

/** One step of a stop, as the runner did it: when (performance.now()), which container, what. */
export interface PodEvent {
  readonly at: number;
  readonly container: string;
  readonly event: 'preStop start' | 'preStop end' | 'SIGTERM' | 'SIGKILL' | 'exit';
  /** For `preStop end`: what the hook answered (`HTTP 200`, `slept`, or the error). For `exit`: the exit status. */
  readonly detail?: string;
}

export interface RunPodOptions extends VolumeSources {
  /** Compiled entry of a container. @default the app of the container's name (tools/apps.ts entryOf) */
  readonly entryOf?: (containerName: string) => string;
  /** Env the kubelet sets in every container before the manifest's (KUBERNETES_SERVICE_HOST and _PORT of the stand-in API server). @default none */
  readonly kubeletEnv?: Readonly<Record<string, string>>;
  /** Env set on top of the manifest's, by container name: what has to differ on this machine. @default none */
  readonly localEnv?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** How long every readiness probe has to pass. @default START_TIMEOUT_MS (tools/waits.ts) */
  readonly readyTimeoutMs?: number;
  /** Every output line of every container, as it comes. @default dropped (still kept in `lines`) */
  readonly onLine?: (container: string, line: string) => void;
  /** Folder for the volumes. @default a new temp folder, removed by stop() */
  readonly workDir?: string;
  /** Images that are not our apps, by the manifest's image name, and what runs for each. @default none: every container runs the app of its name */
  readonly images?: Readonly<Record<string, LocalImage>>;
}

export interface RunningContainer {
  readonly name: string;
  /** The process, as the launcher runs it. */
  readonly launched: LaunchedApp;
  readonly child: LaunchedApp['child'];
  readonly pid: number;
  /** The env the process got, after mount-path rewriting and $(VAR) expansion. */
  readonly env: Readonly<Record<string, string>>;
  readonly argv: readonly string[];
  /** It runs a program `images` names for its image, not one of our apps: its env is its image's own business. */
  readonly foreign: boolean;
  /** Every stdout/stderr line so far. */
  readonly lines: string[];
  /** Exit code (or signal name) once the process has exited. */
  readonly exited: Promise<ExitStatus>;
}

export type StopMode =
  /** Like the kubelet: preStop hook, then SIGTERM, SIGKILL when terminationGracePeriodSeconds is up. */
  | 'kubelet'
  /** SIGTERM now (no preStop: there are no endpoints to remove locally), SIGKILL at the grace period. */
  | 'sigterm'
  /** SIGKILL now. */
  | 'kill';

export interface RunningPod {
  readonly containers: Readonly<Record<string, RunningContainer>>;
  /** Volume name -> local folder standing in for it. */
  readonly volumes: Readonly<Record<string, string>>;
  readonly workDir: string;
  /** Resolves with the first container that exits on its own (a crash, from the pod's point of view). */
  readonly firstExit: Promise<{ name: string; code: ExitStatus }>;
  /** What stop() did, in order: preStop start and end, signals, exits. */
  readonly events: readonly PodEvent[];
  /** Stop every container and remove the temp folder. Resolves with each exit code. @default mode 'kubelet' */
  stop(mode?: StopMode): Promise<Record<string, ExitStatus>>;
}

function appEntryOf(containerName: string): string {
  if (!isAppName(containerName)) {
    throw new PodSpecError(`container ${containerName}`, `no app for this container name (known: ${APP_NAMES.join(', ')})`);
  }
  return entryOf(containerName);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The command line of a container whose image `images` maps: entrypoint and CMD, overridden by the container's command and args. */
function foreignCommandLine(container: Container, image: LocalImage, env: Readonly<Record<string, string>>): { command: string[]; args: string[] } {
  const command = container.command?.length ? container.command : image.entrypoint;
  if (!command?.length) throw new PodSpecError(`container ${container.name} command`, `image ${container.image} has no local entrypoint; set command`);
  const args = container.args ?? (container.command?.length ? [] : (image.cmd ?? []));
  // The kubelet expands $(VAR) in command and args alike.
  return { command: command.map((a) => expandVars(a, env)), args: args.map((a) => expandVars(a, env)) };
}

function startContainer(container: Container, deployment: Deployment, volumes: Record<string, string>, opts: RunPodOptions): RunningContainer {
  const image = container.image === undefined ? undefined : opts.images?.[container.image];
  if (!image && container.command?.length) {
    throw new PodSpecError(`container ${container.name} command`, "replaces the image's ENTRYPOINT; the local runner runs the compiled app (use args), or a program for an image named in `images`");
  }
  const env = { ...opts.kubeletEnv, ...containerEnv(container, deployment, mountsOf(container, volumes), opts.localEnv?.[container.name]) };
  const foreign = image && foreignCommandLine(container, image, env);
  const entry = foreign ? undefined : (opts.entryOf ?? appEntryOf)(container.name);
  const args = foreign ? foreign.args : (container.args ?? []).map((a) => expandVars(a, env));
  const launched = spawnApp(container.name, {
    // Our images set NODE_ENV=production (see apps/*/Dockerfile); a foreign one gets the manifest's env only.
    ...(foreign ? { command: foreign.command, env } : { entry, env: { NODE_ENV: 'production', ...env } }),
    args,
    cwd: REPO_ROOT,
    // Own process group: a terminal Ctrl-C reaches the runner only, which then stops the pod in order.
    detached: true,
    onLine: (line) => opts.onLine?.(container.name, line),
  });
  return {
    name: container.name,
    launched,
    child: launched.child,
    pid: launched.child.pid ?? -1,
    env,
    argv: [...(foreign ? foreign.command : [entry!]), ...args],
    foreign: Boolean(foreign),
    lines: launched.lines,
    exited: launched.exitStatus,
  };
}

/** Start every container of the Deployment's pod and wait until each readiness probe passes. */
export async function runPod(deployment: Deployment, opts: RunPodOptions = {}): Promise<RunningPod> {
  if (deployment?.kind !== 'Deployment' || !Array.isArray(deployment.spec?.template?.spec?.containers)) {
    throw new Error('runPod needs a Deployment with spec.template.spec.containers');
  }
  const spec = deployment.spec.template.spec;
  const sidecars = nativeSidecarsOf(spec);
  const regular = spec.containers;
  const all = podContainers(spec);
  const ownWorkDir = opts.workDir === undefined;
  const workDir = opts.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-app-pod-'));
  const containers: Record<string, RunningContainer> = {};
  const events: PodEvent[] = [];
  const note = (container: string, event: PodEvent['event'], detail?: string) => events.push({ at: performance.now(), container, event, detail });
  let stopping = false;
  // The children have their own process group; do not leave them behind if this process exits.
  const killAll = () => {
    for (const c of Object.values(containers)) if (c.launched.isRunning()) c.child.kill('SIGKILL');
  };
  process.on('exit', killAll);

  const stop = async (mode: StopMode = 'kubelet'): Promise<Record<string, ExitStatus>> => {
    stopping = true;
    // One grace period for the whole pod, as the kubelet counts it.
    const deadline = Date.now() + (spec.terminationGracePeriodSeconds ?? 30) * 1000;
    const stopOne = async (c: RunningContainer) => {
      const alive = () => c.launched.isRunning();
      const signal = (sig: 'SIGTERM' | 'SIGKILL') => {
        note(c.name, sig);
        c.child.kill(sig);
      };
      const exited = () => c.exited.then((code) => (note(c.name, 'exit', String(code)), code));
      if (mode === 'kill') {
        if (alive()) signal('SIGKILL');
        return [c.name, await exited()] as const;
      }
      const timer = setTimeout(() => alive() && signal('SIGKILL'), Math.max(0, deadline - Date.now()));
      const declared = all.find((s) => s.name === c.name)!;
      if (mode === 'kubelet' && declared.lifecycle?.preStop && alive()) {
        note(c.name, 'preStop start');
        note(c.name, 'preStop end', await runPreStop(declared, Math.max(0, deadline - Date.now())));
      }
      if (alive()) signal('SIGTERM');
      const code = await exited();
      clearTimeout(timer);
      return [c.name, code] as const;
    };
    const started = (list: readonly Container[]) => list.flatMap((s) => (containers[s.name] ? [containers[s.name]] : []));
    // Regular containers all at once; then native sidecars, last started first (KEP-753).
    const results = [...(await Promise.all(started(regular).map(stopOne)))];
    for (const c of started(sidecars).reverse()) results.push(await stopOne(c));
    process.off('exit', killAll);
    if (ownWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
    return Object.fromEntries(results);
  };

  try {
    const identity = {
      namespace: deployment.metadata?.namespace ?? 'default',
      serviceAccount: spec.serviceAccountName ?? 'default',
      podName: `${deployment.metadata?.name ?? 'pod'}-local`,
    };
    const volumes = prepareVolumes(spec, workDir, opts, await mintProjectedTokens(spec, identity, opts.mintServiceAccountToken));
    await assertPortsFree(declaredPorts(all));
    const readyTimeoutMs = opts.readyTimeoutMs ?? START_TIMEOUT_MS;
    // Native sidecars first, one by one, each until its startup probe passes; then the rest, without
    // waiting for each other.
    for (const c of sidecars) {
      containers[c.name] = startContainer(c, deployment, volumes, opts);
      await waitForProbe(c, 'startupProbe', containers[c.name], readyTimeoutMs, () => stopping);
    }
    for (const c of regular) containers[c.name] = startContainer(c, deployment, volumes, opts);
    const firstExit = Promise.race(Object.values(containers).map((c) => c.exited.then((code) => ({ name: c.name, code }))));

    // Every container's outcome, not the first failure: which one fails first is up to the scheduler.
    const ready = await Promise.allSettled(all.map((c) => waitForProbe(c, 'readinessProbe', containers[c.name], readyTimeoutMs, () => stopping)));
    const notReady = ready.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (notReady.length === 1) throw notReady[0];
    if (notReady.length > 1) throw new Error(notReady.map((e) => e.message).join('\n'));
    return { containers, volumes, workDir, firstExit, events, stop };
  } catch (err) {
    await stop('kill');
    throw err;
  }
}

/** Init containers with restartPolicy Always (native sidecars); any other init container is refused. */
function nativeSidecarsOf(spec: PodSpec): Container[] {
  for (const c of spec.initContainers ?? []) {
    if (c.restartPolicy !== 'Always') {
      throw new PodSpecError(`spec.template.spec.initContainers ${c.name}`, 'only native sidecars (restartPolicy: Always) are supported by the local runner');
    }
  }
  return spec.initContainers ?? [];
}

/** Every long-running container of the pod: native sidecars, then the regular ones. */
export function podContainers(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always'), ...spec.containers];
}

/** Port -> the container declaring it. One network namespace: two containers cannot bind the same port. */
function declaredPorts(list: readonly Container[]): Map<number, string> {
  const owners = new Map<number, string>();
  for (const c of list) {
    for (const p of c.ports ?? []) {
      const owner = owners.get(p.containerPort);
      if (owner) throw new PodSpecError(`container ${c.name} port ${p.containerPort}`, `also declared by container ${owner}`);
      owners.set(p.containerPort, c.name);
    }
  }
  return owners;
}

/** Fail early and clearly when a port of the pod is taken, e.g. by another `npm start`. */
async function assertPortsFree(ports: Map<number, string>): Promise<void> {
  for (const [port, container] of ports) {
    await new Promise<void>((resolve, reject) => {
      const probe = net.createServer();
      probe.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} of container ${container} is already in use on ${ADDRESSES.loopback}; is another local pod running?`) : err),
      );
      probe.listen(port, ADDRESSES.loopback, () => probe.close(() => resolve()));
    });
  }
}

/** Run the container's preStop hook, bounded by what is left of the grace period; resolves with what it answered. */
async function runPreStop(container: Container, graceMs: number): Promise<string> {
  const preStop = container.lifecycle?.preStop;
  if (!preStop) return 'none';
  const command = preStop.exec?.command;
  const slept = async (ms: number) => (await sleep(Math.min(ms, graceMs)), 'slept');
  if (preStop.sleep) return slept(preStop.sleep.seconds * 1000);
  if (command && command[0] === 'sleep' && command.length === 2 && /^\d+(\.\d+)?$/.test(command[1])) return slept(Number(command[1]) * 1000);
  if (preStop.httpGet) {
    // A failed hook does not stop the kubelet either: it goes on to SIGTERM.
    return runProbe({ httpGet: preStop.httpGet, timeoutSeconds: graceMs / 1000 }, container, `container ${container.name} preStop`).then(
      (status) => `HTTP ${status}`,
      (err: Error) => err.message,
    );
  }
  throw new PodSpecError(`container ${container.name} lifecycle.preStop`, 'only `sleep N`, sleep and httpGet hooks are supported locally');
}

/** Poll one probe of a container until it passes; no probe passes at once. */
async function waitForProbe(
  c: Container,
  kind: 'startupProbe' | 'readinessProbe',
  running: RunningContainer,
  timeoutMs: number,
  stopped: () => boolean,
): Promise<void> {
  const probe = c[kind];
  if (!probe) return;
  const deadline = Date.now() + timeoutMs;
  const field = `container ${c.name} ${kind}`;
  let last = 'not tried yet';
  for (;;) {
    if (stopped()) return;
    if (!running.launched.isRunning()) {
      throw new Error(`container ${c.name} exited with ${running.child.exitCode ?? running.child.signalCode} before it was ready; output:\n${running.lines.join('\n')}`);
    }
    try {
      const status = await runProbe(probe, c, field);
      if (probePasses(status)) return;
      last = `HTTP ${status}`;
    } catch (err) {
      if (err instanceof PodSpecError) throw err;
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const where = probe.httpGet ? ` (${probeTarget(probe)})` : '';
      throw new Error(`${field}${where} did not pass within ${timeoutMs} ms, last result: ${last}; output:\n${running.lines.slice(-20).join('\n')}`);
    }
    await sleep(100);
  }
}
