/**
 * The rules of every setting that crosses the env boundary: bounds, defaults, grammars, and the
 * encode/parse pair of each non-scalar value. lib/ checks props with these at synth; the apps parse
 * their env with them at start-up. Each side words its own error (a prop name or a variable name);
 * the rule itself lives only here.
 */
import { ADDRESSES, DEFAULT_PORTS, HEALTH_PATHS, SIDECAR_ENV } from './names';
import { DEFAULT_TIMING_BUDGET, DEFAULT_TIMING_INPUTS, timingBudget } from './timing';

/** A parse result: the value, or why the text is not one. `problem` reads after the setting's name. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (problem: string): Parsed<never> => ({ ok: false, problem });

/** Quote a user value for a message without letting it span lines or grow unbounded. */
export function quoted(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/**
 * A value of any type as a message shows it: a string quoted and called one, so that "3000" and
 * 3000 read apart (a JavaScript chart, or JSON, can hand a number prop a string).
 */
export function shown(value: unknown): string {
  if (typeof value === 'string') return `${quoted(value)} (a string)`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === undefined || value === null) return String(value);
  return Array.isArray(value) ? 'a list' : `a value of type ${typeof value}`;
}

/** A whole-number setting: inclusive bounds and the value used when it is unset. */
export interface IntegerRule {
  readonly min: number;
  readonly max: number;
  readonly default: number;
}

/** setTimeout and the http server's timeouts overflow above this many ms. */
export const MAX_TIMER_MS = 2_147_483_647;
const HOUR_MS = 3_600_000;
const TEN_MINUTES_MS = 600_000;

/**
 * A TCP port. 0 ("any free port") is for local runs and tests only: a Kubernetes containerPort
 * must be at least 1, so lib/ refuses it.
 */
const port = (fallback: number): IntegerRule => ({ min: 0, max: 65_535, default: fallback });
/** The lowest port a container may declare. */
export const MIN_CONTAINER_PORT = 1;

const DRAIN_DELAY = { min: 0, max: TEN_MINUTES_MS, default: DEFAULT_TIMING_INPUTS.drainDelayMs };
/** At most 45 minutes: the longest drain plus the longest upstream timeout must fit the longest grace period. */
const UPSTREAM_TIMEOUT = { min: 1, max: 45 * 60_000, default: DEFAULT_TIMING_INPUTS.upstreamTimeoutMs };

/** The pod's own timing, which only the manifest sets; its inputs to the timing budget. */
export const POD_TIMING_INTEGERS = {
  preStopDelaySeconds: { min: 0, max: 3_600, default: DEFAULT_TIMING_INPUTS.preStopDelaySeconds },
  terminationGracePeriodSeconds: { min: 0, max: 3_600, default: DEFAULT_TIMING_INPUTS.terminationGracePeriodSeconds },
} as const satisfies Record<string, IntegerRule>;

/**
 * The `?ms=` of the preStop wait (HEALTH_PATHS.preStopWait): up to the longest preStopDelaySeconds
 * a pod may set, plus the longest drain and upstream timeout, so every manifest SidecarApp writes is
 * one the sidecar answers. Main's wait until the sidecar has closed (container mode) spans all three:
 * the sidecar's own preStop, then its drain, then its last in-flight request.
 */
export const PRE_STOP_WAIT_MS: IntegerRule = {
  min: 0,
  max: POD_TIMING_INTEGERS.preStopDelaySeconds.max * 1000 + DRAIN_DELAY.max + UPSTREAM_TIMEOUT.max,
  default: DEFAULT_TIMING_INPUTS.preStopDelaySeconds * 1000,
};

/** The longest shutdown bound any valid pod gives the sidecar. */
const LONGEST_SHUTDOWN_MS = timingBudget({
  drainDelayMs: DRAIN_DELAY.max,
  upstreamTimeoutMs: UPSTREAM_TIMEOUT.max,
  preStopDelaySeconds: POD_TIMING_INTEGERS.preStopDelaySeconds.min,
  terminationGracePeriodSeconds: POD_TIMING_INTEGERS.terminationGracePeriodSeconds.max,
}).sidecarShutdownTimeoutMs;

const MIB = 1024 * 1024;
/** The sidecar container's memory limit when none is given (lib/src/container.ts DEFAULT_LIMITS). */
export const DEFAULT_SIDECAR_MEMORY_LIMIT_BYTES = 128 * MIB;
/**
 * The share of the sidecar's memory limit the verified-JWT cache may hold, as estimated. The rest
 * is node's own: an idle sidecar is ~50 MiB RSS, and young-generation garbage under load comes on
 * top (figures in bench/results/jwt-memory.md).
 */
export const JWT_CACHE_LIMIT_SHARE = 1 / 16;
/** 0 turns the cache off; 1 GiB is more than any sidecar's limit would give it. */
const JWT_CACHE_BYTES_BOUNDS = { min: 0, max: 1024 * MIB } as const;

/** The verified-JWT cache budget for a sidecar memory limit: JWT_CACHE_LIMIT_SHARE of it, whole bytes, within the setting's bounds. */
export function jwtCacheBytesFor(memoryLimitBytes: number): number {
  const share = Math.floor(memoryLimitBytes * JWT_CACHE_LIMIT_SHARE);
  return Math.min(JWT_CACHE_BYTES_BOUNDS.max, Math.max(JWT_CACHE_BYTES_BOUNDS.min, Number.isFinite(share) ? share : 0));
}

