/**
 * Both sides of the env boundary apply one rule per setting. Each value a SidecarApp prop can carry
 * goes through the construct (refused at synth, or written to the manifest) and through the app
 * that reads it (refused at start-up, or parsed): the construct accepts exactly what the app accepts.
 * In-process: the real construct and the apps' real config loaders, no processes.
 */
import { Testing } from 'cdk8s';
import * as fc from 'fast-check';
import {
  JWKS_MOUNT_ROOT,
  LOG_LEVELS,
  MAIN_ENV,
  MAIN_INTEGERS,
  POD_TIMING_INTEGERS,
  SIDECAR_ENV,
  SIDECAR_INTEGERS,
  encodeBoolean,
  encodeJwtIssuers,
  encodePublicPaths,
  encodeRoutes,
  parseBoolean,
  parseJwtIssuers,
  parsePublicPaths,
  timingBudget,
} from '../lib/src/contract';
import type { IntegerRule, JwtIssuerSpec, RouteDefault, RouteRuleSpec } from '../lib/src/contract';
import { loadConfig as loadMainConfig } from '../apps/main/src/config';
import { loadConfig as loadSidecarConfig } from '../apps/sidecar/src/config';
import { DefaultRouteEffect, RouteEffect, SidecarApp, SidecarMode } from '../lib/src';
import { SidecarAppPropError } from '../lib/src/validate';
import type { JwtIssuerOptions, RouteRule, SidecarAppProps } from '../lib/src';

type Env = Record<string, string>;

/** Room for any drain and upstream timeout, so the grace check never decides a case it is not about. */
const ROOMY: SidecarAppProps = { preStopDelaySeconds: 0, terminationGracePeriodSeconds: POD_TIMING_INTEGERS.terminationGracePeriodSeconds.max };

/** The env of each container, or the prop error. */
function synth(props: SidecarAppProps): { main: Env; sidecar: Env } | SidecarAppPropError {
  const chart = Testing.chart();
  try {
    new SidecarApp(chart, 'app', props);
  } catch (err) {
    if (err instanceof SidecarAppPropError) return err;
    throw err;
  }
  const deployment = Testing.synth(chart).find((m) => m.kind === 'Deployment');
  const envOf = (name: string): Env =>
    Object.fromEntries(
      [...deployment.spec.template.spec.containers, ...(deployment.spec.template.spec.initContainers ?? [])]
        .find((c: { name: string }) => c.name === name)
        .env.map((e: { name: string; value: string }) => [e.name, e.value]),
    );
  return { main: envOf('main'), sidecar: envOf('sidecar') };
}

/** Undefined when the app starts with this env, else the variable it names. */
function sidecarRefuses(env: Env): string | undefined {
  try {
    loadSidecarConfig(env);
    return undefined;
  } catch (err) {
    return (err as { variable?: string }).variable ?? String(err);
  }
}

function mainRefuses(env: Env): string | undefined {
  try {
    loadMainConfig(env);
    return undefined;
  } catch (err) {
    return (err as { variable?: string }).variable ?? String(err);
  }
}

/** Values on and around each bound, and values that are no integer at all. */
function probes(rule: IntegerRule): number[] {
  return [rule.min - 1, rule.min, rule.min + 1, rule.default, rule.max - 1, rule.max, rule.max + 1, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER];
}

interface IntegerCase {
  /** The prop, set through `props(value)`. */
  readonly prop: string;
  readonly props: (value: number) => SidecarAppProps;
  /** Where the value lands, with the rule the app applies. */
  readonly app: 'sidecar' | 'main';
  readonly variable: string;
  readonly rule: IntegerRule;
}

