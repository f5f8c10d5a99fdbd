/**
 * What an images run takes from the synthesized manifest: the Deployment, its containers in start
 * order, which are native sidecars, the grace period, and each container's image source, user and
 * group, as the kubelet would read them.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CONTAINER_NAMES } from '../../lib/src/contract';
import { Container, Deployment, findDeployment, podContainers } from '../pod';
import { REPO_ROOT } from '../repo-root';

/** How one image is built: its Dockerfile and build context (absolute, or relative to the repo root). */
export interface ImageSource {
  readonly dockerfile: string;
  readonly context: string;
  /** The Dockerfile takes `ARG BASE_IMAGE` (ours do), so BASE_IMAGE is passed on to it. */
  readonly takesBaseImage: boolean;
}

/** Each image a run can build, by the name the manifest gives it. */
export type ImageSources = Readonly<Record<string, ImageSource>>;

export interface Plan {
  readonly deployment: Deployment;
  /** Native sidecars first, then the regular containers (podContainers' order). */
  readonly containers: readonly Container[];
  readonly nativeSidecars: ReadonlySet<string>;
  readonly grace: number;
  readonly sources: ImageSources;
}

/** The version in lib/package.json: the tag of the manifest's default images. */
export function libVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'lib', 'package.json'), 'utf8')) as { version: string }).version;
}

/** Our images as the manifest names them by default, `sidecar-app-<app>:<version>`, from apps/<app>/Dockerfile with the repo as context. */
export function ourImages(version: string): ImageSources {
  const source = (app: string): ImageSource => ({ dockerfile: path.join('apps', app, 'Dockerfile'), context: '.', takesBaseImage: true });
  return Object.fromEntries(Object.values(CONTAINER_NAMES).map((app) => [`sidecar-app-${app}:${version}`, source(app)]));
}

/** The plan of the manifest's Deployment; each container must run an image of `sources`. */
export function planOf(docs: readonly unknown[], sources: ImageSources): Plan {
  const deployment = findDeployment(docs);
  const spec = deployment.spec.template.spec;
  const containers = podContainers(spec);
  const nativeSidecars = new Set((spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
  for (const c of containers) {
    if (!c.image || !Object.hasOwn(sources, c.image)) {
      throw new Error(`container ${c.name} runs image ${c.image ?? '(none)'}, which this run cannot build; it builds ${Object.keys(sources).join(', ')}`);
    }
  }
  for (const name of Object.values(CONTAINER_NAMES)) {
    if (!containers.some((c) => c.name === name)) throw new Error(`the Deployment has no container ${name}`);
  }
  return { deployment, containers, nativeSidecars, grace: spec.terminationGracePeriodSeconds ?? 30, sources };
}

/** One line on the plan: the containers and their images, and the grace period. */
export function describePlan(plan: Plan): string {
  const list = plan.containers.map((c) => `${c.name}=${c.image}${plan.nativeSidecars.has(c.name) ? ' (native sidecar)' : ''}`).join(', ');
  return `Deployment ${plan.deployment.metadata?.name ?? ''}: ${list}; terminationGracePeriodSeconds ${plan.grace}`;
}

/** The source a container's image is built from; its Dockerfile must exist. */
export function sourceOf(plan: Plan, container: Container): ImageSource {
  const source = plan.sources[container.image!];
  if (!fs.existsSync(path.resolve(REPO_ROOT, source.dockerfile))) throw new Error(`container ${container.name}: no ${source.dockerfile} to build its image from`);
  return source;
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
