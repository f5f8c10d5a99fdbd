/**
 * Construct paths of the synthesized objects.
 *
 * The manifests carry none. When `cdk8s synth` runs validations it sets
 * CDK8S_RECORD_CONSTRUCT_METADATA=true, the App then writes `construct-metadata.json` next to the
 * manifests, and the CLI hands it to the plugin as `context.metadata`: a map from `metadata.name`
 * to the path of the ApiObject. Keyed by name only, so objects that share a name share one entry,
 * the one written last. SidecarApp names its Deployment, Service, NetworkPolicy,
 * PodDisruptionBudget and HorizontalPodAutoscaler all alike, so for those the entry is usually
 * another object's path. Those paths are rebuilt here from SidecarApp's layout (its child ids)
 * and the SidecarApp's own path, which an entry of one of its objects gives (preferably
 * `<name>-open-ports`, whose name is its own), as long as no object outside that SidecarApp
 * shares the entry's name. Whatever stays ambiguous is reported as such, never as another
 * object's path.
 */
import { SidecarAppPods } from './apps';
import { KubeObject } from './manifest';
import { isOwnService } from './rules';

/** What `context.metadata` holds: `metadata.name` -> construct path of the ApiObject. */
export interface ConstructMetadata {
  readonly [name: string]: { readonly path: string };
}

/** The ApiObject of each SidecarApp object, relative to the SidecarApp (ids in sidecar-app.ts, identity.ts, pod.ts, service.ts, network-policy.ts, scaling.ts). */
export const SIDECAR_APP_LAYOUT = {
  serviceAccount: 'service-account/Resource',
  deployment: 'deployment/Resource',
  service: 'service/Resource',
  networkPolicy: 'network-policy/Resource',
  openPorts: 'open-ports',
  podDisruptionBudget: 'pdb',
  horizontalPodAutoscaler: 'hpa/Resource',
} as const;

/** The path of `o` below its SidecarApp, when it is one of the objects a SidecarApp creates. */
export function sidecarAppMember(o: KubeObject, app: SidecarAppPods): string | undefined {
  const w = app.workload;
  if (w.kind !== 'Deployment') return undefined;
  if (o === w) return SIDECAR_APP_LAYOUT.deployment;
  if (o.namespace !== w.namespace) return undefined;
  if (isOwnService(o, app)) return SIDECAR_APP_LAYOUT.service;
  if (o.kind === 'ServiceAccount' && o.name === w.name) return SIDECAR_APP_LAYOUT.serviceAccount;
  if (o.kind === 'NetworkPolicy' && o.name === w.name) return SIDECAR_APP_LAYOUT.networkPolicy;
  if (o.kind === 'NetworkPolicy' && o.name === `${w.name}-open-ports`) return SIDECAR_APP_LAYOUT.openPorts;
  if (o.kind === 'PodDisruptionBudget' && o.name === w.name) return SIDECAR_APP_LAYOUT.podDisruptionBudget;
  if (o.kind === 'HorizontalPodAutoscaler' && o.name === w.name) return SIDECAR_APP_LAYOUT.horizontalPodAutoscaler;
  return undefined;
}

export class ConstructPaths {
  private readonly counts = new Map<string, number>();
  private readonly bases = new Map<SidecarAppPods, string | undefined>();

  constructor(
    private readonly objects: readonly KubeObject[],
    private readonly apps: readonly SidecarAppPods[],
    private readonly metadata: ConstructMetadata,
  ) {
    for (const o of objects) this.counts.set(o.name, (this.counts.get(o.name) ?? 0) + 1);
  }

  /** Whether cdk8s recorded any construct metadata. */
  get recorded(): boolean {
    return Object.keys(this.metadata).length > 0;
  }

  /** The exact construct path of `o`, or undefined when the metadata cannot tell. */
  exact(o: KubeObject): string | undefined {
    const recorded = this.recordedPath(o.name);
    if (recorded !== undefined && this.counts.get(o.name) === 1) return recorded;
    for (const app of this.apps) {
      const member = sidecarAppMember(o, app);
      if (member === undefined) continue;
      const base = this.base(app);
      if (base !== undefined) return `${base}/${member}`;
    }
    return undefined;
  }

  /** The construct path of `o`, or what is known of it. */
  describe(o: KubeObject): string {
    const exact = this.exact(o);
    if (exact !== undefined) return exact;
    const recorded = this.recordedPath(o.name);
    if (recorded !== undefined) return `one of the ${this.counts.get(o.name)} objects named "${o.name}", which cdk8s recorded as ${recorded}`;
    return this.recorded ? `not recorded for "${o.name}"` : 'unknown: no construct metadata (cdk8s synth records it when validations run)';
  }

  /** Is the name of `o` unique, so that cdk8s's own lookup by name (the report's "Construct Path") is right? */
  uniqueName(o: KubeObject): boolean {
    return this.counts.get(o.name) === 1;
  }

  private recordedPath(name: string): string | undefined {
    const entry = this.metadata[name];
    return entry !== undefined && typeof entry.path === 'string' ? entry.path : undefined;
  }

  /** The construct path of the SidecarApp itself, when its objects' entries give it. */
  appPath(app: SidecarAppPods): string | undefined {
    return this.base(app);
  }

  /** The SidecarApp's own construct path, from the recorded path of one of its objects. */
  private base(app: SidecarAppPods): string | undefined {
    if (this.bases.has(app)) return this.bases.get(app);
    const members = this.objects
      .map((o) => ({ o, member: sidecarAppMember(o, app) }))
      .filter((m): m is { o: KubeObject; member: string } => m.member !== undefined)
      // Own names first: their entries are theirs.
      .sort((a, b) => Number(this.uniqueName(b.o)) - Number(this.uniqueName(a.o)));
    let base: string | undefined;
    for (const { o } of members) {
      const recorded = this.recordedPath(o.name);
      if (recorded === undefined) continue;
      // A shared name's entry is the path of one of the objects of that name, maybe not this
      // SidecarApp's: usable only when every object of that name is one of its members.
      const sameName = this.objects.filter((x) => x.name === o.name);
      if (!sameName.every((x) => members.some((m) => m.o === x))) continue;
      const fitting = members.filter((m) => m.o.name === o.name && recorded.endsWith(`/${m.member}`));
      if (fitting.length > 0) {
        base = recorded.slice(0, recorded.length - fitting[0].member.length - 1);
        break;
      }
    }
    this.bases.set(app, base);
    return base;
  }
}
