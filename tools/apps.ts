/**
 * The compiled apps of this repo: their names, where `npm run build` puts each entry, and the env
 * a sidecar needs to run on this machine.
 */
import * as path from 'path';
import { ADDRESSES, CONTAINER_NAMES, ContainerName, SIDECAR_ENV } from '../lib/src/contract';
import { REPO_ROOT } from './repo-root';

/** An app under apps/; each is the container of the same name in the pod. */
export type AppName = ContainerName;

export const APP_NAMES: readonly AppName[] = Object.values(CONTAINER_NAMES);

export function isAppName(name: string): name is AppName {
  return (APP_NAMES as readonly string[]).includes(name);
}

/** The compiled entry of an app, as tsconfig.build.json lays it out and the Dockerfiles run it. */
export function entryOf(app: AppName): string {
  return path.join(REPO_ROOT, 'build', 'apps', app, 'src', 'index.js');
}

/**
 * The env every local sidecar run needs: ephemeral ports on the loopback, an upstream and a tokens
 * directory. Spread it into an env object and add the case's own settings after it.
 */
export function localSidecarEnv(upstream: string, tokensDir: string): Record<string, string> {
  return {
    [SIDECAR_ENV.port]: '0',
    [SIDECAR_ENV.adminPort]: '0',
    [SIDECAR_ENV.host]: ADDRESSES.loopback,
    [SIDECAR_ENV.upstream]: upstream,
    [SIDECAR_ENV.tokensDir]: tokensDir,
  };
}
