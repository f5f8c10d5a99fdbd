/**
 * Synth-time checks for SidecarApp props. Each check throws a one-line Error that
 * names the prop, so a bad value fails `cdk8s synth` instead of `kubectl apply`
 * or, worse, a pod that never becomes ready.
 */

import { MIN_CONTAINER_PORT, SIDECAR_INTEGERS, integerProblem, logLevelProblem, publicPathsProblem, quoted, shown } from './contract';
import type { LogLevel } from './contract';
import type { IntegerRule } from './contract';

/**
 * Thrown for an invalid SidecarApp prop. The first line names the SidecarApp's construct path (once
 * `at` has seen it) and the prop: `SidecarApp shop/backend: main.port (8081) ...`.
 */
export class SidecarAppPropError extends Error {
  /** Construct path of the SidecarApp, once known. */
  path: string | undefined;

  constructor(
    /** Dotted name of the offending prop, e.g. `main.port`. */
    readonly prop: string,
    /** What is wrong with it, after the prop's name. */
    readonly reason: string,
    path?: string,
  ) {
    super(errorLine(prop, reason, path));
    this.name = 'SidecarAppPropError';
    this.path = path;
  }
}

function errorLine(prop: string, reason: string, path: string | undefined): string {
  return `SidecarApp${path === undefined ? '' : ` ${path}`}: ${prop} ${reason}`;
}

export function fail(prop: string, message: string): never {
  throw new SidecarAppPropError(prop, message);
}

/**
 * Runs `body` for the SidecarApp at construct path `path`: a SidecarAppPropError it throws gets that
 * path in its first line. Every entry point of SidecarApp (constructor, methods, synth-time producers)
 * runs its checks in one, so the checks themselves only name the prop.
 */
export function at<T>(path: string, body: () => T): T {
  try {
    return body();
  } catch (error) {
    throw located(error, path);
  }
}

