/**
 * Check a running pod against its manifest the way a cluster would use it: every declared port is
 * listened on, every probe answers 200, every Service port reaches a port a process listens on.
 * Nothing here knows which apps run in the pod.
 */
import { Deployment, Service, ServicePort } from './manifest';
import { listeningPorts } from './listening-ports';
import { probeTarget, resolvePort, runProbeWithRetries } from './probes';
import { podContainers, RunningPod } from './run-pod';

export interface PodCheck {
  /** What was checked, as a stable key: "container main readinessProbe", "Service port http". */
  readonly what: string;
  readonly ok: boolean;
  /** The outcome in one line that names what was checked, for people. */
  readonly detail: string;
}

/** A Service port and the listening container port it reaches. */
export interface ServiceRoute {
  readonly servicePort: ServicePort;
  readonly container: string;
  readonly containerPort: number;
}

export interface PodCheckResult {
  readonly checks: PodCheck[];
  /** The Service ports that reach a listening container port, in the Service's order. */
  readonly routes: ServiceRoute[];
}

const passed = (what: string, detail: string): PodCheck => ({ what, ok: true, detail });
const failed = (what: string, detail: string): PodCheck => ({ what, ok: false, detail });

/** Ports, probes and Service ports of a running pod, each as one check. */
export async function checkPod(deployment: Deployment, service: Service, pod: RunningPod): Promise<PodCheckResult> {
  const spec = deployment.spec.template.spec;
  const checks: PodCheck[] = [];
  const routes: ServiceRoute[] = [];

  const listening: Record<string, Set<number>> = {};
  for (const c of podContainers(spec)) {
    const running = pod.containers[c.name];
    listening[c.name] = running?.launched.isRunning() ? listeningPorts(running.pid) : new Set();
    for (const p of c.ports ?? []) {
      const what = `container ${c.name} port ${p.containerPort}`;
      const port = `${p.containerPort} (${p.name ?? 'unnamed'})`;
      if (listening[c.name].has(p.containerPort)) checks.push(passed(what, `container ${c.name} listens on ${port}`));
      else checks.push(failed(what, `container ${c.name}: port ${port} is declared, but the process listens on [${[...listening[c.name]].join(', ')}]`));
    }
  }

  for (const c of podContainers(spec)) {
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      const probe = c[kind];
      if (!probe) continue;
      const what = `container ${c.name} ${kind}`;
      const where = `${what}: ${probeTarget(probe)}`;
      try {
        const status = await runProbeWithRetries(probe, c, what);
        checks.push(status === 200 ? passed(what, `${where} -> 200`) : failed(what, `${where} answered ${status}, not 200`));
      } catch (err) {
        checks.push(failed(what, `${where} failed: ${(err as Error).message}`));
      }
    }
  }

  for (const sp of service.spec.ports) {
    const target = sp.targetPort ?? sp.port;
    const what = `Service port ${sp.name ?? sp.port}`;
    const byName = typeof target === 'string' && !/^\d+$/.test(target);
    const owner = podContainers(spec).find((c) => (c.ports ?? []).some((p) => (byName ? p.name === target : p.containerPort === Number(target))));
    if (!owner) {
      checks.push(failed(what, `${what}: targetPort ${target} is not a port declared by any container`));
      continue;
    }
    const containerPort = resolvePort(target, owner.ports ?? [], `${what} targetPort`);
    if (!listening[owner.name]?.has(containerPort)) {
      checks.push(failed(what, `${what}: targetPort ${target} -> container ${owner.name} port ${containerPort}, which nobody listens on`));
      continue;
    }
    checks.push(passed(what, `${what} -> container ${owner.name} port ${containerPort}`));
    routes.push({ servicePort: sp, container: owner.name, containerPort });
  }

  return { checks, routes };
}

/** Some check failed; the message lists every failure, one per line. */
export class PodMismatchError extends Error {
  constructor(readonly failures: readonly PodCheck[]) {
    super(`the pod does not match its manifest:\n- ${failures.map((f) => f.detail).join('\n- ')}`);
    this.name = 'PodMismatchError';
  }
}

/** Throw a PodMismatchError listing every failed check, if any failed. */
export function assertChecksPass(checks: readonly PodCheck[]): void {
  const failures = checks.filter((c) => !c.ok);
  if (failures.length) throw new PodMismatchError(failures);
}