/** Whole-number settings of apps/sidecar, keyed like SIDECAR_ENV. */
export const SIDECAR_INTEGERS = {
  port: port(DEFAULT_PORTS.sidecar),
  adminPort: port(DEFAULT_PORTS.admin),
  upstreamTimeoutMs: UPSTREAM_TIMEOUT,
  /** Shorter than main's keep-alive timeout, so the sidecar closes an idle pooled socket first. */
  upstreamIdleTimeoutMs: { min: 1, max: TEN_MINUTES_MS, default: 4_000 },
  /** Slowloris cut-off. */
  headersTimeoutMs: { min: 1, max: TEN_MINUTES_MS, default: 10_000 },
  drainDelayMs: DRAIN_DELAY,
  /** The default holds for the default drain and timeout; the sidecar stretches it to fit its own (standaloneTimingBudget). */
  shutdownTimeoutMs: { min: 1, max: LONGEST_SHUTDOWN_MS, default: DEFAULT_TIMING_BUDGET.sidecarShutdownTimeoutMs },
  /** Re-read interval of the tokens directory, in case a change event is missed. */
  tokensPollIntervalMs: { min: 50, max: HOUR_MS, default: 2_000 },
  /**
   * Proxies in front of the sidecar whose X-Forwarded-For entries and X-Forwarded-Proto are believed.
   * 0 by default: the sidecar is the pod's only proxy hop, and whoever connects may send anything.
   * Ten is more proxies than any real chain has (CDN, load balancer, Ingress).
   */
  trustedProxyHops: { min: 0, max: 10, default: 0 },
  /** Unset (outside SidecarApp, or a setting without JWT issuers): the budget of the default memory limit. */
  jwtCacheBytes: { ...JWT_CACHE_BYTES_BOUNDS, default: jwtCacheBytesFor(DEFAULT_SIDECAR_MEMORY_LIMIT_BYTES) },
} as const satisfies Record<string, IntegerRule>;

/** Whole-number settings of apps/main, keyed like MAIN_ENV. */
export const MAIN_INTEGERS = {
  port: port(DEFAULT_PORTS.main),
  drainDelayMs: { min: 0, max: MAX_TIMER_MS, default: DEFAULT_TIMING_BUDGET.mainDrainDelayMs },
  /** Longer than the sidecar's upstream idle timeout; leaves room for headersTimeout = keep-alive + 1 s. */
  keepAliveTimeoutMs: { min: 1, max: MAX_TIMER_MS - 1_000, default: 65_000 },
} as const satisfies Record<string, IntegerRule>;

/** Why `value` breaks `rule`, or undefined. */
export function integerProblem(rule: Pick<IntegerRule, 'min' | 'max'>, value: number): string | undefined {
  if (Number.isInteger(value) && value >= rule.min && value <= rule.max) return undefined;
  return `must be an integer in ${rule.min}..${rule.max}, got ${shown(value)}`;
}

/** Decimal digits only: no sign, exponent, fraction, hex or surrounding whitespace. */
export function parseInteger(rule: IntegerRule, text: string): Parsed<number> {
  if (!/^\d{1,10}$/.test(text)) return bad(`must be an integer in ${rule.min}..${rule.max}, got ${quoted(text)}`);
  const value = Number(text);
  const problem = integerProblem(rule, value);
  return problem === undefined ? ok(value) : bad(problem);
}

export function encodeInteger(value: number): string {
  return String(value);
}

/** pino's levels, in the spelling both apps accept (lowercase, exact). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export function logLevelProblem(value: string): string | undefined {
  return isLogLevel(value) ? undefined : `must be one of ${LOG_LEVELS.join(', ')}, got ${quoted(value)}`;
}

export function parseLogLevel(text: string): Parsed<LogLevel> {
  return isLogLevel(text) ? ok(text) : bad(logLevelProblem(text)!);
}

/** How the sidecar's /readyz checks the main service (SIDECAR_UPSTREAM_CHECK). */
export const UPSTREAM_CHECKS = {
  /** GET SIDECAR_UPSTREAM_HEALTH_PATH on a fresh connection; ready on 200–399, as the kubelet counts an HTTP probe. For a main that serves such a path. */
  http: 'http',
  /** Ready once a TCP connect to the upstream's host:port succeeds: for a main with no health path (any image). */
  tcp: 'tcp',
  /** Main is not consulted: the pod's own readiness probe of the main container gates the pod. */
  none: 'none',
} as const;
export type UpstreamCheck = (typeof UPSTREAM_CHECKS)[keyof typeof UPSTREAM_CHECKS];
/** The values in the order messages and docs list them. */
export const UPSTREAM_CHECK_VALUES: readonly UpstreamCheck[] = Object.values(UPSTREAM_CHECKS);
/** Today's behaviour, and what a main built from apps/main wants. */
export const DEFAULT_UPSTREAM_CHECK: UpstreamCheck = UPSTREAM_CHECKS.http;

export function isUpstreamCheck(value: unknown): value is UpstreamCheck {
  return (UPSTREAM_CHECK_VALUES as readonly unknown[]).includes(value);
}

/** Takes `unknown`: a JavaScript chart can hand the prop anything. */
export function upstreamCheckProblem(value: unknown): string | undefined {
  return isUpstreamCheck(value) ? undefined : `must be one of ${UPSTREAM_CHECK_VALUES.join(', ')}, got ${shown(value)}`;
}

export function parseUpstreamCheck(text: string): Parsed<UpstreamCheck> {
  return isUpstreamCheck(text) ? ok(text) : bad(`must be one of ${UPSTREAM_CHECK_VALUES.join(', ')}, got ${quoted(text)}`);
}

