/**
 * The pod's two containers: their options (image, port, env, resources, args), what they share
 * (pull policy, log level) and the sidecar's admin port, with their defaults and checks; and what
 * every container is built with (hardening, probes, env, resources). The main container's own
 * spec is in main-container.ts, the sidecar's in sidecar-container.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { DEFAULT_LOG_LEVEL, DEFAULT_PORTS, HEALTH_PATHS, RUN_AS } from './contract';
import { LogLevel } from './container-options';
import type { ContainerOptions } from './container-options';
import { resolveMainOptions } from './main-options';
import type { MainContainerOptions, ResolvedMainOptions } from './main-options';
import * as check from './validate';

/**
 * The container props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its
 * members into SidecarAppProps.
 * @jsii ignore
 */
export interface ContainersProps {
  /**
   * Pull policy of both containers. `IF_NOT_PRESENT` lets locally loaded images (kind, minikube) run.
   * @default kplus.ImagePullPolicy.IF_NOT_PRESENT
   */
  readonly imagePullPolicy?: kplus.ImagePullPolicy;
  /**
   * The main (application) container: our apps/main, or any image (see docs/main-contract.md).
   * @default - the defaults of MainContainerOptions
   */
  readonly main?: MainContainerOptions;
  /**
   * The authenticating proxy container.
   * @default - the defaults of ContainerOptions
   */
  readonly sidecar?: ContainerOptions;
  /**
   * Sidecar admin port (/healthz, /readyz, /metrics). Not in the Service.
   * @default contract DEFAULT_PORTS.admin
   */
  readonly adminPort?: number;
  /**
   * Log level of both containers.
   * @default LogLevel.INFO
   */
  readonly logLevel?: LogLevel;
}

export const ADMIN_PORT_NAME = 'sidecar-admin';

interface Amounts {
  readonly cpu: kplus.Cpu;
  readonly memory: Size;
}
const DEFAULT_REQUESTS: Amounts = { cpu: kplus.Cpu.millis(50), memory: Size.mebibytes(64) };
const DEFAULT_LIMITS: Record<'main' | 'sidecar', Amounts> = {
  main: { cpu: kplus.Cpu.millis(500), memory: Size.mebibytes(256) },
  sidecar: { cpu: kplus.Cpu.millis(500), memory: Size.mebibytes(128) },
};
const DEFAULT_PORT_NAMES = { main: 'main-http', sidecar: 'sidecar-http' } as const;
const PULL_POLICIES = Object.values(kplus.ImagePullPolicy);

/** One container, defaults applied and checked. */
export interface ResolvedContainer {
  readonly image: string;
  readonly port: number;
  readonly portName: string;
  readonly env: Readonly<Record<string, string>>;
  readonly requests: Amounts;
  readonly limits: Amounts;
  readonly args?: string[];
}

/** Both containers and what they share, checked. */
export interface ResolvedContainers {
  readonly imagePullPolicy: kplus.ImagePullPolicy;
  readonly main: ResolvedContainer;
  /** What only main has: command, probes, env values, identity, writable paths, mounts. */
  readonly mainOptions: ResolvedMainOptions;
  readonly sidecar: ResolvedContainer;
  readonly adminPort: number;
  readonly logLevel: LogLevel;
}

/** The version in the library's package.json: the default image tag. */
function packageVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/** Both containers; their ports and port names must differ, and from the admin port's. */
export function resolveContainers(props: ContainersProps): ResolvedContainers {
  const version = packageVersion();
  const main = resolveContainer('main', props.main ?? {}, DEFAULT_PORTS.main, version);
  const sidecar = resolveContainer('sidecar', props.sidecar ?? {}, DEFAULT_PORTS.sidecar, version);
  const adminPort = check.port('adminPort', props.adminPort ?? DEFAULT_PORTS.admin);
  check.distinct(
    [
      // Whether the user set each: the error blames one they set, never a default.
      ['main.port', main.port, props.main?.port !== undefined],
      ['sidecar.port', sidecar.port, props.sidecar?.port !== undefined],
      ['adminPort', adminPort, props.adminPort !== undefined],
    ],
    'container ports in one pod',
  );
  check.distinct(
    [
      // The fixed name first, so the message names the prop that collides with it.
      ['the admin port name', ADMIN_PORT_NAME],
      ['main.portName', main.portName, props.main?.portName !== undefined],
      ['sidecar.portName', sidecar.portName, props.sidecar?.portName !== undefined],
    ],
    'container port names in one pod',
  );
  const mainOptions = resolveMainOptions(props.main ?? {}, { image: main.image, defaultProbe: (contractEnv, period, threshold) => defaultMainProbe(contractEnv, main.port, period, threshold) });
  return {
    mainOptions,
    imagePullPolicy: check.oneOf('imagePullPolicy', props.imagePullPolicy ?? kplus.ImagePullPolicy.IF_NOT_PRESENT, PULL_POLICIES),
    main,
    sidecar,
    adminPort,
    logLevel: check.logLevel('logLevel', props.logLevel ?? (DEFAULT_LOG_LEVEL as LogLevel)) as LogLevel,
  };
}

