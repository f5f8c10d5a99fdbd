/**
 * How the apps read their env: one reader for both, so an empty value, a bad value and its error
 * message mean the same thing in every container.
 */
import { parseInteger } from './settings';
import type { IntegerRule, Parsed } from './settings';

export type Env = Readonly<Record<string, string | undefined>>;

/** A bad setting. The message names the variable and fits on one line. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly reason: string,
  ) {
    super(`${variable}: ${reason}`);
    this.name = 'ConfigError';
  }
}

/** The text of `name`; an empty value is what `env: [{name, value: ""}]` gives, so it counts as unset. */
export function envText(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** The parsed value of `name`, or `fallback` when unset; throws ConfigError when `parse` refuses it. */
export function readSetting<T>(env: Env, name: string, fallback: T, parse: (text: string) => Parsed<T>): T {
  const text = envText(env, name);
  if (text === undefined) return fallback;
  const parsed = parse(text);
  if (!parsed.ok) throw new ConfigError(name, parsed.problem);
  return parsed.value;
}

export function readInteger(env: Env, name: string, rule: IntegerRule): number {
  return readSetting(env, name, rule.default, (text) => parseInteger(rule, text));
}