/** `error` with the SidecarApp's construct path in its first line, if it is a SidecarAppPropError without one. */
export function located(error: unknown, path: string): unknown {
  if (error instanceof SidecarAppPropError && error.path === undefined) {
    const before = error.message;
    error.path = path;
    error.message = errorLine(error.prop, error.reason, path);
    if (error.stack !== undefined) error.stack = error.stack.replace(before, error.message);
  }
  return error;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// IANA_SVC_NAME as the API server checks container port names.
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
// Before Kubernetes 1.30 env var names must be C identifiers.
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export function integerInRange(prop: string, value: number, min: number, max: number): number {
  const problem = integerProblem({ min, max }, value);
  if (problem !== undefined) fail(prop, problem);
  return value;
}

/** A setting that reaches an app: the contract's bounds. */
export function integer(prop: string, value: number, rule: IntegerRule): number {
  return integerInRange(prop, value, rule.min, rule.max);
}

/** A container or Service port; the apps' own 0 ("any free port") is no port to Kubernetes. */
export function port(prop: string, value: number): number {
  return integerInRange(prop, value, MIN_CONTAINER_PORT, SIDECAR_INTEGERS.port.max);
}

/**
 * A name used for the Deployment, Service, NetworkPolicy, ... The Service name is
 * the strictest (DNS-1035: must start with a letter), so check against that.
 */
export function resourceName(prop: string, value: string): string {
  if (value.length === 0 || value.length > 63 || !DNS1123_LABEL.test(value) || !/^[a-z]/.test(value)) {
    fail(prop, `must be a DNS label (lowercase letters, digits and '-', starting with a letter, at most 63 characters), got ${quoted(value)}`);
  }
  return value;
}

export function dnsSubdomain(prop: string, value: string): string {
  if (value.length === 0 || value.length > 253 || !DNS1123_SUBDOMAIN.test(value)) {
    fail(prop, `must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters), got ${quoted(value)}`);
  }
  return value;
}

/** Service port names are DNS labels. */
export function servicePortName(prop: string, value: string): string {
  if (value.length === 0 || value.length > 63 || !DNS1123_LABEL.test(value)) {
    fail(prop, `must be a DNS label (lowercase letters, digits and '-', at most 63 characters), got ${quoted(value)}`);
  }
  return value;
}

/** Container port names are IANA service names: at most 15 characters, at least one letter, no '--'. */
export function containerPortName(prop: string, value: string): string {
  if (value.length === 0 || value.length > 15) {
    fail(prop, `must be 1..15 characters long (IANA service name), got ${quoted(value)} (${value.length})`);
  }
  if (!IANA_SVC_NAME.test(value) || value.includes('--') || !/[a-z]/.test(value)) {
    fail(prop, `must be an IANA service name (lowercase letters, digits and single '-', with at least one letter), got ${quoted(value)}`);
  }
  return value;
}

/** An image reference pinned to a tag (not `latest`) or a digest. */
export function pinnedImage(prop: string, value: string): string {
  const pinned = 'must be pinned to a tag (e.g. "repo/app:1.2.3", not "latest") or a digest';
  if (value.trim().length === 0) fail(prop, `must not be empty; image ${pinned}`);
  if (/\s/.test(value)) fail(prop, `must not contain whitespace, got ${quoted(value)}`);
  const [name, digest] = splitOnce(value, '@');
  if (digest !== undefined && !/^sha256:[a-f0-9]{64}$/.test(digest)) {
    fail(prop, `has an invalid digest ${quoted(digest)} (expected sha256:<64 hex>)`);
  }
  const slash = name.lastIndexOf('/');
  const lastComponent = name.slice(slash + 1);
  const colon = lastComponent.indexOf(':');
  const repository = colon < 0 ? name : name.slice(0, slash + 1 + colon);
  const tag = colon < 0 ? undefined : lastComponent.slice(colon + 1);
  checkRepository(prop, repository);
  // A tag beside a digest is ignored by the runtime, but it must still parse, or the kubelet refuses the image.
  if (tag !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) fail(prop, `has an invalid tag ${quoted(tag)}`);
  if (digest !== undefined) return value;
  if (tag === undefined) fail(prop, `${quoted(value)} has no tag; image ${pinned}`);
  if (tag === 'latest') fail(prop, `${quoted(value)} uses the "latest" tag; image ${pinned}`);
  return value;
}

function checkRepository(prop: string, repository: string): void {
  const components = repository.split('/');
  // A first component with a '.' or ':' (or "localhost") is a registry host.
  const first = components[0];
  const hasRegistry = components.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry && !/^[A-Za-z0-9.-]+(:[0-9]+)?$/.test(first)) fail(prop, `has an invalid registry ${quoted(first)}`);
  for (const component of hasRegistry ? components.slice(1) : components) {
    if (!/^[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*$/.test(component)) {
      fail(prop, `has an invalid repository ${quoted(repository)} (lowercase letters, digits and separators only)`);
    }
  }
}

function splitOnce(value: string, separator: string): [string, string | undefined] {
  const at = value.indexOf(separator);
  return at < 0 ? [value, undefined] : [value.slice(0, at), value.slice(at + 1)];
}

export function envName(prop: string, value: string): string {
  if (!ENV_NAME.test(value)) fail(prop, `has an invalid variable name ${quoted(value)} (letters, digits and '_', not starting with a digit)`);
  return value;
}

/** A label or annotation key: an optional DNS-subdomain prefix, `/`, and a name of at most 63 characters. */
function isQualifiedKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = key.slice(slash + 1);
  return !((prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) || name.length > 63 || !LABEL_NAME.test(name));
}

export function label(prop: string, key: string, value: string): void {
  if (!isQualifiedKey(key)) fail(prop, `has an invalid label key ${quoted(key)}`);
  if (value.length > 63 || !LABEL_VALUE.test(value)) fail(prop, `has an invalid value for label ${quoted(key)}: ${quoted(value)}`);
}

