/**
 * The env a container's process gets: the manifest's values, $(VAR)-expanded as the kubelet does, with
 * paths under a mount rewritten to the local folder the container's filesystem would show there.
 */
import * as os from 'os';
import { ADDRESSES } from '../../lib/src/contract';
import { Container, Deployment, EnvVar, PodSpecError } from './manifest';
import { LocalMount } from './volumes';

/**
 * Kubernetes $(VAR) expansion of env values and args: a defined VAR is replaced, an undefined one is
 * left as written, and `$$` is a literal `$` (so `$$(VAR)` stays `$(VAR)`).
 */
export function expandVars(value: string, vars: Readonly<Record<string, string>>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (name === undefined) return '$';
    return Object.hasOwn(vars, name) ? vars[name] : match;
  });
}

/** What the container's filesystem shows at `value`, if it lies under a mount; the value itself otherwise. */
export function rewriteMountedPath(value: string, mounts: readonly LocalMount[]): string {
  // Longest mount first, so nested mounts win.
  for (const { mountPath, dir } of [...mounts].sort((a, b) => b.mountPath.length - a.mountPath.length)) {
    if (value === mountPath || value.startsWith(`${mountPath}/`)) return dir + value.slice(mountPath.length);
  }
  return value;
}

/**
 * rewriteMountedPath, and inside a JSON value (SIDECAR_JWT_ISSUERS, SIDECAR_KUBERNETES_AUTH) of
 * every string in it: contract settings that carry file paths are JSON.
 */
export function rewriteMountedPaths(value: string, mounts: readonly LocalMount[]): string {
  if (!/^\s*[[{]/.test(value)) return rewriteMountedPath(value, mounts);
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return value;
  }
  const walk = (v: unknown): unknown =>
    typeof v === 'string'
      ? rewriteMountedPath(v, mounts)
      : Array.isArray(v)
        ? v.map(walk)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, e]) => [k, walk(e)]))
          : v;
  return JSON.stringify(walk(parsed));
}

/** The downward-API fields that have a local meaning; any other valueFrom is refused. */
function resolveValueFrom(container: Container, env: EnvVar, deployment: Deployment): string {
  const from = env.valueFrom as { fieldRef?: { fieldPath?: string } } | undefined;
  const fieldPath = from?.fieldRef?.fieldPath;
  const known: Record<string, string> = {
    'metadata.name': `${deployment.metadata?.name ?? 'pod'}-local`,
    'metadata.namespace': deployment.metadata?.namespace ?? 'default',
    'status.podIP': ADDRESSES.loopback,
    'status.hostIP': ADDRESSES.loopback,
    'spec.nodeName': os.hostname(),
  };
  if (fieldPath !== undefined && Object.hasOwn(known, fieldPath)) return known[fieldPath];
  throw new PodSpecError(`container ${container.name} env ${env.name}`, `valueFrom ${JSON.stringify(env.valueFrom)} cannot be resolved by the local runner`);
}

/**
 * The env the container's process gets. Each value may refer to the ones before it; `overrides`
 * are set last, unexpanded: what has to differ on this machine.
 */
export function containerEnv(
  container: Container,
  deployment: Deployment,
  mounts: readonly LocalMount[],
  overrides: Readonly<Record<string, string>> = {},
): Record<string, string> {
  if (container.envFrom?.length) throw new PodSpecError(`container ${container.name} envFrom`, 'is not supported by the local runner');
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    const raw = e.valueFrom !== undefined ? resolveValueFrom(container, e, deployment) : (e.value ?? '');
    env[e.name] = rewriteMountedPaths(expandVars(raw, env), mounts);
  }
  return { ...env, ...overrides };
}
