/**
 * Route rules as SidecarApp props: `routes`, `defaultRouteEffect`, `publicPaths` as their shorthand
 * and `addRoute` after construction reach the sidecar as SIDECAR_ROUTES, which the app reads back
 * to the same table; bad rules fail at synth naming the prop. In-process: the real construct and
 * the sidecar's real config loader.
 */
import { Testing } from 'cdk8s';
import { MAX_ROUTE_RULES, SIDECAR_ENV, encodeRoutes } from '../lib/src/contract';
import type { RouteTableSpec } from '../lib/src/contract';
import { loadConfig } from '../apps/sidecar/src/config';
import { DefaultRouteEffect, RouteEffect, SidecarApp } from '../lib/src';
import type { JwtIssuerOptions, RouteRule, SidecarAppProps } from '../lib/src';
import { SidecarAppPropError } from '../lib/src/validate';

type Env = Record<string, string>;

const OKTA: JwtIssuerOptions = { name: 'okta', issuer: 'https://okta.test', audiences: ['api'], jwksConfigMap: 'okta-jwks' };

function make(props: SidecarAppProps): { chart: ReturnType<typeof Testing.chart>; app: SidecarApp } {
  const chart = Testing.chart();
  return { chart, app: new SidecarApp(chart, 'app', props) };
}

function sidecarEnv(chart: ReturnType<typeof Testing.chart>): Env {
  const deployment = Testing.synth(chart).find((m) => m.kind === 'Deployment');
  const sidecar = deployment.spec.template.spec.containers.find((c: { name: string }) => c.name === 'sidecar');
  return Object.fromEntries(sidecar.env.map((e: { name: string; value: string }) => [e.name, e.value]));
}

/** The prop error of a construction (or of `after` on the app), or a failure. */
function refusal(props: SidecarAppProps, after?: (app: SidecarApp) => void): SidecarAppPropError {
  try {
    const { app } = make(props);
    after?.(app);
  } catch (err) {
    if (err instanceof SidecarAppPropError) return err;
    throw err;
  }
  throw new Error('expected a SidecarAppPropError');
}

/** The table the sidecar gets from this env, as it would start with it. */
const tableOf = (env: Env) => loadConfig({ ...env, [SIDECAR_ENV.tokensDir]: '/tokens' }).routes;

describe('SIDECAR_ROUTES in the manifest', () => {
  it('is unset by default, and SIDECAR_PUBLIC_PATHS is never set', () => {
    const env = sidecarEnv(make({}).chart);
    expect(env).not.toHaveProperty(SIDECAR_ENV.routes);
    expect(env).not.toHaveProperty(SIDECAR_ENV.publicPaths);
  });

  it('carries the routes prop, encoded by the contract, and the app reads back the same table', () => {
    const routes: RouteRule[] = [
      { path: '/api/admin/*', methods: ['GET', 'POST'], effect: RouteEffect.SUBJECTS, subjects: ['ops', 'okta:*'], claims: [{ issuer: 'okta', claim: 'groups', value: 'admins' }] },
      { path: '/api/*', effect: RouteEffect.AUTHENTICATED },
      { path: '/*', methods: ['GET'], effect: RouteEffect.PUBLIC },
    ];
    const env = sidecarEnv(make({ routes, jwtIssuers: [OKTA] }).chart);
    const expected: RouteTableSpec = {
      rules: [
        { path: '/api/admin/*', methods: ['GET', 'POST'], effect: 'subjects', subjects: ['ops', 'okta:*'], claims: [{ issuer: 'okta', claim: 'groups', value: 'admins' }] },
        { path: '/api/*', effect: 'authenticated' },
        { path: '/*', methods: ['GET'], effect: 'public' },
      ],
    };
    expect(env[SIDECAR_ENV.routes]).toBe(encodeRoutes(expected));
    expect(env).not.toHaveProperty(SIDECAR_ENV.publicPaths);
    expect(tableOf(env)).toEqual({ ...expected, default: 'authenticated' });
  });

  it('carries defaultRouteEffect DENY, with or without rules', () => {
    expect(sidecarEnv(make({ defaultRouteEffect: DefaultRouteEffect.DENY }).chart)[SIDECAR_ENV.routes]).toBe('{"rules":[],"default":"deny"}');
    const env = sidecarEnv(make({ defaultRouteEffect: DefaultRouteEffect.DENY, routes: [{ path: '/api/*', effect: RouteEffect.AUTHENTICATED }] }).chart);
    expect(tableOf(env)).toEqual({ rules: [{ path: '/api/*', effect: 'authenticated' }], default: 'deny' });
    // AUTHENTICATED is the default: nothing to say.
    expect(sidecarEnv(make({ defaultRouteEffect: DefaultRouteEffect.AUTHENTICATED }).chart)).not.toHaveProperty(SIDECAR_ENV.routes);
  });

  it('publicPaths is shorthand: exact public rules, before routes; the same table the app makes of SIDECAR_PUBLIC_PATHS', () => {
    const alone = sidecarEnv(make({ publicPaths: ['/healthz', '/version'] }).chart);
    expect(alone).not.toHaveProperty(SIDECAR_ENV.publicPaths);
    expect(tableOf(alone)).toEqual(tableOf({ [SIDECAR_ENV.publicPaths]: '/healthz,/version' }));
    const both = sidecarEnv(make({ publicPaths: ['/api/status'], routes: [{ path: '/api/*', effect: RouteEffect.SUBJECTS, subjects: ['ci'] }] }).chart);
    expect(tableOf(both).rules).toEqual([
      { path: '/api/status', effect: 'public' },
      { path: '/api/*', effect: 'subjects', subjects: ['ci'] },
    ]);
  });

  it('takes copies: changing the props after construction changes nothing', () => {
    const rule = { path: '/api/*', methods: ['GET'], effect: RouteEffect.PUBLIC };
    const routes: RouteRule[] = [rule];
    const { chart } = make({ routes });
    rule.methods.push('POST');
    routes.push({ path: '/x', effect: RouteEffect.PUBLIC });
    expect(tableOf(sidecarEnv(chart)).rules).toEqual([{ path: '/api/*', methods: ['GET'], effect: 'public' }]);
  });

  it('cannot be set through sidecar.env', () => {
    expect(refusal({ sidecar: { env: { [SIDECAR_ENV.routes]: '{"rules":[]}' } } }).message).toBe(`SidecarApp test/app: sidecar.env must not set ${SIDECAR_ENV.routes}: SidecarApp sets it from its props`);
  });
});

