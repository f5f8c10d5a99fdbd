/**
 * undeclared-ingress: a NetworkPolicy admits a source to a main port or the admin port of a
 * SidecarApp that the SidecarApp did not declare. What it declared is its own NetworkPolicy (named
 * like its Deployment): the peers of mainPortAllowedFrom / allowMainFrom and adminPortAllowedFrom /
 * allowAdminFrom, each on its port. Any other policy that selects the pods, a kplus
 * `deployment.connections.allowFrom(peer)` (it opens every container port) or a hand-written one,
 * may admit to those ports only sources inside a declared peer; a peer wider than every declared
 * one (`podSelector: {}`, `namespaceSelector: {}`, an ipBlock, no `from`) is reported, and a rule
 * without `ports` covers every port. "Every source to a main port" is the network-policy rule's.
 */
import { guardedPorts } from './guarded-ports';
import type { GuardedPort } from './guarded-ports';
import type { SidecarAppPods } from './apps';
import type { FindingSink } from './finding';
import { JsonObject, KubeObject, asArray, asObject, asString, asStringMap, describe, labelSelectorMatches, portRef } from './manifest';

export const INGRESS_PEER_RULE_IDS = ['undeclared-ingress'] as const;
export type IngressPeerRuleId = (typeof INGRESS_PEER_RULE_IDS)[number];

export const INGRESS_PEER_RULES = {
  'undeclared-ingress': {
    recommendation:
      "Only the peers a SidecarApp declares reach its main port (mainPortAllowedFrom / allowMainFrom) and its admin port (adminPortAllowedFrom / allowAdminFrom). NetworkPolicies add up: any other policy that admits a wider source to those ports, such as kplus's deployment.connections.allowFrom(peer), which opens every container port, lets it skip authentication or read the admin endpoints.",
    fix: "Declare the peer with allowMainFrom / allowAdminFrom (or the props) instead, or limit the policy to the sidecar port, e.g. app.deployment.connections.allowFrom(peer, { ports: [kplus.NetworkPolicyPort.tcp(<sidecar port>)] }); to call the app, use app.allowCallsFrom(caller). Waive the rule on the policy only if the wider source is deliberate.",
  },
} as const;

const NAME_LABEL = 'kubernetes.io/metadata.name';

/** A peer as the rule compares them: an IP block, or pods (all or selected) in namespaces (the policy's own, or selected). */
type Peer =
  | { readonly kind: 'ip'; readonly cidr: string; readonly except: readonly string[] }
  | { readonly kind: 'pods'; readonly namespaces: 'own' | JsonObject; readonly pods: 'all' | JsonObject };

/** Everyone: what a rule without `from` admits. */
const EVERYONE: Peer = { kind: 'ip', cidr: '0.0.0.0/0', except: [] };

function peerOf(raw: unknown, policyNamespace: string): Peer | undefined {
  const p = asObject(raw);
  if (p === undefined) return undefined;
  const block = asObject(p.ipBlock);
  if (block !== undefined) return { kind: 'ip', cidr: asString(block.cidr) ?? '', except: asArray(block.except).filter((e): e is string => typeof e === 'string') };
  const ns = asObject(p.namespaceSelector);
  const pods = asObject(p.podSelector);
  if (ns === undefined && pods === undefined) return undefined;
  // A namespace selector naming only the policy's namespace (as kplus writes a peer in the chart's namespace) is that namespace.
  const nsLabels = asStringMap(ns?.matchLabels);
  const own = ns !== undefined && Object.keys(ns).length === 1 && Object.keys(nsLabels).length === 1 && nsLabels[NAME_LABEL] === policyNamespace;
  return { kind: 'pods', namespaces: ns === undefined || own ? 'own' : ns, pods: pods ?? 'all' };
}

/** matchLabels as required pairs plus matchExpressions as they are written. */
function terms(selector: JsonObject): { labels: Readonly<Record<string, string>>; expressions: string[] } {
  return { labels: asStringMap(selector.matchLabels), expressions: asArray(selector.matchExpressions).map((e) => JSON.stringify(e)) };
}

/** An absent selector (`all`) or an empty one selects everything. */
const selectsAll = (s: JsonObject | 'all'): boolean => s === 'all' || Object.keys(s).length === 0;

/** Does `narrow` select only what `wide` selects? Sound, not complete: each of wide's terms must be in narrow. */
function narrower(narrow: JsonObject | 'all', wide: JsonObject | 'all'): boolean {
  if (selectsAll(wide)) return true;
  if (selectsAll(narrow)) return false;
  const n = terms(narrow as JsonObject);
  const w = terms(wide as JsonObject);
  return Object.entries(w.labels).every(([k, v]) => n.labels[k] === v) && w.expressions.every((e) => n.expressions.includes(e));
}

/** Is every source `inner` admits also admitted by the declared `outer`? */
function within(inner: Peer, outer: Peer): boolean {
  if (everyone(outer)) return true;
  if (inner.kind === 'ip' || outer.kind === 'ip') {
    return inner.kind === 'ip' && outer.kind === 'ip' && inner.cidr === outer.cidr && outer.except.every((e) => inner.except.includes(e));
  }
  // The policy's own namespace is within "every namespace"; a selected set of namespaces is never within it alone.
  const namespacesWithin = outer.namespaces === 'own' ? inner.namespaces === 'own' : inner.namespaces === 'own' ? selectsAll(outer.namespaces) : narrower(inner.namespaces, outer.namespaces);
  return namespacesWithin && narrower(inner.pods, outer.pods);
}

