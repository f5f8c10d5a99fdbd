/**
 * The route table (SIDECAR_ROUTES), compiled once into a matcher: exact paths in a Map, prefix rules
 * in table order, and each rule's subjects in a Set. First match wins, exactly as the table reads.
 * A `subjects` rule compares the path lowercased, so a case-insensitive backend cannot be reached
 * around it; that is the one allocation (a path with capitals, in a table with such a rule).
 */
import { effectiveMethods, isPrefixRulePath } from '../../../lib/src/contract';
import type { RouteClaimSpec, RouteTable } from '../../../lib/src/contract';
import type { AuthVerdict } from './auth-verdict';

/** What deciding a request needs of a rule, precomputed. */
export interface CompiledRule {
  /** 1-based position in the table, or "default": the access log's `rule`. */
  readonly logValue: number | 'default';
  /** The same as a metrics label. */
  readonly label: string;
  /** `deny` only for the default. */
  readonly effect: 'public' | 'authenticated' | 'subjects' | 'deny';
  /** Methods it matches; undefined: every method. */
  readonly methods: ReadonlySet<string> | undefined;
  /** Exact subjects, and prefixes of `*` entries. */
  readonly subjects: ReadonlySet<string>;
  readonly subjectPrefixes: readonly string[];
  readonly claims: readonly RouteClaimSpec[];
  /** Every static token admits (a verdict with no issuer). */
  readonly anyStaticToken: boolean;
}

interface PrefixRule {
  readonly rule: CompiledRule;
  readonly position: number;
  /** `/api` for `/api/*` (lowercased when `folded`); undefined for `/*`, which is every path. */
  readonly base: string | undefined;
  /** Compared with the path lowercased (a `subjects` rule). */
  readonly folded: boolean;
}

interface ExactRule {
  readonly rule: CompiledRule;
  readonly position: number;
}

export interface RouteMatcher {
  /**
   * Only canonical raw paths are judged (a non-canonical one is refused with 400): set when the
   * table has a prefix rule or a subjects rule, which a second spelling of a path could get around.
   * A table of exact public or authenticated rules alone (SIDECAR_PUBLIC_PATHS) compares raw bytes:
   * a path spelled otherwise matches no rule and gets the default, never anything looser.
   */
  readonly canonicalOnly: boolean;
  /** Nothing but the default: no rule to look up. */
  readonly empty: boolean;
  /** The first rule matching the raw path and method, or the default rule. */
  match(rawPath: string, method: string | undefined): CompiledRule;
}

const hasOwn = Object.prototype.hasOwnProperty;

/** Whether the verified JWT payload's `claim` is `value` or a list holding it. Own properties only: never the prototype's. */
function claimHolds(payload: Readonly<Record<string, unknown>>, claim: string, value: string): boolean {
  if (!hasOwn.call(payload, claim)) return false;
  const v = payload[claim];
  if (v === value) return true;
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (v[i] === value) return true;
  return false;
}

/** Whether an authenticated caller may pass a rule (public rules never get here). */
export function admits(rule: CompiledRule, verdict: AuthVerdict & { ok: true }): boolean {
  if (rule.effect === 'authenticated') return true;
  if (rule.effect === 'deny') return false;
  const subject = verdict.subject;
  if (rule.subjects.has(subject)) return true;
  for (let i = 0; i < rule.subjectPrefixes.length; i++) if (subject.startsWith(rule.subjectPrefixes[i])) return true;
  const { issuer, claims } = verdict;
  if (issuer === undefined) return rule.anyStaticToken;
  if (claims === undefined) return false;
  for (let i = 0; i < rule.claims.length; i++) {
    const c = rule.claims[i];
    if (c.issuer === issuer && claimHolds(claims, c.claim, c.value)) return true;
  }
  return false;
}

