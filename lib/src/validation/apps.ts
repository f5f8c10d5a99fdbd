/**
 * Which workloads of a chart are SidecarApps, whoever made them. The manifest carries no marker
 * of the construct, so a pod is a SidecarApp's by the contract: a container that reads
 * SIDECAR_UPSTREAM (the sidecar), or containers named `main` and `sidecar` (the contract's
 * CONTAINER_NAMES). Its main ports are the port SIDECAR_UPSTREAM points at and every port the
 * `main` container declares: a connection to any of them skips authentication. The sidecar is an
 * ordinary container, or (sidecarMode NATIVE) an init container with `restartPolicy: Always`.
 */
import { CONTAINER_NAMES, SIDECAR_ENV } from '../contract';
import { JsonObject, KubeObject, PodTemplate, asArray, asObject, asString, podTemplateOf } from './manifest';

/** A container of the pod: in `containers`, or in `initContainers` (a native sidecar, `restartPolicy: Always`). */
export interface ContainerRef {
  readonly field: 'containers' | 'initContainers';
  readonly index: number;
  readonly container: JsonObject;
}

export interface SidecarAppPods {
  /** The Deployment (or other workload) whose pod template is the SidecarApp's. */
  readonly workload: KubeObject;
  readonly pod: PodTemplate;
  readonly sidecar: ContainerRef;
  readonly main?: ContainerRef;
  /** Container port numbers that reach the main container. */
  readonly mainPorts: ReadonlySet<number>;
  /** Container port names that reach the main container. */
  readonly mainPortNames: ReadonlySet<string>;
}

function envValue(container: JsonObject, name: string): string | undefined {
  for (const entry of asArray(container.env)) {
    const e = asObject(entry);
    if (e?.name === name) return asString(e.value) ?? '';
  }
  return undefined;
}

/** The port of an `http://host:port` URL (80 when it has none); undefined if it is no such URL. */
export function upstreamPort(url: string): number | undefined {
  const match = /^([a-z][a-z0-9+.-]*):\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^/:?#]*)(?::([0-9]+))?(?:[/?#]|$)/i.exec(url);
  if (match === null) return undefined;
  if (match[2] !== undefined) return Number(match[2]);
  return match[1].toLowerCase() === 'https' ? 443 : 80;
}

function containersOf(pod: PodTemplate): ContainerRef[] {
  const refs: ContainerRef[] = [];
  for (const field of ['containers', 'initContainers'] as const) {
    asArray(pod.spec[field]).forEach((c, index) => {
      const container = asObject(c);
      if (container !== undefined) refs.push({ field, index, container });
    });
  }
  return refs;
}

/** `spec.template.spec.containers[1]`, for messages. */
export function containerPath(pod: PodTemplate, ref: ContainerRef): string {
  return `${pod.path}.${ref.field}[${ref.index}]`;
}

export function sidecarAppOf(workload: KubeObject): SidecarAppPods | undefined {
  const pod = podTemplateOf(workload);
  if (pod === undefined) return undefined;
  const all = containersOf(pod);
  const named = (name: string) => all.find((c) => c.container.name === name);
  const main = all.find((c) => c.field === 'containers' && c.container.name === CONTAINER_NAMES.main);
  const sidecar = all.find((c) => envValue(c.container, SIDECAR_ENV.upstream) !== undefined) ?? (main !== undefined ? named(CONTAINER_NAMES.sidecar) : undefined);
  if (sidecar === undefined) return undefined;

  const mainPorts = new Set<number>();
  const mainPortNames = new Set<string>();
  const upstream = envValue(sidecar.container, SIDECAR_ENV.upstream);
  const fromUpstream = upstream === undefined ? undefined : upstreamPort(upstream);
  if (fromUpstream !== undefined) mainPorts.add(fromUpstream);
  if (main !== undefined && main !== sidecar) {
    for (const entry of asArray(main.container.ports)) {
      const p = asObject(entry) ?? {};
      if (typeof p.containerPort === 'number') mainPorts.add(p.containerPort);
      const name = asString(p.name);
      if (name !== undefined) mainPortNames.add(name);
    }
  }
  return { workload, pod, sidecar, main: main === sidecar ? undefined : main, mainPorts, mainPortNames };
}

/** Does a container port reference (a Service targetPort, a NetworkPolicy port) reach the main container? */
export function reachesMain(app: SidecarAppPods, ref: number | string | undefined): boolean {
  if (ref === undefined) return false;
  return typeof ref === 'number' ? app.mainPorts.has(ref) : app.mainPortNames.has(ref);
}

/** `8080` or `8080 ("main-http")`, for messages. */
export function mainPortsText(app: SidecarAppPods): string {
  const numbers = [...app.mainPorts].sort((a, b) => a - b).join(', ');
  const names = [...app.mainPortNames].map((n) => `"${n}"`).join(', ');
  return names === '' ? numbers : `${numbers} (${names})`;
}
