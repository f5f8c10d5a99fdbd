import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import {
  ADDRESSES,
  CONTAINER_NAMES,
  DEFAULT_LOG_LEVEL,
  DEFAULT_PORTS,
  DEFAULT_TIMING_INPUTS,
  GRACE_MARGIN_SECONDS,
  HEALTH_PATHS,
  MAIN_ENV,
  MAIN_INTEGERS,
  NODE_OPTIONS_ENV,
  POD_TIMING_INTEGERS,
  RUN_AS,
  SIDECAR_DEFAULTS,
  SIDECAR_ENV,
  SIDECAR_INTEGERS,
  SIDECAR_NODE_OPTIONS,
  TOKENS_MOUNT_PATH,
  encodeBoolean,
  encodeInteger,
  encodePublicPaths,
  encodeUpstream,
  timingBudget,
} from '../contract';
import type { LogLevel, TimingBudget } from '../contract';
import {
  Container,
  EnvVar,
  IntOrString,
  KubeDeployment,
  KubeHorizontalPodAutoscalerV2,
  KubeNetworkPolicy,
  KubePodDisruptionBudget,
  KubeService,
  NetworkPolicyIngressRule,
  NetworkPolicyPeer,
  Probe,
  Quantity,
  SecurityContext,
} from '../imports/k8s';
import { version } from '../package.json';
import * as check from './validate';

/** CPU and memory amounts, as Kubernetes quantities ("100m", "64Mi"). */
export interface ResourceAmounts {
  /**
   * CPU, e.g. "50m" or "0.5".
   * @default depends on the container, see `ContainerOptions.resources`
   */
  readonly cpu?: string;
  /**
   * Memory, e.g. "64Mi".
   * @default depends on the container, see `ContainerOptions.resources`
   */
  readonly memory?: string;
}

