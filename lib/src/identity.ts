/**
 * Workload identity: the app's own ServiceAccount, service-account token auth on its sidecar, and
 * the projected tokens a caller connected with `allowCallsFrom` presents.
 *
 * Tokens reach containers only through projected volumes mounted where they are needed; the pod
 * keeps automountServiceAccountToken false, so the main container never holds an API credential.
 */
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import {
  CALLER_TOKENS_MOUNT_ROOT,
  KUBERNETES_AUTH_FILES,
  KUBERNETES_AUTH_MOUNT_PATH,
  SIDECAR_ENV,
  // The env var naming the token file for calls to a callee: ORDERS_TOKEN_FILE for "orders".
  callerTokenEnvName,
  encodeKubernetesAuth,
  kubernetesAuthProblem,
  parseKubernetesAuth,
} from './contract';
import type { KubernetesAuthSpec } from './contract';
import * as check from './validate';
import { VOLUME_NAMES } from './volume-names';

/** Service-account token auth on the sidecar: callers present a projected token for one of `audiences`. */
export interface ServiceAccountAuthOptions {
  /**
   * Audiences a caller's token must name (one is enough). A caller asks for a token with one of
   * them in its projected volume (`allowCallsFrom` does that).
   * @default - [the app's name]
   */
  readonly audiences?: string[];
  /**
   * https: base URL of the API server the sidecar reads the issuer's keys from.
   * @default - the in-cluster address, from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT
   */
  readonly apiServer?: string;
  /**
   * Seconds between refetches of the cluster's keys (30-86400).
   * @default 300
   */
  readonly refreshSeconds?: number;
  /**
   * Leeway for exp, nbf and iat, in seconds (0-300).
   * @default 30
   */
  readonly clockSkewSeconds?: number;
  /**
   * Longest accepted exp - iat, in seconds: a bound on how long a stolen token is good for.
   * @default - no bound (projected tokens live 1 h by default, at most what their pod asked for)
   */
  readonly maxLifetimeSeconds?: number;
}

/**
 * The service-account auth prop of SidecarAppProps. Not part of the jsii API on its own: jsii
 * copies its members into SidecarAppProps.
 * @jsii ignore
 */
export interface ServiceAccountAuthProps {
  /**
   * Accept Kubernetes service-account tokens: projected tokens for one of the audiences, verified
   * against the cluster issuer's keys. Adds the sidecar's own token for the API server and the
   * cluster CA (`kube-root-ca.crt`), in a projected volume mounted into the sidecar only.
   * `allowCallsFrom` turns it on with the defaults.
   * @default - off
   */
  readonly serviceAccountAuth?: ServiceAccountAuthOptions;
}

/** The ConfigMap the cluster publishes in every namespace with the API server's CA (RootCAConfigMap). */
export const KUBE_ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';
/** The lifetime a projected token asks for; the kubelet renews it at 80 %. */
export const PROJECTED_TOKEN_SECONDS = 3600;
const KUBE_API_VOLUME = VOLUME_NAMES.kubeApi;
const CALLER_VOLUME_PREFIX = VOLUME_NAMES.callerPrefix;

