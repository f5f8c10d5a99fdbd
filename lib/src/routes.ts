/**
 * Route rules as SidecarApp props (`routes`, `defaultRouteEffect`, `publicPaths` as their shorthand,
 * `addRoute`), resolved into the contract's route table and checked with the contract's rule, the
 * one the sidecar applies to SIDECAR_ROUTES at start-up.
 */
import { DEFAULT_ROUTE_DEFAULT, encodeRoutes, parseRoutes, publicPathRoutes, routeTableProblem } from './contract';
import type { RouteClaimSpec, RouteDefault, RouteRuleSpec } from './contract';
import * as check from './validate';

/** What a matching route rule does. */
export enum RouteEffect {
  /** Forward without a credential. */
  PUBLIC = 'public',
  /** Forward with any valid credential. */
  AUTHENTICATED = 'authenticated',
  /** Forward only for the listed `subjects` or `claims`; another authenticated caller gets 403. */
  SUBJECTS = 'subjects',
}

/** What happens to a request no route rule matches. */
export enum DefaultRouteEffect {
  /** Forward with any valid credential. */
  AUTHENTICATED = 'authenticated',
  /** Refuse every authenticated caller with 403 (401 without a valid credential). */
  DENY = 'deny',
}

/** A JWT claim that admits a caller: issued by the JWT issuer named `issuer`, with `claim` equal to `value` or a list holding it. */
export interface RouteClaim {
  /** The `name` of one of the app's `jwtIssuers`. */
  readonly issuer: string;
  /** A top-level claim of the verified token, e.g. "groups". */
  readonly claim: string;
  /** The string the claim must equal, or hold when it is a list. */
  readonly value: string;
}

/** One route rule; rules are tried in order and the first that matches decides. */
export interface RouteRule {
  /**
   * An exact raw path (`/healthz`), or a prefix `/api/*`, which matches `/api` and every path under
   * `/api/`; `/*` matches every path. Written in canonical form (SECURITY.md, "Path canonical form").
   */
  readonly path: string;
  /**
   * Uppercase HTTP methods the rule matches, e.g. ["GET", "HEAD"]; GET brings HEAD (servers answer HEAD with the GET handler).
   * @default - every method
   */
  readonly methods?: string[];
  /** What a matching request gets. */
  readonly effect: RouteEffect;
  /**
   * With `RouteEffect.SUBJECTS`: callers as the sidecar forwards their subject: a token name (`ci`),
   * `<issuer name>:<claim>` for a JWT, `system:serviceaccount:<ns>:<name>`; a trailing `*` makes a
   * prefix (`okta:*`). At least one entry in `subjects` or `claims`.
   * @default - none
   */
  readonly subjects?: string[];
  /**
   * With `RouteEffect.SUBJECTS`: JWT claims, any one of which admits the caller.
   * @default - none
   */
  readonly claims?: RouteClaim[];
  /**
   * With `RouteEffect.SUBJECTS`: true admits every static token (a caller whose credential is no
   * JWT). allowCallsFrom's rule sets it when the app has static tokens, so they keep what the default admitted.
   * @default false
   */
  readonly anyStaticToken?: boolean;
}

/**
 * The route props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its members
 * into SidecarAppProps.
 * @jsii ignore
 */
export interface RoutesProps {
  /**
   * Exact paths the sidecar forwards without a token (e.g. "/healthz"): shorthand for public
   * `routes` rules, placed before them. Canonical paths without '*'.
   * @default - none
   */
  readonly publicPaths?: string[];
  /**
   * Route rules (at most 64 with `publicPaths`), tried in order; the first that matches a request
   * decides whether it is public, needs any valid credential, or only certain callers'. More can be
   * appended with `addRoute`. Reaches the sidecar as `SIDECAR_ROUTES`.
   * @default - none: every path but `publicPaths` needs a valid credential
   */
  readonly routes?: RouteRule[];
  /**
   * What a request no route rule matches gets.
   * @default DefaultRouteEffect.AUTHENTICATED
   */
  readonly defaultRouteEffect?: DefaultRouteEffect;
}

/** The app's route table while its constructs are built: `addRoute` appends to `rules` until synth. */
export interface ResolvedRoutes {
  /** publicPaths as exact public rules, then `routes`, then what `addRoute` appended. */
  readonly rules: RouteRuleSpec[];
  /** The prop each rule came from, for messages: `publicPaths[0]`, `routes[2]`, `addRoute[0]`. */
  readonly origins: string[];
  readonly default: RouteDefault;
  /** Names of the app's JWT issuers: a claim rule must name one. */
  readonly issuerNames: readonly string[];
  /** Told after each appended rule (sidecar-container.ts puts SIDECAR_ROUTES into the env once it has a value). */
  readonly onAppend: Array<() => void>;
}

