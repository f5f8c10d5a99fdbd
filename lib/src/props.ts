/**
 * The props of SidecarApp, their defaults, and `resolveProps`: props in, one checked value out.
 * Every check names the prop and fails at synth.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Chart, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { DEFAULT_LOG_LEVEL, DEFAULT_PORTS, DEFAULT_TIMING_INPUTS, GRACE_MARGIN_SECONDS, MAIN_EXTRA_DRAIN_MS, POD_TIMING_INTEGERS, SIDECAR_INTEGERS, timingBudget } from './contract';
import type { TimingBudget } from './contract';
import * as check from './validate';

/** The log level of both containers (pino's levels). */
export enum LogLevel {
  FATAL = 'fatal',
  ERROR = 'error',
  WARN = 'warn',
  INFO = 'info',
  DEBUG = 'debug',
  TRACE = 'trace',
  SILENT = 'silent',
}

/** How the sidecar runs in the pod. */
export enum SidecarMode {
  /** An ordinary container beside main, on every Kubernetes version; both stop at once, timed by drain delays. */
  CONTAINER = 'container',
  /**
   * A native sidecar (KEP-753): an init container with `restartPolicy: Always` and a startup probe.
   * Main starts once the sidecar serves; on termination the sidecar drains and closes first (main's
   * preStop is its drain hook), then main stops, then the sidecar. Kubernetes 1.29+ (1.28 only with
   * the SidecarContainers feature gate).
   */
  NATIVE = 'native',
}

/** Options of the main or the sidecar container. */
export interface ContainerOptions {
  /**
   * Image reference, pinned to a tag (never `latest`) or a digest.
   * @default "sidecar-app-main:<package version>" / "sidecar-app-sidecar:<package version>"
   */
  readonly image?: string;
  /**
   * Container port the process listens on.
   * @default contract DEFAULT_PORTS.main for main, DEFAULT_PORTS.sidecar for the sidecar
   */
  readonly port?: number;
  /**
   * Name of that container port (IANA service name, at most 15 characters).
   * @default "main-http" / "sidecar-http"
   */
  readonly portName?: string;
  /**
   * Extra environment variables. A name the construct already sets (the contract's env) is
   * rejected rather than silently overridden.
   * @default - none
   */
  readonly env?: { [name: string]: string };
  /**
   * CPU and memory requests and limits; each unset field keeps its default.
   * @default requests 50m CPU / 64Mi; limits 500m CPU / 256Mi (main), 500m CPU / 128Mi (sidecar)
   */
  readonly resources?: kplus.ContainerResources;
  /**
   * Arguments appended to the image's entry point.
   * @default - none
   */
  readonly args?: string[];
}

/** CPU-based horizontal autoscaling. */
export interface AutoscalingOptions {
  /** Lower bound of replicas (at least 1). */
  readonly minReplicas: number;
  /** Upper bound of replicas (at least minReplicas). */
  readonly maxReplicas: number;
  /**
   * Target average CPU use, in percent of the pod's CPU requests.
   * @default 80
   */
  readonly targetCpuUtilization?: number;
}

