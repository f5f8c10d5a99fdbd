/**
 * What an images run takes from the synthesized manifest: the Deployment, its containers in start
 * order, which are native sidecars, the grace period, and each container's Dockerfile, user and
 * group, as the kubelet would read them.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CONTAINER_NAMES } from '../../lib/src/contract';
import { Container, Deployment, findDeployment, podContainers } from '../pod';
import { REPO_ROOT } from '../repo-root';

export interface Plan {
  readonly deployment: Deployment;
  /** Native sidecars first, then the regular containers (podContainers' order). */
  readonly containers: readonly Container[];
  readonly nativeSidecars: ReadonlySet<string>;
  readonly grace: number;
}

/** The version in lib/package.json: the tag of the manifest's default images. */
export function libVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'lib', 'package.json'), 'utf8')) as { version: string }).version;
}

/** The plan of the manifest's Deployment; each container must run `sidecar-app-<name>:<version>`. */
export function planOf(docs: readonly unknown[], version: string): Plan {
  const deployment = findDeployment(docs);
  const spec = deployment.spec.template.spec;
  const containers = podContainers(spec);
  const nativeSidecars = new Set((spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
  for (const c of containers) {
    const expected = `sidecar-app-${c.name}:${version}`;
    if (c.image !== expected) throw new Error(`container ${c.name} runs image ${c.image ?? '(none)'}, expected ${expected} (lib/package.json version)`);
  }
  for (const name of Object.values(CONTAINER_NAMES)) {
    if (!containers.some((c) => c.name === name)) throw new Error(`the Deployment has no container ${name}`);
  }
  return { deployment, containers, nativeSidecars, grace: spec.terminationGracePeriodSeconds ?? 30 };
}

/** One line on the plan: the containers and their images, and the grace period. */
export function describePlan(plan: Plan): string {
  const list = plan.containers.map((c) => `${c.name}=${c.image}${plan.nativeSidecars.has(c.name) ? ' (native sidecar)' : ''}`).join(', ');
  return `Deployment ${plan.deployment.metadata?.name ?? ''}: ${list}; terminationGracePeriodSeconds ${plan.grace}`;
}

/** The Dockerfile a container's image is built from: apps/<container name>/Dockerfile. */
export function dockerfileOf(container: Container): string {
  const file = path.join('apps', container.name, 'Dockerfile');
  if (!fs.existsSync(path.join(REPO_ROOT, file))) throw new Error(`container ${container.name}: no ${file} to build its image from`);
  return file;
}

/** Port number of an httpGet action: a number, or the name of one of the container's ports. */
export function portOf(container: Container, port: number | string): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const found = (container.ports ?? []).find((p) => p.name === port);
  if (!found) throw new Error(`container ${container.name}: no port named ${port}`);
  return found.containerPort;
}

/** The container's user and group: its own securityContext over the pod's. */
export function securityOf(deployment: Deployment, container: Container): { user: number; group: number } {
  type Sc = { runAsUser?: number; runAsGroup?: number };
  const pod = (deployment.spec.template.spec as { securityContext?: Sc }).securityContext ?? {};
  const own = (container as { securityContext?: Sc }).securityContext ?? {};
  const user = own.runAsUser ?? pod.runAsUser;
  const group = own.runAsGroup ?? pod.runAsGroup;
  if (user === undefined || group === undefined) throw new Error(`container ${container.name}: the manifest sets no runAsUser/runAsGroup`);
  return { user, group };
}

export function fsGroupOf(deployment: Deployment): number | undefined {
  return (deployment.spec.template.spec as { securityContext?: { fsGroup?: number } }).securityContext?.fsGroup;
}
