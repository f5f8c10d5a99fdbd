/**
 * SidecarApp: a pod with a main container and an authenticating sidecar in front of it, the
 * Service for both, and by default NetworkPolicies that keep the main port closed. Built from
 * cdk8s-plus-28 constructs, so charts compose with it the cdk8s-plus way (Ingress backends,
 * network peers, more containers).
 */
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { createNetworkPolicies } from './network-policy';
import { createDeployment } from './pod';
import { resolveProps } from './props';
import type { ResolvedProps, SidecarAppProps } from './props';
import { createAutoscaler, createDisruptionBudget } from './scaling';
import { createService } from './service';
import * as check from './validate';
import { WAIVE_ANNOTATION } from './validation/rules';
import type { RuleId } from './validation/rules';

/** The validation rule that the main port is closed to unauthenticated sources. */
const NETWORK_POLICY_RULE: RuleId = 'network-policy';

/**
 * A pod with a main container and an authenticating sidecar in front of it, the Service for both,
 * and by default NetworkPolicies that leave only the sidecar port open to everyone.
 */
export class SidecarApp extends Construct {
  /** The Deployment running the pod. */
  readonly deployment: kplus.Deployment;
  /** The ClusterIP Service with the main and the sidecar port. */
  readonly service: kplus.Service;
  /** Isolates the pods and admits the named peers to the main and admin ports; unless turned off. */
  readonly networkPolicy?: kplus.NetworkPolicy;
  /** Admits everyone to the sidecar port (and the main port with `allowUnauthenticatedMainPort`). */
  readonly openPortsPolicy?: k8s.KubeNetworkPolicy;
  /** Present with more than one replica or with autoscaling. */
  readonly podDisruptionBudget?: k8s.KubePodDisruptionBudget;
  /** Present when `autoscaling` is set. */
  readonly horizontalPodAutoscaler?: kplus.HorizontalPodAutoscaler;
  /** Base name of every object. */
  readonly name: string;
  /** Service port name in front of the main container. */
  readonly mainPortName: string;
  /** Service port name in front of the sidecar: the one clients should use. */
  readonly sidecarPortName: string;
  /** Service port number in front of the main container. */
  readonly mainServicePort: number;
  /** Service port number in front of the sidecar: the one clients, Ingresses and routes should use. */
  readonly sidecarServicePort: number;
  /** Name of the Secret the tokens are read from. */
  readonly tokenSecretName: string;
  /** Labels that select this app's pods. */
  readonly selectorLabels: { [key: string]: string };

  private readonly config: ResolvedProps;

  constructor(scope: Construct, id: string, props: SidecarAppProps = {}) {
    super(scope, id);
    const config = resolveProps(this, props);
    this.config = config;
    this.name = config.name;
    this.mainPortName = config.mainServicePortName;
    this.sidecarPortName = config.sidecarServicePortName;
    this.mainServicePort = config.mainServicePort;
    this.sidecarServicePort = config.sidecarServicePort;
    this.tokenSecretName = config.tokenSecretName;
    this.selectorLabels = { ...config.selectorLabels };

    this.deployment = createDeployment(this, config);
    // Selected by the app's own labels, so other charts can select the same pods the same way.
    const pods = kplus.Pods.select(this, 'pods', { labels: { ...config.selectorLabels } });
    this.service = createService(this, config, pods);
    if (config.networkPolicy) {
      const policies = createNetworkPolicies(this, config, pods);
      this.networkPolicy = policies.guard;
      this.openPortsPolicy = policies.openPorts;
    }
    if (config.allowUnauthenticatedMainPort) {
      // A deliberate, documented choice: the synth-time validation must not fail on it.
      this.deployment.metadata.addAnnotation(WAIVE_ANNOTATION, NETWORK_POLICY_RULE);
      console.warn(
        `SidecarApp ${config.name}: allowUnauthenticatedMainPort is set; port ${config.main.port} of the main container accepts requests that bypass authentication.`,
      );
    }
    if (config.spreadsOverNodes) this.podDisruptionBudget = createDisruptionBudget(this, config);
    if (config.autoscaling) this.horizontalPodAutoscaler = createAutoscaler(this, { ...config, autoscaling: config.autoscaling }, this.deployment);
  }

  /** Admit `peer` to the admin port (/healthz, /readyz, /metrics), e.g. your Prometheus pods. */
  allowAdminFrom(peer: kplus.INetworkPolicyPeer): void {
    this.guard('allowAdminFrom').addIngressRule(peer, [kplus.NetworkPolicyPort.tcp(this.config.adminPort)]);
  }

  /** Admit `peer` to the main port directly, bypassing authentication. */
  allowMainFrom(peer: kplus.INetworkPolicyPeer): void {
    this.guard('allowMainFrom').addIngressRule(peer, [kplus.NetworkPolicyPort.tcp(this.config.main.port)]);
  }

  private guard(method: string): kplus.NetworkPolicy {
    if (this.networkPolicy === undefined) check.fail('networkPolicy', `is false for SidecarApp ${this.name}: ${method} needs the NetworkPolicy it turns off`);
    return this.networkPolicy;
  }
}
