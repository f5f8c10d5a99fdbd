/**
 * The main container's own options, beyond what both containers take: how it starts (command), how
 * it is probed, what env it gets, who it runs as, where it may write and what it mounts. Any image
 * can be main. Left unset, each option is what our apps/main expects when the image is ours, and
 * what any server listening on its port satisfies when it is not. The options that weaken the
 * hardening (root, a writable root) must be asked for by name; the validation plugin reports them
 * as waived (lib/src/validation/hardening.ts).
 */
import * as kplus from 'cdk8s-plus-28';
import { RUN_AS, pathProblem } from './contract';
import type { ContainerOptions } from './container-options';
import { probeNamesNoPort, probeShape } from './probe-shape';
import * as check from './validate';
import { isSidecarAppVolumeName } from './volume-names';

/** A default probe of the main container that `withoutProbes` can drop. */
export enum MainProbeKind {
  READINESS = 'readiness',
  LIVENESS = 'liveness',
}

/** Options of the main container: ContainerOptions, and what only an application container needs. */
export interface MainContainerOptions extends ContainerOptions {
  /**
   * Entry point, in place of the image's ENTRYPOINT (`args` still follow it).
   * @default - the image's entry point
   */
  readonly command?: string[];
  /**
   * More environment variables, from any source cdk8s-plus has: `kplus.EnvValue.fromSecretValue`,
   * `fromConfigMap`, `fromFieldRef`, `fromValue`. A name the construct sets is refused, as in `env`.
   * @default - none
   */
  readonly envVariables?: { [name: string]: kplus.EnvValue };
  /**
   * Whether main gets the contract's MAIN_* env (MAIN_PORT, MAIN_HOST, MAIN_DRAIN_DELAY_MS,
   * MAIN_KEEPALIVE_TIMEOUT_MS, MAIN_LOG_LEVEL), which apps/main reads. Without it, the container-mode
   * preStop of main waits until the sidecar has drained and closed, so an image that exits at once
   * on SIGTERM loses no request the sidecar accepted.
   * @default true for the image `sidecar-app-main` (from any registry), false for any other image
   */
  readonly contractEnv?: boolean;
  /**
   * Readiness probe: any cdk8s-plus Probe (`kplus.Probe.fromHttpGet`, `fromTcpSocket`, `fromCommand`),
   * with its `port` set (cdk8s-plus would otherwise probe port 80). The sidecar's own readiness
   * follows it: an HTTP probe on the main port is asked by the sidecar too (a plain path, no query),
   * any other probe makes the sidecar check that the main port accepts a connection.
   * @default with `contractEnv` (our image): HTTP GET of the contract's HEALTH_PATHS.main on the main
   * port every 5 s; without: a TCP connect to the main port every 5 s
   */
  readonly readiness?: kplus.Probe;
  /**
   * Liveness probe: any cdk8s-plus Probe, with its `port` set.
   * @default the default readiness probe (not the one `readiness` sets), every 10 s, 3 failures
   */
  readonly liveness?: kplus.Probe;
  /**
   * Startup probe, for an image slow to start: liveness waits for it.
   * @default - none
   */
  readonly startup?: kplus.Probe;
  /**
   * Default probes to leave out, for an image that cannot answer them. Without a readiness probe
   * the sidecar does not check main either: the pod is Ready once the sidecar is.
   * @default - none left out
   */
  readonly withoutProbes?: MainProbeKind[];
  /**
   * User id main runs as. 0 needs `allowRoot`.
   * @default contract RUN_AS.user (10001); 0 with `allowRoot`
   */
  readonly user?: number;
  /**
   * Group id main runs as. 0 needs `allowRoot`.
   * @default contract RUN_AS.group (10001); 0 with `allowRoot`
   */
  readonly group?: number;
  /**
   * Let main run as root (user or group 0, `runAsNonRoot: false`), for an image that needs it.
   * A weakening: the validation plugin's `main-root` rule is waived for this Deployment, and synth warns.
   * @default false
   */
  readonly allowRoot?: boolean;
  /**
   * Directories main may write in, each an emptyDir of its own, while its root filesystem stays
   * read-only (e.g. `/var/cache/nginx`, `/tmp`). Absolute paths.
   * @default - none
   */
  readonly writablePaths?: string[];
  /**
   * Give main a writable root filesystem. A weakening: prefer `writablePaths`. The validation
   * plugin's `main-writable-root` rule is waived for this Deployment, and synth warns.
   * @default false
   */
  readonly writableRootFilesystem?: boolean;
  /**
   * Volumes to mount into main (a ConfigMap, a Secret, a PersistentVolumeClaim, ...); each volume
   * is added to the pod. A hostPath volume, the static tokens Secret and a JWT issuer's secret are
   * refused: main never sees the node or the credentials the sidecar judges by.
   * @default - none
   */
  readonly volumeMounts?: kplus.VolumeMount[];
}

