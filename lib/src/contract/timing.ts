/**
 * The shutdown timing budget of the pod. From SIGTERM, each stage must fit inside the next: the
 * sidecar drains, then finishes its in-flight requests; main keeps serving until the sidecar can no
 * longer forward to it; both exit before the kubelet's SIGKILL. lib/ and the apps both take their
 * numbers from timingBudget, so the manifest and the processes cannot disagree.
 */

import type { SidecarModeName } from './names';

export interface TimingInputs {
  /**
   * How the sidecar runs. In `native` mode main's preStop is the sidecar's drain hook: the sidecar
   * drains and closes first, then main gets SIGTERM, then the sidecar. preStop is then unused.
   * @default 'container'
   */
  readonly mode?: SidecarModeName;
  /** How long the sidecar keeps forwarding after SIGTERM (readiness already 503). */
  readonly drainDelayMs: number;
  /** Upstream inactivity timeout of the sidecar. */
  readonly upstreamTimeoutMs: number;
  /** preStop wait of both containers (the sidecar's preStop wait endpoint); SIGTERM comes after it. */
  readonly preStopDelaySeconds: number;
  /** The pod's terminationGracePeriodSeconds; preStop counts against it. */
  readonly terminationGracePeriodSeconds: number;
}

export interface TimingBudget {
  /** How long main keeps serving after SIGTERM: past the sidecar's drain, so forwarded requests still find it. */
  readonly mainDrainDelayMs: number;
  /** The sidecar's bound on its whole shutdown: it exits on its own before the kubelet's SIGKILL. */
  readonly sidecarShutdownTimeoutMs: number;
  /** The shortest grace period that holds preStop, the drain and one full upstream timeout. */
  readonly minTerminationGracePeriodSeconds: number;
}

/** Main outlasts the sidecar's drain by this much. */
export const MAIN_EXTRA_DRAIN_MS = 5_000;
/** Between the sidecar's own shutdown bound and the kubelet's SIGKILL. */
export const SHUTDOWN_MARGIN_SECONDS = 2;
/** Slack in the minimum grace period on top of preStop + drain + upstream timeout. */
export const GRACE_MARGIN_SECONDS = 5;

/** The inputs SidecarApp uses when its props leave them unset; the apps' defaults follow from them. */
export const DEFAULT_TIMING_INPUTS: TimingInputs = {
  drainDelayMs: 5_000,
  upstreamTimeoutMs: 15_000,
  preStopDelaySeconds: 5,
  terminationGracePeriodSeconds: 40,
};

export function timingBudget(inputs: TimingInputs): TimingBudget {
  const { drainDelayMs, upstreamTimeoutMs, preStopDelaySeconds, terminationGracePeriodSeconds } = inputs;
  if (inputs.mode === 'native') {
    // From the pod's deletion: the sidecar drains and finishes its requests (main's preStop), then
    // main drains its extra time; the sidecar's bound runs from its drain hook, so it spans all of it.
    return {
      mainDrainDelayMs: MAIN_EXTRA_DRAIN_MS,
      sidecarShutdownTimeoutMs: (terminationGracePeriodSeconds - SHUTDOWN_MARGIN_SECONDS) * 1000,
      minTerminationGracePeriodSeconds: Math.ceil((drainDelayMs + upstreamTimeoutMs + MAIN_EXTRA_DRAIN_MS) / 1000) + GRACE_MARGIN_SECONDS,
    };
  }
  return {
    mainDrainDelayMs: drainDelayMs + MAIN_EXTRA_DRAIN_MS,
    sidecarShutdownTimeoutMs: (terminationGracePeriodSeconds - preStopDelaySeconds - SHUTDOWN_MARGIN_SECONDS) * 1000,
    minTerminationGracePeriodSeconds: preStopDelaySeconds + Math.ceil((drainDelayMs + upstreamTimeoutMs) / 1000) + GRACE_MARGIN_SECONDS,
  };
}

/**
 * How long main's preStop waits for the sidecar to close, in container mode with a main that does
 * not read the contract env (any image but ours): up to the sidecar's own shutdown bound, so that
 * its answer ("sidecar closed") comes first even when a long stream keeps the sidecar forwarding,
 * and main gets SIGTERM at worst SHUTDOWN_MARGIN_SECONDS before the kubelet's SIGKILL.
 */
export function mainClosedWaitMs(preStopDelaySeconds: number, budget: TimingBudget): number {
  return preStopDelaySeconds * 1000 + budget.sidecarShutdownTimeoutMs;
}

/** The budget of the default inputs. */
export const DEFAULT_TIMING_BUDGET = timingBudget(DEFAULT_TIMING_INPUTS);

/**
 * The budget of a sidecar whose env sets no shutdown bound (a run outside SidecarApp, which always
 * sets one): the default pod timing, with the grace period stretched to fit its drain and timeout.
 */
export function standaloneTimingBudget(drainDelayMs: number, upstreamTimeoutMs: number): TimingBudget {
  const inputs = { ...DEFAULT_TIMING_INPUTS, drainDelayMs, upstreamTimeoutMs };
  const fitting = timingBudget(inputs).minTerminationGracePeriodSeconds;
  return timingBudget({ ...inputs, terminationGracePeriodSeconds: Math.max(DEFAULT_TIMING_INPUTS.terminationGracePeriodSeconds, fitting) });
}