const INTEGER_CASES: IntegerCase[] = [
  { prop: 'upstreamTimeoutMs', props: (v) => ({ ...ROOMY, upstreamTimeoutMs: v }), app: 'sidecar', variable: SIDECAR_ENV.upstreamTimeoutMs, rule: SIDECAR_INTEGERS.upstreamTimeoutMs },
  { prop: 'drainDelayMs', props: (v) => ({ ...ROOMY, drainDelayMs: v }), app: 'sidecar', variable: SIDECAR_ENV.drainDelayMs, rule: SIDECAR_INTEGERS.drainDelayMs },
  { prop: 'trustedProxyHops', props: (v) => ({ trustedProxyHops: v }), app: 'sidecar', variable: SIDECAR_ENV.trustedProxyHops, rule: SIDECAR_INTEGERS.trustedProxyHops },
  { prop: 'sidecar.port', props: (v) => ({ sidecar: { port: v } }), app: 'sidecar', variable: SIDECAR_ENV.port, rule: SIDECAR_INTEGERS.port },
  { prop: 'adminPort', props: (v) => ({ adminPort: v }), app: 'sidecar', variable: SIDECAR_ENV.adminPort, rule: SIDECAR_INTEGERS.adminPort },
  { prop: 'main.port', props: (v) => ({ main: { port: v } }), app: 'main', variable: MAIN_ENV.port, rule: MAIN_INTEGERS.port },
];

/** Port 0 means "any free port" to the apps (local runs, tests); a containerPort must be at least 1. */
const isAppOnlyPort = (c: IntegerCase, value: number) => c.variable.endsWith('_PORT') && value === 0;

describe('whole-number settings: the construct refuses exactly what the app refuses', () => {
  const cases = INTEGER_CASES.flatMap((c) => probes(c.rule).map((value) => [c.prop, value, c] as const));

  it.each(cases)('%s = %p', (_prop, value, c) => {
    const synthesized = synth(c.props(value));
    if (!(synthesized instanceof SidecarAppPropError)) {
      // Accepted at synth: the app starts with the env the manifest carries, and reads this value.
      expect(sidecarRefuses(synthesized.sidecar)).toBeUndefined();
      expect(mainRefuses(synthesized.main)).toBeUndefined();
      // A setting left at the app's own default may be left out of the manifest, and only then.
      const written = (c.app === 'sidecar' ? synthesized.sidecar : synthesized.main)[c.variable];
      if (written === undefined) expect(value).toBe(c.rule.default);
      else expect(written).toBe(String(value));
      return;
    }
    expect(synthesized.prop).toBe(c.prop);
    // Refused at synth: the app refuses the same value, naming its variable; port 0 alone differs.
    const env = c.app === 'sidecar' ? { [SIDECAR_ENV.tokensDir]: '/tokens', [c.variable]: String(value) } : { [c.variable]: String(value) };
    const refusedBy = c.app === 'sidecar' ? sidecarRefuses(env) : mainRefuses(env);
    expect(refusedBy).toBe(isAppOnlyPort(c, value) ? undefined : c.variable);
  });

  it('the probes reach both sides of every bound', () => {
    for (const c of INTEGER_CASES) {
      const outcomes = probes(c.rule).map((v) => synth(c.props(v)) instanceof SidecarAppPropError);
      expect(outcomes).toContain(true);
      expect(outcomes).toContain(false);
    }
  });
});

