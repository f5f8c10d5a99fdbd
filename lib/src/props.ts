/**
 * The props of SidecarApp, their defaults, and `resolveProps`: props in, one checked value out.
 * Every check names the prop and fails at synth.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Chart, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import {
  DEFAULT_LOG_LEVEL,
  DEFAULT_PORTS,
  DEFAULT_TIMING_INPUTS,
  GRACE_MARGIN_SECONDS,
  JWKS_MOUNT_ROOT,
  MAIN_EXTRA_DRAIN_MS,
  POD_TIMING_INTEGERS,
  SIDECAR_INTEGERS,
  encodeJwtIssuers,
  jwtIssuersProblem,
  parseJwtIssuers,
  quoted,
  timingBudget,
} from './contract';
import type { JwtAlgorithm, JwtIssuerSpec, KubernetesAuthSpec, TimingBudget } from './contract';
import { resolveServiceAccountAuth } from './identity';
import type { ServiceAccountAuthOptions } from './identity';
import { resolveRoutes } from './routes';
import type { DefaultRouteEffect, ResolvedRoutes, RouteRule } from './routes';
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

/**
 * One trusted JWT issuer: bearer values shaped like a JWT are verified against it. Its keys come
 * from exactly one of `jwksConfigMap` (a ConfigMap mounted into the sidecar) and `jwksUrl`.
 */
