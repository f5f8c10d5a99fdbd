/**
 * The rules, applied to every object of the synthesized app, not only to those SidecarApp made.
 *
 * - service-to-main-port: a Service that selects a SidecarApp's pods and sends a port to a main
 *   port. The SidecarApp's own Service (same name and namespace as its Deployment) has a main port
 *   by design: in-cluster peers that its NetworkPolicy admits use it. It passes as long as it stays
 *   a ClusterIP Service without externalIPs; published outside the cluster (NodePort,
 *   LoadBalancer, externalIPs) it fails too.
 * - route-to-main-port: an Ingress, or a Gateway API route (HTTPRoute, GRPCRoute, TLSRoute,
 *   TCPRoute, UDPRoute; mirrors included), whose backend is a port of a Service of the chart that
 *   sends to a main port: any Service, the SidecarApp's own included. Routes must use the sidecar port.
 * - pod-hardening: the pod of a SidecarApp lost some of the hardening SidecarApp gives it
 *   (escape hatch, JSON patch, edited container): pod level automountServiceAccountToken false, no
 *   hostNetwork/hostPID/hostIPC; for the `main` and `sidecar` containers (the sidecar may be a native
 *   sidecar, an init container) allowPrivilegeEscalation false, not privileged, capabilities
 *   dropping ALL and adding none, seccompProfile RuntimeDefault (container or pod level), no
 *   hostPort on a main port; for the sidecar also runAsNonRoot true, runAsUser/runAsGroup the
 *   contract's RUN_AS and readOnlyRootFilesystem true (main's are hardening.ts's rules).
 *   Containers you add to the pod yourself are yours to harden.
 * - network-policy: the SidecarApp's pods must be isolated for ingress by a NetworkPolicy (SidecarApp
 *   creates `<name>`, which denies by default, and `<name>-open-ports`, which opens the sidecar port),
 *   and no NetworkPolicy may admit every source to a main port. `allowUnauthenticatedMainPort`
 *   does exactly that on purpose: waive the rule for that Deployment (see WAIVE_ANNOTATION).
 * - token-literal: a token-like literal (see tokens.ts) in an env value or an annotation of any object.
 * - main-root, main-writable-root (hardening.ts), undeclared-ingress (ingress-peers.ts),
 *   duplicate-name (duplicate-names.ts), self-call (self-calls.ts): described in their files.
 *
 * Waivers: the annotation WAIVE_ANNOTATION, a comma-separated list of rule ids, on the object a
 * finding is about, or on the SidecarApp's Deployment for the findings about that SidecarApp.
 */
import { RUN_AS } from '../contract';
import { SidecarAppPods, containerPath, mainPortsText, reachesMain, sidecarAppOf } from './apps';
import {
  JsonObject,
  KubeObject,
  asArray,
  asObject,
  asString,
  asStringMap,
  child,
  describe,
  isService,
  labelSelectorMatches,
  mapSelectorMatches,
  portRef,
  servicePorts,
} from './manifest';
import { findToken } from './tokens';
// Rules in files of their own, registered below (ids, texts, and a call in check).
import { DUPLICATE_NAME_RULES, DUPLICATE_NAME_RULE_IDS, checkDuplicateNames } from './duplicate-names';
import { HARDENING_RULES, HARDENING_RULE_IDS, checkMainHardening } from './hardening';
import { INGRESS_PEER_RULES, INGRESS_PEER_RULE_IDS, checkIngressPeers } from './ingress-peers';
import { SELF_CALL_RULES, SELF_CALL_RULE_IDS, checkSelfCalls } from './self-calls';

export const RULE_IDS = [
  'service-to-main-port',
  'route-to-main-port',
  'pod-hardening',
  'network-policy',
  'token-literal',
  ...HARDENING_RULE_IDS,
  ...INGRESS_PEER_RULE_IDS,
  ...DUPLICATE_NAME_RULE_IDS,
  ...SELF_CALL_RULE_IDS,
] as const;
export type RuleId = (typeof RULE_IDS)[number];

export interface RuleText {
  readonly recommendation: string;
  readonly fix: string;
}

