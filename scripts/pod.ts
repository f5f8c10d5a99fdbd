/**
 * Run a synthesized Deployment's pod locally, as the kubelet would, with the compiled apps as processes.
 *
 * Used by `npm start` (scripts/local-pod.ts) and by the e2e test, so what users try locally is exactly
 * what the manifest describes. From each container it takes env, args, ports, probes and volume mounts.
 * Volumes become temp folders (a Secret gets the kubelet's `..data` symlink layout) and env values under
 * a mount path are rewritten to the folder, as the container's filesystem would show them.
 *
 * The one deliberate difference: every process binds 127.0.0.1 (the contract's *_HOST variables are
 * set to it), because the pod's network namespace here is the developer's machine.
 *
 * Knows nothing of cdk8s: it reads plain manifest objects, as parsed from the YAML.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { CONTAINER_NAMES, MAIN_ENV, SIDECAR_ENV } from '../contract';
import { REPO_ROOT } from './repo-root';

/** Address every container binds locally. */
export const LOCAL_HOST = '127.0.0.1';

/** The *_HOST variable of each container, which the runner sets to LOCAL_HOST. */
const HOST_ENV: Record<string, string> = { [CONTAINER_NAMES.main]: MAIN_ENV.host, [CONTAINER_NAMES.sidecar]: SIDECAR_ENV.host };

/** The env names each app reads, from the contract. */
export const CONTRACT_ENV: Record<string, readonly string[]> = {
  [CONTAINER_NAMES.main]: Object.values(MAIN_ENV),
  // NODE_OPTIONS is read by node itself (contract SIDECAR_NODE_OPTIONS).
  [CONTAINER_NAMES.sidecar]: [...Object.values(SIDECAR_ENV), 'NODE_OPTIONS'],
};

// Minimal shapes of the manifest fields the runner reads (Kubernetes API field names).
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
export interface ContainerPort {
  containerPort: number;
  name?: string;
  protocol?: string;
}
export interface HttpGetAction {
  path?: string;
  port: number | string;
  scheme?: string;
  httpHeaders?: { name: string; value: string }[];
}
export interface Probe {
  httpGet?: HttpGetAction;
  tcpSocket?: { port: number | string };
  exec?: unknown;
  timeoutSeconds?: number;
}
export interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: unknown[];
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  volumeMounts?: VolumeMount[];
  lifecycle?: { preStop?: { exec?: { command?: string[] }; httpGet?: HttpGetAction; sleep?: { seconds: number } } };
}
export interface Volume {
  name: string;
  secret?: { secretName: string; items?: { key: string; path: string; mode?: number }[]; defaultMode?: number; optional?: boolean };
  configMap?: { name: string; items?: { key: string; path: string; mode?: number }[]; defaultMode?: number; optional?: boolean };
  emptyDir?: unknown;
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  terminationGracePeriodSeconds?: number;
}
export interface Deployment {
  apiVersion?: string;
  kind: 'Deployment';
  metadata?: { name?: string; namespace?: string };
  spec: { template: { spec: PodSpec } };
}
export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
}
export interface Service {
  kind: 'Service';
  metadata?: { name?: string };
  spec: { ports: ServicePort[] };
}

/** The manifest asks for something this runner cannot reproduce. Message names the field. */
export class PodSpecError extends Error {
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'PodSpecError';
  }
}

export interface RunPodOptions {
  /** Files of each Secret, by secretName, then key: what the API server would hold. */
  readonly secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Files of each ConfigMap, by name, then key. */
  readonly configMaps?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Compiled entry of a container. @default build/apps/<container name>/src/index.js in the repo */
  readonly entryOf?: (containerName: string) => string;
  /** How long every readiness probe has to pass. @default 15000 */
  readonly readyTimeoutMs?: number;
  /** Every output line of every container, as it comes. @default dropped (still kept in `lines`) */
  readonly onLine?: (container: string, line: string) => void;
  /** Folder for the volumes. @default a new temp folder, removed by stop() */
  readonly workDir?: string;
}

