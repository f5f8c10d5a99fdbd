/**
 * The test suites' handle on the compiled apps. The launcher lives in tools/, shared with the
 * bench, the soak and the pod runner; this module stays so that the suites' imports do not change.
 */
export type { AppName } from '../../tools/apps';
export { entryOf, localSidecarEnv } from '../../tools/apps';
export type { RunningApp, StartOptions } from '../../tools/launcher';
export { runToExit, startApp } from '../../tools/launcher';
export { REPO_ROOT } from '../../tools/repo-root';