export interface JwtIssuerOptions {
  /**
   * Prefix of the forwarded subject (`<name>:<claim>`), the issuer's metrics label, and the
   * directory its ConfigMap is mounted in. 1-63 characters of A-Z a-z 0-9 . _ -, not starting with . _ -.
   */
  readonly name: string;
  /** The exact `iss` claim of its tokens. */
  readonly issuer: string;
  /** A token's `aud` must name at least one of these (1-16, no duplicates). */
  readonly audiences: string[];
  /**
   * Name of an existing ConfigMap holding the issuer's JWKS under `jwksConfigMapKey`. Mounted
   * read-only as a directory, so an edited ConfigMap reaches the running pod (the sidecar reloads it).
   * Exactly one of `jwksConfigMap`, `jwksUrl` and `hmacSecret`.
   * @default - none: `jwksUrl` or `hmacSecret` must be set
   */
  readonly jwksConfigMap?: string;
  /**
   * The key of `jwksConfigMap` that holds the JWKS. Only with `jwksConfigMap`.
   * @default "jwks.json"
   */
  readonly jwksConfigMapKey?: string;
  /**
   * An https: URL the sidecar fetches the issuer's JWKS from (at start, every `refreshSeconds`,
   * and rate-limited on an unknown key id). Exactly one of `jwksConfigMap` and `jwksUrl`.
   * @default - none: `jwksConfigMap` must be set
   */
  readonly jwksUrl?: string;
  /**
   * Name of an existing Secret holding the issuer's HMAC secret (at least 32 bytes for HS256) under
   * `hmacSecretKey`: the issuer then verifies HS256/HS384/HS512 only, with that secret, never with a
   * public key. Mounted read-only into the sidecar and reloaded on change.
   * @default - none: an asymmetric issuer (`jwksConfigMap` or `jwksUrl`)
   */
  readonly hmacSecret?: string;
  /**
   * The key of `hmacSecret` that holds the secret. Only with `hmacSecret`.
   * @default "secret"
   */
  readonly hmacSecretKey?: string;
  /**
   * Name of an existing ConfigMap holding, under the key `ca.crt`, the PEM CA certificates to trust
   * for `jwksUrl` (a private CA). Only with `jwksUrl`.
   * @default - the default roots
   */
  readonly caConfigMap?: string;
  /**
   * Seconds between refetches of `jwksUrl`; a shorter Cache-Control max-age (not under 30) wins. Only with `jwksUrl`.
   * @default 300
   */
  readonly refreshSeconds?: number;
  /**
   * JWS algorithms accepted (contract `JWT_ALGORITHMS`); never `none` or HS*.
   * @default - contract DEFAULT_JWT_ALGORITHMS (RS256, ES256, EdDSA)
   */
  readonly algorithms?: string[];
  /**
   * Leeway for exp, nbf and iat, in seconds (0-300).
   * @default 30
   */
  readonly clockSkewSeconds?: number;
  /**
   * Longest accepted exp - iat, in seconds; tokens must then carry iat.
   * @default - no bound
   */
  readonly maxLifetimeSeconds?: number;
  /**
   * The claim forwarded after the name.
   * @default "sub"
   */
  readonly subjectClaim?: string;
  /**
   * Claims forwarded upstream, each as the header `x-auth-claim-<claim, lowercased>`; a value that
   * is not printable ASCII (at most 256 characters) refuses the request. Client copies are stripped.
   * @default - none
   */
  readonly forwardClaims?: string[];
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
   * Exact paths the sidecar forwards without a token (e.g. "/healthz"): shorthand for public
   * `routes` rules, placed before them. Canonical paths without '*'.
   * @default - none
   */
  readonly publicPaths?: string[];
  /**
   * Route rules (at most 64 with `publicPaths`), tried in order; the first that matches a request
   * decides whether it is public, needs any valid credential, or only certain callers'. More can be
   * appended with `addRoute`. Reaches the sidecar as `SIDECAR_ROUTES`.
   * @default - none: every path but `publicPaths` needs a valid credential
   */
  readonly routes?: RouteRule[];
  /**
   * What a request no route rule matches gets.
   * @default DefaultRouteEffect.AUTHENTICATED
   */
  readonly defaultRouteEffect?: DefaultRouteEffect;
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
  /**
   * Trusted JWT issuers (at most 16): the sidecar then also accepts bearer JWTs they signed. Their
   * ConfigMaps are mounted read-only into the sidecar container under the contract's
   * `JWKS_MOUNT_ROOT`, and the list reaches it as `SIDECAR_JWT_ISSUERS`.
   * @default - none: only the static tokens count
   */
  readonly jwtIssuers?: JwtIssuerOptions[];
  /**
   * Accept Kubernetes service-account tokens: projected tokens for one of the audiences, verified
   * against the cluster issuer's keys. Adds the sidecar's own token for the API server and the
   * cluster CA (`kube-root-ca.crt`), in a projected volume mounted into the sidecar only.
   * `allowCallsFrom` turns it on with the defaults.
   * @default - off
   */
  readonly serviceAccountAuth?: ServiceAccountAuthOptions;
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

/** A ConfigMap mounted as a directory into the sidecar for a JWT issuer. */
export interface JwtConfigMapMount {
  /** A ConfigMap (a JWKS or a CA) or, for an HMAC issuer, a Secret. */
  readonly configMap?: string;
  readonly secret?: string;
  /** The directory: `<JWKS_MOUNT_ROOT>/<issuer name>`. */
  readonly path: string;
}

/** The JWT issuers as the sidecar reads them, and the ConfigMaps their files come from. */
export interface ResolvedJwtIssuers {
  /** What SIDECAR_JWT_ISSUERS carries (file paths under the mounts); empty when none. */
  readonly specs: readonly JwtIssuerSpec[];
  readonly mounts: readonly JwtConfigMapMount[];
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
  /** publicPaths and routes as one table; `addRoute` appends to it until synth. */
  readonly routes: ResolvedRoutes;
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
  readonly jwtIssuers: ResolvedJwtIssuers;
  /** SIDECAR_KUBERNETES_AUTH; undefined: service-account auth is off (until allowCallsFrom). */
  readonly kubernetesAuth: KubernetesAuthSpec | undefined;
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
  const jwtIssuers = resolveJwtIssuers(props.jwtIssuers ?? []);
  const publicPaths = check.publicPaths('publicPaths', props.publicPaths ?? []);

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
    routes: resolveRoutes(publicPaths, props.routes, props.defaultRouteEffect, jwtIssuers.specs.map((s) => s.name)),
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
    jwtIssuers,
    kubernetesAuth: resolveServiceAccountAuth(props.serviceAccountAuth, name),
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

export const DEFAULT_JWKS_CONFIGMAP_KEY = 'jwks.json';
export const CA_CONFIGMAP_KEY = 'ca.crt';
export const DEFAULT_HMAC_SECRET_KEY = 'secret';
// A ConfigMap key as the API server checks it.
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;

/** The label jwtIssuersProblem puts before the problem of the issuer at `index`, so the message can name the prop instead. */
function contractLabel(index: number, spec: unknown): string {
  const name = typeof spec === 'object' && spec !== null && typeof (spec as { name?: unknown }).name === 'string' ? (spec as { name: string }).name : undefined;
  return `issuer ${index + 1}${name === undefined ? '' : ` (${quoted(name)})`}: `;
}

/**
 * The issuer props as the JwtIssuerSpec list the sidecar reads, with the mount paths of their
 * ConfigMaps, checked with the contract's rule (the one the sidecar applies at start-up).
 */
function resolveJwtIssuers(options: readonly JwtIssuerOptions[]): ResolvedJwtIssuers {
  if (!Array.isArray(options)) check.fail('jwtIssuers', 'must be a list of issuers');
  const specs: JwtIssuerSpec[] = [];
  const mounts: JwtConfigMapMount[] = [];
  options.forEach((o, i) => {
    const prop = `jwtIssuers[${i}]`;
    if (typeof o !== 'object' || o === null) check.fail(prop, 'must be an object');
    if ([o.jwksConfigMap, o.jwksUrl, o.hmacSecret].filter((v) => v !== undefined).length !== 1) check.fail(prop, 'must have exactly one of jwksConfigMap, jwksUrl and hmacSecret');
    if (o.jwksConfigMap === undefined && o.jwksConfigMapKey !== undefined) check.fail(`${prop}.jwksConfigMapKey`, 'goes with jwksConfigMap');
    if (o.hmacSecret === undefined && o.hmacSecretKey !== undefined) check.fail(`${prop}.hmacSecretKey`, 'goes with hmacSecret');
    if (o.jwksUrl === undefined && o.caConfigMap !== undefined) check.fail(`${prop}.caConfigMap`, 'goes with jwksUrl');
    // The directory of the issuer's ConfigMap; the contract's check of the name comes below, before any use.
    const dir = `${JWKS_MOUNT_ROOT}/${String(o.name)}`;
    const configMap = o.jwksConfigMap ?? o.caConfigMap;
    const key =
      o.jwksConfigMap !== undefined ? (o.jwksConfigMapKey ?? DEFAULT_JWKS_CONFIGMAP_KEY) : o.hmacSecret !== undefined ? (o.hmacSecretKey ?? DEFAULT_HMAC_SECRET_KEY) : CA_CONFIGMAP_KEY;
    if (o.jwksConfigMap !== undefined) check.dnsSubdomain(`${prop}.jwksConfigMap`, o.jwksConfigMap);
    if (o.caConfigMap !== undefined) check.dnsSubdomain(`${prop}.caConfigMap`, o.caConfigMap);
    if (o.hmacSecret !== undefined) check.dnsSubdomain(`${prop}.hmacSecret`, o.hmacSecret);
    if (typeof key !== 'string' || key.length > 253 || !CONFIGMAP_KEY.test(key) || key === '.' || key === '..') {
      const keyProp = o.hmacSecret !== undefined ? 'hmacSecretKey' : 'jwksConfigMapKey';
      check.fail(`${prop}.${keyProp}`, `must be a ${o.hmacSecret !== undefined ? 'Secret' : 'ConfigMap'} key (1-253 characters of A-Z a-z 0-9 - _ ., not "." or ".."), got ${typeof key === 'string' ? quoted(key) : typeof key}`);
    }
    const spec: JwtIssuerSpec = {
      name: o.name,
      issuer: o.issuer,
      audiences: Array.isArray(o.audiences) ? [...o.audiences] : o.audiences,
      ...(o.jwksConfigMap !== undefined ? { jwksFile: `${dir}/${key}` } : {}),
      ...(o.hmacSecret !== undefined ? { hmacSecretFile: `${dir}/${key}` } : {}),
      ...(o.jwksUrl !== undefined ? { jwksUrl: o.jwksUrl } : {}),
      ...(o.caConfigMap !== undefined ? { caFile: `${dir}/${key}` } : {}),
      ...(o.refreshSeconds !== undefined ? { refreshSeconds: o.refreshSeconds } : {}),
      ...(o.algorithms !== undefined ? { algorithms: (Array.isArray(o.algorithms) ? [...o.algorithms] : o.algorithms) as JwtAlgorithm[] } : {}),
      ...(o.clockSkewSeconds !== undefined ? { clockSkewSeconds: o.clockSkewSeconds } : {}),
      ...(o.maxLifetimeSeconds !== undefined ? { maxLifetimeSeconds: o.maxLifetimeSeconds } : {}),
      ...(o.subjectClaim !== undefined ? { subjectClaim: o.subjectClaim } : {}),
      ...(o.forwardClaims !== undefined ? { forwardClaims: Array.isArray(o.forwardClaims) ? [...o.forwardClaims] : o.forwardClaims } : {}),
    };
    // The issuer alone: its own problems name it.
    const problem = jwtIssuersProblem([spec]);
    if (problem !== undefined) {
      const label = contractLabel(0, spec);
      check.fail(prop, problem.startsWith(label) ? problem.slice(label.length) : problem);
    }
    specs.push(spec);
    if (configMap !== undefined) mounts.push({ configMap, path: dir });
    if (o.hmacSecret !== undefined) mounts.push({ secret: o.hmacSecret, path: dir });
  });
  // The list: its size, and names and issuers used twice.
  const problem = jwtIssuersProblem(specs);
  if (problem !== undefined) {
    const index = /^issuer (\d+)/.exec(problem);
    if (index === null) check.fail('jwtIssuers', problem);
    const i = Number(index[1]) - 1;
    const label = contractLabel(i, specs[i]);
    check.fail(`jwtIssuers[${i}]`, problem.startsWith(label) ? problem.slice(label.length) : problem);
  }
  // What the sidecar will do with the env: it must read it back.
  const encoded = encodeJwtIssuers(specs);
  if (encoded !== undefined) {
    const parsed = parseJwtIssuers(encoded);
    if (!parsed.ok) check.fail('jwtIssuers', parsed.problem);
  }
  return { specs, mounts };
}