/** A source as a message names it. */
function peerText(raw: unknown): string {
  const p = asObject(raw) ?? {};
  const empty = (s: unknown) => asObject(s) !== undefined && Object.keys(asObject(s)!).length === 0;
  if (raw === undefined) return 'every source (the rule has no from)';
  if (empty(p.namespaceSelector) && (p.podSelector === undefined || empty(p.podSelector))) return 'every pod of every namespace (namespaceSelector: {})';
  if (p.namespaceSelector === undefined && empty(p.podSelector)) return 'every pod of the namespace (podSelector: {})';
  const cidr = asString(asObject(p.ipBlock)?.cidr);
  if (cidr !== undefined) return `the IP block ${cidr}${/\/0$/.test(cidr) ? ' (every address)' : ''}`;
  return JSON.stringify(raw);
}

/** The ports of a policy rule that are guarded ports (no ports: every port). */
function coveredGuarded(ports: unknown, guarded: readonly GuardedPort[]): GuardedPort[] {
  const list = asArray(ports);
  if (list.length === 0) return [...guarded];
  return guarded.filter((g) =>
    list.some((entry) => {
      const p = asObject(entry) ?? {};
      if ((asString(p.protocol) ?? 'TCP') !== 'TCP') return false;
      const ref = portRef(p.port);
      if (ref === undefined) return true;
      if (typeof ref === 'string') return g.names.includes(ref);
      const end = typeof p.endPort === 'number' ? p.endPort : ref;
      return g.port >= ref && g.port <= end;
    }),
  );
}

function isIngressPolicyOf(o: KubeObject, app: SidecarAppPods): boolean {
  if (o.kind !== 'NetworkPolicy' || o.group !== 'networking.k8s.io' || o.namespace !== app.workload.namespace) return false;
  const spec = asObject(o.raw.spec) ?? {};
  const types = asArray(spec.policyTypes);
  return (types.length === 0 || types.includes('Ingress')) && labelSelectorMatches(spec.podSelector, app.pod.labels);
}

/** The SidecarApp's own NetworkPolicy: named like its Deployment. Its rules are what it declared. */
function isGuard(o: KubeObject, app: SidecarAppPods): boolean {
  return o.name === app.workload.name;
}

/** The declared peers of a guarded port: those of the own policy's rules that cover it. */
function declaredPeers(guard: KubeObject | undefined, port: GuardedPort): Peer[] {
  if (guard === undefined) return [];
  return asArray(asObject(guard.raw.spec)?.ingress).flatMap((entry) => {
    const rule = asObject(entry) ?? {};
    if (coveredGuarded(rule.ports, [port]).length === 0) return [];
    const from = asArray(rule.from);
    if (from.length === 0) return [EVERYONE];
    return from.map((p) => peerOf(p, guard.namespace)).filter((p): p is Peer => p !== undefined);
  });
}

function appText(app: SidecarAppPods): string {
  return `SidecarApp ${describe(app.workload)}`;
}

export function checkIngressPeers(objects: readonly KubeObject[], apps: readonly SidecarAppPods[], out: FindingSink<IngressPeerRuleId>): void {
  for (const app of apps) {
    const guarded = guardedPorts(app);
    const policies = objects.filter((o) => isIngressPolicyOf(o, app));
    const guard = policies.find((o) => isGuard(o, app));
    for (const policy of policies.filter((o) => o !== guard)) {
      asArray(asObject(policy.raw.spec)?.ingress).forEach((entry, i) => {
        const rule = asObject(entry) ?? {};
        const from = asArray(rule.from);
        const sources: Array<{ raw: unknown; location: string }> = from.length === 0 ? [{ raw: undefined, location: `spec.ingress[${i}]` }] : from.map((raw, j) => ({ raw, location: `spec.ingress[${i}].from[${j}]` }));
        for (const port of coveredGuarded(rule.ports, guarded)) {
          for (const source of sources) {
            const peer = source.raw === undefined ? EVERYONE : peerOf(source.raw, policy.namespace);
            if (peer === undefined) continue;
            // Every source to a main port: the network-policy rule reports it.
            if (port.kind === 'main' && everyone(peer)) continue;
            if (declaredPeers(guard, port).some((d) => within(peer, d))) continue;
            out.push({
              rule: 'undeclared-ingress',
              object: policy,
              location: source.location,
              message: `admits ${peerText(source.raw)} to ${port.kind} port ${port.port} of ${appText(app)}${asArray(rule.ports).length === 0 ? ' (the rule has no ports: every port)' : ''}, a source ${port.kind === 'main' ? 'mainPortAllowedFrom / allowMainFrom' : 'adminPortAllowedFrom / allowAdminFrom'} did not declare: ${port.kind === 'main' ? 'it skips authentication' : 'it reaches /metrics and the drain hook'}`,
              app,
            });
          }
        }
      });
    }
  }
}

/** What the network-policy rule counts as every source: an all-addresses block, every pod of every namespace. */
function everyone(peer: Peer): boolean {
  if (peer.kind === 'ip') return /\/0$/.test(peer.cidr);
  return peer.namespaces !== 'own' && selectsAll(peer.namespaces) && selectsAll(peer.pods);
}