export const RULES: Readonly<Record<RuleId, RuleText>> = {
  'service-to-main-port': {
    recommendation:
      "Only the SidecarApp's own Service (ClusterIP, guarded by its NetworkPolicy) may send to the main container port; any other Service that does lets clients skip authentication.",
    fix: "Target the sidecar port (app.sidecarServicePort / the sidecar container port) instead, or route through app.service's sidecar port; keep the SidecarApp's own Service a ClusterIP Service.",
  },
  'route-to-main-port': {
    recommendation: 'An Ingress or Gateway API route must reach a SidecarApp through its sidecar port; a backend port that targets the main container skips authentication.',
    fix: 'Use the sidecar Service port as the backend, e.g. kplus.IngressBackend.fromService(app.service, { port: app.sidecarServicePort }).',
  },
  'pod-hardening': {
    recommendation: 'The pod of a SidecarApp keeps the hardening SidecarApp gives it: non-root contract user, read-only root filesystem, no privilege escalation, no capabilities, RuntimeDefault seccomp, no service account token, no host namespaces.',
    fix: 'Remove the escape hatch (JSON patch, container edit) that weakened it; if the application really needs more, change SidecarApp props or waive the rule for this Deployment explicitly.',
  },
  'network-policy': {
    recommendation:
      "A SidecarApp's pods are isolated by its NetworkPolicies: the main port is reachable only from the peers you name (mainPortAllowedFrom / allowMainFrom). Without them, or with a policy admitting everyone to the main port, every pod in the cluster skips authentication.",
    fix: 'Keep networkPolicy enabled and do not open the main port to all; name the peers that need it with allowMainFrom. If that is deliberate (allowUnauthenticatedMainPort), waive the rule on the Deployment.',
  },
  'token-literal': {
    recommendation: 'No credential belongs in a manifest: manifests end up in git, CI logs and `kubectl get -o yaml`.',
    fix: 'Move the value into a Secret created outside the manifests and reference it (env valueFrom.secretKeyRef, a mounted Secret); rotate the leaked credential.',
  },
  ...HARDENING_RULES,
  ...INGRESS_PEER_RULES,
  ...DUPLICATE_NAME_RULES,
  ...SELF_CALL_RULES,
};

/** Annotation that waives rules for one object: a comma-separated list of rule ids. */
export const WAIVE_ANNOTATION = 'cdk8s-sidecar-app/waive';

export interface Finding {
  readonly rule: RuleId;
  /** The object the finding is about: its construct path is reported. */
  readonly object: KubeObject;
  /** Dotted path inside the object. */
  readonly location: string;
  readonly message: string;
  /** The SidecarApp concerned, when there is one: its Deployment's waivers apply too. */
  readonly app?: SidecarAppPods;
}

export function waivedRules(o: KubeObject): ReadonlySet<string> {
  const value = o.annotations[WAIVE_ANNOTATION];
  return new Set(value === undefined ? [] : value.split(',').map((r) => r.trim()).filter((r) => r !== ''));
}

export function isWaived(f: Finding): boolean {
  return waivedRules(f.object).has(f.rule) || (f.app !== undefined && waivedRules(f.app.workload).has(f.rule));
}

function appName(app: SidecarAppPods): string {
  return `SidecarApp ${describe(app.workload)}`;
}

/** The SidecarApps whose pods a Service selects. */
function selectedApps(service: KubeObject, apps: readonly SidecarAppPods[]): SidecarAppPods[] {
  const selector = asStringMap(asObject(service.raw.spec)?.selector);
  return apps.filter((a) => a.workload.namespace === service.namespace && mapSelectorMatches(selector, a.pod.labels));
}

/** The SidecarApp's own Service: named like its Deployment, in its namespace, selecting its pods. */
export function isOwnService(service: KubeObject, app: SidecarAppPods): boolean {
  return isService(service) && service.name === app.workload.name && service.namespace === app.workload.namespace && selectedApps(service, [app]).length === 1;
}

function checkServices(objects: readonly KubeObject[], apps: readonly SidecarAppPods[], out: Finding[]): void {
  for (const service of objects.filter(isService)) {
    const spec = asObject(service.raw.spec) ?? {};
    const type = asString(spec.type) ?? 'ClusterIP';
    const externalIPs = asArray(spec.externalIPs).length;
    for (const app of selectedApps(service, apps)) {
      const own = isOwnService(service, app);
      for (const port of servicePorts(service)) {
        if (!reachesMain(app, port.target)) continue;
        const location = `spec.ports[${port.index}]${port.name === undefined ? '' : ` ("${port.name}")`}`;
        if (!own) {
          out.push({
            rule: 'service-to-main-port',
            object: service,
            location,
            message: `targetPort ${JSON.stringify(port.target)} is the main container port of ${appName(app)} (main ports ${mainPortsText(app)}): port ${port.port} skips the sidecar`,
            app,
          });
        } else if (type !== 'ClusterIP' || externalIPs > 0) {
          out.push({
            rule: 'service-to-main-port',
            object: service,
            location,
            message: `the own Service of ${appName(app)} publishes its main port outside the cluster (${type !== 'ClusterIP' ? `type ${type}` : 'externalIPs'}); it must stay ClusterIP`,
            app,
          });
        }
      }
    }
  }
}

