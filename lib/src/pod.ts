/**
 * The Deployment and its pod: the main container and the authenticating sidecar in front of it,
 * wired through the contract's env, hardened, with the tokens Secret mounted as a directory.
 * Every default cdk8s-plus would add on its own (resource requests, pull policy, hashed names, a
 * non-numeric non-root user) is set here on purpose. Its pod address label stays: cdk8s-plus selects
 * these pods by it when a chart passes `app.deployment` as a peer or selector.
 */
import { ApiObject, Duration, JsonPatch, Lazy } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import {
  ADDRESSES,
  CONTAINER_NAMES,
  HEALTH_PATHS,
  MAIN_ENV,
  MAIN_INTEGERS,
  NODE_OPTIONS_ENV,
  RUN_AS,
  SIDECAR_DEFAULTS,
  SIDECAR_ENV,
  SIDECAR_NODE_OPTIONS,
  TOKENS_MOUNT_PATH,
  encodeBoolean,
  encodeDrainHook,
  encodeInteger,
  encodeJwtIssuers,
  encodeUpstream,
} from './contract';
import { ADMIN_PORT_NAME, SidecarMode } from './props';
import type { ResolvedContainer, ResolvedProps } from './props';
import { encodeCheckedRoutes } from './routes';
import type { ResolvedRoutes } from './routes';
import * as check from './validate';

const TOKENS_VOLUME = 'tokens';
/** Volume names of the JWT issuers' ConfigMaps: the prefix and the issuer's index (issuer names are no DNS labels). */
const JWKS_VOLUME_PREFIX = 'jwks-';

/** Keeps at most this many old ReplicaSets for `kubectl rollout undo`. */
const REVISION_HISTORY_LIMIT = 3;

function containerSecurityContext(): kplus.ContainerSecurityContextProps {
  return {
    ensureNonRoot: true,
    // Numeric: a kubelet refuses runAsNonRoot with a non-numeric image USER it cannot verify.
    user: RUN_AS.user,
    group: RUN_AS.group,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: [kplus.Capability.ALL] },
    seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
  };
}

function httpProbe(path: string, port: number, periodSeconds: number, failureThreshold: number): kplus.Probe {
  return kplus.Probe.fromHttpGet(path, {
    port,
    scheme: kplus.ConnectionScheme.HTTP,
    periodSeconds: Duration.seconds(periodSeconds),
    timeoutSeconds: Duration.seconds(2),
    failureThreshold,
    successThreshold: 1,
  });
}

/** The table that leaves SIDECAR_ROUTES unset: no rule, and the default default. */
const routesAreDefault = (table: ResolvedRoutes) => table.rules.length === 0 && table.default === 'authenticated';

/** SIDECAR_ROUTES as the table is at synth, checked then (typed string: cdk8s resolves the Lazy in place). */
function routesEnvValue(table: ResolvedRoutes): string {
  return Lazy.any({ produce: () => encodeCheckedRoutes(table) }) as string;
}

/** Env the construct owns, then the user's extra env; a user entry with an owned name is refused. */
function toEnv(which: 'main' | 'sidecar', owned: ReadonlyArray<readonly [string, string | undefined]>, extra: Readonly<Record<string, string>>): Record<string, kplus.EnvValue> {
  const env: Record<string, kplus.EnvValue> = {};
  for (const [name, value] of owned) if (value !== undefined) env[name] = kplus.EnvValue.fromValue(value);
  for (const [name, value] of Object.entries(extra)) {
    // Also the unset ones (e.g. SIDECAR_PUBLIC_PATHS): their props are the checked way in.
    if (owned.some(([ownedName]) => ownedName === name)) check.fail(`${which}.env`, `must not set ${name}: SidecarApp sets it from its props`);
    env[name] = kplus.EnvValue.fromValue(value);
  }
  return env;
}

/**
 * What runs before SIGTERM. Container mode: both sleep, so the endpoint removal reaches every node.
 * Native mode: main's hook is the sidecar's drain, which answers once the sidecar is closed; the
 * sidecar, stopped after main, needs none.
 */
function preStopOf(config: ResolvedProps, which: 'main' | 'sidecar'): kplus.ContainerLifecycle | undefined {
  if (config.sidecarMode === SidecarMode.NATIVE) {
    return which === 'main' ? { preStop: kplus.Handler.fromHttpGet(encodeDrainHook(config.drainDelayMs), { port: config.adminPort }) } : undefined;
  }
  return config.preStopDelaySeconds > 0 ? { preStop: kplus.Handler.fromCommand(['sleep', String(config.preStopDelaySeconds)]) } : undefined;
}