/** The sidecar's SIDECAR_KUBERNETES_AUTH, checked with the contract's rule; undefined when the prop is unset. */
export function resolveServiceAccountAuth(options: ServiceAccountAuthOptions | undefined, appName: string): KubernetesAuthSpec | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) check.fail('serviceAccountAuth', 'must be an object');
  const spec: KubernetesAuthSpec = {
    audiences: options.audiences === undefined ? [appName] : Array.isArray(options.audiences) ? [...options.audiences] : options.audiences,
    tokenFile: `${KUBERNETES_AUTH_MOUNT_PATH}/${KUBERNETES_AUTH_FILES.token}`,
    caFile: `${KUBERNETES_AUTH_MOUNT_PATH}/${KUBERNETES_AUTH_FILES.ca}`,
    ...(options.apiServer !== undefined ? { apiServer: options.apiServer } : {}),
    ...(options.refreshSeconds !== undefined ? { refreshSeconds: options.refreshSeconds } : {}),
    ...(options.clockSkewSeconds !== undefined ? { clockSkewSeconds: options.clockSkewSeconds } : {}),
    ...(options.maxLifetimeSeconds !== undefined ? { maxLifetimeSeconds: options.maxLifetimeSeconds } : {}),
  };
  const problem = kubernetesAuthProblem(spec);
  // The contract's problem starts with the field: "audiences must be …".
  if (problem !== undefined) check.fail(`serviceAccountAuth.${problem.split(' ')[0]}`, problem.slice(problem.indexOf(' ') + 1));
  const parsed = parseKubernetesAuth(encodeKubernetesAuth(spec)!);
  if (!parsed.ok) check.fail('serviceAccountAuth', parsed.problem);
  return spec;
}

/**
 * A projected volume. cdk8s-plus-28 has no factory for one; its Volume renders any volume source,
 * but takes it only through its (private) constructor.
 */
function projectedVolume(scope: Construct, id: string, name: string, sources: k8s.VolumeProjection[]): kplus.Volume {
  const VolumeOf = kplus.Volume as unknown as new (scope: Construct, id: string, name: string, config: Omit<k8s.Volume, 'name'>) => kplus.Volume;
  return new VolumeOf(scope, id, name, { projected: { sources, defaultMode: 0o440 } });
}

/** The app's own ServiceAccount: its pods' identity. Its token is never automounted. */
export function createServiceAccount(scope: Construct, name: string, labels: Record<string, string>): kplus.ServiceAccount {
  return new kplus.ServiceAccount(scope, 'service-account', { metadata: { name, labels: { ...labels } }, automountToken: false });
}

/**
 * Into the sidecar only: its own token for the API server (to read the issuer's keys) and the
 * cluster CA, and SIDECAR_KUBERNETES_AUTH naming both.
 */
export function enableServiceAccountAuth(scope: Construct, sidecar: kplus.Container, spec: KubernetesAuthSpec): void {
  const volume = projectedVolume(scope, 'kube-api-volume', KUBE_API_VOLUME, [
    // No audience: the API server's own, which is what reading its discovery documents needs.
    { serviceAccountToken: { path: KUBERNETES_AUTH_FILES.token, expirationSeconds: PROJECTED_TOKEN_SECONDS } },
    { configMap: { name: KUBE_ROOT_CA_CONFIGMAP, items: [{ key: 'ca.crt', path: KUBERNETES_AUTH_FILES.ca }] } },
  ]);
  sidecar.mount(KUBERNETES_AUTH_MOUNT_PATH, volume, { readOnly: true });
  sidecar.env.addVariable(SIDECAR_ENV.kubernetesAuth, kplus.EnvValue.fromValue(encodeKubernetesAuth(spec)!));
}

/** Where a caller's containers find their token for `callee`. */
export function callerTokenPath(callee: string): string {
  return `${CALLER_TOKENS_MOUNT_ROOT}/${callee}/token`;
}

/**
 * A projected token with the callee's audience, mounted read-only into `containers`, with an env
 * var naming its file. The kubelet renews the file in place; read it per call, or when it changes.
 */
export function mountCallerToken(scope: Construct, containers: readonly kplus.Container[], callee: string, audience: string): void {
  const volume = projectedVolume(scope, `caller-token-${callee}`, `${CALLER_VOLUME_PREFIX}${callee}`, [
    { serviceAccountToken: { path: 'token', audience, expirationSeconds: PROJECTED_TOKEN_SECONDS } },
  ]);
  for (const container of containers) {
    container.mount(`${CALLER_TOKENS_MOUNT_ROOT}/${callee}`, volume, { readOnly: true });
    container.env.addVariable(callerTokenEnvName(callee), kplus.EnvValue.fromValue(callerTokenPath(callee)));
  }
}