describe('derived timings: whatever the construct accepts, both apps accept', () => {
  const drains = [SIDECAR_INTEGERS.drainDelayMs.min, SIDECAR_INTEGERS.drainDelayMs.default, SIDECAR_INTEGERS.drainDelayMs.max];
  const upstreams = [SIDECAR_INTEGERS.upstreamTimeoutMs.min, SIDECAR_INTEGERS.upstreamTimeoutMs.default, SIDECAR_INTEGERS.upstreamTimeoutMs.max];
  const preStops = [POD_TIMING_INTEGERS.preStopDelaySeconds.min, POD_TIMING_INTEGERS.preStopDelaySeconds.default, 60];

  it.each(drains.flatMap((d) => upstreams.flatMap((u) => preStops.map((p) => [d, u, p] as const))))(
    'drain %p ms, upstream timeout %p ms, preStop %p s: the shortest grace period passes, one second less fails',
    (drainDelayMs, upstreamTimeoutMs, preStopDelaySeconds) => {
      const grace = timingBudget({ drainDelayMs, upstreamTimeoutMs, preStopDelaySeconds, terminationGracePeriodSeconds: 0 }).minTerminationGracePeriodSeconds;
      const base = { drainDelayMs, upstreamTimeoutMs, preStopDelaySeconds };
      if (grace > POD_TIMING_INTEGERS.terminationGracePeriodSeconds.max) {
        // Only a long preStop on top of the longest drain and timeout can overflow the grace ceiling.
        expect(preStopDelaySeconds).toBeGreaterThan(0);
        return;
      }
      const synthesized = synth({ ...base, terminationGracePeriodSeconds: grace });
      if (synthesized instanceof SidecarAppPropError) throw synthesized;
      expect(sidecarRefuses(synthesized.sidecar)).toBeUndefined();
      expect(mainRefuses(synthesized.main)).toBeUndefined();
      const shorter = synth({ ...base, terminationGracePeriodSeconds: grace - 1 });
      expect(shorter).toBeInstanceOf(SidecarAppPropError);
      expect((shorter as SidecarAppPropError).prop).toBe('terminationGracePeriodSeconds');
    },
  );

  it.each(drains.flatMap((d) => upstreams.map((u) => [d, u] as const)))(
    'native-sidecar mode, drain %p ms, upstream timeout %p ms: the shortest grace period passes, one second less fails',
    (drainDelayMs, upstreamTimeoutMs) => {
      const grace = timingBudget({ mode: 'native', drainDelayMs, upstreamTimeoutMs, preStopDelaySeconds: 0, terminationGracePeriodSeconds: 0 }).minTerminationGracePeriodSeconds;
      expect(grace).toBeLessThanOrEqual(POD_TIMING_INTEGERS.terminationGracePeriodSeconds.max);
      const base = { sidecarMode: SidecarMode.NATIVE, drainDelayMs, upstreamTimeoutMs };
      const synthesized = synth({ ...base, terminationGracePeriodSeconds: grace });
      if (synthesized instanceof SidecarAppPropError) throw synthesized;
      expect(sidecarRefuses(synthesized.sidecar)).toBeUndefined();
      expect(mainRefuses(synthesized.main)).toBeUndefined();
      const shorter = synth({ ...base, terminationGracePeriodSeconds: grace - 1 });
      expect((shorter as SidecarAppPropError).prop).toBe('terminationGracePeriodSeconds');
    },
  );

  it('the longest drain and the longest upstream timeout fit the longest grace period without preStop', () => {
    const budget = timingBudget({
      drainDelayMs: SIDECAR_INTEGERS.drainDelayMs.max,
      upstreamTimeoutMs: SIDECAR_INTEGERS.upstreamTimeoutMs.max,
      preStopDelaySeconds: 0,
      terminationGracePeriodSeconds: POD_TIMING_INTEGERS.terminationGracePeriodSeconds.max,
    });
    expect(budget.minTerminationGracePeriodSeconds).toBeLessThanOrEqual(POD_TIMING_INTEGERS.terminationGracePeriodSeconds.max);
    expect(budget.sidecarShutdownTimeoutMs).toBeLessThanOrEqual(SIDECAR_INTEGERS.shutdownTimeoutMs.max);
  });
});

describe('log levels: the same list on both sides', () => {
  it.each([...LOG_LEVELS, 'INFO', 'Debug', 'verbose', 'warning', ' info', 'info '])('%j', (level) => {
    const synthesized = synth({ logLevel: level as never });
    const appRefuses = [sidecarRefuses({ [SIDECAR_ENV.tokensDir]: '/tokens', [SIDECAR_ENV.logLevel]: level }), mainRefuses({ [MAIN_ENV.logLevel]: level })];
    if (synthesized instanceof SidecarAppPropError) {
      expect(synthesized.prop).toBe('logLevel');
      expect(appRefuses).toEqual([SIDECAR_ENV.logLevel, MAIN_ENV.logLevel]);
    } else {
      expect(appRefuses).toEqual([undefined, undefined]);
      expect(synthesized.sidecar[SIDECAR_ENV.logLevel]).toBe(level);
      expect(synthesized.main[MAIN_ENV.logLevel]).toBe(level);
    }
  });
});