/** Props of SidecarApp: every one is optional, and an invalid one fails at synth naming it. */
export interface SidecarAppProps {
  /**
   * Base name of every object (Deployment, Service, NetworkPolicy, ...) and the
   * `app.kubernetes.io/instance` label. A DNS label starting with a letter.
   * @default - derived from the construct path inside its chart: id "api" gives "api"
   */
  readonly name?: string;
  /**
   * Number of pods. Above 1, a PodDisruptionBudget and a topology spread across nodes are added.
   * Must be left unset when `autoscaling` is set.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Pull policy of both containers. `IF_NOT_PRESENT` lets locally loaded images (kind, minikube) run.
   * @default kplus.ImagePullPolicy.IF_NOT_PRESENT
   */
  readonly imagePullPolicy?: kplus.ImagePullPolicy;
  /**
   * The main (application) container.
   * @default - the defaults of ContainerOptions
   */
  readonly main?: ContainerOptions;
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
   * Name of the Service port in front of the main container.
   * @default "main-container-port"
   */
  readonly mainServicePortName?: string;
  /**
   * Number of the Service port in front of the main container.
   * @default - the main container port
   */
  readonly mainServicePort?: number;
  /**
   * Name of the Service port in front of the sidecar.
   * @default "sidecar-container-port"
   */
  readonly sidecarServicePortName?: string;
  /**
   * Number of the Service port in front of the sidecar.
   * @default - the sidecar container port
   */
  readonly sidecarServicePort?: number;
  /**
   * Name of an existing Secret holding the tokens, one key per token (key = token name).
   * Created outside the manifests, so no token is ever in them.
   * @default "<name>-tokens"
   */
  readonly tokenSecretName?: string;
  /**
   * Exact paths the sidecar forwards without a token (e.g. "/healthz").
   * @default - none
   */
  readonly publicPaths?: string[];
  /**
   * Forward the client's Authorization header to the main container.
   * @default false
   */
  readonly forwardAuthorization?: boolean;
  /**
   * Upstream inactivity timeout of the sidecar, in ms; a timeout answers 504.
   * @default contract DEFAULT_TIMING_INPUTS.upstreamTimeoutMs
   */
  readonly upstreamTimeoutMs?: number;
  /**
   * How long the sidecar keeps forwarding after SIGTERM, in ms. The main container drains longer
   * (contract `timingBudget`), so forwarded requests still find it.
   * @default contract DEFAULT_TIMING_INPUTS.drainDelayMs
   */
  readonly drainDelayMs?: number;
  /**
   * preStop sleep of both containers, in seconds: time for the endpoint removal to reach every
   * kube-proxy before SIGTERM. Needs `sleep` in the images.
   * @default contract DEFAULT_TIMING_INPUTS.preStopDelaySeconds
   */
  readonly preStopDelaySeconds?: number;
  /**
   * Pod termination grace period, in seconds. Must cover preStop + drain + upstream timeout + a
   * margin (contract `timingBudget`).
   * @default contract DEFAULT_TIMING_INPUTS.terminationGracePeriodSeconds
   */
  readonly terminationGracePeriodSeconds?: number;
  /**
   * Create the NetworkPolicies that leave only the sidecar port open to everyone. Turning them
   * off requires `allowUnauthenticatedMainPort: true`.
   * @default true
   */
  readonly networkPolicy?: boolean;
  /**
   * Peers allowed to reach the main port directly, bypassing authentication. More can be added
   * with `allowMainFrom`.
   * @default - none: no ingress to the main port
   */
  readonly mainPortAllowedFrom?: kplus.INetworkPolicyPeer[];
  /**
   * Peers allowed to reach the admin port (your Prometheus, to scrape /metrics). More can be
   * added with `allowAdminFrom`.
   * @default - none: no ingress to the admin port
   */
  readonly adminPortAllowedFrom?: kplus.INetworkPolicyPeer[];
  /**
   * Deliberately leave the main port reachable without authentication: with NetworkPolicies the
   * main port is opened to all, without them this is required. Prints a warning at synth.
   * @default false
   */
  readonly allowUnauthenticatedMainPort?: boolean;
  /**
   * CPU-based HorizontalPodAutoscaler. When set, the Deployment leaves `replicas` to the
   * autoscaler, and a PodDisruptionBudget is added.
   * @default - no autoscaler
   */
  readonly autoscaling?: AutoscalingOptions;
  /**
   * Log level of both containers.
   * @default LogLevel.INFO
   */
  readonly logLevel?: LogLevel;
  /**
   * How the sidecar runs: an ordinary container, or a native sidecar that starts before main and
   * stops after it.
   * @default SidecarMode.CONTAINER
   */
  readonly sidecarMode?: SidecarMode;
  /**
   * Extra labels on every object and on the pods. They may override `component`, `part-of` and
   * `managed-by`, never the selector labels.
   * @default - none
   */
  readonly labels?: { [key: string]: string };
}

/** The well-known labels, as the Kubernetes docs recommend them. */
export const LABEL = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

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