/** Only the http check asks a path; a health path given with another check would be silently unused, so it is refused. */
export function upstreamCheckUsesHealthPath(check: UpstreamCheck): boolean {
  return check === UPSTREAM_CHECKS.http;
}

/** Booleans cross the env boundary as exactly "true" or "false". */
export function encodeBoolean(value: boolean): 'true' | 'false' {
  return value ? 'true' : 'false';
}

export function parseBoolean(text: string): Parsed<boolean> {
  if (text === 'true') return ok(true);
  if (text === 'false') return ok(false);
  return bad(`must be "true" or "false", got ${quoted(text)}`);
}

/**
 * A raw request path, compared byte for byte: absolute, printable ASCII (anything else goes
 * percent-encoded, as on the wire), no query, fragment or whitespace.
 */
export function pathProblem(value: string): string | undefined {
  if (value.startsWith('/') && /^[\x21-\x7e]*$/.test(value) && !/[?#]/.test(value)) return undefined;
  return `must start with '/' and contain no '?', '#', whitespace, control or non-ASCII characters (percent-encode them), got ${quoted(value)}`;
}

/** A public path is a path without ',', the separator of its encoding. */
export function publicPathProblem(value: string): string | undefined {
  if (pathProblem(value) === undefined && !value.includes(',')) return undefined;
  return `must start with '/' and contain no '?', '#', ',', whitespace, control or non-ASCII characters (percent-encode them), got ${quoted(value)}`;
}

/** Why a list of public paths cannot be encoded, or undefined. */
export function publicPathsProblem(paths: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const p of paths) {
    const problem = publicPathProblem(p);
    if (problem !== undefined) return `entries ${problem}`;
    if (seen.has(p)) return `lists ${quoted(p)} twice`;
    seen.add(p);
  }
  return undefined;
}

/** Comma-joined; an empty list is no value at all (the variable stays unset). */
export function encodePublicPaths(paths: readonly string[]): string | undefined {
  return paths.length === 0 ? undefined : paths.join(',');
}

/** The inverse of encodePublicPaths: each entry must be a valid public path, none twice. */
export function parsePublicPaths(text: string): Parsed<readonly string[]> {
  const paths = text.split(',');
  if (paths.includes('')) return bad('contains an empty entry');
  const problem = publicPathsProblem(paths);
  return problem === undefined ? ok(paths) : bad(problem);
}

/**
 * A listen address: a host name, an IPv4 address or an IPv6 literal. Anything that passes but is not
 * an address of the machine fails at bind, with an error naming the same setting.
 */
export function hostProblem(value: string): string | undefined {
  const hostName = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(value);
  // An IPv6 literal, with an optional zone (fe80::1%eth0).
  const ipv6 = value.includes(':') && /^[0-9A-Fa-f:.]{2,45}(%[A-Za-z0-9_.-]{1,15})?$/.test(value);
  return hostName || ipv6 ? undefined : `must be an IP address or host name, got ${quoted(value)}`;
}

/** The credential grammar: RFC 6750 b64token. Token files and Authorization headers obey it. */
export const TOKEN_PATTERN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The main container as the sidecar's upstream: over the pod's loopback. */
export function encodeUpstream(mainPort: number): string {
  return `http://${ADDRESSES.loopback}:${mainPort}`;
}

/**
 * JWS algorithms a trusted issuer may sign with, each verified with a public key from its JWKS.
 * `none` is never one.
 */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
/**
 * HMAC algorithms: only for an issuer with an explicit shared secret (hmacSecretFile), never with a
 * key set, so a public key can never be used as an HMAC secret (algorithm confusion).
 */
export const HMAC_JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export type AsymmetricJwtAlgorithm = (typeof JWT_ALGORITHMS)[number];
export type HmacJwtAlgorithm = (typeof HMAC_JWT_ALGORITHMS)[number];
export type JwtAlgorithm = AsymmetricJwtAlgorithm | HmacJwtAlgorithm;
export const DEFAULT_JWT_ALGORITHMS: readonly JwtAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];
export const DEFAULT_HMAC_JWT_ALGORITHMS: readonly JwtAlgorithm[] = ['HS256'];
/** RFC 7518 §3.2: an HMAC key at least as long as the hash. */
export const MIN_HMAC_SECRET_BYTES: Readonly<Record<HmacJwtAlgorithm, number>> = { HS256: 32, HS384: 48, HS512: 64 };
/** The verified JWT claims an issuer may forward go upstream as `<prefix><claim name, lowercased>`. */
export const CLAIM_HEADER_PREFIX = 'x-auth-claim-';
/** The longest claim value forwarded as a header (or as the subject); a longer one refuses the request. */
export const MAX_FORWARDED_CLAIM_CHARS = 256;
/**
 * Names no JWT issuer may take: "kubernetes" labels the service-account issuer, and a "system"
 * issuer's subjects (`system:<claim>`) could pass for a service account's (`system:serviceaccount:…`).
 */
export const RESERVED_JWT_ISSUER_NAMES = ['kubernetes', 'system'] as const;