function resolveContainer(which: 'main' | 'sidecar', options: ContainerOptions, defaultPort: number, version: string): ResolvedContainer {
  const image = check.pinnedImage(`${which}.image`, options.image ?? `sidecar-app-${which}:${version}`);
  const port = check.port(`${which}.port`, options.port ?? defaultPort);
  const portName = check.containerPortName(`${which}.portName`, options.portName ?? DEFAULT_PORT_NAMES[which]);
  const env = options.env ?? {};
  for (const key of Object.keys(env)) check.envName(`${which}.env`, key);
  const given = options.resources;
  const requests: Amounts = { cpu: given?.cpu?.request ?? DEFAULT_REQUESTS.cpu, memory: given?.memory?.request ?? DEFAULT_REQUESTS.memory };
  const limits: Amounts = { cpu: given?.cpu?.limit ?? DEFAULT_LIMITS[which].cpu, memory: given?.memory?.limit ?? DEFAULT_LIMITS[which].memory };
  if (given?.ephemeralStorage !== undefined) check.fail(`${which}.resources.ephemeralStorage`, 'is not supported: both containers run with a read-only root filesystem');
  const cpuRequest = check.quantity(`${which}.resources.cpu.request`, requests.cpu.amount);
  const cpuLimit = check.quantity(`${which}.resources.cpu.limit`, limits.cpu.amount);
  if (cpuRequest > cpuLimit) check.fail(`${which}.resources.cpu.request`, `(${requests.cpu.amount}) must not exceed ${which}.resources.cpu.limit (${limits.cpu.amount})`);
  if (requests.memory.toKibibytes() > limits.memory.toKibibytes()) {
    check.fail(`${which}.resources.memory.request`, `(${requests.memory.asString()}) must not exceed ${which}.resources.memory.limit (${limits.memory.asString()})`);
  }
  return { image, port, portName, env, requests, limits, args: options.args ? [...options.args] : undefined };
}

/** Who a container runs as and whether it may write its root: the sidecar's is fixed, main's from its options. */
export interface ContainerIdentity {
  readonly user: number;
  readonly group: number;
  readonly readOnlyRoot: boolean;
}

/** The sidecar's, and main's unless its options change it. */
export const HARDENED_IDENTITY: ContainerIdentity = { user: RUN_AS.user, group: RUN_AS.group, readOnlyRoot: true };

function containerSecurityContext(identity: ContainerIdentity): kplus.ContainerSecurityContextProps {
  return {
    // runAsNonRoot, unless main's options allowed root and asked for it.
    ensureNonRoot: identity.user !== 0,
    // Numeric: a kubelet refuses runAsNonRoot with a non-numeric image USER it cannot verify.
    user: identity.user,
    group: identity.group,
    readOnlyRootFilesystem: identity.readOnlyRoot,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: [kplus.Capability.ALL] },
    seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
  };
}

/** Main's default probe: an image with the contract env (ours) answers its health path; any other server at least accepts on its port. */
function defaultMainProbe(contractEnv: boolean, port: number, periodSeconds: number, failureThreshold: number): kplus.Probe {
  if (contractEnv) return httpProbe(HEALTH_PATHS.main, port, periodSeconds, failureThreshold);
  return kplus.Probe.fromTcpSocket({ port, ...probeTiming(periodSeconds, failureThreshold) });
}

function probeTiming(periodSeconds: number, failureThreshold: number) {
  return { periodSeconds: Duration.seconds(periodSeconds), timeoutSeconds: Duration.seconds(2), failureThreshold, successThreshold: 1 };
}

export function httpProbe(path: string, port: number, periodSeconds: number, failureThreshold: number): kplus.Probe {
  return kplus.Probe.fromHttpGet(path, {
    port,
    scheme: kplus.ConnectionScheme.HTTP,
    ...probeTiming(periodSeconds, failureThreshold),
  });
}

/**
 * Env the construct owns, then the user's extra env (`env`, and main's `envVariables`); a user
 * entry with an owned name is refused.
 */
export function toEnv(
  which: 'main' | 'sidecar',
  owned: ReadonlyArray<readonly [string, string | undefined]>,
  extra: Readonly<Record<string, string>>,
  values: Readonly<Record<string, kplus.EnvValue>> = {},
): Record<string, kplus.EnvValue> {
  const env: Record<string, kplus.EnvValue> = {};
  for (const [name, value] of owned) if (value !== undefined) env[name] = kplus.EnvValue.fromValue(value);
  const user: Array<[string, string, kplus.EnvValue]> = [
    ...Object.entries(extra).map(([name, value]): [string, string, kplus.EnvValue] => [`${which}.env`, name, kplus.EnvValue.fromValue(value)]),
    ...Object.entries(values).map(([name, value]): [string, string, kplus.EnvValue] => [`${which}.envVariables`, name, value]),
  ];
  for (const [prop, name, value] of user) {
    // Also the unset ones (e.g. SIDECAR_PUBLIC_PATHS): their props are the checked way in.
    if (owned.some(([ownedName]) => ownedName === name)) check.fail(prop, `must not set ${name}: SidecarApp sets it from its props`);
    env[name] = value;
  }
  return env;
}

/** What both containers get: image, pull policy, args, their port, resources and the hardening. */
export function commonContainer(
  config: Pick<ResolvedContainers, 'imagePullPolicy'>,
  c: ResolvedContainer,
  portName: string,
  identity: ContainerIdentity = HARDENED_IDENTITY,
): Omit<kplus.ContainerProps, 'name' | 'envVariables'> {
  return {
    image: c.image,
    imagePullPolicy: config.imagePullPolicy,
    args: c.args,
    ports: [{ name: portName, number: c.port, protocol: kplus.Protocol.TCP }],
    resources: {
      cpu: { request: c.requests.cpu, limit: c.limits.cpu },
      memory: { request: c.requests.memory, limit: c.limits.memory },
    },
    securityContext: containerSecurityContext(identity),
  };
}