/** By issuer name, each claim a rule of the table matches on: what a verified JWT's verdict must keep (jwt/verify.ts). */
export function routeClaimNames(table: RouteTable): ReadonlyMap<string, readonly string[]> {
  const names = new Map<string, Set<string>>();
  for (const rule of table.rules) {
    for (const c of rule.claims ?? []) {
      const forIssuer = names.get(c.issuer) ?? new Set<string>();
      forIssuer.add(c.claim);
      names.set(c.issuer, forIssuer);
    }
  }
  return new Map([...names].map(([issuer, claims]) => [issuer, Object.freeze([...claims])]));
}

const methodsMatch = (rule: CompiledRule, method: string | undefined) => rule.methods === undefined || (method !== undefined && rule.methods.has(method));

export function compileRoutes(table: RouteTable): RouteMatcher {
  const defaultRule: CompiledRule = Object.freeze({
    logValue: 'default',
    label: 'default',
    effect: table.default === 'deny' ? 'deny' : 'authenticated',
    methods: undefined,
    subjects: new Set<string>(),
    subjectPrefixes: [],
    claims: [],
    anyStaticToken: false,
  });
  const exact = new Map<string, ExactRule[]>();
  const exactFolded = new Map<string, ExactRule[]>();
  const prefixes: PrefixRule[] = [];
  let canonicalOnly = false;
  let anyFolded = false;
  table.rules.forEach((spec, position) => {
    const subjects = spec.subjects ?? [];
    const methods = effectiveMethods(spec.methods);
    const rule: CompiledRule = Object.freeze({
      logValue: position + 1,
      label: String(position + 1),
      effect: spec.effect,
      methods: methods === undefined ? undefined : new Set(methods),
      subjects: new Set(subjects.filter((s) => !s.endsWith('*'))),
      subjectPrefixes: subjects.filter((s) => s.endsWith('*')).map((s) => s.slice(0, -1)),
      claims: spec.claims ?? [],
      anyStaticToken: spec.anyStaticToken === true,
    });
    // A restrictive rule matches every case of its path: backends such as Express's router ignore case.
    const folded = spec.effect === 'subjects';
    if (folded) canonicalOnly = anyFolded = true;
    if (isPrefixRulePath(spec.path)) {
      canonicalOnly = true;
      const base = folded ? spec.path.slice(0, -2).toLowerCase() : spec.path.slice(0, -2);
      prefixes.push({ rule, position, base: base === '' ? undefined : base, folded });
    } else {
      const map = folded ? exactFolded : exact;
      const key = folded ? spec.path.toLowerCase() : spec.path;
      const list = map.get(key) ?? [];
      list.push({ rule, position });
      map.set(key, list);
    }
  });

  function firstFit(candidates: ExactRule[] | undefined, method: string | undefined): ExactRule | undefined {
    if (candidates === undefined) return undefined;
    for (let i = 0; i < candidates.length; i++) if (methodsMatch(candidates[i].rule, method)) return candidates[i];
    return undefined;
  }

  function match(rawPath: string, method: string | undefined): CompiledRule {
    // Canonical paths are ASCII: toLowerCase folds exactly A-Z (and the hex of escapes, as the rule paths').
    const lower = anyFolded ? rawPath.toLowerCase() : rawPath;
    let found = firstFit(exact.get(rawPath), method);
    if (anyFolded) {
      const f = firstFit(exactFolded.get(lower), method);
      if (f !== undefined && (found === undefined || f.position < found.position)) found = f;
    }
    // A prefix rule wins only if it comes before the exact rule found.
    for (let i = 0; i < prefixes.length; i++) {
      const p = prefixes[i];
      if (found !== undefined && p.position > found.position) break;
      const base = p.base;
      const path = p.folded ? lower : rawPath;
      const pathMatches = base === undefined || (path.startsWith(base) && (path.length === base.length || path.charCodeAt(base.length) === 47));
      if (pathMatches && methodsMatch(p.rule, method)) return p.rule;
    }
    return found === undefined ? defaultRule : found.rule;
  }

  return { canonicalOnly, empty: table.rules.length === 0, match };
}