/** One trusted issuer as written in SIDECAR_JWT_ISSUERS; the optional fields have defaults. */
export interface JwtIssuerSpec {
  /** Prefix of the forwarded subject (`<name>:<claim>`) and the issuer's metrics label. */
  readonly name: string;
  /** The exact `iss` claim of its tokens. */
  readonly issuer: string;
  /** A token's `aud` must name at least one of these. */
  readonly audiences: readonly string[];
  /** Absolute path of the issuer's JWKS file (a mounted ConfigMap or Secret key); reloaded on change. Exactly one of jwksFile, jwksUrl and hmacSecretFile. */
  readonly jwksFile?: string;
  /**
   * Absolute path of a file holding the issuer's HMAC secret (a mounted Secret key; one trailing
   * newline is ignored); reloaded on change. Only HS* algorithms then, and only with it.
   */
  readonly hmacSecretFile?: string;
  /** An https: URL the issuer's JWKS is fetched from, at start, every refreshSeconds, and (rate-limited) on an unknown kid. */
  readonly jwksUrl?: string;
  /** With jwksUrl: absolute path of a PEM file of the CA certificates to trust for it. @default the default roots */
  readonly caFile?: string;
  /** With jwksUrl: seconds between refetches; a shorter Cache-Control max-age (not under 30) wins. @default 300 */
  readonly refreshSeconds?: number;
  /** @default DEFAULT_JWT_ALGORITHMS; with hmacSecretFile DEFAULT_HMAC_JWT_ALGORITHMS */
  readonly algorithms?: readonly JwtAlgorithm[];
  /** Leeway for exp, nbf and iat, in seconds. @default 30 */
  readonly clockSkewSeconds?: number;
  /** Longest accepted exp - iat, in seconds; tokens must then carry iat. @default no bound */
  readonly maxLifetimeSeconds?: number;
  /** The claim forwarded after the name. @default "sub" */
  readonly subjectClaim?: string;
  /** Claims forwarded upstream, each as the header CLAIM_HEADER_PREFIX + its name lowercased. @default none */
  readonly forwardClaims?: readonly string[];
  /**
   * The JWS header `typ` values accepted (RFC 8725 §3.11 explicit typing), compared as
   * normalizedTokenType does; `""` stands for a token without `typ`. `["at+jwt"]` is RFC 9068's
   * strict profile. A token whose payload `typ` marks it as no access token
   * (NON_ACCESS_TOKEN_PAYLOAD_TYPES) is refused whatever this says. @default DEFAULT_JWT_TOKEN_TYPES
   */
  readonly tokenTypes?: readonly string[];
}

/** A trusted issuer with its defaults applied: what the sidecar verifies against. */
export interface JwtIssuer extends Required<Omit<JwtIssuerSpec, 'maxLifetimeSeconds' | 'jwksFile' | 'jwksUrl' | 'hmacSecretFile' | 'caFile' | 'refreshSeconds'>> {
  readonly maxLifetimeSeconds: number | undefined;
  /** Exactly one of jwksFile, jwksUrl and hmacSecretFile is set. */
  readonly jwksFile: string | undefined;
  readonly hmacSecretFile: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly caFile: string | undefined;
  /** Set (default applied) exactly when jwksUrl is. */
  readonly refreshSeconds: number | undefined;
}

/** Bounds of the numeric issuer fields. */
export const JWT_ISSUER_INTEGERS = {
  clockSkewSeconds: { min: 0, max: 300, default: 30 },
  /** No default: unset means no bound. */
  maxLifetimeSeconds: { min: 1, max: 31 * 86_400 },
  /** The floor is also the shortest Cache-Control max-age honoured. */
  refreshSeconds: { min: 30, max: 86_400, default: 300 },
} as const;
export const DEFAULT_JWT_SUBJECT_CLAIM = 'sub';
/**
 * What an issuer's tokens may carry as their header `typ` unless it says otherwise: none at all
 * (Okta, Dex, Kubernetes), the generic `JWT` (Keycloak, Auth0, Entra ID, Google) and RFC 9068's
 * `at+jwt`. Any other type (`logout+jwt`, `dpop+jwt`, `secevent+jwt`, `id_token+jwt`, ...) is a JWT
 * made for another purpose. An ID token typed `JWT`, or untyped, cannot be told apart by its header.
 */
export const DEFAULT_JWT_TOKEN_TYPES: readonly string[] = ['', 'JWT', 'at+jwt'];
/** Service-account tokens carry no `typ`; `JWT` is accepted too, should an API server add it. Not configurable. */
export const KUBERNETES_JWT_TOKEN_TYPES: readonly string[] = ['', 'JWT'];
/**
 * Payload `typ` values, lowercased, that mark a token as no access token: Keycloak types each of
 * its tokens so (its access tokens are "Bearer"). Refused for every issuer.
 */
export const NON_ACCESS_TOKEN_PAYLOAD_TYPES: readonly string[] = ['id', 'refresh', 'offline', 'logout', 'serialized-id'];
const MAX_TOKEN_TYPES = 8;
/** A media type name (RFC 6838 restricted-name), with an optional type before a `/`. */
const TOKEN_TYPE = /^(?:[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}\/)?[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}$/;

/**
 * A header `typ` as compared: media types ignore case, and RFC 7515 §4.1.9 reads a value without a
 * `/` as if `application/` preceded it, so `at+jwt`, `AT+JWT` and `application/at+jwt` are one type.
 * A present value that normalizes to `""` (`application/`) is no type at all, and is never accepted.
 */