export interface RunningContainer {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** The env the process got, after mount-path rewriting and $(VAR) expansion. */
  readonly env: Readonly<Record<string, string>>;
  readonly argv: readonly string[];
  /** Every stdout/stderr line so far. */
  readonly lines: string[];
  /** Exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string | null>;
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
  readonly firstExit: Promise<{ name: string; code: number | string | null }>;
  /** Stop every container and remove the temp folder. Resolves with each exit code. */
  stop(mode?: StopMode): Promise<Record<string, number | string | null>>;
}

export { REPO_ROOT } from './repo-root';

export function defaultEntryOf(containerName: string): string {
  if (!(Object.values(CONTAINER_NAMES) as string[]).includes(containerName)) {
    throw new PodSpecError(`container ${containerName}`, `no app for this container name (known: ${Object.values(CONTAINER_NAMES).join(', ')})`);
  }
  return path.join(REPO_ROOT, 'build', 'apps', containerName, 'src', 'index.js');
}

/** The Deployment among parsed YAML documents. */
export function findDeployment(docs: readonly unknown[]): Deployment {
  const found = docs.filter((d): d is Deployment => (d as { kind?: string } | null)?.kind === 'Deployment');
  if (found.length !== 1) throw new Error(`expected exactly one Deployment in the manifest, found ${found.length}`);
  return found[0];
}

/** The Service among parsed YAML documents. */
export function findService(docs: readonly unknown[]): Service {
  const found = docs.filter((d): d is Service => (d as { kind?: string } | null)?.kind === 'Service');
  if (found.length !== 1) throw new Error(`expected exactly one Service in the manifest, found ${found.length}`);
  return found[0];
}

/** secretName of every Secret volume of the pod. */
export function secretNamesOf(deployment: Deployment): string[] {
  return (deployment.spec.template.spec.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : []));
}

/**
 * Write files the way the kubelet's atomic writer does: into a fresh timestamped folder, then swap
 * the `..data` symlink to it in one rename. Each key is a symlink `key -> ..data/key`.
 * Call again on the same folder to rotate the content, as a Secret update does.
 */
export function writeAtomicVolume(dir: string, files: Readonly<Record<string, string>>, mode = 0o644): void {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = `..${new Date().toISOString().replace(/[-:.TZ]/g, '_')}${process.hrtime.bigint() % 1_000_000n}`;
  const payload = path.join(dir, stamp);
  fs.mkdirSync(payload);
  for (const [key, content] of Object.entries(files)) {
    if (key.includes('/') || key.startsWith('..')) throw new PodSpecError(`volume file ${key}`, 'must be a plain file name');
    fs.writeFileSync(path.join(payload, key), content, { mode });
    fs.chmodSync(path.join(payload, key), mode);
  }
  const dataLink = path.join(dir, '..data');
  const previous = fs.existsSync(dataLink) ? fs.readlinkSync(dataLink) : undefined;
  const tmpLink = path.join(dir, '..data_tmp');
  fs.rmSync(tmpLink, { force: true });
  fs.symlinkSync(stamp, tmpLink);
  fs.renameSync(tmpLink, dataLink);
  // Visible names: add new keys, drop removed ones.
  for (const key of Object.keys(files)) {
    const link = path.join(dir, key);
    if (!fs.existsSync(link)) fs.symlinkSync(path.join('..data', key), link);
  }
  for (const entry of fs.readdirSync(dir)) {
    if (!entry.startsWith('..') && !(entry in files)) fs.rmSync(path.join(dir, entry), { force: true });
  }
  if (previous) fs.rmSync(path.join(dir, previous), { recursive: true, force: true });
}

/** Kubernetes $(VAR) expansion of env values and args: earlier vars only, `$$` escapes, unknown left as is. */
export function expandVars(value: string, vars: Readonly<Record<string, string>>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (name === undefined) return '$';
    return name in vars ? vars[name] : m;
  });
}

function resolveValueFrom(containerName: string, env: EnvVar, deployment: Deployment): string {
  const from = env.valueFrom as { fieldRef?: { fieldPath?: string } } | undefined;
  const fieldPath = from?.fieldRef?.fieldPath;
  const known: Record<string, string> = {
    'metadata.name': `${deployment.metadata?.name ?? 'pod'}-local`,
    'metadata.namespace': deployment.metadata?.namespace ?? 'default',
    'status.podIP': LOCAL_HOST,
    'status.hostIP': LOCAL_HOST,
    'spec.nodeName': os.hostname(),
  };
  if (fieldPath !== undefined && fieldPath in known) return known[fieldPath];
  throw new PodSpecError(`container ${containerName} env ${env.name}`, `valueFrom ${JSON.stringify(env.valueFrom)} cannot be resolved by the local runner`);
}

