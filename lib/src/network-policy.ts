/**
 * The NetworkPolicies that keep the main port from being used to skip authentication.
 *
 * Two policies, because NetworkPolicies add up: `guard` (a cdk8s-plus NetworkPolicy) isolates the
 * pods and admits the peers you name to the main, admin and (once restricted) sidecar ports;
 * `openPorts` admits everyone to the sidecar port unless `sidecarPortAllowedFrom` restricts it.
 * "Everyone" is a rule without `from`, which cdk8s-plus cannot express for a single port: its peers
 * are pods, namespaces or IP blocks, and an IP block does not match pod traffic on every network plugin.
 */
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ResolvedContainers } from './container';
import type { ResolvedNaming } from './naming';
import * as check from './validate';

/**
 * The NetworkPolicy props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its
 * members into SidecarAppProps.
 * @jsii ignore
 */
export interface NetworkPolicyProps {
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
   * Who may reach the sidecar port. Unset, every source may: an Ingress controller in any namespace
   * works out of the box, and the sidecar's authentication is what keeps strangers out. Set (an
   * empty list too), only these peers may, and the callers `allowCallsFrom` connects; more can be
   * added with `allowSidecarFrom`. Name an Ingress controller by its namespace or its pods, e.g.
   * `kplus.Namespaces.select(this, 'ingress', { names: ['ingress-nginx'] })` (which selects by the
   * `kubernetes.io/metadata.name` label, set by Kubernetes 1.21 and later).
   * @default - every source: the sidecar port is open
   */
  readonly sidecarPortAllowedFrom?: kplus.INetworkPolicyPeer[];
  /**
   * Deliberately leave the main port reachable without authentication: with NetworkPolicies the
   * main port is opened to all, without them this is required. Prints a warning at synth.
   * @default false
   */
  readonly allowUnauthenticatedMainPort?: boolean;
}

export interface ResolvedNetworkPolicy {
  readonly networkPolicy: boolean;
  readonly mainPortAllowedFrom: readonly kplus.INetworkPolicyPeer[];
  readonly adminPortAllowedFrom: readonly kplus.INetworkPolicyPeer[];
  /** undefined: the sidecar port is open to every source. */
  readonly sidecarPortAllowedFrom: readonly kplus.INetworkPolicyPeer[] | undefined;
  readonly allowUnauthenticatedMainPort: boolean;
}

/** Without the policies the main port is open: only on purpose. */
export function resolveNetworkPolicy(props: NetworkPolicyProps): ResolvedNetworkPolicy {
  const networkPolicy = props.networkPolicy ?? true;
  const allowUnauthenticatedMainPort = props.allowUnauthenticatedMainPort ?? false;
  if (!networkPolicy && !allowUnauthenticatedMainPort) {
    check.fail(
      'networkPolicy',
      'is false, which leaves the main port open to requests that bypass authentication; set allowUnauthenticatedMainPort: true to accept that',
    );
  }
  const sidecarPortAllowedFrom = props.sidecarPortAllowedFrom;
  if (sidecarPortAllowedFrom !== undefined && !Array.isArray(sidecarPortAllowedFrom)) check.fail('sidecarPortAllowedFrom', 'must be a list of network peers');
  if (sidecarPortAllowedFrom !== undefined && !networkPolicy) check.fail('sidecarPortAllowedFrom', 'needs the NetworkPolicy that networkPolicy: false turns off');
  return {
    networkPolicy,
    mainPortAllowedFrom: props.mainPortAllowedFrom ?? [],
    adminPortAllowedFrom: props.adminPortAllowedFrom ?? [],
    sidecarPortAllowedFrom: sidecarPortAllowedFrom === undefined ? undefined : [...sidecarPortAllowedFrom],
    allowUnauthenticatedMainPort,
  };
}

/** What the policies are built from: the names, the peers, and the pod's ports. */
type PoliciesConfig = ResolvedNaming & ResolvedNetworkPolicy & Pick<ResolvedContainers, 'main' | 'sidecar' | 'adminPort'>;

export interface PodPolicies {
  readonly guard: kplus.NetworkPolicy;
  /** Absent when it would admit no one: the sidecar port restricted, the main port closed. */
  readonly openPorts?: k8s.KubeNetworkPolicy;
}

const tcp = (port: number) => kplus.NetworkPolicyPort.tcp(port);

export function createNetworkPolicies(scope: Construct, config: PoliciesConfig, pods: kplus.IPodSelector): PodPolicies {
  const metadata = { labels: { ...config.labels } };
  const guard = new kplus.NetworkPolicy(scope, 'network-policy', {
    metadata: { ...metadata, name: config.name },
    selector: pods,
    ingress: { default: kplus.NetworkPolicyTrafficDefault.DENY },
  });
  for (const peer of config.mainPortAllowedFrom) guard.addIngressRule(peer, [tcp(config.main.port)]);
  for (const peer of config.adminPortAllowedFrom) guard.addIngressRule(peer, [tcp(config.adminPort)]);
  for (const peer of config.sidecarPortAllowedFrom ?? []) guard.addIngressRule(peer, [tcp(config.sidecar.port)]);

  const open = [...(config.sidecarPortAllowedFrom === undefined ? [config.sidecar.port] : []), ...(config.allowUnauthenticatedMainPort ? [config.main.port] : [])];
  if (open.length === 0) return { guard };
  const openPorts = new k8s.KubeNetworkPolicy(scope, 'open-ports', {
    metadata: { ...metadata, name: `${config.name}-open-ports` },
    spec: {
      podSelector: { matchLabels: { ...config.selectorLabels } },
      policyTypes: ['Ingress'],
      // A rule without `from` admits every source.
      ingress: open.map((port) => ({ ports: [{ port: k8s.IntOrString.fromNumber(port), protocol: 'TCP' }] })),
    },
  });
  return { guard, openPorts };
}
