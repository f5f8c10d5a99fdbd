/**
 * The pod volumes SidecarApp names itself, in one place, so that a volume the user mounts into main
 * (`main.volumeMounts`) is refused at synth, naming the prop, rather than clash in the pod.
 */
export const VOLUME_NAMES = {
  /** The static tokens Secret (sidecar only). */
  tokens: 'tokens',
  /** `jwks-<i>`: each JWT issuer's key ConfigMap or secret Secret (sidecar only). */
  jwksPrefix: 'jwks-',
  /** The sidecar's own projected token and the cluster CA (service-account auth). */
  kubeApi: 'sidecar-kube-api',
  /** `calls-<callee>`: a caller's projected token for a callee (allowCallsFrom). */
  callerPrefix: 'calls-',
  /** `main-writable-<i>`: the emptyDir of each of main's writable paths. */
  writablePrefix: 'main-writable-',
} as const;

export function isSidecarAppVolumeName(name: string): boolean {
  const { tokens, kubeApi, jwksPrefix, callerPrefix, writablePrefix } = VOLUME_NAMES;
  return name === tokens || name === kubeApi || [jwksPrefix, callerPrefix, writablePrefix].some((prefix) => name.startsWith(prefix));
}
