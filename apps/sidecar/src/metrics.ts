/**
 * Prometheus metrics on a private registry. Labels carry token NAMES, never token values.
 * Label children are cached so the per-request cost is a map lookup and an increment.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { KUBERNETES_ISSUER_NAME, SERVICE_ACCOUNT_SUBJECT_PREFIX } from '../../../lib/src/contract';
import { AUTH_FAILURE_REASONS } from './auth-verdict';
import type { AuthFailureReason } from './auth-verdict';
import { CLIENT_ERROR_REASONS } from './admission';
import type { ClientErrorReason } from './admission';

export interface SidecarMetrics {
  readonly registry: Registry;
  /** One finished request (or WebSocket upgrade) with its status code and subject ("" when none). */
  request(code: number, subject: string): void;
  authFailure(reason: AuthFailureReason): void;
  clientError(reason: ClientErrorReason): void;
  /** A 403: the route rule (its 1-based position, or "default") that refused an authenticated caller. */
  forbidden(rule: string): void;
  /** Current number of requests in flight; read at scrape time, so counting costs nothing per request. */
  inFlight(read: () => number): void;
  /** Seconds from forwarding to the upstream's response headers. */
  upstreamDuration(seconds: number): void;
  tokensLoaded(n: number): void;
  tokenReload(result: 'success' | 'failure'): void;
  /** Keys in force for a JWT issuer (by its name). */
  jwksKeysLoaded(issuer: string, n: number): void;
  jwksReload(issuer: string, result: 'success' | 'failure'): void;
}

/**
 * The subject label: a token name as it is, but only the issuer name of a JWT subject
 * (`<issuer>:<claim>`; token names hold no ':'), so one label per issuer, not one per user;
 * service accounts (`system:serviceaccount:…`) count under their issuer's name, "kubernetes".
 */
function subjectLabel(subject: string): string {
  const colon = subject.indexOf(':');
  if (colon === -1) return subject;
  return subject.startsWith(SERVICE_ACCOUNT_SUBJECT_PREFIX) ? KUBERNETES_ISSUER_NAME : subject.slice(0, colon);
}

/** The proxy port's series: what was answered, refused, and how long the main service took. */
function defineRequestMetrics(registry: Registry) {
  const requests = new Counter({
    name: 'sidecar_http_requests_total',
    help: 'Requests answered on the proxy port, by status code and token name, or issuer name for a JWT or service account (subject; empty when unauthenticated or public).',
    labelNames: ['code', 'subject'] as const,
    registers: [registry],
  });
  const authFailures = new Counter({
    name: 'sidecar_auth_failures_total',
    help: 'Requests refused with 401, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const clientErrors = new Counter({
    name: 'sidecar_client_errors_total',
    help: 'Connections refused before a request was parsed (bad syntax, oversized or slow headers), by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const forbidden = new Counter({
    name: 'sidecar_forbidden_total',
    help: 'Authenticated requests refused with 403, by the route rule that refused them (1-based position, or "default").',
    labelNames: ['rule'] as const,
    registers: [registry],
  });
  const upstream = new Histogram({
    name: 'sidecar_upstream_duration_seconds',
    help: 'Time from forwarding a request to receiving the response headers from the main service.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return { requests, authFailures, clientErrors, forbidden, upstream };
}

/** The credential sources' series: static tokens and each JWT issuer's key set. */
function defineCredentialMetrics(registry: Registry) {
  const tokens = new Gauge({
    name: 'sidecar_tokens_loaded',
    help: 'Number of valid tokens currently accepted.',
    registers: [registry],
  });
  const reloads = new Counter({
    name: 'sidecar_token_reloads_total',
    help: 'Reloads of the tokens directory, by result.',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const jwksKeys = new Gauge({
    name: 'sidecar_jwks_keys_loaded',
    help: 'Number of JWKS keys currently accepted for each JWT issuer.',
    labelNames: ['issuer'] as const,
    registers: [registry],
  });
  const jwksReloads = new Counter({
    name: 'sidecar_jwks_reloads_total',
    help: 'Loads of a JWT issuer\'s JWKS (a file read or a URL fetch), by issuer and result; a failure keeps the last good key set.',
    labelNames: ['issuer', 'result'] as const,
    registers: [registry],
  });
  return { tokens, reloads, jwksKeys, jwksReloads };
}

/** The in-flight gauge, read at scrape time from whatever `read` the proxy hands it. */
function defineInFlightGauge(registry: Registry): (read: () => number) => void {
  let readInFlight = () => 0;
  new Gauge({
    name: 'sidecar_http_requests_in_flight',
    help: 'Requests currently being handled on the proxy port.',
    registers: [registry],
    collect() {
      this.set(readInFlight());
    },
  });
  return (read) => {
    readInFlight = read;
  };
}

export function createMetrics(): SidecarMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const { requests, authFailures, clientErrors, forbidden, upstream } = defineRequestMetrics(registry);
  const { tokens, reloads, jwksKeys, jwksReloads } = defineCredentialMetrics(registry);
  const inFlight = defineInFlightGauge(registry);

  const authChildren = new Map(AUTH_FAILURE_REASONS.map((r) => [r, authFailures.labels(r)]));
  for (const r of CLIENT_ERROR_REASONS) clientErrors.labels(r);
  for (const r of ['success', 'failure'] as const) reloads.labels(r);
  const requestChildren = new Map<string, Counter.Internal>();

  return {
    registry,
    request(code, subject) {
      const key = `${code} ${subject}`;
      let child = requestChildren.get(key);
      if (child === undefined) {
        // Token names are few, JWT subjects are not: those are counted under their issuer's key.
        const label = subjectLabel(subject);
        const labelKey = label === subject ? key : `${code} ${label}`;
        child = requestChildren.get(labelKey);
        if (child === undefined) {
          child = requests.labels(String(code), label);
          requestChildren.set(labelKey, child);
        }
      }
      child.inc();
    },
    authFailure(reason) {
      authChildren.get(reason)!.inc();
    },
    clientError(reason) {
      clientErrors.labels(reason).inc();
    },
    forbidden(rule) {
      forbidden.labels(rule).inc();
    },
    inFlight,
    upstreamDuration(seconds) {
      upstream.observe(seconds);
    },
    tokensLoaded(n) {
      tokens.set(n);
    },
    tokenReload(result) {
      reloads.labels(result).inc();
    },
    jwksKeysLoaded(issuer, n) {
      jwksKeys.labels(issuer).set(n);
    },
    jwksReload(issuer, result) {
      jwksReloads.labels(issuer, result).inc();
    },
  };
}