export function normalizedTokenType(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}
/** More issuers than this is a misconfiguration, not a deployment. */
export const MAX_JWT_ISSUERS = 16;
const MAX_JWT_AUDIENCES = 16;
const MAX_FORWARDED_CLAIMS = 16;
const JWT_ISSUER_FIELDS = [
  'name',
  'issuer',
  'audiences',
  'jwksFile',
  'jwksUrl',
  'hmacSecretFile',
  'caFile',
  'refreshSeconds',
  'algorithms',
  'clockSkewSeconds',
  'maxLifetimeSeconds',
  'subjectClaim',
  'forwardClaims',
  'tokenTypes',
];
const JWT_ISSUER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const JWT_CLAIM_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
/** Printable ASCII, as iss and aud values are compared byte for byte. */
const PRINTABLE = /^[\x20-\x7e]+$/;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function printableProblem(field: string, v: unknown, max: number): string | undefined {
  if (typeof v === 'string' && v.length <= max && PRINTABLE.test(v)) return undefined;
  return `${field} must be 1-${max} printable ASCII characters, got ${typeof v === 'string' ? quoted(v) : typeof v}`;
}

function optionalIntegerProblem(field: string, v: unknown, rule: Pick<IntegerRule, 'min' | 'max'>): string | undefined {
  if (v === undefined) return undefined;
  const problem = typeof v === 'number' ? integerProblem(rule, v) : `must be an integer in ${rule.min}..${rule.max}, got ${typeof v}`;
  return problem === undefined ? undefined : `${field} ${problem}`;
}

function absolutePathProblem(field: string, v: unknown): string | undefined {
  if (typeof v === 'string' && v.startsWith('/') && v.length <= 4096 && !/[\u0000-\u001f\u007f]/.test(v)) return undefined;
  return `${field} must be an absolute path without control characters, got ${typeof v === 'string' ? quoted(v) : typeof v}`;
}

/** Keys are trusted for what the fetch returns, so only TLS will do: no http:, no credentials in the URL. */
function jwksUrlProblem(v: unknown): string | undefined {
  const got = typeof v === 'string' ? quoted(v) : typeof v;
  if (typeof v !== 'string' || v.length > 2048 || !PRINTABLE.test(v)) return `jwksUrl must be an https: URL, got ${got}`;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return `jwksUrl must be an https: URL, got ${got}`;
  }
  if (url.protocol !== 'https:') return `jwksUrl must be an https: URL (keys fetched without TLS could be anyone's), got ${got}`;
  if (url.username !== '' || url.password !== '') return 'jwksUrl must not carry credentials';
  if (url.hash !== '') return `jwksUrl must not have a fragment, got ${got}`;
  return undefined;
}

/** Why one issuer spec is not valid, or undefined. Takes `unknown`: it checks parsed JSON too. */
function jwtIssuerProblem(spec: unknown): string | undefined {
  if (!isRecord(spec)) return 'must be an object';
  const unknownField = Object.keys(spec).find((k) => !JWT_ISSUER_FIELDS.includes(k));
  if (unknownField !== undefined) return `has an unknown field ${quoted(unknownField)} (known: ${JWT_ISSUER_FIELDS.join(', ')})`;
  const { name, issuer, audiences, jwksFile, algorithms, subjectClaim } = spec;
  if (typeof name !== 'string' || !JWT_ISSUER_NAME.test(name)) {
    return `name must be 1-63 characters of A-Z a-z 0-9 . _ - (not starting with . _ -), got ${typeof name === 'string' ? quoted(name) : typeof name}`;
  }
  if ((RESERVED_JWT_ISSUER_NAMES as readonly string[]).includes(name.toLowerCase())) {
    return `name ${quoted(name)} is reserved (${RESERVED_JWT_ISSUER_NAMES.join(', ')}): service-account identities use it`;
  }
  const issuerProblem = printableProblem('issuer', issuer, 1024);
  if (issuerProblem !== undefined) return issuerProblem;
  if (!Array.isArray(audiences) || audiences.length === 0 || audiences.length > MAX_JWT_AUDIENCES) {
    return `audiences must be a list of 1-${MAX_JWT_AUDIENCES} strings`;
  }
  for (const a of audiences) {
    const problem = printableProblem('audiences entries', a, 256);
    if (problem !== undefined) return problem;
  }
  if (new Set(audiences).size !== audiences.length) return 'audiences lists an audience twice';
  const { jwksUrl, caFile, hmacSecretFile } = spec;
  if ([jwksFile, jwksUrl, hmacSecretFile].filter((v) => v !== undefined).length !== 1) return 'must have exactly one of jwksFile, jwksUrl and hmacSecretFile';
  if (hmacSecretFile !== undefined) {
    const problem = absolutePathProblem('hmacSecretFile', hmacSecretFile);
    if (problem !== undefined) return problem;
    if (caFile !== undefined) return 'caFile goes with jwksUrl, not hmacSecretFile';
    if (spec.refreshSeconds !== undefined) return 'refreshSeconds goes with jwksUrl, not hmacSecretFile';
  } else if (jwksFile !== undefined) {
    const problem = absolutePathProblem('jwksFile', jwksFile);
    if (problem !== undefined) return problem;
    if (caFile !== undefined) return 'caFile goes with jwksUrl, not jwksFile';
    if (spec.refreshSeconds !== undefined) return 'refreshSeconds goes with jwksUrl, not jwksFile';
  } else {
    const problem = jwksUrlProblem(jwksUrl);
    if (problem !== undefined) return problem;
    if (caFile !== undefined) {
      const caProblem = absolutePathProblem('caFile', caFile);
      if (caProblem !== undefined) return caProblem;
    }
    const refresh = optionalIntegerProblem('refreshSeconds', spec.refreshSeconds, JWT_ISSUER_INTEGERS.refreshSeconds);
    if (refresh !== undefined) return refresh;
  }
  if (algorithms !== undefined) {
    const allowed: readonly string[] = hmacSecretFile !== undefined ? HMAC_JWT_ALGORITHMS : JWT_ALGORITHMS;
    if (!Array.isArray(algorithms) || algorithms.length === 0) return `algorithms must be a non-empty list of ${allowed.join(', ')}`;
    for (const alg of algorithms) {
      if (typeof alg === 'string' && /^none$/i.test(alg)) return 'algorithms must not list "none": unsigned tokens are never accepted';
      if (hmacSecretFile === undefined && typeof alg === 'string' && /^HS\d+$/.test(alg)) {
        return `algorithms must not list ${quoted(alg)}: HMAC needs a shared secret (hmacSecretFile), never a key set's public key`;
      }
      if (hmacSecretFile !== undefined && typeof alg === 'string' && (JWT_ALGORITHMS as readonly string[]).includes(alg)) {
        return `algorithms must not list ${quoted(alg)}: an issuer with hmacSecretFile verifies HMAC (${HMAC_JWT_ALGORITHMS.join(', ')}) only`;
      }
      if (!allowed.includes(alg)) return `algorithms entries must be one of ${allowed.join(', ')}, got ${typeof alg === 'string' ? quoted(alg) : typeof alg}`;
    }
    if (new Set(algorithms).size !== algorithms.length) return 'algorithms lists an algorithm twice';
  }
  const skew = optionalIntegerProblem('clockSkewSeconds', spec.clockSkewSeconds, JWT_ISSUER_INTEGERS.clockSkewSeconds);
  if (skew !== undefined) return skew;
  const lifetime = optionalIntegerProblem('maxLifetimeSeconds', spec.maxLifetimeSeconds, JWT_ISSUER_INTEGERS.maxLifetimeSeconds);
  if (lifetime !== undefined) return lifetime;
  if (subjectClaim !== undefined && (typeof subjectClaim !== 'string' || !JWT_CLAIM_NAME.test(subjectClaim))) {
    return `subjectClaim must be a claim name of 1-64 characters A-Z a-z 0-9 _ . -, got ${typeof subjectClaim === 'string' ? quoted(subjectClaim) : typeof subjectClaim}`;
  }
  return forwardClaimsProblem(spec.forwardClaims) ?? tokenTypesProblem(spec.tokenTypes);
}

