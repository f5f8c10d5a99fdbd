/**
 * The sidecar container: the authenticating proxy in front of main, configured entirely through
 * the contract's env (its ports, upstream, timings, routes, JWT issuers), probed on its admin port;
 * in native mode an init container that starts before main and stops after it.
 */
import { Lazy } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import {
  ADDRESSES,
  CONTAINER_NAMES,
  HEALTH_PATHS,
  NODE_OPTIONS_ENV,
  SIDECAR_DEFAULTS,
  SIDECAR_ENV,
  SIDECAR_INTEGERS,
  SIDECAR_NODE_OPTIONS,
  TOKENS_MOUNT_PATH,
  UPSTREAM_CHECKS,
  encodeBoolean,
  encodeInteger,
  encodeJwtIssuers,
  encodeUpstream,
  jwtCacheBytesFor,
} from './contract';
import { ADMIN_PORT_NAME, commonContainer, httpProbe, toEnv } from './container';
import type { ResolvedContainers } from './container';
import type { ResolvedForwarding } from './forwarding';
import type { ResolvedJwtIssuers } from './jwt-issuers';
import { SidecarMode, preStopOf } from './lifecycle';
import type { ResolvedLifecycle } from './lifecycle';
import type { ResolvedNaming } from './naming';
import { encodeCheckedRoutes } from './routes';
import { upstreamCheckOf } from './upstream-check';
import type { ResolvedUpstreamCheck } from './upstream-check';
import * as check from './validate';
import type { ResolvedRoutes } from './routes';

/** What the sidecar container is built from. */
export type SidecarContainerConfig = ResolvedContainers &
  ResolvedLifecycle &
  ResolvedForwarding &
  Pick<ResolvedNaming, 'constructPath'> & { readonly routes: ResolvedRoutes; readonly jwtIssuers: ResolvedJwtIssuers; readonly staticTokens: boolean };

/** The http check of our health path is the sidecar's default; only the other checks are written. */
function upstreamCheckEnv(upstream: ResolvedUpstreamCheck): Array<[string, string | undefined]> {
  if (upstream.check === UPSTREAM_CHECKS.http) return [[SIDECAR_ENV.upstreamHealthPath, upstream.healthPath]];
  return [[SIDECAR_ENV.upstreamCheck, upstream.check]];
}

/** The table that leaves SIDECAR_ROUTES unset: no rule, and the default default. */
const routesAreDefault = (table: ResolvedRoutes) => table.rules.length === 0 && table.default === 'authenticated';

/** SIDECAR_ROUTES as the table is at synth, checked then (typed string: cdk8s resolves the Lazy in place). */
function routesEnvValue(table: ResolvedRoutes, constructPath: string): string {
  return Lazy.any({ produce: () => check.at(constructPath, () => encodeCheckedRoutes(table)) }) as string;
}

export function sidecarContainer(config: SidecarContainerConfig): kplus.ContainerProps {
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
        // What /readyz asks of main follows main's readiness probe (upstream-check.ts); unset as the default.
        ...upstreamCheckEnv(upstreamCheckOf(config.mainOptions.readiness, main.port)),
        // Unset without static tokens: another credential source is on (the contract's rule).
        [SIDECAR_ENV.tokensDir, config.staticTokens ? TOKENS_MOUNT_PATH : undefined],
        [SIDECAR_ENV.drainDelayMs, encodeInteger(config.drainDelayMs)],
        [SIDECAR_ENV.upstreamTimeoutMs, encodeInteger(config.upstreamTimeoutMs)],
        // Exit on our own before the kubelet's SIGKILL.
        [SIDECAR_ENV.shutdownTimeoutMs, encodeInteger(config.timing.sidecarShutdownTimeoutMs)],
        // The route table carries the public paths. Unset while it is the default; produced at synth,
        // so rules addRoute appends after the constructor are in it.
        [SIDECAR_ENV.publicPaths, undefined],
        [SIDECAR_ENV.routes, routesAreDefault(config.routes) ? undefined : routesEnvValue(config.routes, config.constructPath)],
        // Unset without issuers: the file paths are where mountJwtIssuers mounts their ConfigMaps.
        [SIDECAR_ENV.jwtIssuers, encodeJwtIssuers(config.jwtIssuers.specs)],
        // The verified-JWT cache's budget follows the container's memory limit (see the contract).
        [SIDECAR_ENV.jwtCacheBytes, config.jwtIssuers.specs.length > 0 ? encodeInteger(jwtCacheBytesFor(sidecar.limits.memory.toKibibytes() * 1024)) : undefined],
        // Unset when it is the app's default, so the manifest only says what differs.
        [SIDECAR_ENV.forwardAuthorization, config.forwardAuthorization === SIDECAR_DEFAULTS.forwardAuthorization ? undefined : encodeBoolean(config.forwardAuthorization)],
        [SIDECAR_ENV.trustedProxyHops, config.trustedProxyHops === SIDECAR_INTEGERS.trustedProxyHops.default ? undefined : encodeInteger(config.trustedProxyHops)],
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

/** A table that starts as the default gets its variable with the first rule addRoute appends. */
export function addRoutesEnvOnAppend(sidecar: kplus.Container, routes: ResolvedRoutes, constructPath: string): void {
  if (!routesAreDefault(routes)) return;
  const addEnv = () => {
    if (!(SIDECAR_ENV.routes in sidecar.env.variables)) sidecar.env.addVariable(SIDECAR_ENV.routes, kplus.EnvValue.fromValue(routesEnvValue(routes, constructPath)));
  };
  routes.onAppend.push(addEnv);
}