/** Map each volume to a local folder, filled as the kubelet would. */
function prepareVolumes(spec: PodSpec, workDir: string, opts: RunPodOptions): Record<string, string> {
  const volumes: Record<string, string> = {};
  for (const volume of spec.volumes ?? []) {
    const dir = path.join(workDir, 'volumes', volume.name);
    const source = volume.secret ?? volume.configMap;
    if (source) {
      const isSecret = volume.secret !== undefined;
      const sourceName = volume.secret ? volume.secret.secretName : volume.configMap!.name;
      const data = (isSecret ? opts.secrets : opts.configMaps)?.[sourceName];
      if (!data && source.optional !== true) {
        throw new PodSpecError(`volume ${volume.name}`, `${isSecret ? 'Secret' : 'ConfigMap'} ${sourceName} was not provided to the local runner`);
      }
      const files: Record<string, string> = {};
      if (source.items) {
        for (const item of source.items) {
          if (!(data && item.key in data)) throw new PodSpecError(`volume ${volume.name} items`, `key ${item.key} is not in ${sourceName}`);
          files[item.path] = data[item.key];
        }
      } else Object.assign(files, data ?? {});
      // The owner must be able to read: locally the owner is us, in the pod fsGroup makes it readable.
      writeAtomicVolume(dir, files, (source.defaultMode ?? 0o644) | 0o400);
    } else if (volume.emptyDir !== undefined) {
      fs.mkdirSync(dir, { recursive: true });
    } else {
      throw new PodSpecError(`volume ${volume.name}`, 'only secret, configMap and emptyDir volumes are supported locally');
    }
    volumes[volume.name] = dir;
  }
  return volumes;
}

/** Container mount path -> local folder. */
function mountsOf(container: Container, volumes: Record<string, string>): [string, string][] {
  return (container.volumeMounts ?? []).map((m) => {
    const dir = volumes[m.name];
    if (!dir) throw new PodSpecError(`container ${container.name} volumeMount ${m.name}`, 'no volume with that name in the pod');
    return [m.mountPath.replace(/\/+$/, ''), m.subPath ? path.join(dir, m.subPath) : dir];
  });
}

/** What the container's filesystem shows at `value`, if it lies under a mount. */
function rewriteMountedPath(value: string, mounts: [string, string][]): string {
  // Longest mount first, so nested mounts win.
  for (const [mountPath, dir] of [...mounts].sort((a, b) => b[0].length - a[0].length)) {
    if (value === mountPath || value.startsWith(`${mountPath}/`)) return dir + value.slice(mountPath.length);
  }
  return value;
}

/** The env a container's process gets. */
export function containerEnv(container: Container, deployment: Deployment, mounts: [string, string][]): Record<string, string> {
  if (container.envFrom?.length) throw new PodSpecError(`container ${container.name} envFrom`, 'is not supported by the local runner');
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    const raw = e.valueFrom !== undefined ? resolveValueFrom(container.name, e, deployment) : (e.value ?? '');
    env[e.name] = rewriteMountedPath(expandVars(raw, env), mounts);
  }
  const hostVar = HOST_ENV[container.name];
  if (hostVar) env[hostVar] = LOCAL_HOST;
  return env;
}

