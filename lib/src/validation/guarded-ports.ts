/**
 * The ports of a SidecarApp's pod that only declared peers may reach: every main port (a
 * connection to one skips authentication) and the sidecar's admin port (/metrics, the drain hook).
 * The admin port is the one SIDECAR_ADMIN_PORT names (the contract's default when unset).
 */
import { SIDECAR_ENV, SIDECAR_INTEGERS } from '../contract';
import type { SidecarAppPods } from './apps';
import { JsonObject, asArray, asObject, asString, portRef } from './manifest';

export interface GuardedPort {
  readonly kind: 'main' | 'admin';
  readonly port: number;
  /** Container port names that refer to it. */
  readonly names: readonly string[];
}

function adminPortOf(app: SidecarAppPods): number {
  for (const entry of asArray(app.sidecar.container.env)) {
    const e = asObject(entry) ?? {};
    if (e.name !== SIDECAR_ENV.adminPort) continue;
    const value = portRef(asString(e.value));
    if (typeof value === 'number') return value;
  }
  return SIDECAR_INTEGERS.adminPort.default;
}

/** The names a container gives `port`. */
function portNames(container: JsonObject | undefined, port: number): string[] {
  return asArray(container?.ports)
    .map((entry) => asObject(entry) ?? {})
    .filter((p) => p.containerPort === port)
    .map((p) => asString(p.name))
    .filter((n): n is string => n !== undefined);
}

export function guardedPorts(app: SidecarAppPods): GuardedPort[] {
  const main: GuardedPort[] = [...app.mainPorts].sort((a, b) => a - b).map((port) => ({ kind: 'main', port, names: portNames(app.main?.container, port) }));
  const admin = adminPortOf(app);
  return [...main, { kind: 'admin', port: admin, names: portNames(app.sidecar.container, admin) }];
}
