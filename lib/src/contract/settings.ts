/**
 * The rules of every setting that crosses the env boundary: bounds, defaults, grammars, and the
 * encode/parse pair of each non-scalar value. lib/ checks props with these at synth; the apps parse
 * their env with them at start-up. Each side words its own error (a prop name or a variable name);
 * the rule itself lives only here.
 */
import { ADDRESSES, DEFAULT_PORTS, HEALTH_PATHS } from './names';
import { DEFAULT_TIMING_BUDGET, DEFAULT_TIMING_INPUTS, timingBudget } from './timing';

/** A parse result: the value, or why the text is not one. `problem` reads after the setting's name. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (problem: string): Parsed<never> => ({ ok: false, problem });

/** Quote a user value for a message without letting it span lines or grow unbounded. */
export function quoted(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
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

/** The longest shutdown bound any valid pod gives the sidecar. */
const LONGEST_SHUTDOWN_MS = timingBudget({
  drainDelayMs: DRAIN_DELAY.max,
  upstreamTimeoutMs: UPSTREAM_TIMEOUT.max,
  preStopDelaySeconds: POD_TIMING_INTEGERS.preStopDelaySeconds.min,
  terminationGracePeriodSeconds: POD_TIMING_INTEGERS.terminationGracePeriodSeconds.max,
}).sidecarShutdownTimeoutMs;

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
  return `must be an integer in ${rule.min}..${rule.max}, got ${String(value)}`;
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
 * `none` is never one; HMAC (HS*) is not either: it would need a shared secret, which no issuer takes.
 */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];
export const DEFAULT_JWT_ALGORITHMS: readonly JwtAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];

/** One trusted issuer as written in SIDECAR_JWT_ISSUERS; the optional fields have defaults. */
export interface JwtIssuerSpec {
  /** Prefix of the forwarded subject (`<name>:<claim>`) and the issuer's metrics label. */
  readonly name: string;
  /** The exact `iss` claim of its tokens. */
  readonly issuer: string;
  /** A token's `aud` must name at least one of these. */
  readonly audiences: readonly string[];
  /** Absolute path of the issuer's JWKS file (a mounted ConfigMap or Secret key); reloaded on change. Exactly one of jwksFile and jwksUrl. */
  readonly jwksFile?: string;
  /** An https: URL the issuer's JWKS is fetched from, at start, every refreshSeconds, and (rate-limited) on an unknown kid. */
  readonly jwksUrl?: string;
  /** With jwksUrl: absolute path of a PEM file of the CA certificates to trust for it. @default the default roots */
  readonly caFile?: string;
  /** With jwksUrl: seconds between refetches; a shorter Cache-Control max-age (not under 30) wins. @default 300 */
  readonly refreshSeconds?: number;
  /** @default DEFAULT_JWT_ALGORITHMS */
  readonly algorithms?: readonly JwtAlgorithm[];
  /** Leeway for exp, nbf and iat, in seconds. @default 30 */
  readonly clockSkewSeconds?: number;
  /** Longest accepted exp - iat, in seconds; tokens must then carry iat. @default no bound */
  readonly maxLifetimeSeconds?: number;
  /** The claim forwarded after the name. @default "sub" */
  readonly subjectClaim?: string;
}

/** A trusted issuer with its defaults applied: what the sidecar verifies against. */
export interface JwtIssuer extends Required<Omit<JwtIssuerSpec, 'maxLifetimeSeconds' | 'jwksFile' | 'jwksUrl' | 'caFile' | 'refreshSeconds'>> {
  readonly maxLifetimeSeconds: number | undefined;
  /** Exactly one of jwksFile and jwksUrl is set. */
  readonly jwksFile: string | undefined;
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
/** More issuers than this is a misconfiguration, not a deployment. */
export const MAX_JWT_ISSUERS = 16;
const MAX_JWT_AUDIENCES = 16;
const JWT_ISSUER_FIELDS = ['name', 'issuer', 'audiences', 'jwksFile', 'jwksUrl', 'caFile', 'refreshSeconds', 'algorithms', 'clockSkewSeconds', 'maxLifetimeSeconds', 'subjectClaim'];
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
  const { jwksUrl, caFile } = spec;
  if ((jwksFile === undefined) === (jwksUrl === undefined)) return 'must have exactly one of jwksFile and jwksUrl';
  if (jwksFile !== undefined) {
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
    if (!Array.isArray(algorithms) || algorithms.length === 0) return `algorithms must be a non-empty list of ${JWT_ALGORITHMS.join(', ')}`;
    for (const alg of algorithms) {
      if (typeof alg === 'string' && /^none$/i.test(alg)) return 'algorithms must not list "none": unsigned tokens are never accepted';
      if (typeof alg === 'string' && /^HS\d+$/.test(alg)) return `algorithms must not list ${quoted(alg)}: HMAC needs a shared secret, and the JWKS holds public keys`;
      if (!(JWT_ALGORITHMS as readonly unknown[]).includes(alg)) return `algorithms entries must be one of ${JWT_ALGORITHMS.join(', ')}, got ${typeof alg === 'string' ? quoted(alg) : typeof alg}`;
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
      caFile: s.caFile,
      refreshSeconds: s.jwksUrl === undefined ? undefined : (s.refreshSeconds ?? JWT_ISSUER_INTEGERS.refreshSeconds.default),
      algorithms: [...(s.algorithms ?? DEFAULT_JWT_ALGORITHMS)],
      clockSkewSeconds: s.clockSkewSeconds ?? JWT_ISSUER_INTEGERS.clockSkewSeconds.default,
      maxLifetimeSeconds: s.maxLifetimeSeconds,
      subjectClaim: s.subjectClaim ?? DEFAULT_JWT_SUBJECT_CLAIM,
    })),
  );
}

/** Non-numeric defaults of apps/sidecar, keyed like SIDECAR_ENV. */
export const SIDECAR_DEFAULTS = {
  host: ADDRESSES.all,
  upstream: encodeUpstream(DEFAULT_PORTS.main),
  upstreamHealthPath: HEALTH_PATHS.main,
  publicPaths: [] as readonly string[],
  forwardAuthorization: false,
  realm: 'sidecar',
  logLevel: DEFAULT_LOG_LEVEL,
  jwtIssuers: [] as readonly JwtIssuer[],
  // Off unless asked for: any peer admitted to the admin port could otherwise drain the pod.
  drainHook: false,
} as const;

/** Non-numeric defaults of apps/main, keyed like MAIN_ENV. */
export const MAIN_DEFAULTS = {
  host: ADDRESSES.all,
  logLevel: DEFAULT_LOG_LEVEL,
} as const;
