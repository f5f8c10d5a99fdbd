/**
 * Sidecar configuration: every SIDECAR_* variable of the contract, parsed and validated once at start.
 * A bad value throws ConfigError naming the variable; index.ts turns it into one line on stderr.
 */
import * as path from 'path';
import {
  ConfigError,
  DEFAULT_ROUTE_DEFAULT,
  NO_CREDENTIAL_SOURCE_PROBLEM,
  credentialSourceNames,
  hasCredentialSource,
  KUBERNETES_ISSUER_NAME,
  SIDECAR_DEFAULTS,
  SIDECAR_ENV,
  SIDECAR_ENV_OWNERSHIP,
  SIDECAR_INTEGERS,
  hostProblem,
  envText,
  parseBoolean,
  parseJwtIssuers,
  parseKubernetesAuth,
  apiServerProblem,
  IN_CLUSTER_ENV,
  parseLogLevel,
  parseUpstreamCheck,
  parsePublicPaths,
  parseRoutes,
  pathProblem,
  publicPathRoutes,
  quoted,
  readInteger,
  readSetting,
  refuseUnknownEnv,
  standaloneTimingBudget,
  upstreamCheckUsesHealthPath,
} from '../../../lib/src/contract';
import type { Env, JwtIssuer, KubernetesAuth, LogLevel, RouteTable, UpstreamCheck } from '../../../lib/src/contract';

export interface SidecarConfig {
  readonly host: string;
  readonly port: number;
  readonly adminPort: number;
  /** Parsed SIDECAR_UPSTREAM; origin only (no path, query, credentials). */
  readonly upstream: URL;
  /** The same, as a socket address. */
  readonly upstreamAddress: UpstreamAddress;
  /** Where the static tokens are read; undefined: static tokens are no source (another one is). */
  readonly tokensDir: string | undefined;
  /** Every configured credential source by name (the contract's credentialSourceNames): what /readyz and the logs report. */
  readonly credentialSources: readonly string[];
  /** The route table: SIDECAR_ROUTES, or SIDECAR_PUBLIC_PATHS as exact public rules. */
  readonly routes: RouteTable;
  /** How /readyz checks the main service. */
  readonly upstreamCheck: UpstreamCheck;
  /** What the http check asks; the default, unused, with the other checks. */
  readonly upstreamHealthPath: string;
  readonly upstreamTimeoutMs: number;
  readonly upstreamIdleTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly drainDelayMs: number;
  readonly shutdownTimeoutMs: number;
  readonly forwardAuthorization: boolean;
  /** Proxies in front of the sidecar whose X-Forwarded-For entries and X-Forwarded-Proto are kept; 0: none. */
  readonly trustedProxyHops: number;
  readonly realm: string;
  readonly tokensPollIntervalMs: number;
  readonly logLevel: LogLevel;
  /** Serve the drain hook on the admin port (native-sidecar mode). */
  readonly drainHook: boolean;
  /** Trusted JWT issuers; empty: none. */
  readonly jwtIssuers: readonly JwtIssuer[];
  /** Service-account token auth, with the API server's URL resolved; undefined: off. */
  readonly kubernetesAuth: (KubernetesAuth & { readonly apiServer: string }) | undefined;
  /** Budget of the verified-JWT cache, in estimated bytes; 0: no cache. */
  readonly jwtCacheBytes: number;
}

/** Where to connect to the main service. */
export interface UpstreamAddress {
  /** Host name or IP, without the brackets URL keeps around an IPv6 address: what a socket connect wants. */
  readonly hostname: string;
  readonly port: number;
  /** host:port as written in the URL, for a Host header. */
  readonly authority: string;
}

/** URL drops a port that is the scheme's default, so an explicit :80 reads as ''. */
export function upstreamAddressOf(url: URL): UpstreamAddress {
  return { hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 80), authority: url.host };
}

export { ConfigError };

function upstreamUrl(env: Env): URL {
  const name = SIDECAR_ENV.upstream;
  const v = envText(env, name) ?? SIDECAR_DEFAULTS.upstream;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError(name, `must be an absolute http:// URL such as ${SIDECAR_DEFAULTS.upstream}, got ${quoted(v)}`);
  }
  if (url.protocol !== 'http:') throw new ConfigError(name, `only http:// is supported, got ${quoted(url.protocol)}`);
  if (!url.hostname) throw new ConfigError(name, 'must name a host');
  if (url.username || url.password) throw new ConfigError(name, 'must not contain credentials');
  if (url.search || v.includes('?')) throw new ConfigError(name, 'must not contain a query');
  if (url.hash || v.includes('#')) throw new ConfigError(name, 'must not contain a fragment');
  if (url.pathname !== '/') throw new ConfigError(name, `must not contain a path, got ${quoted(url.pathname)}`);
  // The port must be explicit: an implied 80 is rarely what a sidecar in front of a local service means.
  if (!/^http:\/\/(\[[^\]]+\]|[^/:@]+):\d{1,5}\/?$/i.test(v)) throw new ConfigError(name, `must be http://<host>:<port>, got ${quoted(v)}`);
  if (url.port === '0') throw new ConfigError(name, 'port must not be 0');
  return url;
}

