/**
 * The main container: the app's own code, or any image. Our image is told its port, drain and log
 * level through the contract's env and probed on its health path; any image gets the probes, env,
 * identity, writable paths and mounts its options (main-options.ts) set. Stopped after the sidecar
 * has drained.
 */
import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ADDRESSES, CONTAINER_NAMES, MAIN_ENV, MAIN_INTEGERS, encodeInteger } from './contract';
import { commonContainer, toEnv } from './container';
import type { ResolvedContainers } from './container';
import { preStopOf } from './lifecycle';
import type { ResolvedLifecycle } from './lifecycle';
import { VOLUME_NAMES } from './volume-names';

/** What the main container is built from. */
export type MainContainerConfig = ResolvedContainers & ResolvedLifecycle;

/** Each writable path's emptyDir is bounded: a runaway cache must not fill the node's disk. */
const WRITABLE_PATH_SIZE_LIMIT = Size.mebibytes(256);

export function mainContainer(scope: Construct, config: MainContainerConfig): kplus.ContainerProps {
  const { main, mainOptions: options } = config;
  const identity = { user: options.user, group: options.group, readOnlyRoot: !options.writableRootFilesystem };
  return {
    name: CONTAINER_NAMES.main,
    ...commonContainer(config, main, main.portName, identity),
    command: options.command,
    lifecycle: preStopOf(config, 'main', options.contractEnv),
    envVariables: toEnv('main', options.contractEnv ? contractEnv(config) : [], main.env, options.envVariables),
    readiness: options.readiness,
    liveness: options.liveness,
    startup: options.startup,
    volumeMounts: [...writableMounts(scope, options.writablePaths), ...options.volumeMounts],
  };
}

/** The MAIN_* env apps/main reads (contract MAIN_ENV). */
function contractEnv(config: MainContainerConfig): Array<[string, string]> {
  return [
    [MAIN_ENV.port, encodeInteger(config.main.port)],
    // All interfaces: the Service's main port and the kubelet's probes reach it from outside the pod.
    [MAIN_ENV.host, ADDRESSES.all],
    [MAIN_ENV.drainDelayMs, encodeInteger(config.timing.mainDrainDelayMs)],
    [MAIN_ENV.keepAliveTimeoutMs, encodeInteger(MAIN_INTEGERS.keepAliveTimeoutMs.default)],
    [MAIN_ENV.logLevel, config.logLevel],
  ];
}

/** One emptyDir per writable path, named by its position (paths are not valid volume names). */
function writableMounts(scope: Construct, paths: readonly string[]): kplus.VolumeMount[] {
  return paths.map((path, i) => ({
    volume: kplus.Volume.fromEmptyDir(scope, `main-writable-${i}`, `${VOLUME_NAMES.writablePrefix}${i}`, { sizeLimit: WRITABLE_PATH_SIZE_LIMIT }),
    path,
  }));
}
