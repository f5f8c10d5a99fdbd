/**
 * How the two containers start and stop: the sidecar mode, the drain and grace timings (checked
 * against the contract's `timingBudget`), and the preStop hooks that follow from them.
 */
import * as kplus from 'cdk8s-plus-28';
import { DEFAULT_TIMING_INPUTS, GRACE_MARGIN_SECONDS, MAIN_EXTRA_DRAIN_MS, POD_TIMING_INTEGERS, SIDECAR_INTEGERS, encodeDrainHook, encodePreStopWait, mainClosedWaitMs, timingBudget } from './contract';
import type { TimingBudget } from './contract';
import type { ResolvedContainers } from './container';
import * as check from './validate';

/** How the sidecar runs in the pod. */
export enum SidecarMode {
  /** An ordinary container beside main, on every Kubernetes version; both stop at once, timed by drain delays. */
  CONTAINER = 'container',
  /**
   * A native sidecar (KEP-753): an init container with `restartPolicy: Always` and a startup probe.
   * Main starts once the sidecar serves; on termination the sidecar drains and closes first (main's
   * preStop is its drain hook), then main stops, then the sidecar. Kubernetes 1.29+ (1.28 only with
   * the SidecarContainers feature gate).
   */
  NATIVE = 'native',
}

/**
 * The start-up and shutdown props of SidecarAppProps. Not part of the jsii API on its own: jsii
 * copies its members into SidecarAppProps.
 * @jsii ignore
 */
export interface LifecycleProps {
  /**
   * How the sidecar runs: an ordinary container, or a native sidecar that starts before main and
   * stops after it.
   * @default SidecarMode.CONTAINER
   */
  readonly sidecarMode?: SidecarMode;
  /**
   * Upstream inactivity timeout of the sidecar, in ms; a timeout answers 504.
   * @default contract DEFAULT_TIMING_INPUTS.upstreamTimeoutMs
   */
  readonly upstreamTimeoutMs?: number;
  /**
   * How long the sidecar keeps forwarding after SIGTERM, in ms. The main container drains longer
   * (contract `timingBudget`), so forwarded requests still find it.
   * @default contract DEFAULT_TIMING_INPUTS.drainDelayMs
   */
  readonly drainDelayMs?: number;
  /**
   * preStop wait of both containers, in seconds: time for the endpoint removal to reach every
   * kube-proxy before SIGTERM. An httpGet to the sidecar's admin port (contract
   * HEALTH_PATHS.preStopWait), so the images need no shell or `sleep`.
   * @default contract DEFAULT_TIMING_INPUTS.preStopDelaySeconds
   */
  readonly preStopDelaySeconds?: number;
  /**
   * Pod termination grace period, in seconds. Must cover preStop + drain + upstream timeout + a
   * margin (contract `timingBudget`).
   * @default contract DEFAULT_TIMING_INPUTS.terminationGracePeriodSeconds
   */
  readonly terminationGracePeriodSeconds?: number;
}

/** The mode and the timings, checked; `timing` is what the contract derives from them. */
export interface ResolvedLifecycle {
  readonly sidecarMode: SidecarMode;
  readonly upstreamTimeoutMs: number;
  readonly drainDelayMs: number;
  readonly preStopDelaySeconds: number;
  readonly terminationGracePeriodSeconds: number;
  readonly timing: TimingBudget;
}

export function resolveLifecycle(props: LifecycleProps): ResolvedLifecycle {
  const upstreamTimeoutMs = check.integer('upstreamTimeoutMs', props.upstreamTimeoutMs ?? DEFAULT_TIMING_INPUTS.upstreamTimeoutMs, SIDECAR_INTEGERS.upstreamTimeoutMs);
  const drainDelayMs = check.integer('drainDelayMs', props.drainDelayMs ?? DEFAULT_TIMING_INPUTS.drainDelayMs, SIDECAR_INTEGERS.drainDelayMs);
  const sidecarMode = check.oneOf('sidecarMode', props.sidecarMode ?? SidecarMode.CONTAINER, Object.values(SidecarMode));
  if (sidecarMode === SidecarMode.NATIVE && props.preStopDelaySeconds !== undefined) {
    check.fail('preStopDelaySeconds', "must be left unset with sidecarMode NATIVE: main's preStop is then the sidecar's drain hook (drainDelayMs)");
  }
  const preStopDelaySeconds =
    sidecarMode === SidecarMode.NATIVE
      ? 0
      : check.integer('preStopDelaySeconds', props.preStopDelaySeconds ?? DEFAULT_TIMING_INPUTS.preStopDelaySeconds, POD_TIMING_INTEGERS.preStopDelaySeconds);
  const terminationGracePeriodSeconds = check.integer(
    'terminationGracePeriodSeconds',
    props.terminationGracePeriodSeconds ?? DEFAULT_TIMING_INPUTS.terminationGracePeriodSeconds,
    POD_TIMING_INTEGERS.terminationGracePeriodSeconds,
  );
  const timing = timingBudget({ mode: sidecarMode, drainDelayMs, upstreamTimeoutMs, preStopDelaySeconds, terminationGracePeriodSeconds });
  if (terminationGracePeriodSeconds < timing.minTerminationGracePeriodSeconds) {
    const formula =
      sidecarMode === SidecarMode.NATIVE
        ? `(drainDelayMs + upstreamTimeoutMs + ${MAIN_EXTRA_DRAIN_MS}) / 1000, rounded up, + ${GRACE_MARGIN_SECONDS}`
        : `preStopDelaySeconds + (drainDelayMs + upstreamTimeoutMs) / 1000, rounded up, + ${GRACE_MARGIN_SECONDS}`;
    check.fail('terminationGracePeriodSeconds', `(${terminationGracePeriodSeconds}) must be at least ${timing.minTerminationGracePeriodSeconds}: ${formula}`);
  }
  return { sidecarMode, upstreamTimeoutMs, drainDelayMs, preStopDelaySeconds, terminationGracePeriodSeconds, timing };
}

/**
 * What runs before SIGTERM. Container mode: both containers wait on the sidecar's preStop wait (an
 * httpGet the kubelet makes to the admin port), so the endpoint removal reaches every node and
 * neither image needs a shell or `sleep`. The sidecar waits on its own endpoint too: one mechanism
 * for both, and its image could drop its shell as well. A main without the contract's env (any
 * image but ours) does not delay its own exit by MAIN_DRAIN_DELAY_MS: its wait lasts until the
 * sidecar has drained and closed (at most the sidecar's shutdown bound: the contract's
 * mainClosedWaitMs), so it gets SIGTERM only once no accepted request still needs it. Native mode:
 * main's hook is the sidecar's drain, which answers once the sidecar is closed; the sidecar,
 * stopped after main, needs none.
 */
export function preStopOf(
  config: ResolvedLifecycle & Pick<ResolvedContainers, 'adminPort'>,
  which: 'main' | 'sidecar',
  mainHasContractEnv = true,
): kplus.ContainerLifecycle | undefined {
  const hook = (path: string) => ({ preStop: kplus.Handler.fromHttpGet(path, { port: config.adminPort }) });
  if (config.sidecarMode === SidecarMode.NATIVE) return which === 'main' ? hook(encodeDrainHook(config.drainDelayMs)) : undefined;
  const preStopMs = config.preStopDelaySeconds * 1000;
  if (which === 'main' && !mainHasContractEnv) return hook(encodePreStopWait(mainClosedWaitMs(config.preStopDelaySeconds, config.timing), { untilSidecarClosed: true }));
  return preStopMs === 0 ? undefined : hook(encodePreStopWait(preStopMs));
}
