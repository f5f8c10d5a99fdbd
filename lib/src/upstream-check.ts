/**
 * What the sidecar's readiness asks of main (SIDECAR_UPSTREAM_CHECK), read from main's readiness
 * probe so that the two never disagree: an HTTP probe of the main port is asked by the sidecar too
 * (the same path); any other probe (TCP, exec, HTTP on another port or over HTTPS) becomes a TCP
 * connect to the main port, which every main must accept; no readiness probe, no check.
 */
import * as kplus from 'cdk8s-plus-28';
import { UPSTREAM_CHECKS, pathProblem } from './contract';
import type { UpstreamCheck } from './contract';

export interface ResolvedUpstreamCheck {
  readonly check: UpstreamCheck;
  /** The path the http check asks. */
  readonly healthPath?: string;
}

/** The k8s form of a cdk8s-plus Probe; it reads only the container's port. */
function kubeProbe(probe: kplus.Probe, mainPort: number) {
  const internal = probe as unknown as { _toKube(container: Pick<kplus.Container, 'portNumber'>): { httpGet?: { path?: string; port: { value: unknown }; scheme?: string; host?: string } } };
  return internal._toKube({ portNumber: mainPort });
}

export function upstreamCheckOf(readiness: kplus.Probe | undefined, mainPort: number): ResolvedUpstreamCheck {
  if (readiness === undefined) return { check: UPSTREAM_CHECKS.none };
  const http = kubeProbe(readiness, mainPort).httpGet;
  const sameRequest = http !== undefined && http.port.value === mainPort && (http.scheme ?? 'HTTP') === 'HTTP' && http.host === undefined;
  if (sameRequest && http.path !== undefined && pathProblem(http.path) === undefined) return { check: UPSTREAM_CHECKS.http, healthPath: http.path };
  return { check: UPSTREAM_CHECKS.tcp };
}
