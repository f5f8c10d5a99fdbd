/**
 * Per-route rules (SIDECAR_ROUTES): an ordered list, first match wins, and a default for a request
 * no rule matches. lib/ checks the construct's props with these at synth; the sidecar parses its env
 * with them at start-up. Dependency-free: both sides import it.
 */
import { KUBERNETES_ISSUER_NAME, SERVICE_ACCOUNT_SUBJECT, SERVICE_ACCOUNT_SUBJECT_PREFIX, quoted } from './settings';
import type { Parsed } from './settings';

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (problem: string): Parsed<never> => ({ ok: false, problem });

/** What a matching rule does: forward without a credential, with any valid one, or only for the listed callers. */
export const ROUTE_EFFECTS = ['public', 'authenticated', 'subjects'] as const;
export type RouteRuleEffect = (typeof ROUTE_EFFECTS)[number];
/** What happens to a request no rule matches: any valid credential, or none at all (403 once authenticated). */
export const ROUTE_DEFAULTS = ['authenticated', 'deny'] as const;
export type RouteDefault = (typeof ROUTE_DEFAULTS)[number];
export const DEFAULT_ROUTE_DEFAULT: RouteDefault = 'authenticated';

/** A claim of a verified JWT: issued by the issuer named `issuer`, and its `claim` equals `value` or is a list holding it. */
export interface RouteClaimSpec {
  readonly issuer: string;
  readonly claim: string;
  readonly value: string;
}

/** One rule as written in SIDECAR_ROUTES. */
export interface RouteRuleSpec {
  /** An exact raw path (`/healthz`), or a prefix `/api/*`: `/api` and every path under `/api/`; `/*` is every path. Canonical. */
  readonly path: string;
  /** Uppercase method tokens, compared exactly, but GET brings HEAD (effectiveMethods); unset: every method. */
  readonly methods?: readonly string[];
  readonly effect: RouteRuleEffect;
  /** With effect subjects: identities as the subject header carries them; a trailing `*` makes a prefix. */
  readonly subjects?: readonly string[];
  /** With effect subjects: JWT claims, any one of which admits. */
  readonly claims?: readonly RouteClaimSpec[];
  /** With effect subjects: true admits every static token (a caller whose credential is no JWT). Unset: only the listed ones. */
  readonly anyStaticToken?: boolean;
}

export interface RouteTableSpec {
  readonly rules: readonly RouteRuleSpec[];
  /** @default "authenticated" */
  readonly default?: RouteDefault;
}

/** A table with its default applied: what the sidecar enforces. */
export interface RouteTable {
  readonly rules: readonly RouteRuleSpec[];
  readonly default: RouteDefault;
}

