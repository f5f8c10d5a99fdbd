/** The disruption and scaling objects: a PodDisruptionBudget once there is more than one pod, and the autoscaler. */
import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ResolvedProps } from './props';

/** Voluntary disruptions (drains, upgrades) take at most one pod at a time. cdk8s-plus has no L2 for it. */
export function createDisruptionBudget(scope: Construct, config: ResolvedProps): k8s.KubePodDisruptionBudget {
  return new k8s.KubePodDisruptionBudget(scope, 'pdb', {
    metadata: { name: config.name, labels: { ...config.labels } },
    spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: { ...config.selectorLabels } } },
  });
}

/** Kubernetes's own defaults (HPA v2), spelled out: cdk8s-plus would otherwise put its own slower rules in. */
const SCALE_UP: kplus.ScalingRules = {
  stabilizationWindow: Duration.seconds(0),
  strategy: kplus.ScalingStrategy.MAX_CHANGE,
  policies: [
    { replicas: kplus.Replicas.percent(100), duration: Duration.seconds(15) },
    { replicas: kplus.Replicas.absolute(4), duration: Duration.seconds(15) },
  ],
};
const SCALE_DOWN: kplus.ScalingRules = {
  stabilizationWindow: Duration.minutes(5),
  strategy: kplus.ScalingStrategy.MAX_CHANGE,
  policies: [{ replicas: kplus.Replicas.percent(100), duration: Duration.seconds(15) }],
};

export function createAutoscaler(scope: Construct, config: ResolvedProps & { autoscaling: NonNullable<ResolvedProps['autoscaling']> }, deployment: kplus.Deployment): kplus.HorizontalPodAutoscaler {
  return new kplus.HorizontalPodAutoscaler(scope, 'hpa', {
    metadata: { name: config.name, labels: { ...config.labels } },
    target: deployment,
    minReplicas: config.autoscaling.minReplicas,
    maxReplicas: config.autoscaling.maxReplicas,
    metrics: [kplus.Metric.resourceCpu(kplus.MetricTarget.averageUtilization(config.autoscaling.targetCpuUtilization))],
    scaleUp: SCALE_UP,
    scaleDown: SCALE_DOWN,
  });
}