function tokenTypesProblem(types: unknown): string | undefined {
  if (types === undefined) return undefined;
  if (!Array.isArray(types) || types.length === 0 || types.length > MAX_TOKEN_TYPES) return `tokenTypes must be a list of 1-${MAX_TOKEN_TYPES} header typ values ("" for none)`;
  const seen = new Map<string, string>();
  for (const t of types) {
    if (typeof t !== 'string' || (t !== '' && (!TOKEN_TYPE.test(t) || normalizedTokenType(t) === ''))) {
      return `tokenTypes entries must be "" (no typ) or a media type such as "at+jwt", got ${typeof t === 'string' ? quoted(t) : typeof t}`;
    }
    const other = seen.get(normalizedTokenType(t));
    if (other !== undefined) return `tokenTypes ${quoted(other)} and ${quoted(t)} are the same type`;
    seen.set(normalizedTokenType(t), t);
  }
  return undefined;
}

/** The header a forwarded claim travels in. */
export function claimHeaderName(claim: string): string {
  return `${CLAIM_HEADER_PREFIX}${claim.toLowerCase()}`;
}

/** Backends fold `-`, `_` and `.` alike in header names, so two claims may not differ only there. */
const foldedHeaderName = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]/g, '');

function forwardClaimsProblem(claims: unknown): string | undefined {
  if (claims === undefined) return undefined;
  if (!Array.isArray(claims) || claims.length === 0 || claims.length > MAX_FORWARDED_CLAIMS) return `forwardClaims must be a list of 1-${MAX_FORWARDED_CLAIMS} claim names`;
  const folded = new Map<string, string>();
  for (const claim of claims) {
    if (typeof claim !== 'string' || !JWT_CLAIM_NAME.test(claim)) {
      return `forwardClaims entries must be claim names of 1-64 characters A-Z a-z 0-9 _ . -, got ${typeof claim === 'string' ? quoted(claim) : typeof claim}`;
    }
    const key = foldedHeaderName(claimHeaderName(claim));
    const other = folded.get(key);
    if (other !== undefined) return `forwardClaims ${quoted(other)} and ${quoted(claim)} would share one header (${claimHeaderName(claim)})`;
    folded.set(key, claim);
  }
  return undefined;
}

/** Why a list of issuer specs cannot be encoded (or was not a valid decoding), or undefined. */
export function jwtIssuersProblem(specs: unknown): string | undefined {
  if (!Array.isArray(specs)) return 'must be a JSON list of issuers';
  if (specs.length > MAX_JWT_ISSUERS) return `lists ${specs.length} issuers; at most ${MAX_JWT_ISSUERS}`;
  const names = new Set<string>();
  const issuers = new Set<string>();
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i] as Record<string, unknown>;
    const problem = jwtIssuerProblem(spec);
    const label = `issuer ${i + 1}${isRecord(spec) && typeof spec.name === 'string' ? ` (${quoted(spec.name)})` : ''}`;
    if (problem !== undefined) return `${label}: ${problem}`;
    if (names.has(spec.name as string)) return `${label}: name ${quoted(spec.name as string)} is used twice`;
    if (issuers.has(spec.issuer as string)) return `${label}: issuer ${quoted(spec.issuer as string)} is listed twice`;
    names.add(spec.name as string);
    issuers.add(spec.issuer as string);
  }
  return undefined;
}

