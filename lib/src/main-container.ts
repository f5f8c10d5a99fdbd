/**
 * The main container: the app's own code, told its port, drain and log level through the
 * contract's env, probed on its health path, stopped after the sidecar has drained.
 */
import * as kplus from 'cdk8s-plus-28';
import { ADDRESSES, CONTAINER_NAMES, HEALTH_PATHS, MAIN_ENV, MAIN_INTEGERS, encodeInteger } from './contract';
import { commonContainer, httpProbe, toEnv } from './container';
import type { ResolvedContainers } from './container';
import { preStopOf } from './lifecycle';
import type { ResolvedLifecycle } from './lifecycle';

/** What the main container is built from. */
export type MainContainerConfig = ResolvedContainers & ResolvedLifecycle;

export function mainContainer(config: MainContainerConfig): kplus.ContainerProps {
  const { main } = config;
  return {
    name: CONTAINER_NAMES.main,
    ...commonContainer(config, main, main.portName),
    lifecycle: preStopOf(config, 'main'),
    envVariables: toEnv(
      'main',
      [
        [MAIN_ENV.port, encodeInteger(main.port)],
        // All interfaces: the Service's main port and the kubelet's probes reach it from outside the pod.
        [MAIN_ENV.host, ADDRESSES.all],
        [MAIN_ENV.drainDelayMs, encodeInteger(config.timing.mainDrainDelayMs)],
        [MAIN_ENV.keepAliveTimeoutMs, encodeInteger(MAIN_INTEGERS.keepAliveTimeoutMs.default)],
        [MAIN_ENV.logLevel, config.logLevel],
      ],
      main.env,
    ),
    readiness: httpProbe(HEALTH_PATHS.main, main.port, 5, 2),
    liveness: httpProbe(HEALTH_PATHS.main, main.port, 10, 3),
  };
}