function plainPath(name: string, p: string): string {
  const problem = pathProblem(p);
  if (problem !== undefined) throw new ConfigError(name, `path ${problem}`);
  return p;
}

/** SIDECAR_ROUTES, or SIDECAR_PUBLIC_PATHS (its shorthand) as exact public rules; never both. */
function routes(env: Env, issuerNames: readonly string[]): RouteTable {
  const paths = readSetting(env, SIDECAR_ENV.publicPaths, SIDECAR_DEFAULTS.publicPaths, parsePublicPaths);
  const table = readSetting(env, SIDECAR_ENV.routes, undefined, (text) => parseRoutes(text, issuerNames));
  if (table !== undefined && paths.length > 0) {
    throw new ConfigError(SIDECAR_ENV.routes, `and ${SIDECAR_ENV.publicPaths} are both set: write the public paths as public rules in ${SIDECAR_ENV.routes}`);
  }
  if (table !== undefined) return table;
  const rules = publicPathRoutes(paths);
  if (!rules.ok) throw new ConfigError(SIDECAR_ENV.publicPaths, rules.problem);
  return { rules: rules.value, default: DEFAULT_ROUTE_DEFAULT };
}

/** SIDECAR_KUBERNETES_AUTH; without an apiServer, the API server in-cluster clients use (client-go's InClusterConfig). */
function kubernetesAuth(env: Env): SidecarConfig['kubernetesAuth'] {
  const auth = readSetting(env, SIDECAR_ENV.kubernetesAuth, SIDECAR_DEFAULTS.kubernetesAuth, parseKubernetesAuth);
  if (auth === undefined) return undefined;
  if (auth.apiServer !== undefined) return { ...auth, apiServer: auth.apiServer };
  const h = envText(env, IN_CLUSTER_ENV.host);
  const p = envText(env, IN_CLUSTER_ENV.port);
  if (h === undefined || p === undefined) {
    throw new ConfigError(SIDECAR_ENV.kubernetesAuth, `has no apiServer, and ${IN_CLUSTER_ENV.host} and ${IN_CLUSTER_ENV.port} (set by the kubelet) are not both set`);
  }
  const apiServer = `https://${h.includes(':') ? `[${h}]` : h}:${p}`;
  const problem = apiServerProblem(apiServer);
  if (problem !== undefined || !/^\d{1,5}$/.test(p)) throw new ConfigError(IN_CLUSTER_ENV.host, `and ${IN_CLUSTER_ENV.port} do not make an API server URL: ${quoted(apiServer)}`);
  return { ...auth, apiServer };
}

function host(env: Env): string {
  const v = envText(env, SIDECAR_ENV.host) ?? SIDECAR_DEFAULTS.host;
  const problem = hostProblem(v);
  if (problem !== undefined) throw new ConfigError(SIDECAR_ENV.host, problem);
  return v;
}