describe('addRoute after construction', () => {
  it('reaches the manifest of an app that had no rules, in order, at synth', () => {
    const { chart, app } = make({});
    app.addRoute({ path: '/metrics-proxy/*', effect: RouteEffect.SUBJECTS, subjects: ['system:serviceaccount:monitoring:*'] });
    app.addRoute({ path: '/version', effect: RouteEffect.PUBLIC });
    expect(tableOf(sidecarEnv(chart)).rules).toEqual([
      { path: '/metrics-proxy/*', effect: 'subjects', subjects: ['system:serviceaccount:monitoring:*'] },
      { path: '/version', effect: 'public' },
    ]);
  });

  it('lands after publicPaths and routes', () => {
    const { chart, app } = make({ publicPaths: ['/healthz'], routes: [{ path: '/api/*', effect: RouteEffect.AUTHENTICATED }], defaultRouteEffect: DefaultRouteEffect.DENY });
    app.addRoute({ path: '/late', effect: RouteEffect.PUBLIC });
    expect(tableOf(sidecarEnv(chart))).toEqual({
      rules: [
        { path: '/healthz', effect: 'public' },
        { path: '/api/*', effect: 'authenticated' },
        { path: '/late', effect: 'public' },
      ],
      default: 'deny',
    });
  });

  it('also reaches a manifest synthesized once before', () => {
    const { chart, app } = make({});
    expect(sidecarEnv(chart)).not.toHaveProperty(SIDECAR_ENV.routes);
    app.addRoute({ path: '/version', effect: RouteEffect.PUBLIC });
    expect(tableOf(sidecarEnv(chart)).rules).toEqual([{ path: '/version', effect: 'public' }]);
  });

  it('is checked at once against the whole table, naming the rule; a refused rule is not kept', () => {
    const { chart, app } = make({ routes: [{ path: '/api/*', effect: RouteEffect.AUTHENTICATED }] });
    expect(() => app.addRoute({ path: '/api/x', effect: RouteEffect.PUBLIC })).toThrow(
      'SidecarApp test/app: addRoute[0] can never match: routes[0] (/api/*) matches every request it would',
    );
    expect(() => app.addRoute({ path: '/a/../b', effect: RouteEffect.PUBLIC })).toThrow(`SidecarApp test/app: addRoute[0] path "/a/../b" is not canonical: it has a '.' or '..' segment`);
    expect(() => app.addRoute({ path: '/x', effect: RouteEffect.SUBJECTS, claims: [{ issuer: 'okta', claim: 'g', value: 'v' }] })).toThrow(
      'SidecarApp test/app: addRoute[0] claims issuer "okta" is no configured JWT issuer (none is configured)',
    );
    app.addRoute({ path: '/ok', effect: RouteEffect.PUBLIC });
    expect(tableOf(sidecarEnv(chart)).rules).toEqual([
      { path: '/api/*', effect: 'authenticated' },
      { path: '/ok', effect: 'public' },
    ]);
  });

  it('counts toward the 64 rules', () => {
    const routes = Array.from({ length: MAX_ROUTE_RULES }, (_v, i) => ({ path: `/r${i}`, effect: RouteEffect.PUBLIC }));
    const err = refusal({ routes }, (app) => app.addRoute({ path: '/one-more', effect: RouteEffect.PUBLIC }));
    expect(err.prop).toBe('routes');
    expect(err.message).toBe('SidecarApp test/app: routes lists 65 rules; at most 64');
  });
});

