/**
 * What the pod takes beyond its two containers: the pull secret for private registries and the
 * pod's annotations. Scheduling is cdk8s-plus's own: `app.deployment.scheduling` (attract, colocate,
 * separate), documented in lib/README.md.
 */
import * as kplus from 'cdk8s-plus-28';
import * as check from './validate';
import { WAIVE_ANNOTATION } from './validation/rules';

/**
 * Pod annotations that would weaken the hardening behind the props' back (a container's AppArmor or
 * seccomp profile, as the pre-1.30 annotations set it) or pretend to waive a rule on the pod
 * template, where the validation plugin never reads waivers.
 */
const REFUSED_ANNOTATION_PREFIXES = ['container.apparmor.security.beta.kubernetes.io/', 'seccomp.security.alpha.kubernetes.io/', 'container.seccomp.security.alpha.kubernetes.io/'];

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
  for (const [key, value] of Object.entries(podAnnotations)) {
    check.annotation('podAnnotations', key, value);
    if (REFUSED_ANNOTATION_PREFIXES.some((prefix) => key.startsWith(prefix))) check.fail('podAnnotations', `must not set ${JSON.stringify(key)}: it changes a container's security profile, which SidecarApp keeps RuntimeDefault`);
    if (key === WAIVE_ANNOTATION) check.fail('podAnnotations', `must not set ${JSON.stringify(key)}: waivers belong on the Deployment, and SidecarApp sets them from the props that weaken something`);
  }
  return { dockerRegistryAuth: props.dockerRegistryAuth, podAnnotations: { ...podAnnotations } };
}