/** Resolve a probe or targetPort (number, or a port name declared by the container). */
export function resolvePort(port: number | string, ports: readonly ContainerPort[], field: string): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const named = ports.find((p) => p.name === port);
  if (!named) throw new PodSpecError(field, `port name ${JSON.stringify(port)} is not declared by the container`);
  return named.containerPort;
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP GET on 127.0.0.1, no connection reuse. */
export function httpGet(port: number, urlPath: string, headers: Record<string, string> = {}, timeoutMs = 2_000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: LOCAL_HOST, port, path: urlPath, headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} on port ${port} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Run a probe once, as the kubelet would. Resolves with the HTTP status, or rejects. */
export async function runProbe(probe: Probe, container: Container, field: string): Promise<number> {
  const ports = container.ports ?? [];
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) {
    const get = probe.httpGet;
    if ((get.scheme ?? 'HTTP').toUpperCase() !== 'HTTP') throw new PodSpecError(`${field}.httpGet.scheme`, 'only HTTP probes are supported locally');
    const headers = Object.fromEntries((get.httpHeaders ?? []).map((h) => [h.name, h.value]));
    const res = await httpGet(resolvePort(get.port, ports, `${field}.httpGet.port`), get.path ?? '/', headers, timeoutMs);
    return res.status;
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, ports, `${field}.tcpSocket.port`);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, LOCAL_HOST, () => (socket.destroy(), resolve()));
      socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timeout')));
      socket.on('error', reject);
    });
    return 200;
  }
  throw new PodSpecError(field, 'only httpGet and tcpSocket probes are supported locally');
}

/** The kubelet counts 200-399 as a passing HTTP probe. */
const probePasses = (status: number) => status >= 200 && status < 400;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spawnContainer(container: Container, deployment: Deployment, mounts: [string, string][], opts: RunPodOptions): RunningContainer {
  if (container.command?.length) {
    throw new PodSpecError(`container ${container.name} command`, "replaces the image's ENTRYPOINT; the local runner only runs the compiled app (use args)");
  }
  const entry = (opts.entryOf ?? defaultEntryOf)(container.name);
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  const env = containerEnv(container, deployment, mounts);
  const args = (container.args ?? []).map((a) => expandVars(a, env));
  const argv = [entry, ...args];
  // The image sets NODE_ENV=production (see apps/*/Dockerfile); PATH is not an app setting.
  const processEnv = { PATH: process.env.PATH ?? '', NODE_ENV: 'production', ...env };
  // Own process group: a terminal Ctrl-C reaches the runner only, which then stops the pod in order.
  const child = spawn(process.execPath, argv, { env: processEnv, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        opts.onLine?.(container.name, line);
      }
    });
  }
  const exited = new Promise<number | string | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  return { name: container.name, child, pid: child.pid ?? -1, env, argv, lines, exited };
}