describe('public paths: one grammar, one encoding', () => {
  // Few characters, so that separators, duplicates, empty entries and non-canonical paths come up often.
  const pathText = fc.string({ unit: fc.constantFrom('/', 'a', 'b', ',', ' ', '?', '#', '\t', 'é', '.', '*', ';'), maxLength: 8 });
  const publicRules = (paths: readonly string[]) => paths.map((path) => ({ path, effect: 'public' }));

  it('a list the construct accepts reaches the app as exactly those exact public rules; a list it refuses has no encoding the app reads back as that list', () => {
    fc.assert(
      fc.property(fc.array(pathText, { maxLength: 4 }), (paths) => {
        const synthesized = synth({ publicPaths: paths });
        const encoded = encodePublicPaths(paths);
        // What the app makes of the same list as SIDECAR_PUBLIC_PATHS, if it reads that list back at all.
        let direct: readonly unknown[] | undefined;
        try {
          const decoded = encoded === undefined ? undefined : parsePublicPaths(encoded);
          if (decoded?.ok === true && JSON.stringify(decoded.value) === JSON.stringify(paths)) {
            direct = loadSidecarConfig({ [SIDECAR_ENV.tokensDir]: '/tokens', [SIDECAR_ENV.publicPaths]: encoded! }).routes.rules;
          }
        } catch {
          direct = undefined;
        }
        if (synthesized instanceof SidecarAppPropError) {
          expect(synthesized.prop).toBe('publicPaths');
          expect(direct).toBeUndefined();
          return;
        }
        // The table carries them: SIDECAR_PUBLIC_PATHS stays unset.
        expect(synthesized.sidecar[SIDECAR_ENV.publicPaths]).toBeUndefined();
        expect(loadSidecarConfig(synthesized.sidecar).routes.rules).toEqual(publicRules(paths));
        if (paths.length > 0) expect(direct).toEqual(publicRules(paths));
      }),
      { numRuns: 400 },
    );
  });

  it('a value the app accepts is the encoding of a list the construct accepts, and the reverse', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('/', 'a', ',', ' ', '?', '\u0001', '.', '*'), minLength: 1, maxLength: 10 }), (text) => {
        const appRefuses = sidecarRefuses({ [SIDECAR_ENV.tokensDir]: '/tokens', [SIDECAR_ENV.publicPaths]: text });
        const constructRefuses = synth({ publicPaths: text.split(',') }) instanceof SidecarAppPropError;
        expect(appRefuses === SIDECAR_ENV.publicPaths).toBe(constructRefuses);
        if (!constructRefuses) expect(encodePublicPaths(text.split(','))).toBe(text);
      }),
      { numRuns: 400 },
    );
  });
});

describe('route rules: the construct accepts a table exactly when the app accepts the SIDECAR_ROUTES it writes', () => {
  const okta: JwtIssuerOptions = { name: 'okta', issuer: 'https://okta.test', audiences: ['api'], jwksConfigMap: 'okta-jwks' };
  const oktaSpec: JwtIssuerSpec = { name: 'okta', issuer: 'https://okta.test', audiences: ['api'], jwksFile: `${JWKS_MOUNT_ROOT}/okta/jwks.json` };
  // Few values per field, so that shadowing, duplicates and bad entries come up often.
  const rule = fc
    .record(
      {
        path: fc.constantFrom('/', '/*', '/a', '/a/*', '/a/b', '/b/*', '//a', '/a/../b', '/a*'),
        methods: fc.subarray(['GET', 'HEAD', 'POST', 'get'], { minLength: 1 }),
        effect: fc.constantFrom(RouteEffect.PUBLIC, RouteEffect.AUTHENTICATED, RouteEffect.SUBJECTS),
        subjects: fc.subarray(['ci', 'okta:*', '*', 'okta:alice'], { minLength: 1 }),
        claims: fc.subarray([{ issuer: 'okta', claim: 'groups', value: 'ops' }, { issuer: 'auth0', claim: 'groups', value: 'ops' }], { minLength: 1 }),
      },
      { requiredKeys: ['path', 'effect'] },
    )
    .map((r) => r as RouteRule);

  it('and then the app reads back exactly that table', () => {
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 4 }), fc.constantFrom(undefined, DefaultRouteEffect.AUTHENTICATED, DefaultRouteEffect.DENY), (routes, defaultRouteEffect) => {
        const synthesized = synth({ routes, defaultRouteEffect, jwtIssuers: [okta] });
        const spec = { rules: routes.map((r) => ({ ...r, effect: r.effect as RouteRuleSpec['effect'] })), default: defaultRouteEffect as RouteDefault | undefined };
        const encoded = encodeRoutes(spec);
        const appEnv = { [SIDECAR_ENV.tokensDir]: '/tokens', [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers([oktaSpec])!, ...(encoded === undefined ? {} : { [SIDECAR_ENV.routes]: encoded }) };
        if (synthesized instanceof SidecarAppPropError) {
          expect(synthesized.prop).toMatch(/^routes(\[\d+\])?$/);
          expect(sidecarRefuses(appEnv)).toBe(SIDECAR_ENV.routes);
          return;
        }
        expect(synthesized.sidecar[SIDECAR_ENV.routes]).toBe(encoded);
        expect(loadSidecarConfig(synthesized.sidecar).routes).toEqual(loadSidecarConfig(appEnv).routes);
        expect(loadSidecarConfig(appEnv).routes).toEqual({ rules: spec.rules, default: defaultRouteEffect ?? 'authenticated' });
      }),
      { numRuns: 600 },
    );
  });
});

