import { DEFAULT_PORTS, DEFAULT_TIMINGS, MAIN_ENV } from '../../../contract';

/** Settings of the main service, read once from the environment at start-up. */
export interface MainConfig {
  readonly port: number;
  readonly host: string;
  readonly drainDelayMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly logLevel: string;
}

/** A bad setting. The message names the variable and is printed as one line. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`${variable}: ${reason}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
// setTimeout and the http server timeouts overflow above 2^31-1 ms.
const MAX_TIMER_MS = 2_147_483_647;

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const trimmed = raw.trim();
  // An empty value is what `env: [{name, value: ""}]` gives; treat it as unset.
  return trimmed === '' ? undefined : trimmed;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${raw}`);
  return value;
}

/** Parse and validate the environment; throws ConfigError on the first bad setting. */
export function loadConfig(env: Env = process.env): MainConfig {
  const port = integer(env, MAIN_ENV.port, DEFAULT_PORTS.main, 0, 65_535);
  const host = read(env, MAIN_ENV.host) ?? '0.0.0.0';
  if (/\s|\//.test(host)) throw new ConfigError(MAIN_ENV.host, `must be a host name or IP address, got ${JSON.stringify(host)}`);
  const drainDelayMs = integer(env, MAIN_ENV.drainDelayMs, DEFAULT_TIMINGS.mainDrainDelayMs, 0, MAX_TIMER_MS);
  // Leave room for headersTimeout = keepAliveTimeout + 1 s.
  const keepAliveTimeoutMs = integer(env, MAIN_ENV.keepAliveTimeoutMs, DEFAULT_TIMINGS.mainKeepAliveTimeoutMs, 1, MAX_TIMER_MS - 1_000);
  const logLevel = (read(env, MAIN_ENV.logLevel) ?? 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(MAIN_ENV.logLevel, `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  return { port, host, drainDelayMs, keepAliveTimeoutMs, logLevel };
}