interface BackendRef {
  readonly location: string;
  readonly namespace: string;
  readonly service: string;
  readonly port: number | string | undefined;
}

function ingressBackends(ingress: KubeObject): BackendRef[] {
  const spec = asObject(ingress.raw.spec) ?? {};
  const refs: BackendRef[] = [];
  const add = (backend: unknown, location: string) => {
    const b = asObject(backend);
    if (b === undefined) return;
    const service = asObject(b.service);
    if (service !== undefined) {
      const port = asObject(service.port) ?? {};
      refs.push({ location: `${location}.service`, namespace: ingress.namespace, service: asString(service.name) ?? '', port: portRef(port.number) ?? asString(port.name) });
    } else if (typeof b.serviceName === 'string') {
      // extensions/v1beta1 and networking.k8s.io/v1beta1
      refs.push({ location, namespace: ingress.namespace, service: b.serviceName, port: portRef(b.servicePort) });
    }
  };
  add(spec.defaultBackend, 'spec.defaultBackend');
  add(spec.backend, 'spec.backend');
  asArray(spec.rules).forEach((rule, i) => {
    asArray(asObject(asObject(rule)?.http)?.paths).forEach((p, j) => add(asObject(p)?.backend, `spec.rules[${i}].http.paths[${j}].backend`));
  });
  return refs;
}

function gatewayBackends(route: KubeObject): BackendRef[] {
  const refs: BackendRef[] = [];
  const add = (ref: unknown, location: string) => {
    const r = asObject(ref);
    if (r === undefined) return;
    if ((asString(r.group) ?? '') !== '' || (asString(r.kind) ?? 'Service') !== 'Service') return;
    refs.push({ location, namespace: asString(r.namespace) ?? route.namespace, service: asString(r.name) ?? '', port: portRef(r.port) });
  };
  const mirrors = (filters: unknown, location: string) =>
    asArray(filters).forEach((f, k) => add(asObject(asObject(f)?.requestMirror)?.backendRef, `${location}.filters[${k}].requestMirror.backendRef`));
  asArray(asObject(route.raw.spec)?.rules).forEach((rule, i) => {
    const r = asObject(rule) ?? {};
    const location = `spec.rules[${i}]`;
    asArray(r.backendRefs).forEach((ref, j) => {
      add(ref, `${location}.backendRefs[${j}]`);
      mirrors(asObject(ref)?.filters, `${location}.backendRefs[${j}]`);
    });
    mirrors(r.filters, location);
  });
  return refs;
}

function isIngress(o: KubeObject): boolean {
  return o.kind === 'Ingress' && (o.group === 'networking.k8s.io' || o.group === 'extensions');
}

function isGatewayRoute(o: KubeObject): boolean {
  return o.group === 'gateway.networking.k8s.io' && o.kind.endsWith('Route');
}

function checkRoutes(objects: readonly KubeObject[], apps: readonly SidecarAppPods[], out: Finding[]): void {
  const services = objects.filter(isService);
  for (const route of objects) {
    const refs = isIngress(route) ? ingressBackends(route) : isGatewayRoute(route) ? gatewayBackends(route) : [];
    for (const ref of refs) {
      const service = services.find((s) => s.name === ref.service && s.namespace === ref.namespace);
      if (service === undefined || ref.port === undefined) continue;
      const port = servicePorts(service).find((p) => (typeof ref.port === 'number' ? p.port === ref.port : p.name === ref.port));
      if (port === undefined) continue;
      for (const app of selectedApps(service, apps)) {
        if (!reachesMain(app, port.target)) continue;
        out.push({
          rule: 'route-to-main-port',
          object: route,
          location: ref.location,
          message: `routes to port ${JSON.stringify(ref.port)} of ${describe(service)}, which targets the main container port ${JSON.stringify(port.target)} of ${appName(app)}: requests skip the sidecar`,
          app,
        });
      }
    }
  }
}

function show(value: unknown): string {
  return value === undefined ? 'unset' : JSON.stringify(value);
}