/** The main container's own options, checked; what they leave unset follows from the image. */
export interface ResolvedMainOptions {
  readonly command?: string[];
  readonly envVariables: Readonly<Record<string, kplus.EnvValue>>;
  readonly contractEnv: boolean;
  /** Undefined: no such probe. */
  readonly readiness?: kplus.Probe;
  readonly liveness?: kplus.Probe;
  readonly startup?: kplus.Probe;
  readonly user: number;
  readonly group: number;
  readonly allowRoot: boolean;
  readonly writablePaths: readonly string[];
  readonly writableRootFilesystem: boolean;
  readonly volumeMounts: readonly kplus.VolumeMount[];
}

/** The repository of our own main image, under any registry: it reads the contract's MAIN_* env. */
export const OUR_MAIN_REPOSITORY = 'sidecar-app-main';

/** Is `image` (a checked, pinned reference) our apps/main? Its last path component names the repository. */
export function isOurMainImage(image: string): boolean {
  const name = image.split('@')[0];
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.split(':')[0] === OUR_MAIN_REPOSITORY;
}

/** The defaults that need the container's own values: which probe to use by default. */
export interface MainDefaults {
  readonly image: string;
  /** Builds the default probe with the contract env (HTTP health path) or without (TCP), with its period and threshold. */
  readonly defaultProbe: (contractEnv: boolean, periodSeconds: number, failureThreshold: number) => kplus.Probe;
}

export function resolveMainOptions(options: MainContainerOptions, defaults: MainDefaults): ResolvedMainOptions {
  const contractEnv = check.boolean('main.contractEnv', options.contractEnv ?? isOurMainImage(defaults.image));
  const allowRoot = check.boolean('main.allowRoot', options.allowRoot ?? false);
  const rootDefault = allowRoot ? 0 : undefined;
  const user = identity('main.user', options.user ?? rootDefault ?? RUN_AS.user, allowRoot);
  const group = identity('main.group', options.group ?? rootDefault ?? RUN_AS.group, allowRoot);
  const envVariables = options.envVariables ?? {};
  for (const name of Object.keys(envVariables)) check.envName('main.envVariables', name);
  for (const name of Object.keys(envVariables)) {
    if (options.env !== undefined && name in options.env) check.fail('main.envVariables', `sets ${name}, which main.env sets too: set it in one of them`);
  }
  const without = new Set(check.oneOfEach('main.withoutProbes', check.list('main.withoutProbes', options.withoutProbes ?? []), Object.values(MainProbeKind)));
  const probe = (kind: MainProbeKind, given: kplus.Probe | undefined, period: number, threshold: number) => {
    if (given !== undefined) checkProbe(`main.${kind}`, given);
    if (!without.has(kind)) return given ?? defaults.defaultProbe(contractEnv, period, threshold);
    if (given !== undefined) check.fail('main.withoutProbes', `leaves out the ${kind} probe that main.${kind} sets: set one of them`);
    return undefined;
  };
  if (options.startup !== undefined) checkProbe('main.startup', options.startup);
  const writable = writablePaths(options.writablePaths ?? []);
  const volumeMounts = checkedMounts(options.volumeMounts ?? [], writable);
  return {
    command: options.command === undefined ? undefined : nonEmptyList('main.command', options.command),
    envVariables,
    contractEnv,
    readiness: probe(MainProbeKind.READINESS, options.readiness, 5, 2),
    liveness: probe(MainProbeKind.LIVENESS, options.liveness, 10, 3),
    startup: options.startup,
    user,
    group,
    allowRoot,
    writablePaths: writable,
    writableRootFilesystem: check.boolean('main.writableRootFilesystem', options.writableRootFilesystem ?? false),
    volumeMounts,
  };
}