/** Every prop with its default applied, checked once. */
export interface ResolvedProps {
  readonly name: string;
  readonly replicas: number;
  readonly imagePullPolicy: kplus.ImagePullPolicy;
  readonly main: ResolvedContainer;
  readonly sidecar: ResolvedContainer;
  readonly adminPort: number;
  readonly mainServicePortName: string;
  readonly mainServicePort: number;
  readonly sidecarServicePortName: string;
  readonly sidecarServicePort: number;
  readonly tokenSecretName: string;
  readonly publicPaths: readonly string[];
  readonly forwardAuthorization: boolean;
  readonly upstreamTimeoutMs: number;
  readonly drainDelayMs: number;
  readonly preStopDelaySeconds: number;
  readonly terminationGracePeriodSeconds: number;
  readonly timing: TimingBudget;
  readonly sidecarMode: SidecarMode;
  readonly networkPolicy: boolean;
  readonly mainPortAllowedFrom: readonly kplus.INetworkPolicyPeer[];
  readonly adminPortAllowedFrom: readonly kplus.INetworkPolicyPeer[];
  readonly allowUnauthenticatedMainPort: boolean;
  readonly autoscaling?: Required<AutoscalingOptions>;
  /** More than one pod at a time: spread them, and bound voluntary disruptions. */
  readonly spreadsOverNodes: boolean;
  readonly logLevel: LogLevel;
  /** Labels that select the pods. */
  readonly selectorLabels: Readonly<Record<string, string>>;
  /** Every label of every object and of the pods. */
  readonly labels: Readonly<Record<string, string>>;
}

/** The version in the library's package.json: the default image tag. */
function packageVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/** The construct path below its chart, as a DNS label: id "api" gives "api". */
function defaultName(app: Construct): string {
  const chart = Chart.of(app);
  const below = app.node.scopes.slice(app.node.scopes.indexOf(chart) + 1);
  return below
    .map((c) => c.node.id)
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
}