/** Start every container of the Deployment's pod and wait until each readiness probe passes. */
export async function runPod(deployment: Deployment, opts: RunPodOptions = {}): Promise<RunningPod> {
  if (deployment?.kind !== 'Deployment' || !Array.isArray(deployment.spec?.template?.spec?.containers)) {
    throw new Error('runPod needs a Deployment with spec.template.spec.containers');
  }
  const spec = deployment.spec.template.spec;
  if (spec.initContainers?.length) throw new PodSpecError('spec.template.spec.initContainers', 'are not supported by the local runner');
  const ownWorkDir = opts.workDir === undefined;
  const workDir = opts.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-app-pod-'));
  const containers: Record<string, RunningContainer> = {};
  let stopping = false;
  // The children have their own process group; do not leave them behind if this process exits.
  const killAll = () => {
    for (const c of Object.values(containers)) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  };
  process.on('exit', killAll);

  const stop = async (mode: StopMode = 'kubelet'): Promise<Record<string, number | string | null>> => {
    stopping = true;
    const graceMs = (spec.terminationGracePeriodSeconds ?? 30) * 1000;
    const results = await Promise.all(
      Object.values(containers).map(async (c) => {
        const deadline = Date.now() + graceMs;
        const alive = () => c.child.exitCode === null && c.child.signalCode === null;
        if (mode === 'kill') {
          if (alive()) c.child.kill('SIGKILL');
          return [c.name, await c.exited] as const;
        }
        if (mode === 'kubelet') await runPreStop(spec.containers.find((s) => s.name === c.name)!, graceMs);
        if (alive()) c.child.kill('SIGTERM');
        const timer = setTimeout(() => alive() && c.child.kill('SIGKILL'), Math.max(0, deadline - Date.now()));
        const code = await c.exited;
        clearTimeout(timer);
        return [c.name, code] as const;
      }),
    );
    process.off('exit', killAll);
    if (ownWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
    return Object.fromEntries(results);
  };

  try {
    const volumes = prepareVolumes(spec, workDir, opts);
    const declaredPorts = new Map<number, string>();
    for (const c of spec.containers) {
      for (const p of c.ports ?? []) {
        // One network namespace: two containers cannot bind the same port.
        const owner = declaredPorts.get(p.containerPort);
        if (owner) throw new PodSpecError(`container ${c.name} port ${p.containerPort}`, `also declared by container ${owner}`);
        declaredPorts.set(p.containerPort, c.name);
      }
    }
    await assertPortsFree(declaredPorts);
    // The kubelet starts the containers without waiting for each other.
    for (const c of spec.containers) containers[c.name] = spawnContainer(c, deployment, mountsOf(c, volumes), opts);
    const firstExit = Promise.race(Object.values(containers).map((c) => c.exited.then((code) => ({ name: c.name, code }))));

    await waitUntilReady(spec, containers, opts.readyTimeoutMs ?? 15_000, () => stopping);
    return { containers, volumes, workDir, firstExit, stop };
  } catch (err) {
    await stop('kill');
    throw err;
  }
}

/** Fail early and clearly when a port of the pod is taken, e.g. by another `npm start`. */
async function assertPortsFree(ports: Map<number, string>): Promise<void> {
  for (const [port, container] of ports) {
    await new Promise<void>((resolve, reject) => {
      const probe = net.createServer();
      probe.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} of container ${container} is already in use on ${LOCAL_HOST}; is another local pod running?`) : err),
      );
      probe.listen(port, LOCAL_HOST, () => probe.close(() => resolve()));
    });
  }
}

async function runPreStop(container: Container, graceMs: number): Promise<void> {
  const preStop = container.lifecycle?.preStop;
  if (!preStop) return;
  const command = preStop.exec?.command;
  if (preStop.sleep) await sleep(Math.min(preStop.sleep.seconds * 1000, graceMs));
  else if (command && command[0] === 'sleep' && command.length === 2 && /^\d+(\.\d+)?$/.test(command[1])) await sleep(Math.min(Number(command[1]) * 1000, graceMs));
  else if (preStop.httpGet) await runProbe({ httpGet: preStop.httpGet, timeoutSeconds: graceMs / 1000 }, container, `container ${container.name} preStop`).catch(() => undefined);
  else throw new PodSpecError(`container ${container.name} lifecycle.preStop`, 'only `sleep N`, sleep and httpGet hooks are supported locally');
}

async function waitUntilReady(spec: PodSpec, containers: Record<string, RunningContainer>, timeoutMs: number, stopped: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await Promise.all(
    spec.containers.map(async (c) => {
      const probe = c.readinessProbe;
      if (!probe) return;
      const field = `container ${c.name} readinessProbe`;
      const running = containers[c.name];
      let last = 'not tried yet';
      for (;;) {
        if (stopped()) return;
        if (running.child.exitCode !== null || running.child.signalCode !== null) {
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
          const where = probe.httpGet ? ` (GET ${probe.httpGet.path ?? '/'} on port ${probe.httpGet.port})` : '';
          throw new Error(`${field}${where} did not pass within ${timeoutMs} ms, last result: ${last}; output:\n${running.lines.slice(-20).join('\n')}`);
        }
        await sleep(100);
      }
    }),
  );
}

/** TCP ports a process is listening on, from /proc (Linux): its socket inodes matched against /proc/net/tcp{,6}. */
export function listeningPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  const fdDir = `/proc/${pid}/fd`;
  for (const fd of fs.readdirSync(fdDir)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(path.join(fdDir, fd)));
      if (m) inodes.add(m[1]);
    } catch {
      // The fd closed meanwhile.
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const row of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/);
      // cols: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (cols.length < 10 || cols[3] !== '0A' || !inodes.has(cols[9])) continue;
      ports.add(parseInt(cols[1].split(':')[1], 16));
    }
  }
  return ports;
}

export interface VerifyOptions {
  /** A token in the tokens Secret, sent as `Authorization: Bearer <token>`. */
  readonly token: string;
  /** Body the main service answers at `/`. */
  readonly expectedBody: string;
}

/**
 * Check a running pod against its manifest, the way a cluster would use it. Rejects with every
 * mismatch found, one per line; resolves with a summary of what was checked.
 */
export async function verifyPod(deployment: Deployment, service: Service, pod: RunningPod, opts: VerifyOptions): Promise<string[]> {
  const spec = deployment.spec.template.spec;
  const problems: string[] = [];
  const checked: string[] = [];

  // 1. Every env var the manifest sets is one the app reads.
  for (const c of spec.containers) {
    const known = CONTRACT_ENV[c.name] ?? [];
    for (const e of c.env ?? []) {
      if (!known.includes(e.name)) problems.push(`container ${c.name}: env ${e.name} is not read by apps/${c.name} (not in the contract)`);
    }
  }

  // 2. Every declared container port is listened on by that container's process.
  const listening: Record<string, Set<number>> = {};
  for (const c of spec.containers) {
    const running = pod.containers[c.name];
    listening[c.name] = running && running.child.exitCode === null ? listeningPorts(running.pid) : new Set();
    for (const p of c.ports ?? []) {
      if (listening[c.name].has(p.containerPort)) checked.push(`container ${c.name} listens on ${p.containerPort} (${p.name ?? 'unnamed'})`);
      else problems.push(`container ${c.name}: port ${p.containerPort} (${p.name ?? 'unnamed'}) is declared, but the process listens on [${[...listening[c.name]].join(', ')}]`);
    }
  }

  // 3. Every probe answers 200 where the manifest says.
  for (const c of spec.containers) {
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      const probe = c[kind];
      if (!probe) continue;
      const where = probe.httpGet ? `GET ${probe.httpGet.path ?? '/'} on port ${probe.httpGet.port}` : 'tcpSocket';
      try {
        const status = await runProbe(probe, c, `container ${c.name} ${kind}`);
        if (status === 200) checked.push(`container ${c.name} ${kind}: ${where} -> 200`);
        else problems.push(`container ${c.name} ${kind}: ${where} answered ${status}, not 200`);
      } catch (err) {
        problems.push(`container ${c.name} ${kind}: ${where} failed: ${(err as Error).message}`);
      }
    }
  }

  // 4. Every Service port reaches a declared container port that a process listens on.
  let sidecarServicePort: number | undefined;
  for (const sp of service.spec.ports) {
    const target = sp.targetPort ?? sp.port;
    const field = `Service port ${sp.name ?? sp.port}`;
    const owner = spec.containers.find((c) =>
      (c.ports ?? []).some((p) => (typeof target === 'string' && !/^\d+$/.test(target) ? p.name === target : p.containerPort === Number(target))),
    );
    if (!owner) {
      problems.push(`${field}: targetPort ${target} is not a port declared by any container`);
      continue;
    }
    const containerPort = resolvePort(target, owner.ports ?? [], `${field} targetPort`);
    if (!listening[owner.name]?.has(containerPort)) {
      problems.push(`${field}: targetPort ${target} -> container ${owner.name} port ${containerPort}, which nobody listens on`);
      continue;
    }
    checked.push(`${field} -> container ${owner.name} port ${containerPort}`);
    if (owner.name === CONTAINER_NAMES.sidecar) sidecarServicePort ??= containerPort;
  }

  // 5. Through the Service's sidecar port: the token gets the main page, no token gets 401.
  if (sidecarServicePort === undefined) {
    problems.push('Service: no port reaches the sidecar container');
  } else {
    try {
      const ok = await httpGet(sidecarServicePort, '/', { Authorization: `Bearer ${opts.token}` });
      if (ok.status === 200 && ok.body === opts.expectedBody) checked.push(`GET / with the token through port ${sidecarServicePort} -> 200 main page`);
      else problems.push(`GET / with the token through port ${sidecarServicePort} answered ${ok.status} ${JSON.stringify(ok.body.slice(0, 80))}`);
      const denied = await httpGet(sidecarServicePort, '/');
      if (denied.status === 401 && /^Bearer\b/i.test(String(denied.headers['www-authenticate'] ?? ''))) {
        checked.push(`GET / without a token through port ${sidecarServicePort} -> 401`);
      } else problems.push(`GET / without a token through port ${sidecarServicePort} answered ${denied.status}, expected 401 with WWW-Authenticate: Bearer`);
    } catch (err) {
      problems.push(`request through the sidecar port ${sidecarServicePort} failed: ${(err as Error).message}`);
    }
  }

  if (problems.length) throw new Error(`the pod does not match its manifest:\n- ${problems.join('\n- ')}`);
  return checked;
}
