/**
 * SidecarApp: a pod with a main container and an authenticating sidecar in front of it, the
 * Service for both, and by default NetworkPolicies that keep the main port closed. Built from
 * cdk8s-plus-28 constructs, so charts compose with it the cdk8s-plus way (Ingress backends,
 * network peers, more containers).
 */
import { Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { CONTAINER_NAMES, serviceAccountSubject } from './contract';
import type { KubernetesAuthSpec } from './contract';
import { createServiceAccount, enableServiceAccountAuth, mountCallerToken, resolveServiceAccountAuth } from './identity';
import { createNetworkPolicies } from './network-policy';
import { createDeployment } from './pod';
import { resolveProps } from './props';
import type { ResolvedProps, SidecarAppProps } from './props';
import { RouteEffect, appendRule } from './routes';
import type { RouteRule } from './routes';
import { createAutoscaler, createDisruptionBudget } from './scaling';
import { createService } from './service';
import * as check from './validate';
import { WAIVE_ANNOTATION } from './validation/rules';
import { weakeningsOf } from './weakenings';

/**
 * A pod with a main container and an authenticating sidecar in front of it, the Service for both,
 * and by default NetworkPolicies that leave only the sidecar port open to everyone.
 */
export class SidecarApp extends Construct {
  /** The Deployment running the pod. */
  readonly deployment: kplus.Deployment;
  /** The ClusterIP Service with the main and the sidecar port. */
  readonly service: kplus.Service;
  /** Isolates the pods and admits the named peers to the main, admin and (once restricted) sidecar ports; unless turned off. */
  readonly networkPolicy?: kplus.NetworkPolicy;
  /**
   * Admits everyone to the sidecar port (unless `sidecarPortAllowedFrom` restricts it) and the main
   * port with `allowUnauthenticatedMainPort`; absent when it would admit no one.
   */
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
  /** Name of the Secret the static tokens are read from; undefined when `staticTokens` is off. */
  readonly tokenSecretName?: string;
  /** Labels that select this app's pods. */
  readonly selectorLabels: { [key: string]: string };
  /** The pods' own ServiceAccount (named like the app): their identity as callers. No token is automounted. */
  readonly serviceAccount: kplus.ServiceAccount;

  private readonly config: ResolvedProps;
  /** SIDECAR_KUBERNETES_AUTH once service-account auth is on. */
  private kubernetesAuth: KubernetesAuthSpec | undefined;
  /** The subjects of the rule allowCallsFrom appends; the rule is added once, then grows. */
  private callerSubjects: string[] | undefined;
  /** Construct paths of the connected callers: connecting one twice changes nothing. */
  private readonly callers = new Set<string>();

  constructor(scope: Construct, id: string, props: SidecarAppProps = {}) {
    super(scope, id);
    // Every error below names this construct path and the prop (SidecarApp shop/api: main.port ...).
    try {
      const config = resolveProps(this, props);
      this.config = config;
      this.name = config.name;
      this.mainPortName = config.mainServicePortName;
      this.sidecarPortName = config.sidecarServicePortName;
      this.mainServicePort = config.mainServicePort;
      this.sidecarServicePort = config.sidecarServicePort;
      this.tokenSecretName = config.tokenSecretName;
      this.selectorLabels = { ...config.selectorLabels };
      refuseTakenName(this, props.name === undefined ? 'name (derived from the construct id)' : 'name');

      this.serviceAccount = createServiceAccount(this, config.name, config.labels);
      this.deployment = createDeployment(this, config, this.serviceAccount);
      if (config.kubernetesAuth !== undefined) this.turnOnServiceAccountAuth(config.kubernetesAuth);
      // Selected by the app's own labels, so other charts can select the same pods the same way.
      const pods = kplus.Pods.select(this, 'pods', { labels: { ...config.selectorLabels } });
      this.service = createService(this, config, pods);
      if (config.networkPolicy) {
        const policies = createNetworkPolicies(this, config, pods);
        this.networkPolicy = policies.guard;
        this.openPortsPolicy = policies.openPorts;
      }
      const weakenings = weakeningsOf(config);
      if (weakenings.length > 0) {
        // Deliberate, documented choices: the synth-time validation reports them as waived, not failed.
        this.deployment.metadata.addAnnotation(WAIVE_ANNOTATION, weakenings.map((w) => w.rule).join(','));
        for (const w of weakenings) console.warn(`SidecarApp ${this.node.path}: ${w.warning}`);
      }
      if (config.spreadsOverNodes) this.podDisruptionBudget = createDisruptionBudget(this, config);
      if (config.autoscaling) this.horizontalPodAutoscaler = createAutoscaler(this, { ...config, autoscaling: config.autoscaling }, this.deployment);
    } catch (error) {
      throw check.located(error, this.node.path);
    }
  }

  /** Admit `peer` to the admin port (/healthz, /readyz, /metrics), e.g. your Prometheus pods. */
  allowAdminFrom(peer: kplus.INetworkPolicyPeer): void {
    check.at(this.node.path, () => this.guard('allowAdminFrom').addIngressRule(peer, [kplus.NetworkPolicyPort.tcp(this.config.adminPort)]));
  }

  /** Admit `peer` to the main port directly, bypassing authentication. */
  allowMainFrom(peer: kplus.INetworkPolicyPeer): void {
    check.at(this.node.path, () => this.guard('allowMainFrom').addIngressRule(peer, [kplus.NetworkPolicyPort.tcp(this.config.main.port)]));
  }

  /**
   * Admit `peer` to the sidecar port, once `sidecarPortAllowedFrom` has closed it to everyone else
   * (an Ingress controller's namespace or pods, a client workload). Without that prop the port is
   * open to every source, and this fails rather than restrict nothing.
   */
  allowSidecarFrom(peer: kplus.INetworkPolicyPeer): void {
    check.at(this.node.path, () => {
      const guard = this.guard('allowSidecarFrom');
      if (this.config.sidecarPortAllowedFrom === undefined) {
        check.fail('allowSidecarFrom', 'would restrict nothing: the sidecar port is open to every source; set sidecarPortAllowedFrom (e.g. to []) to admit only the peers you name');
      }
      guard.addIngressRule(peer, [kplus.NetworkPolicyPort.tcp(this.config.sidecar.port)]);
    });
  }

  /**
   * Append a route rule after those of the props (publicPaths, then routes); it reaches the manifest
   * at synth. Checked at once with the whole table: a rule an earlier one shadows is refused.
   */
  addRoute(rule: RouteRule): void {
    check.at(this.node.path, () => appendRule(this.config.routes, rule));
  }

  /**
   * Connect a caller: `caller` (another SidecarApp, or any cdk8s-plus workload with a
   * ServiceAccount of its own) may call this app through its sidecar port.
   * - The caller's pods get a projected service-account token with this app's audience, mounted
   *   read-only, and an env var naming its file: `<NAME>_TOKEN_FILE` (`ORDERS_TOKEN_FILE` for an app
   *   named "orders"). A SidecarApp caller gets it in its main container, a workload in every container.
   * - This app's sidecar verifies service-account tokens (`serviceAccountAuth`, defaults if unset),
   *   and a last rule `/*` admits exactly the connected service accounts: another account, even with
   *   a token for this audience, gets 403 there. Rules added after it would never match: add them
   *   before. An earlier `authenticated` rule would admit every pod of the cluster, so it is refused
   *   unless `serviceAccountAuth` was set on purpose.
   * - The callers of the other sources keep what they had: with `defaultRouteEffect` AUTHENTICATED
   *   (the default), the `/*` rule also admits every static token (`anyStaticToken`, when
   *   `staticTokens` is on) and every JWT issuer's callers (`<issuer>:*`), as the default did on the
   *   paths it now decides. With DENY it admits only the connected service accounts: static tokens and
   *   JWTs had 403 there before too. So connecting a caller narrows service accounts only.
   * - This app's NetworkPolicy admits the caller's pods on the sidecar port, never on the main port.
   *
   * The caller's namespace must be known (its metadata or its Chart's `namespace`): it is part of
   * the service account's identity.
   */
  allowCallsFrom(caller: SidecarApp | kplus.AbstractPod): void {
    check.at(this.node.path, () => this.connectCaller(caller));
  }

  private connectCaller(caller: SidecarApp | kplus.AbstractPod): void {
    if (this.callers.has(caller.node.path)) return;
    if (caller === this) check.fail('allowCallsFrom', `names this SidecarApp itself: its main container reaches itself over loopback, and a connection to itself would only admit its own service account; pass the SidecarApp or workload that calls ${this.name}`);
    const { account, namespace, containers, peer } = callerOf(caller, this.name);
    if (this.kubernetesAuth === undefined) this.refuseOpenRules();
    const auth = this.kubernetesAuth ?? resolveServiceAccountAuth({}, this.name)!;
    if (this.kubernetesAuth === undefined) this.turnOnServiceAccountAuth(auth);
    mountCallerToken(caller, containers, this.name, auth.audiences[0]);
    const subject = serviceAccountSubject(namespace, account);
    if (this.callerSubjects === undefined) {
      this.addRoute({ path: '/*', effect: RouteEffect.SUBJECTS, subjects: [subject, ...this.keptSubjects()], ...(this.keepsStaticTokens() ? { anyStaticToken: true } : {}) });
      this.callerSubjects = this.config.routes.rules[this.config.routes.rules.length - 1].subjects as string[];
    } else if (!this.callerSubjects.includes(subject)) {
      this.callerSubjects.push(subject);
    }
    // Without the NetworkPolicy (networkPolicy: false) every source reaches every port anyway.
    this.networkPolicy?.addIngressRule(peer, [kplus.NetworkPolicyPort.tcp(this.config.sidecar.port)]);
    this.callers.add(caller.node.path);
  }

  /**
   * What the default admitted before the `/*` rule took the requests no earlier rule decides: with
   * the default `authenticated`, every JWT issuer's callers (`<issuer>:*`) and every static token.
   * The rule keeps them; it only narrows the service accounts. With `deny` there is nothing to keep.
   */
  private keptSubjects(): string[] {
    if (this.config.routes.default !== 'authenticated') return [];
    return this.config.jwtIssuers.specs.map((s) => `${s.name}:*`);
  }

  private keepsStaticTokens(): boolean {
    return this.config.routes.default === 'authenticated' && this.config.staticTokens;
  }

  /**
   * Any pod of the cluster can ask for a token for any audience, so with service-account auth an
   * `authenticated` rule admits every workload. When allowCallsFrom is what turns it on, such a rule
   * would open silently: refuse it, unless serviceAccountAuth was set on purpose.
   */
  private refuseOpenRules(): void {
    const { rules, origins } = this.config.routes;
    const open = rules.findIndex((r) => r.effect === 'authenticated');
    if (open === -1) return;
    check.fail(
      `allowCallsFrom (into ${this.name})`,
      `${origins[open]} (${rules[open].path}) admits any authenticated caller, and the service-account auth allowCallsFrom turns on would make that every pod of the cluster (any pod may ask for a token for "${this.name}"): make it a subjects rule, or set serviceAccountAuth to accept that`,
    );
  }

  private turnOnServiceAccountAuth(auth: KubernetesAuthSpec): void {
    this.kubernetesAuth = auth;
    enableServiceAccountAuth(this, this.sidecarContainer(), auth);
  }

  private sidecarContainer(): kplus.Container {
    return [...this.deployment.containers, ...this.deployment.initContainers].find((c) => c.name === CONTAINER_NAMES.sidecar)!;
  }

  /** The container the app's own code runs in. */
  get mainContainer(): kplus.Container {
    return this.deployment.containers.find((c) => c.name === CONTAINER_NAMES.main)!;
  }

  private guard(method: string): kplus.NetworkPolicy {
    if (this.networkPolicy === undefined) check.fail(method, 'needs the NetworkPolicy that networkPolicy: false turns off');
    return this.networkPolicy;
  }
}

/**
 * Two SidecarApps of one name in one namespace would write the same objects (Deployment, Service,
 * NetworkPolicies, ...), and `kubectl apply` would silently keep the last: refuse the second one.
 */
function refuseTakenName(app: SidecarApp, prop: string): void {
  const namespace = Chart.of(app).namespace;
  const other = app.node.root.node
    .findAll()
    .find((c): c is SidecarApp => c instanceof SidecarApp && c !== app && c.name === app.name && Chart.of(c).namespace === namespace);
  if (other === undefined) return;
  const where = namespace === undefined ? 'in the same namespace (no Chart sets one)' : `in namespace "${namespace}"`;
  check.fail(prop, `("${app.name}") is also the name of SidecarApp ${other.node.path} ${where}: both would write the same objects and kubectl apply keeps the last; give one of them another name`);
}

/** A caller's identity and where its token goes; fails when its service account or namespace is unknown. */
function callerOf(
  caller: SidecarApp | kplus.AbstractPod,
  callee: string,
): { account: string; namespace: string; containers: kplus.Container[]; peer: kplus.INetworkPolicyPeer } {
  const what = `allowCallsFrom (into ${callee})`;
  if (caller instanceof SidecarApp) {
    const namespace = caller.deployment.metadata.namespace ?? Chart.of(caller).namespace;
    if (namespace === undefined) check.fail(what, `SidecarApp ${caller.name} has no namespace: set the namespace of its Chart (a service account's identity includes it)`);
    return { account: caller.serviceAccount.name, namespace, containers: [caller.mainContainer], peer: caller.deployment };
  }
  if (!(caller instanceof kplus.AbstractPod)) check.fail(what, 'the caller must be a SidecarApp or a cdk8s-plus workload (Deployment, StatefulSet, Job, Pod, ...)');
  const account = caller.serviceAccount?.name;
  if (account === undefined || account === 'default') {
    check.fail(what, `${caller.node.path} has no serviceAccount of its own: give it one (the namespace's "default" account is every pod's that sets none)`);
  }
  const namespace = caller.metadata.namespace ?? Chart.of(caller).namespace;
  if (namespace === undefined) check.fail(what, `${caller.node.path} has no namespace: set the namespace of its Chart or metadata (a service account's identity includes it)`);
  return { account, namespace, containers: [...caller.containers, ...caller.initContainers.filter((c) => c.restartPolicy === kplus.ContainerRestartPolicy.ALWAYS)], peer: caller as unknown as kplus.INetworkPolicyPeer };
}