/** An annotation: its key has a label key's shape; its value is any string. */
export function annotation(prop: string, key: string, value: string): void {
  if (!isQualifiedKey(key)) fail(prop, `has an invalid annotation key ${quoted(key)}`);
  if (typeof value !== 'string') fail(prop, `has a non-string value for annotation ${quoted(key)}`);
}

/** A log level both apps accept: the contract's list. */
export function logLevel(prop: string, value: string): LogLevel {
  const problem = logLevelProblem(value);
  if (problem !== undefined) fail(prop, problem);
  return value as LogLevel;
}

/** Paths the sidecar lets through without a token: the contract's grammar. */
export function publicPaths(prop: string, values: readonly string[]): readonly string[] {
  const problem = publicPathsProblem(values);
  if (problem !== undefined) fail(prop, problem);
  return values;
}

const BINARY_SUFFIX: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL_SUFFIX: Record<string, number> = { m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** Parse a Kubernetes quantity ("50m", "0.5", "64Mi", "1G", "1e3") into base units. */
export function quantity(prop: string, value: string): number {
  const match = /^\+?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE]|[eE][+-]?[0-9]+)?$/.exec(value);
  if (match === null) fail(prop, `must be a Kubernetes quantity such as "100m", "0.5", "64Mi", got ${quoted(value)}`);
  const amount = Number(match[1]);
  const suffix = match[2] ?? '';
  if (suffix in BINARY_SUFFIX) return amount * BINARY_SUFFIX[suffix];
  if (suffix in DECIMAL_SUFFIX) return amount * DECIMAL_SUFFIX[suffix];
  return amount * 10 ** Number(suffix.slice(1));
}

export function oneOf<T extends string>(prop: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) fail(prop, `must be one of ${allowed.join(', ')}, got ${quoted(String(value))}`);
  return value;
}

/** Each of `values` one of `allowed`, each at most once; the prop names the entry (`prop[1]`). */
export function oneOfEach<T extends string>(prop: string, values: readonly T[], allowed: readonly T[]): T[] {
  values.forEach((value, i) => {
    oneOf(`${prop}[${i}]`, value, allowed);
    if (values.indexOf(value) !== i) fail(`${prop}[${i}]`, `(${quoted(value)}) is listed twice`);
  });
  return [...values];
}

/** A boolean, as a JavaScript caller might not pass one: "false" is truthy. */
export function boolean(prop: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(prop, `must be true or false, got ${shown(value)}`);
  return value;
}

/** A list, as a JavaScript caller might not pass one. */
export function list<T>(prop: string, value: readonly T[]): readonly T[] {
  if (!Array.isArray(value)) fail(prop, `must be a list, got ${shown(value)}`);
  return value;
}

export function string(prop: string, value: unknown): string {
  if (typeof value !== 'string') fail(prop, `must be a string, got ${shown(value)}`);
  return value;
}

/** One entry of `distinct`: the prop, its value, and whether the user set it (false: its default). */
export type DistinctEntry = readonly [prop: string, value: string | number, set?: boolean];

/**
 * Throw if two entries share a value; `what` names the kind of value. The error blames the prop the
 * user set, and says when the other is a default (or fixed) value the user never wrote.
 */
export function distinct(entries: ReadonlyArray<DistinctEntry>, what: string): void {
  const seen = new Map<string | number, DistinctEntry>();
  for (const entry of entries) {
    const [, value] = entry;
    const other = seen.get(value);
    if (other !== undefined) {
      const isSet = (e: DistinctEntry) => e[2] ?? true;
      const [blamed, kept] = isSet(entry) || !isSet(other) ? [entry, other] : [other, entry];
      fail(blamed[0], `(${shownValue(value)}) must differ from ${kept[0]}${isSet(kept) ? '' : ' (its default)'}: two ${what} cannot be the same`);
    }
    seen.set(value, entry);
  }
}

function shownValue(value: string | number): string {
  return typeof value === 'number' ? String(value) : quoted(value);
}