/** More rules than this is a misconfiguration, and each request walks the prefix rules in order. */
export const MAX_ROUTE_RULES = 64;
const MAX_ROUTE_PATH_CHARS = 1024;
const MAX_METHODS = 16;
const MAX_SUBJECTS = 256;
const MAX_CLAIMS = 32;
const MAX_SUBJECT_CHARS = 256;
const MAX_CLAIM_VALUE_CHARS = 256;
const TABLE_FIELDS = ['rules', 'default'];
const RULE_FIELDS = ['path', 'methods', 'effect', 'subjects', 'claims', 'anyStaticToken'];
const CLAIM_FIELDS = ['issuer', 'claim', 'value'];
/** RFC 9110 tchar without lowercase letters: methods are case-sensitive, and every registered one is uppercase. */
const METHOD = /^[A-Z0-9!#$%&'*+.^_`|~-]{1,32}$/;
/** The JWT issuer name and claim name grammars of SIDECAR_JWT_ISSUERS. */
const ISSUER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const CLAIM_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const PRINTABLE = /^[\x20-\x7e]+$/;
/** The suffix of a prefix rule. */
const PREFIX_SUFFIX = '/*';

// Characters a canonical path may hold unescaped: RFC 3986 pchar without ';', plus '/'.
const PLAIN = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@/") PLAIN[c.charCodeAt(0)] = 1;
// Bytes an escape must not encode: every character written plainly (one spelling each: `%40` and `@`
// mean one thing to a decoder), and what a decoder turns into structure.
const NO_ESCAPE = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@/\\;%?#") NO_ESCAPE[c.charCodeAt(0)] = 1;
for (let b = 0; b < 0x20; b++) NO_ESCAPE[b] = 1;
NO_ESCAPE[0x7f] = 1;

/** 0-15 for an uppercase hex digit, else -1. */
function upperHex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const NOT_ABSOLUTE = "does not start with '/'";
const BAD_CHARACTER = "has a character outside A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , = : @ / and %XX escapes";
const BAD_ESCAPE = "has a '%' not followed by two uppercase hex digits";
const NEEDLESS_ESCAPE = "percent-encodes a character allowed plainly, '\\', ';', '%', '?', '#' or a control character";
const BAD_UTF8 = 'has escapes that are not well-formed UTF-8 (an overlong form, a surrogate or a cut-short sequence)';
const EMPTY_SEGMENT = "has an empty segment ('//')";
const DOT_SEGMENT = "has a '.' or '..' segment";

/**
 * Why a raw request path (the request target before any '?', never decoded) is not in canonical
 * form, or undefined. Canonical means:
 * - it starts with '/';
 * - every character is one of `A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , = : @ /`, or a '%' followed by
 *   two UPPERCASE hex digits;
 * - no escape encodes a character allowed plainly (the list above: one spelling per character), '\',
 *   ';', '%', '?', '#', a byte below 0x20 or 0x7F; escapes of bytes 0x80 and up form well-formed UTF-8 (RFC 3629: no overlong
 *   form such as `%C0%AE` for '.', no surrogate, nothing cut short);
 * - no segment is empty ('//'; a single trailing '/' is allowed) and none is '.' or '..'.
 * So a canonical path means the same resource to every decoder and normaliser behind the sidecar:
 * there is one spelling, and a prefix rule judges that one. Allocation-free: it runs per request.
 */
export function canonicalPathProblem(rawPath: string): string | undefined {
  const n = rawPath.length;
  if (n === 0 || rawPath.charCodeAt(0) !== 47) return NOT_ABSOLUTE;
  let segmentStart = 1;
  // Continuation bytes still owed by a multi-byte UTF-8 sequence, and the range the next one must fall in.
  let owed = 0;
  let low = 0x80;
  let high = 0xbf;
  for (let i = 1; i <= n; i++) {
    const c = i === n ? 47 : rawPath.charCodeAt(i);
    if (c === 37) {
      const h1 = i + 1 < n ? upperHex(rawPath.charCodeAt(i + 1)) : -1;
      const h2 = i + 2 < n ? upperHex(rawPath.charCodeAt(i + 2)) : -1;
      if (h1 < 0 || h2 < 0) return BAD_ESCAPE;
      const byte = h1 * 16 + h2;
      i += 2;
      if (owed > 0) {
        if (byte < low || byte > high) return BAD_UTF8;
        owed--;
        low = 0x80;
        high = 0xbf;
        continue;
      }
      if (byte < 0x80) {
        if (NO_ESCAPE[byte] === 1) return NEEDLESS_ESCAPE;
      } else if (byte >= 0xc2 && byte <= 0xdf) {
        owed = 1;
      } else if (byte >= 0xe0 && byte <= 0xef) {
        owed = 2;
        if (byte === 0xe0) low = 0xa0;
        if (byte === 0xed) high = 0x9f;
      } else if (byte >= 0xf0 && byte <= 0xf4) {
        owed = 3;
        if (byte === 0xf0) low = 0x90;
        if (byte === 0xf4) high = 0x8f;
      } else {
        return BAD_UTF8;
      }
      continue;
    }
    if (owed > 0) return BAD_UTF8;
    if (c === 47) {
      // The end of a segment (or of the path).
      const length = i - segmentStart;
      if (length === 0 && i < n) return EMPTY_SEGMENT;
      if (length === 1 && rawPath.charCodeAt(segmentStart) === 46) return DOT_SEGMENT;
      if (length === 2 && rawPath.charCodeAt(segmentStart) === 46 && rawPath.charCodeAt(segmentStart + 1) === 46) return DOT_SEGMENT;
      segmentStart = i + 1;
      continue;
    }
    if (c >= 128 || PLAIN[c] !== 1) return BAD_CHARACTER;
  }
  return undefined;
}

/** A rule's path, read: exact, or the prefix of a `/*` rule ('' for `/*`, which is every path). */
interface RulePath {
  readonly prefix: boolean;
  readonly base: string;
}

function rulePathOf(path: string): RulePath {
  return path.endsWith(PREFIX_SUFFIX) ? { prefix: true, base: path.slice(0, -PREFIX_SUFFIX.length) } : { prefix: false, base: path };
}

/** Whether the rule path is a prefix (`/api/*`, `/*`). */
export function isPrefixRulePath(path: string): boolean {
  return path.endsWith(PREFIX_SUFFIX);
}

function rulePathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string') return `path must be a string, got ${typeof path}`;
  if (path.length === 0 || path.length > MAX_ROUTE_PATH_CHARS) return `path must be 1-${MAX_ROUTE_PATH_CHARS} characters, got ${quoted(path)}`;
  const { prefix, base } = rulePathOf(path);
  if (base.includes('*')) return `path may hold '*' only as a trailing '/*' (a prefix rule; a path with a literal '*' is judged by a prefix rule above it), got ${quoted(path)}`;
  if (prefix && base === '') return undefined;
  if (prefix && base.endsWith('/')) return `path of a prefix rule is written '/api/*', not '/api//*', got ${quoted(path)}`;
  const problem = canonicalPathProblem(base);
  return problem === undefined ? undefined : `path ${quoted(path)} is not canonical: it ${problem}`;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const got = (v: unknown): string => (typeof v === 'string' ? quoted(v) : Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v);

function unknownFieldProblem(where: string, v: Record<string, unknown>, known: readonly string[]): string | undefined {
  const field = Object.keys(v).find((k) => !known.includes(k));
  return field === undefined ? undefined : `${where}has an unknown field ${quoted(field)} (known: ${known.join(', ')})`;
}

/** A list of 1-max distinct strings, each passing `entry`; `field` names it in the message. */
function listProblem(field: string, v: unknown, max: number, entry: (s: unknown) => string | undefined): string | undefined {
  if (!Array.isArray(v) || v.length === 0 || v.length > max) return `${field} must be a list of 1-${max} entries, got ${Array.isArray(v) ? `${v.length} entries` : got(v)}`;
  for (const e of v) {
    const problem = entry(e);
    if (problem !== undefined) return `${field} ${problem}`;
  }
  if (new Set(v).size !== v.length) return `${field} lists ${quoted(String(v.find((e, i) => v.indexOf(e) !== i)))} twice`;
  return undefined;
}

function methodProblem(m: unknown): string | undefined {
  return typeof m === 'string' && METHOD.test(m) ? undefined : `entries must be uppercase HTTP method tokens such as GET, got ${got(m)}`;
}

function subjectProblem(s: unknown, issuerNames: readonly string[] | undefined): string | undefined {
  if (typeof s !== 'string' || s.length > MAX_SUBJECT_CHARS || !PRINTABLE.test(s)) return `entries must be 1-${MAX_SUBJECT_CHARS} printable ASCII characters, got ${got(s)}`;
  if (s === '*') return "must not list a bare '*': any authenticated caller is effect authenticated";
  if (s.slice(0, -1).includes('*')) return `entries may hold '*' only at the end (a prefix), got ${quoted(s)}`;
  return subjectShapeProblem(s, issuerNames);
}

/** A DNS label (the namespace) and a DNS subdomain (the name) as typed so far: what a prefix entry may stop inside. */
const PARTIAL_NAMESPACE = /^(?:[a-z0-9][-a-z0-9]{0,62})?$/;
const PARTIAL_ACCOUNT = /^(?:[a-z0-9][-a-z0-9.]{0,252})?$/;
const SERVICE_ACCOUNT_SHAPE = 'a service-account subject is system:serviceaccount:<namespace>:<name> (a DNS label and a DNS subdomain, lowercase)';

/**
 * Why a subjects entry can never match a subject the sidecar forwards, or undefined. Subjects come
 * in three shapes: a token name (no ':'), `<JWT issuer name>:<claim>`, and
 * `system:serviceaccount:<namespace>:<name>` (issuer names "system" and "kubernetes" are reserved, so
 * nothing else starts with those). `issuerNames` unknown: the issuer of an entry is not judged.
 */
function subjectShapeProblem(s: string, issuerNames: readonly string[] | undefined): string | undefined {
  const prefix = s.endsWith('*');
  const text = prefix ? s.slice(0, -1) : s;
  const colon = text.indexOf(':');
  if (colon === -1) return undefined;
  const issuer = text.slice(0, colon);
  if (issuer === 'system' || SERVICE_ACCOUNT_SUBJECT_PREFIX.startsWith(text)) return serviceAccountEntryProblem(s, text, prefix);
  if (issuer === KUBERNETES_ISSUER_NAME) return `entry ${quoted(s)} can never match: service-account subjects carry no "kubernetes:" prefix (${SERVICE_ACCOUNT_SHAPE})`;
  if (issuerNames !== undefined && !issuerNames.includes(issuer)) {
    const configured = issuerNames.filter((n) => n !== KUBERNETES_ISSUER_NAME);
    return `entry ${quoted(s)} can never match: no JWT issuer is named ${quoted(issuer)} (${configured.length === 0 ? 'none is configured' : `configured: ${configured.join(', ')}`}), and a token name holds no ':'`;
  }
  return undefined;
}

function serviceAccountEntryProblem(s: string, text: string, prefix: boolean): string | undefined {
  const never = `entry ${quoted(s)} can never match: ${SERVICE_ACCOUNT_SHAPE}`;
  if (!prefix) return SERVICE_ACCOUNT_SUBJECT.test(text) ? undefined : never;
  if (SERVICE_ACCOUNT_SUBJECT_PREFIX.startsWith(text)) return undefined;
  if (!text.startsWith(SERVICE_ACCOUNT_SUBJECT_PREFIX)) return never;
  const [namespace, account, ...more] = text.slice(SERVICE_ACCOUNT_SUBJECT_PREFIX.length).split(':');
  if (more.length > 0 || !PARTIAL_NAMESPACE.test(namespace)) return never;
  if (account === undefined) return undefined;
  return namespace !== '' && PARTIAL_ACCOUNT.test(account) ? undefined : never;
}

function claimProblem(c: unknown, issuerNames: readonly string[] | undefined): string | undefined {
  if (!isRecord(c)) return `entries must be objects {issuer, claim, value}, got ${got(c)}`;
  const unknown = unknownFieldProblem('entries: one ', c, CLAIM_FIELDS);
  if (unknown !== undefined) return unknown;
  const { issuer, claim, value } = c;
  if (typeof issuer !== 'string' || !ISSUER_NAME.test(issuer)) return `issuer must be a JWT issuer name, got ${got(issuer)}`;
  if (issuerNames !== undefined && !issuerNames.includes(issuer)) {
    return `issuer ${quoted(issuer)} is no configured JWT issuer (${issuerNames.length === 0 ? 'none is configured' : `configured: ${issuerNames.join(', ')}`})`;
  }
  if (typeof claim !== 'string' || !CLAIM_NAME.test(claim)) return `claim must be a claim name of 1-64 characters A-Z a-z 0-9 _ . -, got ${got(claim)}`;
  if (typeof value !== 'string' || value.length > MAX_CLAIM_VALUE_CHARS || !PRINTABLE.test(value)) {
    return `value must be 1-${MAX_CLAIM_VALUE_CHARS} printable ASCII characters, got ${got(value)}`;
  }
  return undefined;
}

/** Why one rule is not valid, or undefined. */
function ruleProblem(rule: unknown, issuerNames: readonly string[] | undefined): string | undefined {
  if (!isRecord(rule)) return `must be an object {path, effect, ...}, got ${got(rule)}`;
  const unknown = unknownFieldProblem('', rule, RULE_FIELDS);
  if (unknown !== undefined) return unknown;
  const pathProblem = rulePathProblem(rule.path);
  if (pathProblem !== undefined) return pathProblem;
  if (rule.methods !== undefined) {
    const problem = listProblem('methods', rule.methods, MAX_METHODS, methodProblem);
    if (problem !== undefined) return `${problem} (leave methods unset for every method)`;
  }
  const { effect, subjects, claims, anyStaticToken } = rule;
  if (!(ROUTE_EFFECTS as readonly unknown[]).includes(effect)) return `effect must be one of ${ROUTE_EFFECTS.join(', ')}, got ${got(effect)}`;
  if (effect !== 'subjects') {
    if (subjects !== undefined || claims !== undefined || anyStaticToken !== undefined) return `subjects, claims and anyStaticToken go with effect subjects, not ${effect}`;
    return undefined;
  }
  if (anyStaticToken !== undefined && anyStaticToken !== true) return `anyStaticToken must be true or unset, got ${got(anyStaticToken)}`;
  if (subjects === undefined && claims === undefined && anyStaticToken === undefined) return 'with effect subjects needs at least one entry in subjects or claims, or anyStaticToken';
  if (subjects !== undefined) {
    const problem = listProblem('subjects', subjects, MAX_SUBJECTS, (e) => subjectProblem(e, issuerNames));
    if (problem !== undefined) return problem;
  }
  if (claims !== undefined) {
    if (!Array.isArray(claims) || claims.length === 0 || claims.length > MAX_CLAIMS) return `claims must be a list of 1-${MAX_CLAIMS} entries, got ${got(claims)}`;
    const seen = new Set<string>();
    for (const c of claims) {
      const problem = claimProblem(c, issuerNames);
      if (problem !== undefined) return `claims ${problem}`;
      const key = JSON.stringify([c.issuer, c.claim, c.value]);
      if (seen.has(key)) return `claims lists ${quoted(`${c.issuer}: ${c.claim} = ${c.value}`)} twice`;
      seen.add(key);
    }
  }
  return undefined;
}

/**
 * The methods a rule matches: GET brings HEAD, which servers answer with the GET handler (RFC 9110
 * §9.3.2), so a rule on GET also judges HEAD. Undefined: every method.
 */
export function effectiveMethods(methods: readonly string[] | undefined): readonly string[] | undefined {
  if (methods === undefined || !methods.includes('GET') || methods.includes('HEAD')) return methods;
  return [...methods, 'HEAD'];
}

/** Whether every request `later` matches, `earlier` matches too (so `later` never decides one). */
function covers(earlier: RouteRuleSpec, later: RouteRuleSpec): boolean {
  const em = effectiveMethods(earlier.methods);
  const lm = effectiveMethods(later.methods);
  if (em !== undefined && (lm === undefined || !lm.every((m) => em.includes(m)))) return false;
  const e = rulePathOf(earlier.path);
  const l = rulePathOf(later.path);
  if (!e.prefix) return !l.prefix && e.base === l.base;
  if (e.base === '') return true;
  return l.base === e.base || l.base.startsWith(`${e.base}/`);
}

/** A problem with a table, and the 0-based index of the rule it is about (undefined: the table as a whole). */
export interface RouteTableProblem {
  readonly rule: number | undefined;
  /** Reads after the rule's label (or the setting's name). */
  readonly problem: string;
  /** Where the problem is the `default` field. */
  readonly inDefault?: boolean;
}

/** How a message names rule `i`: the contract's own `rule <i+1> (<path>)`; lib/ names its props instead. */
export type RuleLabel = (index: number) => string;

/**
 * The problem of a table, with the rule it is about. `issuerNames`, when given, are the configured
 * JWT issuers: a claim entry naming another one is refused. `label` names other rules in messages.
 */
export function routeTableProblem(table: unknown, issuerNames?: readonly string[], label?: RuleLabel): RouteTableProblem | undefined {
  if (!isRecord(table)) return { rule: undefined, problem: `must be a JSON object {"rules": [...], "default": "authenticated" | "deny"}, got ${got(table)}` };
  const unknown = unknownFieldProblem('', table, TABLE_FIELDS);
  if (unknown !== undefined) return { rule: undefined, problem: unknown };
  if (table.default !== undefined && !(ROUTE_DEFAULTS as readonly unknown[]).includes(table.default)) {
    return { rule: undefined, inDefault: true, problem: `default must be one of ${ROUTE_DEFAULTS.join(', ')}, got ${got(table.default)}` };
  }
  const rules = table.rules;
  if (!Array.isArray(rules)) return { rule: undefined, problem: `rules must be a list of rules, got ${got(rules)}` };
  if (rules.length > MAX_ROUTE_RULES) return { rule: undefined, problem: `lists ${rules.length} rules; at most ${MAX_ROUTE_RULES}` };
  const specs = rules as RouteRuleSpec[];
  const name = label ?? ((i: number) => `rule ${i + 1} (${specs[i].path})`);
  for (let j = 0; j < specs.length; j++) {
    const problem = ruleProblem(specs[j], issuerNames);
    if (problem !== undefined) return { rule: j, problem };
    for (let i = 0; i < j; i++) {
      if (covers(specs[i], specs[j])) return { rule: j, problem: `can never match: ${name(i)} matches every request it would` };
    }
  }
  return undefined;
}

/** Why a table cannot be encoded (or was not a valid decoding), or undefined; the message names the rule. */
export function routesProblem(table: unknown, issuerNames?: readonly string[]): string | undefined {
  const found = routeTableProblem(table, issuerNames);
  if (found === undefined) return undefined;
  if (found.rule === undefined) return found.problem;
  const rule = (table as RouteTableSpec).rules[found.rule];
  // The path is shown only once it is known to be printable and short.
  const path = isRecord(rule) && typeof rule.path === 'string' && rulePathProblem(rule.path) === undefined ? ` (${rule.path})` : '';
  return `rule ${found.rule + 1}${path} ${found.problem}`;
}

/** JSON, fields in a fixed order; undefined (the variable stays unset) for the table that changes nothing. */
export function encodeRoutes(table: RouteTableSpec): string | undefined {
  const deny = table.default === 'deny';
  if (table.rules.length === 0 && !deny) return undefined;
  const rules = table.rules.map((r) => ({
    path: r.path,
    ...(r.methods !== undefined ? { methods: r.methods } : {}),
    effect: r.effect,
    ...(r.subjects !== undefined ? { subjects: r.subjects } : {}),
    ...(r.claims !== undefined ? { claims: r.claims.map((c) => ({ issuer: c.issuer, claim: c.claim, value: c.value })) } : {}),
    ...(r.anyStaticToken === true ? { anyStaticToken: true as const } : {}),
  }));
  return JSON.stringify(deny ? { rules, default: 'deny' } : { rules });
}

/** The inverse of encodeRoutes: a valid table, its default applied, copied and frozen. */
export function parseRoutes(text: string, issuerNames?: readonly string[]): Parsed<RouteTable> {
  let table: unknown;
  try {
    table = JSON.parse(text);
  } catch {
    return bad(`must be a JSON object {"rules": [...]}, got ${quoted(text)}`);
  }
  const problem = routesProblem(table, issuerNames);
  if (problem !== undefined) return bad(problem);
  const spec = table as RouteTableSpec;
  const defaultEffect = spec.default ?? DEFAULT_ROUTE_DEFAULT;
  if (spec.rules.length === 0 && defaultEffect === DEFAULT_ROUTE_DEFAULT) return bad('lists no rule and keeps the default (leave it unset instead)');
  const rules = spec.rules.map((r) =>
    Object.freeze({
      path: r.path,
      methods: r.methods === undefined ? undefined : Object.freeze([...r.methods]),
      effect: r.effect,
      subjects: r.subjects === undefined ? undefined : Object.freeze([...r.subjects]),
      claims: r.claims === undefined ? undefined : Object.freeze(r.claims.map((c) => Object.freeze({ issuer: c.issuer, claim: c.claim, value: c.value }))),
      anyStaticToken: r.anyStaticToken,
    }),
  );
  return ok(Object.freeze({ rules: Object.freeze(rules), default: defaultEffect }));
}

/**
 * The public paths (SIDECAR_PUBLIC_PATHS, the construct's publicPaths) as exact public rules, the
 * shorthand they are. Each must be canonical, and hold no '*': `/api/*` would read as a prefix.
 */
export function publicPathRoutes(paths: readonly string[]): Parsed<readonly RouteRuleSpec[]> {
  for (const p of paths) {
    if (p.includes('*')) return bad(`entries are exact paths and must not hold '*' (a prefix is a route rule), got ${quoted(p)}`);
    const problem = canonicalPathProblem(p);
    if (problem !== undefined) return bad(`entries must be canonical paths: ${quoted(p)} ${problem}`);
  }
  return ok(paths.map((path) => ({ path, effect: 'public' as const })));
}
