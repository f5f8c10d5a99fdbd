/**
 * How the apps read their env: one reader for both, so an empty value, a bad value and its error
 * message mean the same thing in every container.
 */
import { CALLER_TOKEN_ENV_SUFFIX, CHART_ENV_PREFIX, MAIN_ENV, SIDECAR_ENV } from './names';
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

/** The variables an app owns: every name with `prefix` is its, and it reads exactly `names`. */
export interface EnvOwnership {
  /** Which app, for messages: "main", "the sidecar". */
  readonly app: string;
  readonly prefix: string;
  readonly names: readonly string[];
  /** Names with the prefix that are not the app's own (another tool's): left alone. */
  readonly othersPrefixes: readonly string[];
}

/**
 * apps/main owns MAIN_*. A caller-token variable (`<CALLEE>_TOKEN_FILE`) is no main setting even
 * when the callee's name starts with "main" (MAIN_TOKEN_FILE, MAIN_API_TOKEN_FILE): allowCallsFrom
 * sets it for the code in the container, so every name with that suffix is left alone.
 */
export const MAIN_ENV_OWNERSHIP: EnvOwnership = { app: 'main', prefix: 'MAIN_', names: Object.values(MAIN_ENV), othersPrefixes: [] };

/** apps/sidecar owns SIDECAR_*, but for the chart's SIDECAR_APP_* (and the caller-token variables, as main). */
export const SIDECAR_ENV_OWNERSHIP: EnvOwnership = { app: 'the sidecar', prefix: 'SIDECAR_', names: Object.values(SIDECAR_ENV), othersPrefixes: [CHART_ENV_PREFIX] };

/** Levenshtein distance: how many one-character edits turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}

/**
 * The known name closest to `name`: one it is the start of, if any (a name cut short: SIDECAR_FORWARD_AUTH
 * is SIDECAR_FORWARD_AUTHORIZATION, which plain edit distance would not find), else the one at the
 * least edit distance; the first of the list on a tie.
 */
export function nearestName(name: string, names: readonly string[]): string {
  const distance = (candidate: string) => (candidate.startsWith(name) ? candidate.length - name.length - 1000 : editDistance(name, candidate));
  return names.reduce((best, candidate) => (distance(candidate) < distance(best) ? candidate : best));
}

/**
 * The first variable (in name order) with the app's prefix that the app does not read: a mistyped
 * setting would otherwise be silently ignored. undefined when there is none.
 */
export function unknownEnvProblem(env: Env, owner: EnvOwnership): ConfigError | undefined {
  const unknown = Object.keys(env)
    .filter((name) => name.startsWith(owner.prefix) && !owner.names.includes(name))
    .filter((name) => !name.endsWith(CALLER_TOKEN_ENV_SUFFIX) && !owner.othersPrefixes.some((p) => name.startsWith(p)))
    .sort();
  if (unknown.length === 0) return undefined;
  const name = unknown[0];
  return new ConfigError(name, `is not a setting of ${owner.app}; did you mean ${nearestName(name, owner.names)}? (${owner.prefix}* variables are ${owner.app}'s, and an unknown one would be ignored)`);
}

/** Throws the ConfigError of unknownEnvProblem. Each app's config calls it once, first. */
export function refuseUnknownEnv(env: Env, owner: EnvOwnership): void {
  const problem = unknownEnvProblem(env, owner);
  if (problem !== undefined) throw problem;
}