function realm(env: Env): string {
  const name = SIDECAR_ENV.realm;
  const v = envText(env, name) ?? SIDECAR_DEFAULTS.realm;
  // Goes inside a quoted-string of WWW-Authenticate: printable ASCII, no quote or backslash.
  if (v.length > 128 || !/^[\x20-\x7e]+$/.test(v) || /["\\]/.test(v)) {
    throw new ConfigError(name, `must be 1-128 printable ASCII characters without '"' or '\\', got ${quoted(v)}`);
  }
  return v;
}

/** SIDECAR_UPSTREAM_CHECK, and SIDECAR_UPSTREAM_HEALTH_PATH only where the check asks a path. */
function upstreamCheck(env: Env): { upstreamCheck: UpstreamCheck; upstreamHealthPath: string } {
  const check = readSetting(env, SIDECAR_ENV.upstreamCheck, SIDECAR_DEFAULTS.upstreamCheck, parseUpstreamCheck);
  const healthPath = envText(env, SIDECAR_ENV.upstreamHealthPath);
  if (healthPath !== undefined && !upstreamCheckUsesHealthPath(check)) {
    throw new ConfigError(SIDECAR_ENV.upstreamHealthPath, `is set, but ${SIDECAR_ENV.upstreamCheck} is ${quoted(check)}, which asks no path: unset one of them`);
  }
  return { upstreamCheck: check, upstreamHealthPath: plainPath(SIDECAR_ENV.upstreamHealthPath, healthPath ?? SIDECAR_DEFAULTS.upstreamHealthPath) };
}

/** Optional when another credential source is configured (the contract's rule): undefined then. */
function tokensDir(env: Env, otherSources: boolean): string | undefined {
  const name = SIDECAR_ENV.tokensDir;
  const v = envText(env, name);
  if (v === undefined && otherSources) return undefined;
  if (v === undefined) throw new ConfigError(name, NO_CREDENTIAL_SOURCE_PROBLEM);
  if (/[\u0000-\u001f]/.test(v)) throw new ConfigError(name, 'must not contain control characters');
  return path.resolve(v);
}

/** Parse and validate the sidecar's environment. Throws ConfigError naming an unknown SIDECAR_* variable or the first bad one. */
export function loadConfig(env: Env): SidecarConfig {
  refuseUnknownEnv(env, SIDECAR_ENV_OWNERSHIP);
  const upstream = upstreamUrl(env);
  const upstreamTimeoutMs = readInteger(env, SIDECAR_ENV.upstreamTimeoutMs, SIDECAR_INTEGERS.upstreamTimeoutMs);
  const drainDelayMs = readInteger(env, SIDECAR_ENV.drainDelayMs, SIDECAR_INTEGERS.drainDelayMs);
  // Unset only outside SidecarApp: then the bound follows this run's own drain and timeout.
  const shutdownBound = { ...SIDECAR_INTEGERS.shutdownTimeoutMs, default: standaloneTimingBudget(drainDelayMs, upstreamTimeoutMs).sidecarShutdownTimeoutMs };
  // Before the rest: route rules name JWT issuers.
  const jwtIssuers = readSetting(env, SIDECAR_ENV.jwtIssuers, SIDECAR_DEFAULTS.jwtIssuers, parseJwtIssuers);
  const kubernetes = kubernetesAuth(env);
  const others = { jwtIssuers: jwtIssuers.map((i) => i.name), kubernetes: kubernetes !== undefined };
  const tokens = tokensDir(env, hasCredentialSource({ ...others, staticTokens: false }));
  const cfg: SidecarConfig = {
    host: host(env),
    port: readInteger(env, SIDECAR_ENV.port, SIDECAR_INTEGERS.port),
    adminPort: readInteger(env, SIDECAR_ENV.adminPort, SIDECAR_INTEGERS.adminPort),
    upstream,
    upstreamAddress: upstreamAddressOf(upstream),
    tokensDir: tokens,
    credentialSources: credentialSourceNames({ ...others, staticTokens: tokens !== undefined }),
    routes: routes(env, [...jwtIssuers.map((i) => i.name), ...(kubernetes === undefined ? [] : [KUBERNETES_ISSUER_NAME])]),
    ...upstreamCheck(env),
    upstreamTimeoutMs,
    upstreamIdleTimeoutMs: readInteger(env, SIDECAR_ENV.upstreamIdleTimeoutMs, SIDECAR_INTEGERS.upstreamIdleTimeoutMs),
    headersTimeoutMs: readInteger(env, SIDECAR_ENV.headersTimeoutMs, SIDECAR_INTEGERS.headersTimeoutMs),
    drainDelayMs,
    shutdownTimeoutMs: readInteger(env, SIDECAR_ENV.shutdownTimeoutMs, shutdownBound),
    forwardAuthorization: readSetting(env, SIDECAR_ENV.forwardAuthorization, SIDECAR_DEFAULTS.forwardAuthorization, parseBoolean),
    trustedProxyHops: readInteger(env, SIDECAR_ENV.trustedProxyHops, SIDECAR_INTEGERS.trustedProxyHops),
    realm: realm(env),
    tokensPollIntervalMs: readInteger(env, SIDECAR_ENV.tokensPollIntervalMs, SIDECAR_INTEGERS.tokensPollIntervalMs),
    logLevel: readSetting(env, SIDECAR_ENV.logLevel, SIDECAR_DEFAULTS.logLevel, parseLogLevel),
    drainHook: readSetting(env, SIDECAR_ENV.drainHook, SIDECAR_DEFAULTS.drainHook, parseBoolean),
    jwtIssuers,
    kubernetesAuth: kubernetes,
    jwtCacheBytes: readInteger(env, SIDECAR_ENV.jwtCacheBytes, SIDECAR_INTEGERS.jwtCacheBytes),
  };
  if (cfg.port !== 0 && cfg.port === cfg.adminPort) {
    throw new ConfigError(SIDECAR_ENV.adminPort, `must differ from ${SIDECAR_ENV.port} (${cfg.port})`);
  }
  if (cfg.shutdownTimeoutMs <= cfg.drainDelayMs) {
    throw new ConfigError(SIDECAR_ENV.shutdownTimeoutMs, `must be longer than ${SIDECAR_ENV.drainDelayMs} (${cfg.drainDelayMs} ms)`);
  }
  return cfg;
}