export function resolveProps(app: Construct, props: SidecarAppProps): ResolvedProps {
  const name = check.resourceName(props.name === undefined ? 'name (derived from the construct id)' : 'name', props.name ?? defaultName(app));
  const version = packageVersion();
  const main = resolveContainer('main', props.main ?? {}, DEFAULT_PORTS.main, version);
  const sidecar = resolveContainer('sidecar', props.sidecar ?? {}, DEFAULT_PORTS.sidecar, version);
  const adminPort = check.port('adminPort', props.adminPort ?? DEFAULT_PORTS.admin);
  check.distinct(
    [
      ['main.port', main.port],
      ['sidecar.port', sidecar.port],
      ['adminPort', adminPort],
    ],
    'container ports in one pod',
  );
  check.distinct(
    [
      // The fixed name first, so the message names the prop that collides with it.
      ['the admin port name', ADMIN_PORT_NAME],
      ['main.portName', main.portName],
      ['sidecar.portName', sidecar.portName],
    ],
    'container port names in one pod',
  );

  const mainServicePortName = check.servicePortName('mainServicePortName', props.mainServicePortName ?? 'main-container-port');
  const sidecarServicePortName = check.servicePortName('sidecarServicePortName', props.sidecarServicePortName ?? 'sidecar-container-port');
  const mainServicePort = check.port('mainServicePort', props.mainServicePort ?? main.port);
  const sidecarServicePort = check.port('sidecarServicePort', props.sidecarServicePort ?? sidecar.port);
  check.distinct(
    [
      ['mainServicePortName', mainServicePortName],
      ['sidecarServicePortName', sidecarServicePortName],
    ],
    'Service port names',
  );
  check.distinct(
    [
      ['mainServicePort', mainServicePort],
      ['sidecarServicePort', sidecarServicePort],
    ],
    'Service ports',
  );

  const upstreamTimeoutMs = check.integer('upstreamTimeoutMs', props.upstreamTimeoutMs ?? DEFAULT_TIMING_INPUTS.upstreamTimeoutMs, SIDECAR_INTEGERS.upstreamTimeoutMs);
  const drainDelayMs = check.integer('drainDelayMs', props.drainDelayMs ?? DEFAULT_TIMING_INPUTS.drainDelayMs, SIDECAR_INTEGERS.drainDelayMs);
  const sidecarMode = check.oneOf('sidecarMode', props.sidecarMode ?? SidecarMode.CONTAINER, Object.values(SidecarMode));
  if (sidecarMode === SidecarMode.NATIVE && props.preStopDelaySeconds !== undefined) {
    check.fail('preStopDelaySeconds', "must be left unset with sidecarMode NATIVE: main's preStop is then the sidecar's drain hook (drainDelayMs)");
  }
  const preStopDelaySeconds =
    sidecarMode === SidecarMode.NATIVE
      ? 0
      : check.integer('preStopDelaySeconds', props.preStopDelaySeconds ?? DEFAULT_TIMING_INPUTS.preStopDelaySeconds, POD_TIMING_INTEGERS.preStopDelaySeconds);
  const terminationGracePeriodSeconds = check.integer(
    'terminationGracePeriodSeconds',
    props.terminationGracePeriodSeconds ?? DEFAULT_TIMING_INPUTS.terminationGracePeriodSeconds,
    POD_TIMING_INTEGERS.terminationGracePeriodSeconds,
  );
  const timing = timingBudget({ mode: sidecarMode, drainDelayMs, upstreamTimeoutMs, preStopDelaySeconds, terminationGracePeriodSeconds });
  if (terminationGracePeriodSeconds < timing.minTerminationGracePeriodSeconds) {
    const formula =
      sidecarMode === SidecarMode.NATIVE
        ? `(drainDelayMs + upstreamTimeoutMs + ${MAIN_EXTRA_DRAIN_MS}) / 1000, rounded up, + ${GRACE_MARGIN_SECONDS}`
        : `preStopDelaySeconds + (drainDelayMs + upstreamTimeoutMs) / 1000, rounded up, + ${GRACE_MARGIN_SECONDS}`;
    check.fail('terminationGracePeriodSeconds', `(${terminationGracePeriodSeconds}) must be at least ${timing.minTerminationGracePeriodSeconds}: ${formula}`);
  }

  const autoscaling = resolveAutoscaling(props);
  if (props.replicas !== undefined && autoscaling) {
    check.fail('replicas', 'must not be set together with autoscaling: the HorizontalPodAutoscaler owns the replica count');
  }
  const replicas = check.integerInRange('replicas', props.replicas ?? 1, 1, 10_000);

  const networkPolicy = props.networkPolicy ?? true;
  const allowUnauthenticatedMainPort = props.allowUnauthenticatedMainPort ?? false;
  if (!networkPolicy && !allowUnauthenticatedMainPort) {
    check.fail(
      'networkPolicy',
      'is false, which leaves the main port open to requests that bypass authentication; set allowUnauthenticatedMainPort: true to accept that',
    );
  }

  const userLabels = props.labels ?? {};
  for (const [key, value] of Object.entries(userLabels)) {
    check.label('labels', key, value);
    if (key === LABEL.name || key === LABEL.instance) check.fail('labels', `must not set "${key}": it selects the pods, use the name prop`);
  }
  const selectorLabels = { [LABEL.name]: name, [LABEL.instance]: name };

  return {
    name,
    replicas,
    imagePullPolicy: check.oneOf('imagePullPolicy', props.imagePullPolicy ?? kplus.ImagePullPolicy.IF_NOT_PRESENT, PULL_POLICIES),
    main,
    sidecar,
    adminPort,
    mainServicePortName,
    mainServicePort,
    sidecarServicePortName,
    sidecarServicePort,
    tokenSecretName: check.dnsSubdomain('tokenSecretName', props.tokenSecretName ?? `${name}-tokens`),
    publicPaths: check.publicPaths('publicPaths', props.publicPaths ?? []),
    forwardAuthorization: props.forwardAuthorization ?? false,
    upstreamTimeoutMs,
    drainDelayMs,
    preStopDelaySeconds,
    terminationGracePeriodSeconds,
    timing,
    sidecarMode,
    networkPolicy,
    mainPortAllowedFrom: props.mainPortAllowedFrom ?? [],
    adminPortAllowedFrom: props.adminPortAllowedFrom ?? [],
    allowUnauthenticatedMainPort,
    autoscaling,
    spreadsOverNodes: autoscaling !== undefined || replicas > 1,
    logLevel: check.logLevel('logLevel', props.logLevel ?? (DEFAULT_LOG_LEVEL as LogLevel)) as LogLevel,
    selectorLabels,
    labels: { ...selectorLabels, [LABEL.component]: 'server', [LABEL.partOf]: name, [LABEL.managedBy]: 'cdk8s', ...userLabels },
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

function resolveAutoscaling(props: SidecarAppProps): Required<AutoscalingOptions> | undefined {
  if (!props.autoscaling) return undefined;
  const { minReplicas, maxReplicas, targetCpuUtilization = 80 } = props.autoscaling;
  check.integerInRange('autoscaling.minReplicas', minReplicas, 1, 10_000);
  check.integerInRange('autoscaling.maxReplicas', maxReplicas, minReplicas, 10_000);
  check.integerInRange('autoscaling.targetCpuUtilization', targetCpuUtilization, 1, 1000);
  return { minReplicas, maxReplicas, targetCpuUtilization };
}
