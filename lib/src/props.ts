/**
 * SidecarAppProps and `resolveProps`: props in, one checked value out. Each concern keeps its
 * props (with their JSDoc defaults), its defaults and its checks in its own file; this file only
 * puts them together. Every check names the prop and fails at synth.
 */
import { Construct } from 'constructs';
import type { KubernetesAuthSpec } from './contract';
import { resolveContainers } from './container';
import type { ContainersProps, ResolvedContainers } from './container';
import { resolveForwarding } from './forwarding';
import type { ForwardingProps, ResolvedForwarding } from './forwarding';
import { resolveServiceAccountAuth } from './identity';
import type { ServiceAccountAuthProps } from './identity';
import { resolveJwtIssuers } from './jwt-issuers';
import type { JwtIssuersProps, ResolvedJwtIssuers } from './jwt-issuers';
import { resolveLifecycle } from './lifecycle';
import { refuseCredentialMounts } from './main-options';
import type { LifecycleProps, ResolvedLifecycle } from './lifecycle';
import { resolveNaming } from './naming';
import type { NamingProps, ResolvedNaming } from './naming';
import { resolveNetworkPolicy } from './network-policy';
import { resolvePodOptions } from './pod-options';
import type { PodOptionsProps, ResolvedPodOptions } from './pod-options';
import type { NetworkPolicyProps, ResolvedNetworkPolicy } from './network-policy';
import { resolveRoutes } from './routes';
import type { ResolvedRoutes, RoutesProps } from './routes';
import { resolveScaling } from './scaling';
import type { ResolvedScaling, ScalingProps } from './scaling';
import { resolveServicePorts } from './service';
import type { ResolvedServicePorts, ServicePortsProps } from './service';
import { resolveTokens } from './tokens';
import type { ResolvedTokens, TokensProps } from './tokens';

/** Props of SidecarApp: every one is optional, and an invalid one fails at synth naming it. */
export interface SidecarAppProps
  extends NamingProps,
    ScalingProps,
    ContainersProps,
    PodOptionsProps,
    ServicePortsProps,
    TokensProps,
    ForwardingProps,
    RoutesProps,
    LifecycleProps,
    NetworkPolicyProps,
    JwtIssuersProps,
    ServiceAccountAuthProps {}

/** Every prop with its default applied, checked once. */
export interface ResolvedProps
  extends ResolvedNaming,
    ResolvedScaling,
    ResolvedContainers,
    ResolvedPodOptions,
    ResolvedServicePorts,
    ResolvedTokens,
    ResolvedForwarding,
    ResolvedLifecycle,
    ResolvedNetworkPolicy {
  /** publicPaths and routes as one table; `addRoute` appends to it until synth. */
  readonly routes: ResolvedRoutes;
  readonly jwtIssuers: ResolvedJwtIssuers;
  /** SIDECAR_KUBERNETES_AUTH; undefined: service-account auth is off (until allowCallsFrom). */
  readonly kubernetesAuth: KubernetesAuthSpec | undefined;
}

/** Each concern in turn; the first bad prop fails. Routes come after the issuers their claim rules name. */
export function resolveProps(app: Construct, props: SidecarAppProps): ResolvedProps {
  const naming = resolveNaming(app, props);
  const containers = resolveContainers(props);
  const podOptions = resolvePodOptions(props);
  const servicePorts = resolveServicePorts(props, containers);
  const lifecycle = resolveLifecycle(props);
  const scaling = resolveScaling(props);
  const networkPolicy = resolveNetworkPolicy(props);
  const jwtIssuers = resolveJwtIssuers(props.jwtIssuers ?? []);
  const tokens = resolveTokens(props, naming.name, { jwtIssuers: jwtIssuers.specs.length > 0, serviceAccountAuth: props.serviceAccountAuth !== undefined });
  // Main never mounts what the sidecar judges requests by.
  refuseCredentialMounts(containers.mainOptions, [tokens.tokenSecretName, ...jwtIssuers.mounts.map((m) => m.secret)].filter((n): n is string => n !== undefined));
  const forwarding = resolveForwarding(props);
  const routes = resolveRoutes(props, jwtIssuers.specs.map((s) => s.name));
  const kubernetesAuth = resolveServiceAccountAuth(props.serviceAccountAuth, naming.name);
  return { ...naming, ...containers, ...podOptions, ...servicePorts, ...lifecycle, ...scaling, ...networkPolicy, ...tokens, ...forwarding, routes, jwtIssuers, kubernetesAuth };
}
