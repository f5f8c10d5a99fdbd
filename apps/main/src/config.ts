import { ConfigError, MAIN_DEFAULTS, MAIN_ENV, MAIN_ENV_OWNERSHIP, MAIN_INTEGERS, envText, hostProblem, parseLogLevel, readInteger, readSetting, refuseUnknownEnv } from '../../../lib/src/contract';
import type { Env, LogLevel } from '../../../lib/src/contract';

export { ConfigError };

/** Settings of the main service, read once from the environment at start-up. */
export interface MainConfig {
  readonly port: number;
  readonly host: string;
  readonly drainDelayMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly logLevel: LogLevel;
}

/** Parse and validate the environment; throws ConfigError on an unknown MAIN_* variable or the first bad setting. */
export function loadConfig(env: Env = process.env): MainConfig {
  refuseUnknownEnv(env, MAIN_ENV_OWNERSHIP);
  const port = readInteger(env, MAIN_ENV.port, MAIN_INTEGERS.port);
  const host = envText(env, MAIN_ENV.host) ?? MAIN_DEFAULTS.host;
  const hostTrouble = hostProblem(host);
  if (hostTrouble !== undefined) throw new ConfigError(MAIN_ENV.host, hostTrouble);
  const drainDelayMs = readInteger(env, MAIN_ENV.drainDelayMs, MAIN_INTEGERS.drainDelayMs);
  const keepAliveTimeoutMs = readInteger(env, MAIN_ENV.keepAliveTimeoutMs, MAIN_INTEGERS.keepAliveTimeoutMs);
  const logLevel = readSetting(env, MAIN_ENV.logLevel, MAIN_DEFAULTS.logLevel, parseLogLevel);
  return { port, host, drainDelayMs, keepAliveTimeoutMs, logLevel };
}