function checkPod(app: SidecarAppPods, out: Finding[]): void {
  const { workload, pod } = app;
  const problem = (location: string, message: string) => out.push({ rule: 'pod-hardening', object: workload, location, message, app });
  const spec = pod.spec;
  if (spec.automountServiceAccountToken !== false) {
    problem(`${pod.path}.automountServiceAccountToken`, `is ${show(spec.automountServiceAccountToken)}, must be false: the pod needs no API token`);
  }
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) {
    if (spec[field] === true) problem(`${pod.path}.${field}`, 'is true, must not be: the pod shares the node\'s namespace');
  }
  const podContext = asObject(spec.securityContext) ?? {};
  for (const ref of [app.main, app.sidecar]) {
    if (ref === undefined) continue;
    const container = ref.container;
    const base = containerPath(pod, ref);
    const context = asObject(container.securityContext) ?? {};
    const at = (field: string) => `${base}.securityContext.${field}`;
    /** The effective value: the container's, else the pod's; and where it is set. */
    const effective = (field: string): [unknown, string] =>
      context[field] !== undefined ? [context[field], at(field)] : podContext[field] !== undefined ? [podContext[field], `${pod.path}.securityContext.${field}`] : [undefined, at(field)];

    // Main's user, group and root filesystem are its options' (hardening.ts: main-root, main-writable-root).
    if (ref === app.sidecar) {
      const [nonRoot, nonRootAt] = effective('runAsNonRoot');
      if (nonRoot !== true) problem(nonRootAt, `is ${show(nonRoot)}, must be true`);
      const [user, userAt] = effective('runAsUser');
      if (user !== RUN_AS.user) problem(userAt, `is ${show(user)}, must be ${RUN_AS.user} (the contract's RUN_AS user)`);
      const [group, groupAt] = effective('runAsGroup');
      if (group !== RUN_AS.group) problem(groupAt, `is ${show(group)}, must be ${RUN_AS.group} (the contract's RUN_AS group)`);
      if (context.readOnlyRootFilesystem !== true) problem(at('readOnlyRootFilesystem'), `is ${show(context.readOnlyRootFilesystem)}, must be true`);
    }
    if (context.allowPrivilegeEscalation !== false) problem(at('allowPrivilegeEscalation'), `is ${show(context.allowPrivilegeEscalation)}, must be false`);
    if (context.privileged === true) problem(at('privileged'), 'is true, must be false');
    const capabilities = asObject(context.capabilities) ?? {};
    if (!asArray(capabilities.drop).includes('ALL')) problem(at('capabilities.drop'), `is ${show(capabilities.drop)}, must include "ALL"`);
    if (asArray(capabilities.add).length > 0) problem(at('capabilities.add'), `is ${show(capabilities.add)}, must be empty`);
    const [seccomp, seccompAt] = effective('seccompProfile');
    const seccompType = asObject(seccomp)?.type;
    if (seccompType !== 'RuntimeDefault') problem(seccomp === undefined ? seccompAt : `${seccompAt}.type`, `is ${show(seccompType)}, must be "RuntimeDefault"`);
    if (ref === app.main) {
      asArray(container.ports).forEach((entry, i) => {
        const p = asObject(entry) ?? {};
        if (p.hostPort !== undefined) problem(`${base}.ports[${i}].hostPort`, `is ${show(p.hostPort)}: the node publishes the main port, which skips the sidecar`);
      });
    }
  }
}

/** Does a NetworkPolicy peer list admit every source? (`from` absent or empty, an all-addresses ipBlock, or every pod of every namespace.) */
function admitsEveryone(from: unknown): boolean {
  const peers = asArray(from);
  if (peers.length === 0) return true;
  return peers.some((peer) => {
    const p = asObject(peer) ?? {};
    const cidr = asString(asObject(p.ipBlock)?.cidr);
    if (cidr !== undefined) return /\/0$/.test(cidr);
    const namespaces = asObject(p.namespaceSelector);
    const pods = asObject(p.podSelector);
    const empty = (s: JsonObject | undefined) => s !== undefined && asArray(s.matchExpressions).length === 0 && Object.keys(asObject(s.matchLabels) ?? {}).length === 0;
    return empty(namespaces) && (pods === undefined || empty(pods));
  });
}

