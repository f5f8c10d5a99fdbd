/**
 * What a forwarding pass is given: its options, validated once at start-up, the part of
 * http-proxy's server it reports to, and the request's body framing as admission decided it.
 */
import type * as http from 'http';
import type { RequestContext } from './context';
import { requestFraming } from './framing';
import type { BodyFraming } from './framing';
import type { UpstreamPool } from './upstream-pool';

/** The parts of http-proxy's ProxyServer a pass uses. */
export interface PassServer {
  emit(event: string, ...args: unknown[]): boolean;
}

export interface PassOptions {
  readonly pool: UpstreamPool;
  /** Upstream host and port, validated once at start-up. */
  readonly hostname: string;
  readonly port: number;
  /** Host header for clients that sent none. */
  readonly fallbackHost: string;
  readonly upstreamTimeoutMs: number;
  readonly forwardAuthorization: boolean;
  /** SIDECAR_TRUSTED_PROXY_HOPS: whose X-Forwarded-For and -Proto are kept (upstream-headers.ts). */
  readonly trustedProxyHops: number;
  /** Whether responses should close the client connection (shutting down). */
  readonly closing: () => boolean;
  /** Seconds from forwarding to the upstream's response headers. */
  readonly onUpstreamResponse?: (seconds: number) => void;
}

/** Framing decided at admission; recomputed (and refused) if a request arrives here without it. */
export function framingOf(req: http.IncomingMessage, ctx: RequestContext, upgrade: boolean): BodyFraming | undefined {
  if (ctx.framing !== undefined) return ctx.framing;
  const verdict = requestFraming(req, upgrade);
  return verdict.ok ? verdict.framing : undefined;
}