/** Requests and limits of one container. Unset fields keep their defaults. */
export interface ContainerResources {
  /**
   * What the scheduler reserves.
   * @default { cpu: "50m", memory: "64Mi" }
   */
  readonly requests?: ResourceAmounts;
  /**
   * The ceiling: CPU is throttled above it, the container is OOM-killed above the memory limit.
   * @default main { cpu: "500m", memory: "256Mi" }; sidecar { cpu: "500m", memory: "128Mi" }
   */
  readonly limits?: ResourceAmounts;
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
   * @default 8080 for main, 8081 for the sidecar (contract DEFAULT_PORTS)
   */
  readonly port?: number;
  /**
   * Name of that container port (IANA service name, at most 15 characters).
   * @default "main-http" / "sidecar-http"
   */
  readonly portName?: string;
  /**
   * Extra environment variables. A name the construct already sets (the contract
   * env) is rejected rather than silently overridden.
   * @default {}
   */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Requests and limits; unset fields keep the defaults.
   * @default requests 50m/64Mi; limits 500m/256Mi (main), 500m/128Mi (sidecar)
   */
  readonly resources?: ContainerResources;
  /**
   * Arguments appended to the image's entry point.
   * @default none
   */
  readonly args?: readonly string[];
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

export type ImagePullPolicy = 'Always' | 'IfNotPresent' | 'Never';
export type { LogLevel } from '../contract';

export interface SidecarAppProps {
  /**
   * Base name of every object (Deployment, Service, NetworkPolicy, ...) and the
   * `app.kubernetes.io/instance` label. A DNS label starting with a letter.
   * @default derived from the construct path inside its chart, e.g. id "api" gives "api"
   */
  readonly name?: string;
  /**
   * Number of pods. Above 1, a PodDisruptionBudget and a topology spread across
   * nodes are added. Must be left unset when `autoscaling` is set.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Pull policy of both containers. `IfNotPresent` lets locally loaded images
   * (kind, minikube) run.
   * @default "IfNotPresent"
   */
  readonly imagePullPolicy?: ImagePullPolicy;
  /**
   * The main (application) container.
   * @default {}
   */
  readonly main?: ContainerOptions;
  /**
   * The authenticating proxy container.
   * @default {}
   */
  readonly sidecar?: ContainerOptions;
  /**
   * Sidecar admin port (/healthz, /readyz, /metrics). Not in the Service.
   * @default 9091
   */
  readonly adminPort?: number;
  /**
   * Name of the Service port in front of the main container.
   * @default "main-container-port"
   */
  readonly mainServicePortName?: string;
  /**
   * Number of the Service port in front of the main container.
   * @default the main container port
   */
  readonly mainServicePort?: number;
  /**
   * Name of the Service port in front of the sidecar.
   * @default "sidecar-container-port"
   */
  readonly sidecarServicePortName?: string;
  /**
   * Number of the Service port in front of the sidecar.
   * @default the sidecar container port
   */
  readonly sidecarServicePort?: number;
  /**
   * Name of an existing Secret holding the tokens, one key per token (key = token
   * name). Created outside the manifests, so no token is ever in them.
   * @default "<name>-tokens"
   */
  readonly tokenSecretName?: string;
  /**
   * Exact paths the sidecar forwards without a token (e.g. "/healthz").
   * @default []
   */
  readonly publicPaths?: readonly string[];
  /**
   * Forward the client's Authorization header to the main container.
   * @default false
   */
  readonly forwardAuthorization?: boolean;
  /**
   * Upstream inactivity timeout of the sidecar, in ms; a timeout answers 504.
   * @default 15000
   */
  readonly upstreamTimeoutMs?: number;
  /**
   * How long the sidecar keeps forwarding after SIGTERM, in ms. The main
   * container drains longer (contract `timingBudget`), so forwarded requests still find it.
   * @default 5000
   */
  readonly drainDelayMs?: number;
  /**
   * preStop sleep of both containers, in seconds: time for the endpoint removal
   * to reach every kube-proxy before SIGTERM. Needs `sleep` in the images.
   * @default 5
   */
  readonly preStopDelaySeconds?: number;
  /**
   * Pod termination grace period, in seconds. Must cover preStop + drain +
   * upstream timeout + a margin (contract `timingBudget`).
   * @default 40
   */
  readonly terminationGracePeriodSeconds?: number;
  /**
   * Create a NetworkPolicy so that only the sidecar port is open to everyone.
   * Turning it off requires `allowUnauthenticatedMainPort: true`.
   * @default true
   */
  readonly networkPolicy?: boolean;
  /**
   * Peers allowed to reach the main port directly, bypassing authentication.
   * @default [] (no ingress to the main port)
   */
  readonly mainPortAllowedFrom?: readonly NetworkPolicyPeer[];
  /**
   * Peers allowed to reach the admin port (list your Prometheus here to scrape /metrics).
   * @default [] (no ingress to the admin port)
   */
  readonly adminPortAllowedFrom?: readonly NetworkPolicyPeer[];
  /**
   * Deliberately leave the main port reachable without authentication: with a
   * NetworkPolicy the main port is opened to all, without one this is required.
   * Prints a warning at synth.
   * @default false
   */
  readonly allowUnauthenticatedMainPort?: boolean;
  /**
   * CPU-based HorizontalPodAutoscaler. When set, the Deployment leaves `replicas`
   * to the autoscaler, and a PodDisruptionBudget is added.
   * @default none
   */
  readonly autoscaling?: AutoscalingOptions;
  /**
   * pino log level of both containers.
   * @default "info"
   */
  readonly logLevel?: LogLevel;
  /**
   * Extra labels on every object and on the pods. They may override
   * `component`, `part-of` and `managed-by`, never the selector labels.
   * @default {}
   */
  readonly labels?: Readonly<Record<string, string>>;
}

const LABEL = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

const DEFAULT_REQUESTS = { cpu: '50m', memory: '64Mi' } as const;
const DEFAULT_LIMITS = {
  main: { cpu: '500m', memory: '256Mi' },
  sidecar: { cpu: '500m', memory: '128Mi' },
} as const;
const ADMIN_PORT_NAME = 'sidecar-admin';
const TOKENS_VOLUME = 'tokens';
const PULL_POLICIES: readonly ImagePullPolicy[] = ['Always', 'IfNotPresent', 'Never'];

/**
 * A pod with a main container and an authenticating sidecar in front of it, the
 * Service for both, and by default a NetworkPolicy that keeps the main port closed.
 */
export class SidecarApp extends Construct {
  /** The Deployment running the pod. */
  readonly deployment: KubeDeployment;
  /** The ClusterIP Service with the main and the sidecar port. */
  readonly service: KubeService;
  /** The NetworkPolicy guarding the main port, unless turned off. */
  readonly networkPolicy?: KubeNetworkPolicy;
  /** Present with more than one replica or with autoscaling. */
  readonly podDisruptionBudget?: KubePodDisruptionBudget;
  /** Present when `autoscaling` is set. */
  readonly horizontalPodAutoscaler?: KubeHorizontalPodAutoscalerV2;
  /** Base name of every object. */
  readonly name: string;
  /** Service port name in front of the main container. */
  readonly mainPortName: string;
  /** Service port name in front of the sidecar: the one clients should use. */
  readonly sidecarPortName: string;
  /** Service port number in front of the main container. */
  readonly mainServicePort: number;
  /** Service port number in front of the sidecar. */
  readonly sidecarServicePort: number;
  /** Name of the Secret the tokens are read from. */
  readonly tokenSecretName: string;
  /** Labels that select this app's pods (Service, NetworkPolicy, PDB). */
  readonly selectorLabels: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: SidecarAppProps = {}) {
    super(scope, id);
    const config = resolve(props, defaultName(this));
    this.name = config.name;
    this.mainPortName = config.mainServicePortName;
    this.sidecarPortName = config.sidecarServicePortName;
    this.mainServicePort = config.mainServicePort;
    this.sidecarServicePort = config.sidecarServicePort;
    this.tokenSecretName = config.tokenSecretName;
    this.selectorLabels = { [LABEL.name]: config.name, [LABEL.instance]: config.name };
    const labels = {
      ...this.selectorLabels,
      [LABEL.component]: 'server',
      [LABEL.partOf]: config.name,
      [LABEL.managedBy]: 'cdk8s',
      ...config.labels,
    };
    const metadata = { name: config.name, labels };

    this.deployment = new KubeDeployment(this, 'deployment', {
      metadata,
      spec: {
        replicas: config.autoscaling ? undefined : config.replicas,
        revisionHistoryLimit: 3,
        selector: { matchLabels: { ...this.selectorLabels } },
        // Start the new pod before stopping an old one: capacity never drops.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: IntOrString.fromNumber(0), maxSurge: IntOrString.fromNumber(1) } },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            terminationGracePeriodSeconds: config.terminationGracePeriodSeconds,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: RUN_AS.user,
              runAsGroup: RUN_AS.group,
              // Lets the non-root user read the token files.
              fsGroup: RUN_AS.group,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [mainContainer(config), sidecarContainer(config)],
            volumes: [
              {
                name: TOKENS_VOLUME,
                // A directory mount (no subPath), so a rotated Secret reaches the running pod.
                secret: { secretName: config.tokenSecretName, defaultMode: 0o440, optional: false },
              },
            ],
            topologySpreadConstraints: config.spreadsOverNodes
              ? [
                  {
                    maxSkew: 1,
                    topologyKey: 'kubernetes.io/hostname',
                    whenUnsatisfiable: 'ScheduleAnyway',
                    labelSelector: { matchLabels: { ...this.selectorLabels } },
                    // Count only the pods of the same revision, so a rollout is not skewed by old pods.
                    matchLabelKeys: ['pod-template-hash'],
                  },
                ]
              : undefined,
          },
        },
      },
    });

    this.service = new KubeService(this, 'service', {
      metadata,
      spec: {
        type: 'ClusterIP',
        selector: { ...this.selectorLabels },
        ports: [
          { name: config.mainServicePortName, port: config.mainServicePort, targetPort: IntOrString.fromNumber(config.main.port), protocol: 'TCP' },
          { name: config.sidecarServicePortName, port: config.sidecarServicePort, targetPort: IntOrString.fromNumber(config.sidecar.port), protocol: 'TCP' },
        ],
      },
    });

    if (config.networkPolicy) {
      this.networkPolicy = new KubeNetworkPolicy(this, 'network-policy', {
        metadata,
        spec: {
          podSelector: { matchLabels: { ...this.selectorLabels } },
          policyTypes: ['Ingress'],
          ingress: ingressRules(config),
        },
      });
    }
    if (config.allowUnauthenticatedMainPort) {
      console.warn(
        `SidecarApp ${config.name}: allowUnauthenticatedMainPort is set; port ${config.main.port} of the main container accepts requests that bypass authentication.`,
      );
    }

    if (config.spreadsOverNodes) {
      this.podDisruptionBudget = new KubePodDisruptionBudget(this, 'pdb', {
        metadata,
        spec: { maxUnavailable: IntOrString.fromNumber(1), selector: { matchLabels: { ...this.selectorLabels } } },
      });
    }

    if (config.autoscaling) {
      this.horizontalPodAutoscaler = new KubeHorizontalPodAutoscalerV2(this, 'hpa', {
        metadata,
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: config.name },
          minReplicas: config.autoscaling.minReplicas,
          maxReplicas: config.autoscaling.maxReplicas,
          metrics: [
            {
              type: 'Resource',
              resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: config.autoscaling.targetCpuUtilization } },
            },
          ],
        },
      });
    }
  }
}

