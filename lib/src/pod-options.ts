/**
 * What the pod takes beyond its two containers: the pull secret for private registries and the
 * pod's annotations. Scheduling is cdk8s-plus's own: `app.deployment.scheduling` (attract, colocate,
 * separate), documented in lib/README.md.
 */
import * as kplus from 'cdk8s-plus-28';
import * as check from './validate';

/**
 * The pod props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its members
 * into SidecarAppProps.
 * @jsii ignore
 */
export interface PodOptionsProps {
  /**
   * Secret of type `kubernetes.io/dockerconfigjson` the kubelet pulls both images with, from a
   * private registry (`kplus.Secret.fromSecretName` for one made outside the chart).
   * @default - none: the images are public or the node can already pull them
   */
  readonly dockerRegistryAuth?: kplus.ISecret;
  /**
   * Annotations of the pod template (e.g. `prometheus.io/scrape`, a service mesh's opt-out). A
   * change rolls the pods. Never a credential: the validation plugin's `token-literal` rule reads them.
   * @default - none
   */
  readonly podAnnotations?: { [key: string]: string };
}

export interface ResolvedPodOptions {
  readonly dockerRegistryAuth?: kplus.ISecret;
  readonly podAnnotations: Readonly<Record<string, string>>;
}

export function resolvePodOptions(props: PodOptionsProps): ResolvedPodOptions {
  const podAnnotations = props.podAnnotations ?? {};
  for (const [key, value] of Object.entries(podAnnotations)) check.annotation('podAnnotations', key, value);
  return { dockerRegistryAuth: props.dockerRegistryAuth, podAnnotations: { ...podAnnotations } };
}
