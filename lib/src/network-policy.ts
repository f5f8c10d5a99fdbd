/**
 * The NetworkPolicies that keep the main port from being used to skip authentication.
 *
 * Two policies, because NetworkPolicies add up: `guard` (a cdk8s-plus NetworkPolicy) isolates the
 * pods and admits the peers you name to the main and admin ports; `openPorts` admits everyone to
 * the sidecar port. "Everyone" is a rule without `from`, which cdk8s-plus cannot express for a
 * single port: its peers are pods, namespaces or IP blocks, and an IP block does not match pod
 * traffic on every network plugin.
 */
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ResolvedProps } from './props';

export interface PodPolicies {
  readonly guard: kplus.NetworkPolicy;
  readonly openPorts: k8s.KubeNetworkPolicy;
}

const tcp = (port: number) => kplus.NetworkPolicyPort.tcp(port);

export function createNetworkPolicies(scope: Construct, config: ResolvedProps, pods: kplus.IPodSelector): PodPolicies {
  const metadata = { labels: { ...config.labels } };
  const guard = new kplus.NetworkPolicy(scope, 'network-policy', {
    metadata: { ...metadata, name: config.name },
    selector: pods,
    ingress: { default: kplus.NetworkPolicyTrafficDefault.DENY },
  });
  for (const peer of config.mainPortAllowedFrom) guard.addIngressRule(peer, [tcp(config.main.port)]);
  for (const peer of config.adminPortAllowedFrom) guard.addIngressRule(peer, [tcp(config.adminPort)]);

  const open = [config.sidecar.port, ...(config.allowUnauthenticatedMainPort ? [config.main.port] : [])];
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