/** Props with defaults applied, checked. */
interface ResolvedContainer {
  readonly image: string;
  readonly port: number;
  readonly portName: string;
  readonly env: Readonly<Record<string, string>>;
  readonly requests: Required<ResourceAmounts>;
  readonly limits: Required<ResourceAmounts>;
  readonly args?: string[];
}

interface ResolvedProps {
  readonly name: string;
  readonly replicas: number;
  readonly imagePullPolicy: ImagePullPolicy;
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
  readonly networkPolicy: boolean;
  readonly mainPortAllowedFrom: readonly NetworkPolicyPeer[];
  readonly adminPortAllowedFrom: readonly NetworkPolicyPeer[];
  readonly allowUnauthenticatedMainPort: boolean;
  readonly autoscaling?: Required<AutoscalingOptions>;
  readonly spreadsOverNodes: boolean;
  readonly logLevel: LogLevel;
  readonly labels: Readonly<Record<string, string>>;
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

function resolve(props: SidecarAppProps, derivedName: string): ResolvedProps {
  const name = check.resourceName(props.name === undefined ? 'name (derived from the construct id)' : 'name', props.name ?? derivedName);
  const main = resolveContainer('main', props.main ?? {}, DEFAULT_PORTS.main, 'main-http', DEFAULT_LIMITS.main);
  const sidecar = resolveContainer('sidecar', props.sidecar ?? {}, DEFAULT_PORTS.sidecar, 'sidecar-http', DEFAULT_LIMITS.sidecar);
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

  const tokenSecretName = check.dnsSubdomain('tokenSecretName', props.tokenSecretName ?? `${name}-tokens`);
  const publicPaths = check.publicPaths('publicPaths', props.publicPaths ?? []);
  const upstreamTimeoutMs = check.integer('upstreamTimeoutMs', props.upstreamTimeoutMs ?? DEFAULT_TIMING_INPUTS.upstreamTimeoutMs, SIDECAR_INTEGERS.upstreamTimeoutMs);
  const drainDelayMs = check.integer('drainDelayMs', props.drainDelayMs ?? DEFAULT_TIMING_INPUTS.drainDelayMs, SIDECAR_INTEGERS.drainDelayMs);
  const preStopDelaySeconds = check.integer('preStopDelaySeconds', props.preStopDelaySeconds ?? DEFAULT_TIMING_INPUTS.preStopDelaySeconds, POD_TIMING_INTEGERS.preStopDelaySeconds);
  const terminationGracePeriodSeconds = check.integer(
    'terminationGracePeriodSeconds',
    props.terminationGracePeriodSeconds ?? DEFAULT_TIMING_INPUTS.terminationGracePeriodSeconds,
    POD_TIMING_INTEGERS.terminationGracePeriodSeconds,
  );
  const timing = timingBudget({ drainDelayMs, upstreamTimeoutMs, preStopDelaySeconds, terminationGracePeriodSeconds });
  const neededGrace = timing.minTerminationGracePeriodSeconds;
  if (terminationGracePeriodSeconds < neededGrace) {
    check.fail(
      'terminationGracePeriodSeconds',
      `(${terminationGracePeriodSeconds}) must be at least ${neededGrace}: preStopDelaySeconds + (drainDelayMs + upstreamTimeoutMs) / 1000, rounded up, + ${GRACE_MARGIN_SECONDS}`,
    );
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
  const mainPortAllowedFrom = checkPeers('mainPortAllowedFrom', props.mainPortAllowedFrom ?? []);
  const adminPortAllowedFrom = checkPeers('adminPortAllowedFrom', props.adminPortAllowedFrom ?? []);

  const labels = props.labels ?? {};
  for (const [key, value] of Object.entries(labels)) {
    check.label('labels', key, value);
    if (key === LABEL.name || key === LABEL.instance) check.fail('labels', `must not set "${key}": it selects the pods, use the name prop`);
  }

  return {
    name,
    replicas,
    imagePullPolicy: check.oneOf('imagePullPolicy', props.imagePullPolicy ?? 'IfNotPresent', PULL_POLICIES),
    main,
    sidecar,
    adminPort,
    mainServicePortName,
    mainServicePort,
    sidecarServicePortName,
    sidecarServicePort,
    tokenSecretName,
    publicPaths,
    forwardAuthorization: props.forwardAuthorization ?? false,
    upstreamTimeoutMs,
    drainDelayMs,
    preStopDelaySeconds,
    terminationGracePeriodSeconds,
    timing,
    networkPolicy,
    mainPortAllowedFrom,
    adminPortAllowedFrom,
    allowUnauthenticatedMainPort,
    autoscaling,
    spreadsOverNodes: autoscaling !== undefined || replicas > 1,
    logLevel: check.logLevel('logLevel', props.logLevel ?? DEFAULT_LOG_LEVEL),
    labels,
  };
}

function resolveContainer(
  which: 'main' | 'sidecar',
  options: ContainerOptions,
  defaultPort: number,
  defaultPortName: string,
  defaultLimits: Required<ResourceAmounts>,
): ResolvedContainer {
  const image = check.pinnedImage(`${which}.image`, options.image ?? `sidecar-app-${which}:${version}`);
  const port = check.port(`${which}.port`, options.port ?? defaultPort);
  const portName = check.containerPortName(`${which}.portName`, options.portName ?? defaultPortName);
  const env = options.env ?? {};
  for (const key of Object.keys(env)) check.envName(`${which}.env`, key);
  const requests = { ...DEFAULT_REQUESTS, ...options.resources?.requests };
  const limits = { ...defaultLimits, ...options.resources?.limits };
  for (const resource of ['cpu', 'memory'] as const) {
    const requestProp = `${which}.resources.requests.${resource}`;
    const limitProp = `${which}.resources.limits.${resource}`;
    if (check.quantity(requestProp, requests[resource]) > check.quantity(limitProp, limits[resource])) {
      check.fail(requestProp, `(${requests[resource]}) must not exceed ${limitProp} (${limits[resource]})`);
    }
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

/** The API server refuses a peer with no selector, or an ipBlock mixed with selectors. */
function checkPeers(prop: string, peers: readonly NetworkPolicyPeer[]): readonly NetworkPolicyPeer[] {
  peers.forEach((peer, index) => {
    const hasSelector = peer.podSelector !== undefined || peer.namespaceSelector !== undefined;
    if (!hasSelector && peer.ipBlock === undefined) check.fail(`${prop}[${index}]`, 'must set podSelector, namespaceSelector or ipBlock');
    if (hasSelector && peer.ipBlock !== undefined) check.fail(`${prop}[${index}]`, 'must not combine ipBlock with a selector');
  });
  return peers;
}

function ingressRules(config: ResolvedProps): NetworkPolicyIngressRule[] {
  const tcp = (port: number) => [{ port: IntOrString.fromNumber(port), protocol: 'TCP' }];
  // A rule without `from` admits every source.
  const rules: NetworkPolicyIngressRule[] = [{ ports: tcp(config.sidecar.port) }];
  if (config.allowUnauthenticatedMainPort) {
    rules.push({ ports: tcp(config.main.port) });
  } else if (config.mainPortAllowedFrom.length > 0) {
    rules.push({ from: [...config.mainPortAllowedFrom], ports: tcp(config.main.port) });
  }
  if (config.adminPortAllowedFrom.length > 0) {
    rules.push({ from: [...config.adminPortAllowedFrom], ports: tcp(config.adminPort) });
  }
  return rules;
}

function hardenedSecurityContext(): SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS.user,
    runAsGroup: RUN_AS.group,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function httpProbe(path: string, port: number, periodSeconds: number, failureThreshold: number): Probe {
  return {
    httpGet: { path, port: IntOrString.fromNumber(port), scheme: 'HTTP' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
    successThreshold: 1,
  };
}

/** Env the construct owns; a user env entry with one of these names is refused. */
function toEnv(which: 'main' | 'sidecar', owned: ReadonlyArray<readonly [string, string | undefined]>, extra: Readonly<Record<string, string>>): EnvVar[] {
  const env: EnvVar[] = [];
  for (const [name, value] of owned) if (value !== undefined) env.push({ name, value });
  for (const [name, value] of Object.entries(extra)) {
    // Also the unset ones (e.g. SIDECAR_PUBLIC_PATHS): their props are the checked way in.
    if (owned.some(([ownedName]) => ownedName === name)) check.fail(`${which}.env`, `must not set ${name}: SidecarApp sets it from its props`);
    env.push({ name, value });
  }
  return env;
}

function commonContainer(config: ResolvedProps, c: ResolvedContainer): Pick<Container, 'image' | 'imagePullPolicy' | 'args' | 'resources' | 'securityContext' | 'lifecycle'> {
  return {
    image: c.image,
    imagePullPolicy: config.imagePullPolicy,
    args: c.args,
    resources: {
      requests: { cpu: Quantity.fromString(c.requests.cpu), memory: Quantity.fromString(c.requests.memory) },
      limits: { cpu: Quantity.fromString(c.limits.cpu), memory: Quantity.fromString(c.limits.memory) },
    },
    securityContext: hardenedSecurityContext(),
    // Keep serving until the endpoint removal has reached every node.
    lifecycle: config.preStopDelaySeconds > 0 ? { preStop: { exec: { command: ['sleep', String(config.preStopDelaySeconds)] } } } : undefined,
  };
}

function mainContainer(config: ResolvedProps): Container {
  const { main } = config;
  return {
    name: CONTAINER_NAMES.main,
    ...commonContainer(config, main),
    ports: [{ name: main.portName, containerPort: main.port, protocol: 'TCP' }],
    env: toEnv(
      'main',
      [
        [MAIN_ENV.port, encodeInteger(main.port)],
        // All interfaces: the Service's main port and the kubelet's probes reach it from outside the pod.
        [MAIN_ENV.host, ADDRESSES.all],
        [MAIN_ENV.drainDelayMs, encodeInteger(config.timing.mainDrainDelayMs)],
        [MAIN_ENV.keepAliveTimeoutMs, encodeInteger(MAIN_INTEGERS.keepAliveTimeoutMs.default)],
        [MAIN_ENV.logLevel, config.logLevel],
      ],
      main.env,
    ),
    readinessProbe: httpProbe(HEALTH_PATHS.main, main.port, 5, 2),
    livenessProbe: httpProbe(HEALTH_PATHS.main, main.port, 10, 3),
  };
}

function sidecarContainer(config: ResolvedProps): Container {
  const { sidecar, main } = config;
  return {
    name: CONTAINER_NAMES.sidecar,
    ...commonContainer(config, sidecar),
    ports: [
      { name: sidecar.portName, containerPort: sidecar.port, protocol: 'TCP' },
      { name: ADMIN_PORT_NAME, containerPort: config.adminPort, protocol: 'TCP' },
    ],
    env: toEnv(
      'sidecar',
      [
        [SIDECAR_ENV.port, encodeInteger(sidecar.port)],
        // All interfaces: the Service and the kubelet's probes come from outside the pod.
        [SIDECAR_ENV.host, ADDRESSES.all],
        [SIDECAR_ENV.adminPort, encodeInteger(config.adminPort)],
        [SIDECAR_ENV.upstream, encodeUpstream(main.port)],
        [SIDECAR_ENV.upstreamHealthPath, HEALTH_PATHS.main],
        [SIDECAR_ENV.tokensDir, TOKENS_MOUNT_PATH],
        [SIDECAR_ENV.drainDelayMs, encodeInteger(config.drainDelayMs)],
        [SIDECAR_ENV.upstreamTimeoutMs, encodeInteger(config.upstreamTimeoutMs)],
        // Exit on our own before the kubelet's SIGKILL.
        [SIDECAR_ENV.shutdownTimeoutMs, encodeInteger(config.timing.sidecarShutdownTimeoutMs)],
        [SIDECAR_ENV.publicPaths, encodePublicPaths(config.publicPaths)],
        // Unset when it is the app's default, so the manifest only says what differs.
        [SIDECAR_ENV.forwardAuthorization, config.forwardAuthorization === SIDECAR_DEFAULTS.forwardAuthorization ? undefined : encodeBoolean(config.forwardAuthorization)],
        [SIDECAR_ENV.logLevel, config.logLevel],
        // Read by node itself: a memory-lean heap (see the contract).
        [NODE_OPTIONS_ENV, SIDECAR_NODE_OPTIONS],
      ],
      sidecar.env,
    ),
    volumeMounts: [{ name: TOKENS_VOLUME, mountPath: TOKENS_MOUNT_PATH, readOnly: true }],
    // Liveness: the process serves. Readiness: tokens loaded and the main service answers.
    livenessProbe: httpProbe(HEALTH_PATHS.sidecarLiveness, config.adminPort, 10, 3),
    readinessProbe: httpProbe(HEALTH_PATHS.sidecarReadiness, config.adminPort, 5, 2),
  };
}
