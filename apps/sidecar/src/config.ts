/**
 * Sidecar configuration: every SIDECAR_* variable of the contract, parsed and validated once at start.
 * A bad value throws ConfigError naming the variable; index.ts turns it into one line on stderr.
 */
import * as net from 'net';
import * as path from 'path';
import { DEFAULT_PORTS, DEFAULT_TIMINGS, HEALTH_PATHS, SIDECAR_ENV } from '../../../contract';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Realm used in WWW-Authenticate when SIDECAR_REALM is unset. */
export const DEFAULT_REALM = 'sidecar';
/** Address both listeners bind when SIDECAR_HOST is unset. */
export const DEFAULT_HOST = '0.0.0.0';

export interface SidecarConfig {
  readonly host: string;
  readonly port: number;
  readonly adminPort: number;
  /** Parsed SIDECAR_UPSTREAM; origin only (no path, query, credentials). */
  readonly upstream: URL;
  readonly tokensDir: string;
  /** Exact raw paths that need no token. */
  readonly publicPaths: ReadonlySet<string>;
  readonly upstreamHealthPath: string;
  readonly upstreamTimeoutMs: number;
  readonly upstreamIdleTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly drainDelayMs: number;
  readonly shutdownTimeoutMs: number;
  readonly forwardAuthorization: boolean;
  readonly realm: string;
  readonly tokensPollIntervalMs: number;
  readonly logLevel: LogLevel;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly reason: string,
  ) {
    super(`${variable}: ${reason}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Quote a user value for an error message without letting it span lines or grow unbounded. */
function shown(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const v = raw(env, name);
  if (v === undefined) return fallback;
  if (!/^\d{1,10}$/.test(v)) throw new ConfigError(name, `must be an integer between ${min} and ${max}, got ${shown(v)}`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function port(env: Env, name: string, fallback: number): number {
  return integer(env, name, fallback, 0, 65535);
}

function upstreamUrl(env: Env): URL {
  const name = SIDECAR_ENV.upstream;
  const v = raw(env, name) ?? `http://127.0.0.1:${DEFAULT_PORTS.main}`;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError(name, `must be an absolute http:// URL such as http://127.0.0.1:8080, got ${shown(v)}`);
  }
  if (url.protocol !== 'http:') throw new ConfigError(name, `only http:// is supported, got ${shown(url.protocol)}`);
  if (!url.hostname) throw new ConfigError(name, 'must name a host');
  if (url.username || url.password) throw new ConfigError(name, 'must not contain credentials');
  if (url.search || v.includes('?')) throw new ConfigError(name, 'must not contain a query');
  if (url.hash || v.includes('#')) throw new ConfigError(name, 'must not contain a fragment');
  if (url.pathname !== '/') throw new ConfigError(name, `must not contain a path, got ${shown(url.pathname)}`);
  // The port must be explicit: an implied 80 is rarely what a sidecar in front of a local service means.
  if (!/^http:\/\/(\[[^\]]+\]|[^/:@]+):\d{1,5}\/?$/i.test(v)) throw new ConfigError(name, `must be http://<host>:<port>, got ${shown(v)}`);
  if (url.port === '0') throw new ConfigError(name, 'port must not be 0');
  return url;
}