function commonContainer(config: ResolvedProps, c: ResolvedContainer, portName: string): Omit<kplus.ContainerProps, 'name' | 'envVariables'> {
  return {
    image: c.image,
    imagePullPolicy: config.imagePullPolicy,
    args: c.args,
    ports: [{ name: portName, number: c.port, protocol: kplus.Protocol.TCP }],
    resources: {
      cpu: { request: c.requests.cpu, limit: c.limits.cpu },
      memory: { request: c.requests.memory, limit: c.limits.memory },
    },
    securityContext: containerSecurityContext(),
  };
}

function mainContainer(config: ResolvedProps): kplus.ContainerProps {
  const { main } = config;
  return {
    name: CONTAINER_NAMES.main,
    ...commonContainer(config, main, main.portName),
    lifecycle: preStopOf(config, 'main'),
    envVariables: toEnv(
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
    readiness: httpProbe(HEALTH_PATHS.main, main.port, 5, 2),
    liveness: httpProbe(HEALTH_PATHS.main, main.port, 10, 3),
  };
}

function sidecarContainer(config: ResolvedProps): kplus.ContainerProps {
  const { sidecar, main } = config;
  return {
    name: CONTAINER_NAMES.sidecar,
    ...commonContainer(config, sidecar, sidecar.portName),
    lifecycle: preStopOf(config, 'sidecar'),
    ports: [
      { name: sidecar.portName, number: sidecar.port, protocol: kplus.Protocol.TCP },
      { name: ADMIN_PORT_NAME, number: config.adminPort, protocol: kplus.Protocol.TCP },
    ],
    envVariables: toEnv(
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
        // The route table carries the public paths. Unset while it is the default; produced at synth,
        // so rules addRoute appends after the constructor are in it.
        [SIDECAR_ENV.publicPaths, undefined],
        [SIDECAR_ENV.routes, routesAreDefault(config.routes) ? undefined : routesEnvValue(config.routes)],
        // Unset without issuers: the file paths are where createDeployment mounts their ConfigMaps.
        [SIDECAR_ENV.jwtIssuers, encodeJwtIssuers(config.jwtIssuers.specs)],
        // Unset when it is the app's default, so the manifest only says what differs.
        [SIDECAR_ENV.forwardAuthorization, config.forwardAuthorization === SIDECAR_DEFAULTS.forwardAuthorization ? undefined : encodeBoolean(config.forwardAuthorization)],
        [SIDECAR_ENV.logLevel, config.logLevel],
        // Main's preStop calls it; in container mode nobody should be able to.
        [SIDECAR_ENV.drainHook, config.sidecarMode === SidecarMode.NATIVE ? encodeBoolean(true) : undefined],
        // Read by node itself: a memory-lean heap (see the contract).
        [NODE_OPTIONS_ENV, SIDECAR_NODE_OPTIONS],
      ],
      sidecar.env,
    ),
    // Liveness: the process serves. Readiness: tokens loaded and the main service answers.
    liveness: httpProbe(HEALTH_PATHS.sidecarLiveness, config.adminPort, 10, 3),
    readiness: httpProbe(HEALTH_PATHS.sidecarReadiness, config.adminPort, 5, 2),
    // Native mode: main starts once this passes (readiness cannot gate it: it needs main).
    startup: config.sidecarMode === SidecarMode.NATIVE ? httpProbe(HEALTH_PATHS.sidecarLiveness, config.adminPort, 1, 30) : undefined,
    restartPolicy: config.sidecarMode === SidecarMode.NATIVE ? kplus.ContainerRestartPolicy.ALWAYS : undefined,
  };
}