/** A uid or gid: 0 only with allowRoot, which without a 0 would weaken nothing. */
function identity(prop: string, value: number, allowRoot: boolean): number {
  check.integerInRange(prop, value, 0, 2_147_483_647);
  if (value === 0 && !allowRoot) check.fail(prop, 'is 0 (root): set main.allowRoot to run main as root, or pick a non-root id');
  return value;
}

function nonEmptyList(prop: string, values: readonly string[]): string[] {
  if (check.list(prop, values).length === 0) check.fail(prop, 'must not be empty: leave it unset to keep the image\u2019s entry point');
  values.forEach((v, i) => check.string(`${prop}[${i}]`, v));
  return [...values];
}

/**
 * A probe the kubelet and the sidecar read alike: an HTTP or TCP probe names its port (a port-less
 * one would get cdk8s-plus's 80, since main declares its port in `ports`), and an HTTP path is one
 * the sidecar can ask (the contract's plain path: no query).
 */
function checkProbe(prop: string, probe: kplus.Probe): void {
  if (!(probe instanceof kplus.Probe)) check.fail(prop, 'must be a cdk8s-plus Probe (kplus.Probe.fromHttpGet, fromTcpSocket or fromCommand)');
  if (probeNamesNoPort(probe)) check.fail(prop, 'names no port: cdk8s-plus would probe port 80, not the main port; pass { port: <main.port> }');
  const path = probeShape(probe, undefined).httpGet?.path;
  const problem = path === undefined ? undefined : pathProblem(path);
  if (problem !== undefined) check.fail(`${prop} path`, `${problem}: the sidecar asks the same path, so use a plain one, or a TCP probe`);
}

/** Volume mounts: plain paths distinct from each other and from the writable paths, on volumes that are main's to see. */
function checkedMounts(mounts: readonly kplus.VolumeMount[], writable: readonly string[]): kplus.VolumeMount[] {
  const seen = new Set(writable);
  check.list('main.volumeMounts', mounts).forEach((m, i) => {
    const prop = `main.volumeMounts[${i}]`;
    const problem = mountPathProblem(m.path);
    if (problem !== undefined) check.fail(`${prop}.path`, problem);
    if (seen.has(m.path)) check.fail(`${prop}.path`, `("${m.path}") is also a writable path or another mount's path`);
    seen.add(m.path);
    const kube = (m.volume as unknown as { _toKube(): { name: string; hostPath?: unknown } })._toKube();
    if (kube.hostPath !== undefined) check.fail(prop, `mounts a hostPath volume ("${kube.name}"): main would see the node's files; use a ConfigMap, Secret, emptyDir or PersistentVolumeClaim`);
    if (isSidecarAppVolumeName(kube.name)) check.fail(prop, `uses the volume name "${kube.name}", which SidecarApp names its own volumes with; give the volume another name`);
  });
  return [...mounts];
}

/** Secrets main must not mount: the ones the sidecar judges requests by. Checked once their names are known. */
export function refuseCredentialMounts(options: ResolvedMainOptions, credentialSecrets: readonly string[]): void {
  options.volumeMounts.forEach((m, i) => {
    const secretName = (m.volume as unknown as { _toKube(): { secret?: { secretName?: string } } })._toKube().secret?.secretName;
    if (secretName !== undefined && credentialSecrets.includes(secretName)) {
      check.fail(`main.volumeMounts[${i}]`, `mounts the Secret "${secretName}", which holds credentials the sidecar checks requests against: main must never see them`);
    }
  });
}

function mountPathProblem(p: unknown): string | undefined {
  if (typeof p !== 'string' || !p.startsWith('/')) return `must be an absolute path, got ${JSON.stringify(p)}`;
  if (p === '/' || p.includes(':') || p.endsWith('/') || p.split('/').slice(1).some((part) => part === '' || part === '.' || part === '..')) {
    return `must be a normalized directory below / without ':' (e.g. "/var/cache/nginx"), got ${JSON.stringify(p)}`;
  }
  return undefined;
}

/** Absolute, normalized, distinct paths below the root. */
function writablePaths(paths: readonly string[]): string[] {
  check.list('main.writablePaths', paths).forEach((p, i) => {
    const prop = `main.writablePaths[${i}]`;
    const problem = mountPathProblem(p);
    if (problem !== undefined) check.fail(prop, problem);
    if (paths.indexOf(p) !== i) check.fail(prop, `("${p}") is listed twice`);
  });
  return [...paths];
}