function plainPath(name: string, p: string): string {
  if (!p.startsWith('/')) throw new ConfigError(name, `path must start with "/", got ${shown(p)}`);
  if (/[?#\s]/.test(p) || /[\u0000-\u001f\u007f]/.test(p)) throw new ConfigError(name, `path must not contain "?", "#", whitespace or control characters, got ${shown(p)}`);
  return p;
}

function publicPaths(env: Env): Set<string> {
  const name = SIDECAR_ENV.publicPaths;
  const v = raw(env, name);
  const paths = new Set<string>();
  if (v === undefined) return paths;
  for (const part of v.split(',')) {
    const p = part.trim();
    if (p === '') throw new ConfigError(name, 'contains an empty entry');
    plainPath(name, p);
    if (paths.has(p)) throw new ConfigError(name, `lists ${shown(p)} twice`);
    paths.add(p);
  }
  return paths;
}

function host(env: Env): string {
  const name = SIDECAR_ENV.host;
  const v = raw(env, name) ?? DEFAULT_HOST;
  if (net.isIP(v) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(v)) {
    throw new ConfigError(name, `must be an IP address or host name, got ${shown(v)}`);
  }
  return v;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const v = raw(env, name);
  if (v === undefined) return fallback;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new ConfigError(name, `must be "true" or "false", got ${shown(v)}`);
}

function realm(env: Env): string {
  const name = SIDECAR_ENV.realm;
  const v = raw(env, name) ?? DEFAULT_REALM;
  // Goes inside a quoted-string of WWW-Authenticate: printable ASCII, no quote or backslash.
  if (v.length > 128 || !/^[\x20-\x7e]+$/.test(v) || /["\\]/.test(v)) {
    throw new ConfigError(name, `must be 1-128 printable ASCII characters without '"' or '\\', got ${shown(v)}`);
  }
  return v;
}

function logLevel(env: Env): LogLevel {
  const name = SIDECAR_ENV.logLevel;
  const v = raw(env, name) ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new ConfigError(name, `must be one of ${LOG_LEVELS.join(', ')}, got ${shown(v)}`);
  return v as LogLevel;
}

function tokensDir(env: Env): string {
  const name = SIDECAR_ENV.tokensDir;
  const v = raw(env, name);
  if (v === undefined) throw new ConfigError(name, 'is required: the directory holding one file per token');
  if (/[\u0000-\u001f]/.test(v)) throw new ConfigError(name, 'must not contain control characters');
  return path.resolve(v);
}

const HOUR_MS = 3_600_000;

/** Parse and validate the sidecar's environment. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env): SidecarConfig {
  const cfg: SidecarConfig = {
    host: host(env),
    port: port(env, SIDECAR_ENV.port, DEFAULT_PORTS.sidecar),
    adminPort: port(env, SIDECAR_ENV.adminPort, DEFAULT_PORTS.admin),
    upstream: upstreamUrl(env),
    tokensDir: tokensDir(env),
    publicPaths: publicPaths(env),
    upstreamHealthPath: plainPath(SIDECAR_ENV.upstreamHealthPath, raw(env, SIDECAR_ENV.upstreamHealthPath) ?? HEALTH_PATHS.main),
    upstreamTimeoutMs: integer(env, SIDECAR_ENV.upstreamTimeoutMs, DEFAULT_TIMINGS.upstreamTimeoutMs, 1, HOUR_MS),
    upstreamIdleTimeoutMs: integer(env, SIDECAR_ENV.upstreamIdleTimeoutMs, DEFAULT_TIMINGS.upstreamIdleTimeoutMs, 1, 10 * 60_000),
    headersTimeoutMs: integer(env, SIDECAR_ENV.headersTimeoutMs, DEFAULT_TIMINGS.headersTimeoutMs, 1, 10 * 60_000),
    drainDelayMs: integer(env, SIDECAR_ENV.drainDelayMs, DEFAULT_TIMINGS.sidecarDrainDelayMs, 0, 10 * 60_000),
    shutdownTimeoutMs: integer(env, SIDECAR_ENV.shutdownTimeoutMs, DEFAULT_TIMINGS.sidecarShutdownTimeoutMs, 1, HOUR_MS),
    forwardAuthorization: bool(env, SIDECAR_ENV.forwardAuthorization, false),
    realm: realm(env),
    tokensPollIntervalMs: integer(env, SIDECAR_ENV.tokensPollIntervalMs, DEFAULT_TIMINGS.tokensPollIntervalMs, 50, HOUR_MS),
    logLevel: logLevel(env),
  };
  if (cfg.port !== 0 && cfg.port === cfg.adminPort) {
    throw new ConfigError(SIDECAR_ENV.adminPort, `must differ from ${SIDECAR_ENV.port} (${cfg.port})`);
  }
  if (cfg.shutdownTimeoutMs <= cfg.drainDelayMs) {
    throw new ConfigError(SIDECAR_ENV.shutdownTimeoutMs, `must be longer than ${SIDECAR_ENV.drainDelayMs} (${cfg.drainDelayMs} ms)`);
  }
  return cfg;
}
