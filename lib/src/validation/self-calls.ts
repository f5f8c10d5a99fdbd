/**
 * self-call: a SidecarApp connected to itself (`app.allowCallsFrom(app)`). Its main container then
 * holds a projected service-account token for an audience its own sidecar accepts
 * (SIDECAR_KUBERNETES_AUTH): a token it never needs (main reaches itself over loopback) and that
 * admits the app's own pods through its own route rule.
 */
import { SIDECAR_ENV } from '../contract';
import type { SidecarAppPods } from './apps';
import type { FindingSink } from './finding';
import { asArray, asObject, asString, describe } from './manifest';

export const SELF_CALL_RULE_IDS = ['self-call'] as const;
export type SelfCallRuleId = (typeof SELF_CALL_RULE_IDS)[number];

export const SELF_CALL_RULES = {
  'self-call': {
    recommendation: "A SidecarApp is not its own caller: its main container needs no token for its own sidecar, and the route rule allowCallsFrom appends would admit the app's own service account.",
    fix: 'Remove app.allowCallsFrom(app); connect the SidecarApps or workloads that call it (callee.allowCallsFrom(caller)).',
  },
} as const;

/** The audiences the sidecar's service-account auth accepts; none when it is off or unreadable. */
function acceptedAudiences(app: SidecarAppPods): string[] {
  const entry = asArray(app.sidecar.container.env).map((e) => asObject(e) ?? {}).find((e) => e.name === SIDECAR_ENV.kubernetesAuth);
  const text = asString(entry?.value);
  if (text === undefined) return [];
  try {
    return asArray(asObject(JSON.parse(text))?.audiences).filter((a): a is string => typeof a === 'string');
  } catch {
    return [];
  }
}

export function checkSelfCalls(apps: readonly SidecarAppPods[], out: FindingSink<SelfCallRuleId>): void {
  for (const app of apps) {
    const audiences = acceptedAudiences(app);
    if (audiences.length === 0 || app.main === undefined) continue;
    const mounted = new Set(asArray(app.main.container.volumeMounts).map((m) => asString(asObject(m)?.name)));
    asArray(app.pod.spec.volumes).forEach((v, i) => {
      const volume = asObject(v) ?? {};
      if (!mounted.has(asString(volume.name))) return;
      asArray(asObject(volume.projected)?.sources).forEach((source, j) => {
        const audience = asString(asObject(asObject(source)?.serviceAccountToken)?.audience);
        if (audience === undefined || !audiences.includes(audience)) return;
        out.push({
          rule: 'self-call',
          object: app.workload,
          location: `${app.pod.path}.volumes[${i}].projected.sources[${j}].serviceAccountToken.audience`,
          message: `the main container of SidecarApp ${describe(app.workload)} holds a token for "${audience}", an audience its own sidecar accepts: the app is connected to itself`,
          app,
        });
      });
    });
  }
}
