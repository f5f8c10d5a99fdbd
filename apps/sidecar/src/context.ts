/**
 * Per-request state shared by the stages (admit → forward) and the access log.
 * Kept on the request object under a symbol: the stages read it without a map lookup, and it dies with the request.
 */
import { randomUUID } from 'crypto';
import type { ClientRequest, IncomingMessage } from 'http';
import { FORWARDED_HEADERS } from '../../../lib/src/contract';
import type { BodyFraming } from './framing';

export interface RequestContext {
  /** performance.now() when the request arrived. */
  readonly start: number;
  readonly requestId: string;
  /** Name of the token that authenticated the request. */
  subject: string | undefined;
  /** The verified JWT's forwarded claims, a flat [header, value, …] list. */
  claimHeaders: readonly string[] | undefined;
  /** Why the request was refused, or "public". */
  reason: string | undefined;
  /** The route rule that decided the request (1-based), or "default"; undefined: refused before any rule. */
  rule: number | 'default' | undefined;
  /** Upstream error code when forwarding failed. */
  upstreamError: string | undefined;
  /** Status forwarded for an upgrade (101, or the upstream's refusal). */
  upgradeStatus: number | undefined;
  /** performance.now() when the upstream request got its socket. */
  upstreamStart: number;
  proxyReq: ClientRequest | undefined;
  /** The client went away before the response finished. */
  clientGone: boolean;
  /** We cut the response (response-cut.ts): it did not complete, whatever Node's stream state says later. */
  responseCut: boolean;
  /** Body framing decided at admission; the only framing the upstream ever gets. */
  framing: BodyFraming | undefined;
}

const kContext = Symbol('sidecar.context');
type WithContext = IncomingMessage & { [kContext]?: RequestContext };

/** Client-sent request ids are kept only when short and boring: they end up in logs and headers. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function pickRequestId(sent: string | string[] | undefined): string {
  return typeof sent === 'string' && SANE_REQUEST_ID.test(sent) ? sent : randomUUID();
}

/** The request's context, created on first use. */
export function contextOf(req: IncomingMessage): RequestContext {
  const r = req as WithContext;
  let ctx = r[kContext];
  if (ctx === undefined) {
    ctx = {
      start: performance.now(),
      requestId: pickRequestId(req.headers[FORWARDED_HEADERS.requestId]),
      subject: undefined,
      claimHeaders: undefined,
      reason: undefined,
      rule: undefined,
      upstreamError: undefined,
      upgradeStatus: undefined,
      upstreamStart: 0,
      proxyReq: undefined,
      clientGone: false,
      responseCut: false,
      framing: undefined,
    };
    r[kContext] = ctx;
  }
  return ctx;
}

/** The context if the pipeline created one. */
export function existingContextOf(req: IncomingMessage): RequestContext | undefined {
  return (req as WithContext)[kContext];
}

/** Path without the query string (which can carry secrets), capped for logs. */
export function logPath(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  const p = q === -1 ? url : url.slice(0, q);
  return p.length > 1024 ? `${p.slice(0, 1024)}…` : p;
}