/** A rule prop as the contract's spec; enum and list props copied, so a later change by the caller changes nothing. */
function ruleSpec(prop: string, rule: RouteRule): RouteRuleSpec {
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) check.fail(prop, 'must be an object {path, effect, ...}');
  const copy = <T>(v: T[] | undefined): T[] | undefined => (Array.isArray(v) ? [...v] : v);
  return {
    path: rule.path,
    ...(rule.methods !== undefined ? { methods: copy(rule.methods) } : {}),
    effect: rule.effect as RouteRuleSpec['effect'],
    ...(rule.subjects !== undefined ? { subjects: copy(rule.subjects) } : {}),
    ...(rule.claims !== undefined
      ? { claims: Array.isArray(rule.claims) ? rule.claims.map((c): RouteClaimSpec => (typeof c === 'object' && c !== null ? { issuer: c.issuer, claim: c.claim, value: c.value } : c)) : rule.claims }
      : {}),
    // false is unset; anything else is passed on for the contract to refuse.
    ...(rule.anyStaticToken !== undefined && rule.anyStaticToken !== false ? { anyStaticToken: rule.anyStaticToken } : {}),
  };
}

/** Fails naming the prop of the rule at fault (or `routes` / `defaultRouteEffect` for the table). */
function checkTable(table: ResolvedRoutes): void {
  const label = (i: number) => `${table.origins[i]} (${table.rules[i].path})`;
  const found = routeTableProblem({ rules: table.rules, default: table.default }, table.issuerNames, label);
  if (found === undefined) return;
  if (found.inDefault) check.fail('defaultRouteEffect', found.problem.replace(/^default /, ''));
  if (found.rule === undefined) check.fail('routes', found.problem);
  check.fail(table.origins[found.rule], found.problem);
}

/**
 * The route table of the props: publicPaths as exact public rules before `routes`, and the
 * default; checked with the contract's rule, naming the prop at fault. A claim rule must name one
 * of `issuerNames`.
 */
export function resolveRoutes(props: RoutesProps, issuerNames: readonly string[]): ResolvedRoutes {
  const publicPaths = check.publicPaths('publicPaths', props.publicPaths ?? []);
  const { routes, defaultRouteEffect } = props;
  const shorthand = publicPathRoutes(publicPaths);
  if (!shorthand.ok) check.fail('publicPaths', shorthand.problem);
  if (routes !== undefined && !Array.isArray(routes)) check.fail('routes', 'must be a list of rules');
  const given = (routes ?? []).map((r, i) => ruleSpec(`routes[${i}]`, r));
  const table: ResolvedRoutes = {
    rules: [...shorthand.value, ...given],
    origins: [...publicPaths.map((_p, i) => `publicPaths[${i}]`), ...given.map((_r, i) => `routes[${i}]`)],
    default: (defaultRouteEffect ?? DEFAULT_ROUTE_DEFAULT) as RouteDefault,
    issuerNames: [...issuerNames],
    onAppend: [],
  };
  checkTable(table);
  return table;
}

/** Append a rule after the props (SidecarApp.addRoute), checked with the table at once. */
export function appendRule(table: ResolvedRoutes, rule: RouteRule): void {
  const prop = `addRoute[${table.origins.filter((o) => o.startsWith('addRoute[')).length}]`;
  table.rules.push(ruleSpec(prop, rule));
  table.origins.push(prop);
  try {
    checkTable(table);
  } catch (err) {
    // A refused rule is not kept: the table stays what it was.
    table.rules.pop();
    table.origins.pop();
    throw err;
  }
  for (const told of table.onAppend) told();
}

/**
 * SIDECAR_ROUTES for the table as it is now (undefined: unset), checked again and read back as the
 * sidecar will read it. Called at synth, so rules appended after the constructor are in it.
 */
export function encodeCheckedRoutes(table: ResolvedRoutes): string | undefined {
  checkTable(table);
  const encoded = encodeRoutes({ rules: table.rules, default: table.default });
  if (encoded === undefined) return undefined;
  const parsed = parseRoutes(encoded, table.issuerNames);
  if (!parsed.ok) check.fail('routes', parsed.problem);
  return encoded;
}