/** The Deployment running the pod. */
export function createDeployment(scope: Construct, config: ResolvedProps, serviceAccount: kplus.IServiceAccount): kplus.Deployment {
  const deployment = new kplus.Deployment(scope, 'deployment', {
    metadata: { name: config.name, labels: { ...config.labels } },
    // Our own selector labels, not cdk8s-plus's generated one: other charts select these pods by them.
    select: false,
    podMetadata: { labels: { ...config.labels } },
    // With an autoscaler, the HorizontalPodAutoscaler owns the count.
    replicas: config.autoscaling ? undefined : config.replicas,
    // Start the new pod before stopping an old one: capacity never drops.
    strategy: kplus.DeploymentStrategy.rollingUpdate({ maxSurge: kplus.PercentOrAbsolute.absolute(1), maxUnavailable: kplus.PercentOrAbsolute.absolute(0) }),
    // Its own account, as its identity; no token is mounted but the projections that need one.
    serviceAccount,
    automountServiceAccountToken: false,
    terminationGracePeriod: Duration.seconds(config.terminationGracePeriodSeconds),
    securityContext: {
      ensureNonRoot: true,
      user: RUN_AS.user,
      group: RUN_AS.group,
      // Lets the non-root user read the token files.
      fsGroup: RUN_AS.group,
    },
    containers: config.sidecarMode === SidecarMode.NATIVE ? [mainContainer(config)] : [mainContainer(config), sidecarContainer(config)],
    initContainers: config.sidecarMode === SidecarMode.NATIVE ? [sidecarContainer(config)] : undefined,
  });
  deployment.select(kplus.LabelSelector.of({ labels: { ...config.selectorLabels } }));

  // A directory mount (no subPath), so a rotated Secret reaches the running pod.
  const tokens = kplus.Volume.fromSecret(scope, 'tokens', kplus.Secret.fromSecretName(scope, 'token-secret', config.tokenSecretName), {
    name: TOKENS_VOLUME,
    defaultMode: 0o440,
    optional: false,
  });
  const sidecar = [...deployment.containers, ...deployment.initContainers].find((c) => c.name === CONTAINER_NAMES.sidecar)!;
  sidecar.mount(TOKENS_MOUNT_PATH, tokens, { readOnly: true });
  // A table that starts as the default gets its variable with the first rule addRoute appends.
  if (routesAreDefault(config.routes)) {
    const addEnv = () => {
      if (!(SIDECAR_ENV.routes in sidecar.env.variables)) sidecar.env.addVariable(SIDECAR_ENV.routes, kplus.EnvValue.fromValue(routesEnvValue(config.routes)));
    };
    config.routes.onAppend.push(addEnv);
  }
  // Each JWT issuer's ConfigMap (its JWKS, or the CA of its jwksUrl), into the sidecar only, also
  // as a directory: an edited ConfigMap reaches the pod, and the sidecar reloads the JWKS file.
  // An HMAC issuer's Secret the same way, readable by the pod's group only.
  config.jwtIssuers.mounts.forEach((m, i) => {
    const volume =
      m.secret !== undefined
        ? kplus.Volume.fromSecret(scope, `jwks-${i}`, kplus.Secret.fromSecretName(scope, `jwks-secret-${i}`, m.secret), { name: `${JWKS_VOLUME_PREFIX}${i}`, defaultMode: 0o440, optional: false })
        : kplus.Volume.fromConfigMap(scope, `jwks-${i}`, kplus.ConfigMap.fromConfigMapName(scope, `jwks-configmap-${i}`, m.configMap!), {
            name: `${JWKS_VOLUME_PREFIX}${i}`,
            defaultMode: 0o444,
            optional: false,
          });
    sidecar.mount(m.path, volume, { readOnly: true });
  });

  // What cdk8s-plus has no prop for.
  const podSpec = '/spec/template/spec';
  const resource = ApiObject.of(deployment);
  resource.addJsonPatch(JsonPatch.add('/spec/revisionHistoryLimit', REVISION_HISTORY_LIMIT));
  // No service-link env vars: the apps read only the contract's env.
  resource.addJsonPatch(JsonPatch.add(`${podSpec}/enableServiceLinks`, false));
  resource.addJsonPatch(JsonPatch.add(`${podSpec}/securityContext/seccompProfile`, { type: kplus.SeccompProfileType.RUNTIME_DEFAULT }));
  if (config.spreadsOverNodes) {
    resource.addJsonPatch(
      JsonPatch.add(`${podSpec}/topologySpreadConstraints`, [
        {
          maxSkew: 1,
          topologyKey: 'kubernetes.io/hostname',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: { ...config.selectorLabels } },
          // Count only the pods of the same revision, so a rollout is not skewed by old pods.
          matchLabelKeys: ['pod-template-hash'],
        },
      ]),
    );
  }
  return deployment;
}
