/**
 * What the sidecar's readiness asks of main (SIDECAR_UPSTREAM_CHECK), read from main's readiness
 * probe so that the two agree: an HTTP probe of the main port is asked by the sidecar too (the same
 * path, ready on 200-399 as the kubelet counts it); any other probe (TCP, exec, HTTP on another
 * port or over HTTPS) becomes a TCP connect to the main port, which every main must accept; no
 * readiness probe, no check. main-options.ts has already refused a probe path the sidecar cannot ask.
 */
import * as kplus from 'cdk8s-plus-28';
import { UPSTREAM_CHECKS } from './contract';
import type { UpstreamCheck } from './contract';
import { probeShape } from './probe-shape';

export interface ResolvedUpstreamCheck {
  readonly check: UpstreamCheck;
  /** The path the http check asks. */
  readonly healthPath?: string;
}

export function upstreamCheckOf(readiness: kplus.Probe | undefined, mainPort: number): ResolvedUpstreamCheck {
  if (readiness === undefined) return { check: UPSTREAM_CHECKS.none };
  const http = probeShape(readiness, mainPort).httpGet;
  const sameRequest = http !== undefined && http.port.value === mainPort && (http.scheme ?? 'HTTP') === 'HTTP' && http.host === undefined;
  if (sameRequest && http.path !== undefined) return { check: UPSTREAM_CHECKS.http, healthPath: http.path };
  return { check: UPSTREAM_CHECKS.tcp };
}
