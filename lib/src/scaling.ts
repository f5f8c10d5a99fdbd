/**
 * How many pods: the `replicas` and `autoscaling` props, and the objects they bring: a
 * PodDisruptionBudget once there is more than one pod, and the HorizontalPodAutoscaler.
 */
import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ResolvedNaming } from './naming';
import * as check from './validate';

/** CPU-based horizontal autoscaling. */
export interface AutoscalingOptions {
  /** Lower bound of replicas (at least 1). */
  readonly minReplicas: number;
  /** Upper bound of replicas (at least minReplicas). */
  readonly maxReplicas: number;
  /**
   * Target average CPU use, in percent of the pod's CPU requests.
   * @default 80
   */
  readonly targetCpuUtilization?: number;
}

/**
 * The scaling props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its
 * members into SidecarAppProps.
 * @jsii ignore
 */
export interface ScalingProps {
  /**
   * Number of pods. Above 1, a PodDisruptionBudget and a topology spread across nodes are added.
   * Must be left unset when `autoscaling` is set.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * CPU-based HorizontalPodAutoscaler. When set, the Deployment leaves `replicas` to the
   * autoscaler, and a PodDisruptionBudget is added.
   * @default - no autoscaler
   */
  readonly autoscaling?: AutoscalingOptions;
}

export interface ResolvedScaling {
  readonly replicas: number;
  readonly autoscaling?: Required<AutoscalingOptions>;
  /** More than one pod at a time: spread them, and bound voluntary disruptions. */
  readonly spreadsOverNodes: boolean;
}

export function resolveScaling(props: ScalingProps): ResolvedScaling {
  const autoscaling = resolveAutoscaling(props.autoscaling);
  if (props.replicas !== undefined && autoscaling) {
    check.fail('replicas', 'must not be set together with autoscaling: the HorizontalPodAutoscaler owns the replica count');
  }
  const replicas = check.integerInRange('replicas', props.replicas ?? 1, 1, 10_000);
  return { replicas, autoscaling, spreadsOverNodes: autoscaling !== undefined || replicas > 1 };
}

function resolveAutoscaling(options: AutoscalingOptions | undefined): Required<AutoscalingOptions> | undefined {
  if (!options) return undefined;
  const { minReplicas, maxReplicas, targetCpuUtilization = 80 } = options;
  check.integerInRange('autoscaling.minReplicas', minReplicas, 1, 10_000);
  check.integerInRange('autoscaling.maxReplicas', maxReplicas, minReplicas, 10_000);
  check.integerInRange('autoscaling.targetCpuUtilization', targetCpuUtilization, 1, 1000);
  return { minReplicas, maxReplicas, targetCpuUtilization };
}

/** Voluntary disruptions (drains, upgrades) take at most one pod at a time. cdk8s-plus has no L2 for it. */
export function createDisruptionBudget(scope: Construct, config: ResolvedNaming): k8s.KubePodDisruptionBudget {
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

export function createAutoscaler(scope: Construct, config: ResolvedNaming & { autoscaling: Required<AutoscalingOptions> }, deployment: kplus.Deployment): kplus.HorizontalPodAutoscaler {
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