/** JSON; an empty list is no value at all (the variable stays unset). */
export function encodeJwtIssuers(specs: readonly JwtIssuerSpec[]): string | undefined {
  return specs.length === 0 ? undefined : JSON.stringify(specs);
}

/** The inverse of encodeJwtIssuers: a JSON list of valid issuer specs, with their defaults applied. */
export function parseJwtIssuers(text: string): Parsed<readonly JwtIssuer[]> {
  let specs: unknown;
  try {
    specs = JSON.parse(text);
  } catch {
    return bad(`must be a JSON list of issuers, got ${quoted(text)}`);
  }
  const problem = jwtIssuersProblem(specs);
  if (problem !== undefined) return bad(problem);
  if ((specs as unknown[]).length === 0) return bad('lists no issuer (leave it unset instead)');
  return ok(
    (specs as JwtIssuerSpec[]).map((s) => ({
      name: s.name,
      issuer: s.issuer,
      audiences: [...s.audiences],
      jwksFile: s.jwksFile,
      jwksUrl: s.jwksUrl,
      hmacSecretFile: s.hmacSecretFile,
      caFile: s.caFile,
      refreshSeconds: s.jwksUrl === undefined ? undefined : (s.refreshSeconds ?? JWT_ISSUER_INTEGERS.refreshSeconds.default),
      algorithms: [...(s.algorithms ?? (s.hmacSecretFile !== undefined ? DEFAULT_HMAC_JWT_ALGORITHMS : DEFAULT_JWT_ALGORITHMS))],
      clockSkewSeconds: s.clockSkewSeconds ?? JWT_ISSUER_INTEGERS.clockSkewSeconds.default,
      maxLifetimeSeconds: s.maxLifetimeSeconds,
      subjectClaim: s.subjectClaim ?? DEFAULT_JWT_SUBJECT_CLAIM,
      forwardClaims: [...(s.forwardClaims ?? [])],
      tokenTypes: [...(s.tokenTypes ?? DEFAULT_JWT_TOKEN_TYPES)],
    })),
  );
}

