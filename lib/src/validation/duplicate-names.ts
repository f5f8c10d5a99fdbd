/**
 * duplicate-name: an object written twice. Two SidecarApps of one name in one namespace (in two
 * charts, or two Apps writing one dist/), or another object named like one of a SidecarApp's, give
 * the same kind, namespace and name twice, and `kubectl apply` silently keeps the last. Reported
 * for the objects named like a SidecarApp's (its name, `<name>-open-ports`) in its namespace.
 */
import type { SidecarAppPods } from './apps';
import type { FindingSink } from './finding';
import { KubeObject, describe } from './manifest';

export const DUPLICATE_NAME_RULE_IDS = ['duplicate-name'] as const;
export type DuplicateNameRuleId = (typeof DUPLICATE_NAME_RULE_IDS)[number];

export const DUPLICATE_NAME_RULES = {
  'duplicate-name': {
    recommendation:
      'Each object of a SidecarApp (Deployment, Service, ServiceAccount, NetworkPolicies, ...) must be the only one of its kind, namespace and name: kubectl apply keeps the last of two, so one app silently loses its Deployment, its Service or its NetworkPolicy.',
    fix: 'Give one of the two SidecarApps another name (the name prop), or put it in another namespace; rename the other object.',
  },
} as const;

const identity = (o: KubeObject) => `${o.group}/${o.kind}/${o.namespace}/${o.name}`;

export function checkDuplicateNames(objects: readonly KubeObject[], apps: readonly SidecarAppPods[], out: FindingSink<DuplicateNameRuleId>): void {
  const byIdentity = new Map<string, KubeObject[]>();
  for (const o of objects) byIdentity.set(identity(o), [...(byIdentity.get(identity(o)) ?? []), o]);
  const reported = new Set<KubeObject>();
  for (const app of apps) {
    const names = [app.workload.name, `${app.workload.name}-open-ports`];
    for (const same of byIdentity.values()) {
      const [first, ...again] = same;
      if (again.length === 0 || first.namespace !== app.workload.namespace || !names.includes(first.name)) continue;
      for (const o of again) {
        if (reported.has(o)) continue;
        reported.add(o);
        const files = [...new Set(same.map((x) => x.manifestPath.split('/').pop()))].join(', ');
        out.push({
          rule: 'duplicate-name',
          object: o,
          location: 'metadata.name',
          message: `${describe(o)} is written ${same.length} times (in ${files}), like an object of SidecarApp ${describe(app.workload)}: kubectl apply keeps only the last`,
          app,
        });
      }
    }
  }
}