describe('refused at synth, naming the prop', () => {
  const many = Array.from({ length: MAX_ROUTE_RULES + 1 }, (_v, i) => ({ path: `/r${i}`, effect: RouteEffect.PUBLIC }));
  it.each<[string, SidecarAppProps, string, string]>([
    ['a shadowed rule', { routes: [{ path: '/a', effect: RouteEffect.PUBLIC }, { path: '/api/*', effect: RouteEffect.PUBLIC }, { path: '/api/x', effect: RouteEffect.AUTHENTICATED }] }, 'routes[2]', 'can never match: routes[1] (/api/*) matches every request it would'],
    ['a rule a public path shadows', { publicPaths: ['/healthz'], routes: [{ path: '/healthz', effect: RouteEffect.AUTHENTICATED }] }, 'routes[0]', 'can never match: publicPaths[0] (/healthz) matches every request it would'],
    ['a non-canonical path', { routes: [{ path: '/api/%2e%2e/admin', effect: RouteEffect.PUBLIC }] }, 'routes[0]', `path "/api/%2e%2e/admin" is not canonical: it has a '%' not followed by two uppercase hex digits`],
    ['a lowercase method', { routes: [{ path: '/x', methods: ['get'], effect: RouteEffect.PUBLIC }] }, 'routes[0]', 'methods entries must be uppercase HTTP method tokens such as GET, got "get" (leave methods unset for every method)'],
    ['subjects without an entry', { routes: [{ path: '/x', effect: RouteEffect.SUBJECTS }] }, 'routes[0]', 'with effect subjects needs at least one entry in subjects or claims, or anyStaticToken'],
    ['a bare * subject', { routes: [{ path: '/x', effect: RouteEffect.SUBJECTS, subjects: ['*'] }] }, 'routes[0]', "subjects must not list a bare '*': any authenticated caller is effect authenticated"],
    ['subjects on a public rule', { routes: [{ path: '/x', effect: RouteEffect.PUBLIC, subjects: ['ci'] }] }, 'routes[0]', 'subjects, claims and anyStaticToken go with effect subjects, not public'],
    ['a claim of no issuer of the app', { jwtIssuers: [OKTA], routes: [{ path: '/x', effect: RouteEffect.SUBJECTS, claims: [{ issuer: 'auth0', claim: 'g', value: 'v' }] }] }, 'routes[0]', 'claims issuer "auth0" is no configured JWT issuer (configured: okta)'],
    ['an unknown effect', { routes: [{ path: '/x', effect: 'allow' as RouteEffect }] }, 'routes[0]', 'effect must be one of public, authenticated, subjects, got "allow"'],
    ['a rule that is no object', { routes: ['/x' as unknown as RouteRule] }, 'routes[0]', 'must be an object {path, effect, ...}'],
    ['routes that are no list', { routes: { path: '/x' } as unknown as RouteRule[] }, 'routes', 'must be a list of rules'],
    ['too many rules', { routes: many }, 'routes', 'lists 65 rules; at most 64'],
    ['an unknown default', { defaultRouteEffect: 'allow' as DefaultRouteEffect }, 'defaultRouteEffect', 'must be one of authenticated, deny, got "allow"'],
    ['a public path with *', { publicPaths: ['/api/*'] }, 'publicPaths', `entries are exact paths and must not hold '*' (a prefix is a route rule), got "/api/*"`],
    ['a non-canonical public path', { publicPaths: ['/a//b'] }, 'publicPaths', `entries must be canonical paths: "/a//b" has an empty segment ('//')`],
  ])('%s', (_what, props, prop, message) => {
    const err = refusal(props);
    expect(err.prop).toBe(prop);
    expect(err.message).toBe(`SidecarApp test/app: ${prop} ${message}`);
  });

  it('a claim of one of the app jwtIssuers is accepted', () => {
    const { chart } = make({ jwtIssuers: [OKTA], routes: [{ path: '/x', effect: RouteEffect.SUBJECTS, claims: [{ issuer: 'okta', claim: 'groups', value: 'ops' }] }] });
    expect(tableOf(sidecarEnv(chart)).rules[0].claims).toEqual([{ issuer: 'okta', claim: 'groups', value: 'ops' }]);
  });
});