/** The service-account issuer's name: its metrics label; its subjects carry no prefix (`system:serviceaccount:<ns>:<name>`). */
export const KUBERNETES_ISSUER_NAME = 'kubernetes';
/** What an API server signs service-account tokens with: its RSA or ECDSA service-account key. */
export const KUBERNETES_JWT_ALGORITHMS: readonly JwtAlgorithm[] = ['RS256', 'ES256', 'ES384', 'ES512'];
/** The subject of a service-account token; namespace a DNS label, name a DNS subdomain. */
export const SERVICE_ACCOUNT_SUBJECT = /^system:serviceaccount:([a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?):([a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?)$/;

/** What every service account's identity starts with. */
export const SERVICE_ACCOUNT_SUBJECT_PREFIX = 'system:serviceaccount:';

/** The identity a service account's token authenticates as. */
export function serviceAccountSubject(namespace: string, name: string): string {
  return `${SERVICE_ACCOUNT_SUBJECT_PREFIX}${namespace}:${name}`;
}

/**
 * Service-account tokens, as SIDECAR_KUBERNETES_AUTH: projected tokens with one of `audiences`,
 * verified against the cluster issuer's keys, which the sidecar reads from the API server's
 * discovery documents (KUBERNETES_DISCOVERY_PATHS) with its own token.
 */
export interface KubernetesAuthSpec {
  /** A token's `aud` must name at least one of these. */
  readonly audiences: readonly string[];
  /** Absolute path of the sidecar's own projected token, sent to the API server to read the discovery documents. */
  readonly tokenFile: string;
  /** Absolute path of the PEM CA certificates of the API server (the kube-root-ca.crt ConfigMap). */
  readonly caFile: string;
  /** https: base URL of the API server. @default from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, as in-cluster clients do */
  readonly apiServer?: string;
  /** Seconds between refetches of the keys. @default 300 */
  readonly refreshSeconds?: number;
  /** @default 30 */
  readonly clockSkewSeconds?: number;
  /** Longest accepted exp - iat, in seconds. @default no bound */
  readonly maxLifetimeSeconds?: number;
}

/** KubernetesAuthSpec with its defaults applied (but apiServer, which the sidecar resolves from its env). */
export interface KubernetesAuth {
  readonly audiences: readonly string[];
  readonly tokenFile: string;
  readonly caFile: string;
  readonly apiServer: string | undefined;
  readonly refreshSeconds: number;
  readonly clockSkewSeconds: number;
  readonly maxLifetimeSeconds: number | undefined;
}

const KUBERNETES_AUTH_FIELDS = ['audiences', 'tokenFile', 'caFile', 'apiServer', 'refreshSeconds', 'clockSkewSeconds', 'maxLifetimeSeconds'];

/** An API server base URL: https only, no path, query, fragment or credentials. */
export function apiServerProblem(v: unknown): string | undefined {
  const urlProblem = jwksUrlProblem(v);
  if (urlProblem !== undefined) return urlProblem.replace(/^jwksUrl/, 'apiServer').replace('keys fetched', 'keys read');
  const url = new URL(v as string);
  if (url.pathname !== '/' || url.search !== '') return `apiServer must be a base URL (https://host:port), got ${quoted(v as string)}`;
  return undefined;
}

/** Why a service-account auth spec is not valid, or undefined. Takes `unknown`: it checks parsed JSON too. */
export function kubernetesAuthProblem(spec: unknown): string | undefined {
  if (!isRecord(spec)) return 'must be an object';
  const unknownField = Object.keys(spec).find((k) => !KUBERNETES_AUTH_FIELDS.includes(k));
  if (unknownField !== undefined) return `has an unknown field ${quoted(unknownField)} (known: ${KUBERNETES_AUTH_FIELDS.join(', ')})`;
  const { audiences } = spec;
  if (!Array.isArray(audiences) || audiences.length === 0 || audiences.length > MAX_JWT_AUDIENCES) return `audiences must be a list of 1-${MAX_JWT_AUDIENCES} strings`;
  for (const a of audiences) {
    const problem = printableProblem('audiences entries', a, 256);
    if (problem !== undefined) return problem;
  }
  if (new Set(audiences).size !== audiences.length) return 'audiences lists an audience twice';
  const tokenProblem = absolutePathProblem('tokenFile', spec.tokenFile);
  if (tokenProblem !== undefined) return tokenProblem;
  const caProblem = absolutePathProblem('caFile', spec.caFile);
  if (caProblem !== undefined) return caProblem;
  if (spec.apiServer !== undefined) {
    const problem = apiServerProblem(spec.apiServer);
    if (problem !== undefined) return problem;
  }
  return (
    optionalIntegerProblem('refreshSeconds', spec.refreshSeconds, JWT_ISSUER_INTEGERS.refreshSeconds) ??
    optionalIntegerProblem('clockSkewSeconds', spec.clockSkewSeconds, JWT_ISSUER_INTEGERS.clockSkewSeconds) ??
    optionalIntegerProblem('maxLifetimeSeconds', spec.maxLifetimeSeconds, JWT_ISSUER_INTEGERS.maxLifetimeSeconds)
  );
}

/** JSON; no spec is no value at all (the variable stays unset). */
export function encodeKubernetesAuth(spec: KubernetesAuthSpec | undefined): string | undefined {
  return spec === undefined ? undefined : JSON.stringify(spec);
}

/** The inverse of encodeKubernetesAuth, with the defaults applied. */
export function parseKubernetesAuth(text: string): Parsed<KubernetesAuth> {
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch {
    return bad(`must be a JSON object, got ${quoted(text)}`);
  }
  const problem = kubernetesAuthProblem(spec);
  if (problem !== undefined) return bad(problem);
  const s = spec as unknown as KubernetesAuthSpec;
  return ok({
    audiences: [...s.audiences],
    tokenFile: s.tokenFile,
    caFile: s.caFile,
    apiServer: s.apiServer,
    refreshSeconds: s.refreshSeconds ?? JWT_ISSUER_INTEGERS.refreshSeconds.default,
    clockSkewSeconds: s.clockSkewSeconds ?? JWT_ISSUER_INTEGERS.clockSkewSeconds.default,
    maxLifetimeSeconds: s.maxLifetimeSeconds,
  });
}

/**
 * The credential sources of a sidecar: static tokens (a tokens directory), JWT issuers, and
 * service-account tokens. Any mix is valid, each on its own too; none at all is not: such a sidecar
 * could only refuse. So the tokens directory is required only when no other source is configured.
 */
export interface CredentialSources {
  /** A tokens directory is configured. */
  readonly staticTokens: boolean;
  /** The names of the JWT issuers. */
  readonly jwtIssuers: readonly string[];
  /** Service-account token auth is on. */
  readonly kubernetes: boolean;
}

/** The name /readyz, the logs and the docs give the static-token source. */
export const STATIC_TOKENS_SOURCE = 'tokens';

/** Each configured source by name, in a fixed order: `tokens`, `jwt:<issuer>` for each issuer, `kubernetes`. */
export function credentialSourceNames(sources: CredentialSources): string[] {
  return [
    ...(sources.staticTokens ? [STATIC_TOKENS_SOURCE] : []),
    ...sources.jwtIssuers.map((name) => `jwt:${name}`),
    ...(sources.kubernetes ? [KUBERNETES_ISSUER_NAME] : []),
  ];
}

/** Whether at least one source is configured; without one a sidecar refuses to start (a SidecarApp to synthesize). */
export function hasCredentialSource(sources: CredentialSources): boolean {
  return credentialSourceNames(sources).length > 0;
}

/** Why SIDECAR_TOKENS_DIR cannot be left unset: reads after the variable's name. */
export const NO_CREDENTIAL_SOURCE_PROBLEM = `is required when neither ${SIDECAR_ENV.jwtIssuers} nor ${SIDECAR_ENV.kubernetesAuth} is set (the sidecar would have no credential source): the directory holding one file per token`;

/** Non-numeric defaults of apps/sidecar, keyed like SIDECAR_ENV. */
export const SIDECAR_DEFAULTS = {
  host: ADDRESSES.all,
  upstream: encodeUpstream(DEFAULT_PORTS.main),
  upstreamHealthPath: HEALTH_PATHS.main,
  upstreamCheck: DEFAULT_UPSTREAM_CHECK,
  publicPaths: [] as readonly string[],
  forwardAuthorization: false,
  realm: 'sidecar',
  logLevel: DEFAULT_LOG_LEVEL,
  jwtIssuers: [] as readonly JwtIssuer[],
  kubernetesAuth: undefined as KubernetesAuth | undefined,
  // Off unless asked for: any peer admitted to the admin port could otherwise drain the pod.
  drainHook: false,
} as const;

/** Non-numeric defaults of apps/main, keyed like MAIN_ENV. */
export const MAIN_DEFAULTS = {
  host: ADDRESSES.all,
  logLevel: DEFAULT_LOG_LEVEL,
} as const;