/** Does a NetworkPolicy ports list cover a main port? (Absent or empty: every port.) */
function coversMain(app: SidecarAppPods, ports: unknown): boolean {
  const list = asArray(ports);
  if (list.length === 0) return true;
  return list.some((entry) => {
    const p = asObject(entry) ?? {};
    if ((asString(p.protocol) ?? 'TCP') !== 'TCP') return false;
    const ref = portRef(p.port);
    if (ref === undefined) return true;
    if (typeof ref === 'string') return app.mainPortNames.has(ref);
    const end = typeof p.endPort === 'number' ? p.endPort : ref;
    return [...app.mainPorts].some((m) => m >= ref && m <= end);
  });
}

function isolatesIngress(policy: KubeObject): boolean {
  const types = asArray(asObject(policy.raw.spec)?.policyTypes);
  // Without policyTypes, Ingress is always in.
  return types.length === 0 || types.includes('Ingress');
}

function checkNetworkPolicies(objects: readonly KubeObject[], app: SidecarAppPods, out: Finding[]): void {
  const policies = objects.filter(
    (o) =>
      o.kind === 'NetworkPolicy' &&
      o.group === 'networking.k8s.io' &&
      o.namespace === app.workload.namespace &&
      labelSelectorMatches(asObject(o.raw.spec)?.podSelector, app.pod.labels),
  );
  if (!policies.some(isolatesIngress)) {
    out.push({
      rule: 'network-policy',
      object: app.workload,
      location: `${app.pod.path === 'spec' ? 'metadata' : app.pod.path.replace(/\.spec$/, '.metadata')}.labels`,
      message: `no NetworkPolicy isolates the pods of ${appName(app)} for ingress (SidecarApp creates "${app.workload.name}" and "${app.workload.name}-open-ports"): every pod in the cluster reaches main port ${mainPortsText(app)} without the sidecar`,
      app,
    });
  }
  for (const policy of policies.filter(isolatesIngress)) {
    asArray(asObject(policy.raw.spec)?.ingress).forEach((entry, i) => {
      const rule = asObject(entry) ?? {};
      if (admitsEveryone(rule.from) && coversMain(app, rule.ports)) {
        out.push({
          rule: 'network-policy',
          object: policy,
          location: `spec.ingress[${i}]`,
          message: `admits every source to main port ${mainPortsText(app)} of ${appName(app)}: authentication can be skipped from anywhere`,
          app,
        });
      }
    });
  }
}

function checkTokens(o: KubeObject, out: Finding[]): void {
  const literal = (value: string, key: string, location: string, what: string) => {
    const match = findToken(value, key);
    if (match !== undefined) out.push({ rule: 'token-literal', object: o, location, message: `${what} holds a ${match.kind} ${match.preview}` });
  };
  const walk = (value: unknown, path: string, parentKey: string): void => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, child(path, i), parentKey));
      return;
    }
    const obj = asObject(value);
    if (obj === undefined) return;
    for (const [key, v] of Object.entries(obj)) {
      const at = child(path, key);
      if (key === 'env' && Array.isArray(v)) {
        v.forEach((entry, i) => {
          const e = asObject(entry) ?? {};
          const name = asString(e.name) ?? '';
          if (typeof e.value === 'string') literal(e.value, name, `${child(at, i)}.value`, `env ${name}`);
        });
      } else if (key === 'annotations' && parentKey === 'metadata') {
        for (const [annotation, text] of Object.entries(asStringMap(v))) {
          if (annotation !== WAIVE_ANNOTATION) literal(text, annotation, child(at, annotation), `annotation ${annotation}`);
        }
      } else {
        walk(v, at, key);
      }
    }
  };
  walk(o.raw, '', '');
}

export interface CheckResult {
  readonly apps: readonly SidecarAppPods[];
  readonly findings: readonly Finding[];
}

/** Every finding on these objects, waived ones included (see isWaived). */
export function check(objects: readonly KubeObject[]): CheckResult {
  const apps = objects.map(sidecarAppOf).filter((a): a is SidecarAppPods => a !== undefined);
  const findings: Finding[] = [];
  checkServices(objects, apps, findings);
  checkRoutes(objects, apps, findings);
  for (const app of apps) checkPod(app, findings);
  for (const app of apps) checkMainHardening(app, findings);
  for (const app of apps) checkNetworkPolicies(objects, app, findings);
  for (const o of objects) checkTokens(o, findings);
  checkIngressPeers(objects, apps, findings);
  checkDuplicateNames(objects, apps, findings);
  checkSelfCalls(apps, findings);
  return { apps, findings };
}
