/**
 * The Deployment and its pod: the main container and the authenticating sidecar in front of it
 * (main-container.ts, sidecar-container.ts), hardened, with the tokens Secret and the JWT issuers'
 * ConfigMaps mounted into the sidecar as directories. Every default cdk8s-plus would add on its own
 * (resource requests, pull policy, hashed names, a non-numeric non-root user) is set on purpose.
 * Its pod address label stays: cdk8s-plus selects these pods by it when a chart passes
 * `app.deployment` as a peer or selector.
 */
import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { CONTAINER_NAMES, RUN_AS } from './contract';
import { mountJwtIssuers } from './jwt-issuers';
import { SidecarMode } from './lifecycle';
import { mainContainer } from './main-container';
import type { ResolvedProps } from './props';
import { addRoutesEnvOnAppend, sidecarContainer } from './sidecar-container';
import { mountTokens } from './tokens';

/** Keeps at most this many old ReplicaSets for `kubectl rollout undo`. */
const REVISION_HISTORY_LIMIT = 3;

/** The Deployment running the pod. */
export function createDeployment(scope: Construct, config: ResolvedProps, serviceAccount: kplus.IServiceAccount): kplus.Deployment {
  const deployment = new kplus.Deployment(scope, 'deployment', {
    metadata: { name: config.name, labels: { ...config.labels } },
    // Our own selector labels, not cdk8s-plus's generated one: other charts select these pods by them.
    select: false,
    podMetadata: { labels: { ...config.labels }, annotations: { ...config.podAnnotations } },
    dockerRegistryAuth: config.dockerRegistryAuth,
    // With an autoscaler, the HorizontalPodAutoscaler owns the count.
    replicas: config.autoscaling ? undefined : config.replicas,
    // Start the new pod before stopping an old one: capacity never drops.
    strategy: kplus.DeploymentStrategy.rollingUpdate({ maxSurge: kplus.PercentOrAbsolute.absolute(1), maxUnavailable: kplus.PercentOrAbsolute.absolute(0) }),
    // Its own account, as its identity; no token is mounted but the projections that need one.
    serviceAccount,
    automountServiceAccountToken: false,
    terminationGracePeriod: Duration.seconds(config.terminationGracePeriodSeconds),
    securityContext: {
      ensureNonRoot: true,
      user: RUN_AS.user,
      group: RUN_AS.group,
      // Lets the non-root user read the token files.
      fsGroup: RUN_AS.group,
    },
    containers: config.sidecarMode === SidecarMode.NATIVE ? [mainContainer(scope, config)] : [mainContainer(scope, config), sidecarContainer(config)],
    initContainers: config.sidecarMode === SidecarMode.NATIVE ? [sidecarContainer(config)] : undefined,
  });
  deployment.select(kplus.LabelSelector.of({ labels: { ...config.selectorLabels } }));

  const sidecar = [...deployment.containers, ...deployment.initContainers].find((c) => c.name === CONTAINER_NAMES.sidecar)!;
  if (config.tokenSecretName !== undefined) mountTokens(scope, sidecar, config.tokenSecretName);
  addRoutesEnvOnAppend(sidecar, config.routes, config.constructPath);
  mountJwtIssuers(scope, sidecar, config.jwtIssuers.mounts);
  patchPodSpec(deployment, config);
  return deployment;
}

/** What cdk8s-plus has no prop for. */
function patchPodSpec(deployment: kplus.Deployment, config: ResolvedProps): void {
  const podSpec = '/spec/template/spec';
  const resource = ApiObject.of(deployment);
  resource.addJsonPatch(JsonPatch.add('/spec/revisionHistoryLimit', REVISION_HISTORY_LIMIT));
  // No service-link env vars: the apps read only the contract's env.
  resource.addJsonPatch(JsonPatch.add(`${podSpec}/enableServiceLinks`, false));
  resource.addJsonPatch(JsonPatch.add(`${podSpec}/securityContext/seccompProfile`, { type: kplus.SeccompProfileType.RUNTIME_DEFAULT }));
  if (config.spreadsOverNodes) {
    resource.addJsonPatch(
      JsonPatch.add(`${podSpec}/topologySpreadConstraints`, [
        {
          maxSkew: 1,
          topologyKey: 'kubernetes.io/hostname',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: { ...config.selectorLabels } },
          // Count only the pods of the same revision, so a rollout is not skewed by old pods.
          matchLabelKeys: ['pod-template-hash'],
        },
      ]),
    );
  }
}
