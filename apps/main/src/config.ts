import { MAIN_DEFAULTS, MAIN_ENV, MAIN_INTEGERS, parseInteger, parseLogLevel, hostProblem } from '../../../contract';
import type { IntegerRule, LogLevel, Parsed } from '../../../contract';

/** Settings of the main service, read once from the environment at start-up. */
export interface MainConfig {
  readonly port: number;
  readonly host: string;
  readonly drainDelayMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly logLevel: LogLevel;
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

type Env = Record<string, string | undefined>;

/** An empty value is what `env: [{name, value: ""}]` gives; treat it as unset. */
function read(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

function valueOf<T>(name: string, parsed: Parsed<T>): T {
  if (!parsed.ok) throw new ConfigError(name, parsed.problem);
  return parsed.value;
}

function integer(env: Env, name: string, rule: IntegerRule): number {
  const raw = read(env, name);
  return raw === undefined ? rule.default : valueOf(name, parseInteger(rule, raw));
}

/** Parse and validate the environment; throws ConfigError on the first bad setting. */
export function loadConfig(env: Env = process.env): MainConfig {
  const port = integer(env, MAIN_ENV.port, MAIN_INTEGERS.port);
  const host = read(env, MAIN_ENV.host) ?? MAIN_DEFAULTS.host;
  const hostTrouble = hostProblem(host);
  if (hostTrouble !== undefined) throw new ConfigError(MAIN_ENV.host, hostTrouble);
  const drainDelayMs = integer(env, MAIN_ENV.drainDelayMs, MAIN_INTEGERS.drainDelayMs);
  const keepAliveTimeoutMs = integer(env, MAIN_ENV.keepAliveTimeoutMs, MAIN_INTEGERS.keepAliveTimeoutMs);
  const level = read(env, MAIN_ENV.logLevel);
  const logLevel = level === undefined ? MAIN_DEFAULTS.logLevel : valueOf(MAIN_ENV.logLevel, parseLogLevel(level));
  return { port, host, drainDelayMs, keepAliveTimeoutMs, logLevel };
}