describe('booleans: "true" and "false", nothing else', () => {
  it.each([true, false])('forwardAuthorization %p reaches the app as %p', (value) => {
    const synthesized = synth({ forwardAuthorization: value });
    if (synthesized instanceof SidecarAppPropError) throw synthesized;
    expect(loadSidecarConfig(synthesized.sidecar).forwardAuthorization).toBe(value);
    expect(parseBoolean(encodeBoolean(value))).toEqual({ ok: true, value });
  });

  it.each(['TRUE', 'True', '1', 'yes', 'on', ' true'])('the app refuses %j', (text) => {
    expect(parseBoolean(text).ok).toBe(false);
    expect(sidecarRefuses({ [SIDECAR_ENV.tokensDir]: '/tokens', [SIDECAR_ENV.forwardAuthorization]: text })).toBe(SIDECAR_ENV.forwardAuthorization);
  });
});

describe('JWT issuers: the construct accepts an issuer list exactly when the app accepts the env it writes', () => {
  const base: JwtIssuerOptions = { name: 'idp', issuer: 'https://idp.test', audiences: ['api'], jwksConfigMap: 'idp-jwks' };
  const { jwksConfigMap: _omit, ...keyless } = base;
  const url: JwtIssuerOptions = { ...keyless, jwksUrl: 'https://idp.test/jwks' };
  const variants: Array<[string, JwtIssuerOptions[]]> = [
    ['a ConfigMap issuer', [base]],
    ['a ConfigMap issuer with its own key', [{ ...base, jwksConfigMapKey: 'keys.json' }]],
    ['a URL issuer', [url]],
    ['a URL issuer with a CA ConfigMap', [{ ...url, caConfigMap: 'idp-ca' }]],
    ['every optional field', [{ ...url, algorithms: ['PS256', 'EdDSA'], clockSkewSeconds: 0, maxLifetimeSeconds: 86_400, subjectClaim: 'client_id', refreshSeconds: 30 }]],
    ['two issuers', [base, { ...url, name: 'cloud', issuer: 'https://cloud.test' }]],
    ['sixteen issuers', Array.from({ length: 16 }, (_, i) => ({ ...base, name: `idp${i}`, issuer: `https://idp${i}.test` }))],
    ['seventeen issuers', Array.from({ length: 17 }, (_, i) => ({ ...base, name: `idp${i}`, issuer: `https://idp${i}.test` }))],
    ['an http: URL', [{ ...url, jwksUrl: 'http://idp.test/jwks' }]],
    ['a URL with credentials', [{ ...url, jwksUrl: 'https://u:p@idp.test/jwks' }]],
    ['both key sources', [{ ...base, jwksUrl: 'https://idp.test/jwks' }]],
    ['neither key source', [keyless]],
    ['a CA ConfigMap beside a JWKS ConfigMap', [{ ...base, caConfigMap: 'idp-ca' }]],
    ['refreshSeconds without a URL', [{ ...base, refreshSeconds: 60 }]],
    ['refreshSeconds 29', [{ ...url, refreshSeconds: 29 }]],
    ['refreshSeconds 86401', [{ ...url, refreshSeconds: 86_401 }]],
    ['a name used twice', [base, { ...base, issuer: 'https://other.test' }]],
    ['an issuer listed twice', [base, { ...base, name: 'other' }]],
    ['alg none', [{ ...base, algorithms: ['none'] }]],
    ['alg HS256', [{ ...base, algorithms: ['HS256'] }]],
    ['an unknown alg', [{ ...base, algorithms: ['RS1'] }]],
    ['no algorithm', [{ ...base, algorithms: [] }]],
    ['a name starting with a dot', [{ ...base, name: '.idp' }]],
    ['a name with a slash', [{ ...base, name: 'a/b' }]],
    ['a 64-character name', [{ ...base, name: 'a'.repeat(64) }]],
    ['a 63-character name', [{ ...base, name: 'a'.repeat(63) }]],
    ['no audience', [{ ...base, audiences: [] }]],
    ['an audience twice', [{ ...base, audiences: ['api', 'api'] }]],
    ['a non-ASCII issuer', [{ ...base, issuer: 'https://idp.tést' }]],
    ['clock skew 301', [{ ...base, clockSkewSeconds: 301 }]],
    ['clock skew 1.5', [{ ...base, clockSkewSeconds: 1.5 }]],
    ['max lifetime 0', [{ ...base, maxLifetimeSeconds: 0 }]],
    ['a bad subject claim', [{ ...base, subjectClaim: 'a b' }]],
  ];

  /** The list the app would read for these options: what the construct writes when it accepts them. */
  const specsOf = (list: JwtIssuerOptions[]): JwtIssuerSpec[] =>
    list.map(({ jwksConfigMap, jwksConfigMapKey, caConfigMap, ...rest }) => ({
      ...rest,
      algorithms: rest.algorithms as JwtIssuerSpec['algorithms'],
      ...(jwksConfigMap !== undefined ? { jwksFile: `${JWKS_MOUNT_ROOT}/${rest.name}/${jwksConfigMapKey ?? 'jwks.json'}` } : {}),
      ...(caConfigMap !== undefined ? { caFile: `${JWKS_MOUNT_ROOT}/${rest.name}/ca.crt` } : {}),
    }));

  it.each(variants)('%s', (_what, jwtIssuers) => {
    const synthesized = synth({ jwtIssuers });
    const encoded = encodeJwtIssuers(JSON.parse(JSON.stringify(specsOf(jwtIssuers))));
    if (synthesized instanceof SidecarAppPropError) {
      expect(synthesized.prop).toMatch(/^jwtIssuers(\[\d+\](\.\w+)?)?$/);
      // The app refuses the same list: the encoding does not parse, and the config loader names the variable.
      expect(encoded).toBeDefined();
      expect(parseJwtIssuers(encoded!).ok).toBe(false);
      expect(sidecarRefuses({ [SIDECAR_ENV.tokensDir]: '/tokens', [SIDECAR_ENV.jwtIssuers]: encoded! })).toBe(SIDECAR_ENV.jwtIssuers);
      return;
    }
    const written = synthesized.sidecar[SIDECAR_ENV.jwtIssuers];
    // The same issuers (field order aside): the construct's props mapped to files under their mounts.
    expect(JSON.parse(written)).toEqual(JSON.parse(encoded!));
    expect(sidecarRefuses(synthesized.sidecar)).toBeUndefined();
    const parsed = parseJwtIssuers(written);
    expect(parsed.ok).toBe(true);
    expect(loadSidecarConfig(synthesized.sidecar).jwtIssuers).toEqual(parsed.ok ? parsed.value : undefined);
  });

  it('the variants reach both outcomes', () => {
    const outcomes = variants.map(([, jwtIssuers]) => synth({ jwtIssuers }) instanceof SidecarAppPropError);
    expect(outcomes).toContain(true);
    expect(outcomes).toContain(false);
  });
});
