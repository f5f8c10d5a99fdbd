/**
 * Any identity mix in the manifest (issue 19 §2): static tokens are one source among three, so an
 * app with JWT issuers or service-account auth and no static tokens mounts no tokens Secret;
 * allowCallsFrom's `/*` rule keeps what the default admitted for the other sources; a subjects entry
 * that can never match fails at synth naming the prop. The sidecars themselves run in
 * test/identity-mix-sidecar.test.ts, the pods in test/consumer.test.ts.
 */
import { Chart, Testing } from 'cdk8s';
import { CONTAINER_NAMES, SIDECAR_ENV, TOKENS_MOUNT_PATH, parseRoutes } from '../lib/src/contract';
import { DefaultRouteEffect, RouteEffect, SidecarApp } from '../lib/src';
import type { JwtIssuerOptions, SidecarAppProps } from '../lib/src';
import { SidecarAppPropError } from '../lib/src/validate';

/* eslint-disable @typescript-eslint/no-explicit-any */

const OKTA: JwtIssuerOptions = { name: 'okta', issuer: 'https://okta.test', audiences: ['api'], jwksConfigMap: 'okta-jwks' };

function shop(orders: SidecarAppProps = {}) {
  const chart = new Chart(Testing.app(), 'shop', { namespace: 'shop' });
  const app = new SidecarApp(chart, 'orders', orders);
  const frontend = new SidecarApp(chart, 'frontend', { main: { port: 3000 }, sidecar: { port: 3001 }, adminPort: 3002 });
  return { chart, app, frontend };
}

function sidecarOf(chart: Chart): { spec: any; sidecar: any; env: Record<string, string> } {
  const deployment = Testing.synth(chart).find((d: any) => d.kind === 'Deployment' && d.metadata.name === 'orders');
  const spec = deployment.spec.template.spec;
  const sidecar = [...spec.containers, ...(spec.initContainers ?? [])].find((c: any) => c.name === CONTAINER_NAMES.sidecar);
  return { spec, sidecar, env: Object.fromEntries((sidecar.env ?? []).map((e: any) => [e.name, e.value])) };
}

/** The tokens Secret volume, its mount, and SIDECAR_TOKENS_DIR: all three or none. */
function tokensOf(chart: Chart): { secret: string | undefined; mounted: boolean; dir: string | undefined } {
  const { spec, sidecar, env } = sidecarOf(chart);
  const volume = (spec.volumes ?? []).find((v: any) => v.secret !== undefined);
  const mounted = (sidecar.volumeMounts ?? []).some((m: any) => m.mountPath === TOKENS_MOUNT_PATH);
  return { secret: volume?.secret.secretName, mounted, dir: env[SIDECAR_ENV.tokensDir] };
}

function refusal(make: () => unknown): SidecarAppPropError {
  try {
    make();
  } catch (err) {
    if (err instanceof SidecarAppPropError) return err;
    throw err;
  }
  throw new Error('expected a SidecarAppPropError');
}

describe('static tokens are one source among three', () => {
  it('with no identity props, static tokens stay the source: the <name>-tokens Secret is mounted, mandatory, and named in SIDECAR_TOKENS_DIR', () => {
    const { chart, app } = shop();
    expect(tokensOf(chart)).toEqual({ secret: 'orders-tokens', mounted: true, dir: TOKENS_MOUNT_PATH });
    expect(sidecarOf(chart).spec.volumes.find((v: any) => v.secret).secret.optional).toBe(false);
    expect(app.tokenSecretName).toBe('orders-tokens');
  });

  it.each<[string, SidecarAppProps]>([
    ['JWT issuers only', { jwtIssuers: [OKTA] }],
    ['service-account auth only', { serviceAccountAuth: {} }],
    ['both', { jwtIssuers: [OKTA], serviceAccountAuth: {} }],
  ])('%s: no tokens Secret is mounted and SIDECAR_TOKENS_DIR stays unset', (_what, props) => {
    const { chart, app } = shop(props);
    expect(tokensOf(chart)).toEqual({ secret: undefined, mounted: false, dir: undefined });
    expect(app.tokenSecretName).toBeUndefined();
  });

  it('with another source, static tokens come back with tokenSecretName or staticTokens: true', () => {
    expect(tokensOf(shop({ jwtIssuers: [OKTA], tokenSecretName: 'ci-tokens' }).chart)).toEqual({ secret: 'ci-tokens', mounted: true, dir: TOKENS_MOUNT_PATH });
    expect(tokensOf(shop({ serviceAccountAuth: {}, staticTokens: true }).chart)).toEqual({ secret: 'orders-tokens', mounted: true, dir: TOKENS_MOUNT_PATH });
  });

  it('staticTokens: false turns them off beside another source', () => {
    expect(tokensOf(shop({ jwtIssuers: [OKTA], staticTokens: false }).chart)).toEqual({ secret: undefined, mounted: false, dir: undefined });
  });

  it.each<[string, SidecarAppProps, string, RegExp]>([
    ['no source at all', { staticTokens: false }, 'staticTokens', /is false, and neither jwtIssuers nor serviceAccountAuth is set: the sidecar would have no credential source/],
    ['a Secret name with static tokens off', { jwtIssuers: [OKTA], staticTokens: false, tokenSecretName: 'x' }, 'tokenSecretName', /is set, but staticTokens is false/],
    ['staticTokens not a boolean', { staticTokens: 'no' as unknown as boolean }, 'staticTokens', /must be a boolean, got "no"/],
  ])('%s fails at synth with one line naming %s', (_what, props, prop, message) => {
    const err = refusal(() => shop(props));
    expect(err.prop).toBe(prop);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
  });
});

describe('allowCallsFrom keeps what the default admitted for the other sources', () => {
  const appendedRule = (chart: Chart) => {
    const parsed = parseRoutes(sidecarOf(chart).env[SIDECAR_ENV.routes], ['okta', 'kubernetes']);
    if (!parsed.ok) throw new Error(parsed.problem);
    return parsed.value.rules[parsed.value.rules.length - 1];
  };

  it('with static tokens and the default authenticated, the /* rule admits every static token besides the connected account', () => {
    const { chart, app, frontend } = shop();
    app.allowCallsFrom(frontend);
    expect(appendedRule(chart)).toMatchObject({ path: '/*', effect: 'subjects', subjects: ['system:serviceaccount:shop:frontend'], anyStaticToken: true });
  });

  it('with a JWT issuer too, it admits that issuer\'s callers (okta:*)', () => {
    const { chart, app, frontend } = shop({ jwtIssuers: [OKTA], staticTokens: true });
    app.allowCallsFrom(frontend);
    expect(appendedRule(chart)).toMatchObject({ subjects: ['system:serviceaccount:shop:frontend', 'okta:*'], anyStaticToken: true });
  });

  it('without static tokens, it does not admit them', () => {
    const { chart, app, frontend } = shop({ jwtIssuers: [OKTA] });
    app.allowCallsFrom(frontend);
    const rule = appendedRule(chart);
    expect(rule.subjects).toEqual(['system:serviceaccount:shop:frontend', 'okta:*']);
    expect(rule.anyStaticToken).toBeUndefined();
  });

  it('with the default deny, static tokens and JWTs had 403 there already: only the connected account is admitted', () => {
    const { chart, app, frontend } = shop({ jwtIssuers: [OKTA], staticTokens: true, defaultRouteEffect: DefaultRouteEffect.DENY });
    app.allowCallsFrom(frontend);
    const rule = appendedRule(chart);
    expect(rule.subjects).toEqual(['system:serviceaccount:shop:frontend']);
    expect(rule.anyStaticToken).toBeUndefined();
  });

  it('a second caller joins the same rule', () => {
    const { chart, app, frontend } = shop();
    const billing = new SidecarApp(Chart.of(app), 'billing', { main: { port: 4000 }, sidecar: { port: 4001 }, adminPort: 4002 });
    app.allowCallsFrom(frontend);
    app.allowCallsFrom(billing);
    expect(appendedRule(chart)).toMatchObject({ subjects: ['system:serviceaccount:shop:frontend', 'system:serviceaccount:shop:billing'], anyStaticToken: true });
  });
});

describe('subjects entries that can never match fail at synth, naming the prop', () => {
  const subjectsRule = (subjects: string[]) => ({ routes: [{ path: '/x', effect: RouteEffect.SUBJECTS, subjects }] });

  it.each<[string, string[], RegExp]>([
    ['a service account without its name', ['system:serviceaccount:shop'], /subjects entry "system:serviceaccount:shop" can never match: a service-account subject is system:serviceaccount:<namespace>:<name>/],
    ['an uppercase namespace', ['system:serviceaccount:Shop:frontend'], /entry "system:serviceaccount:Shop:frontend" can never match/],
    ['a fifth part', ['system:serviceaccount:shop:frontend:x'], /can never match/],
    ['a bad name', ['system:serviceaccount:shop:-frontend'], /can never match/],
    ['system: with another word', ['system:serviceaccounts:shop'], /can never match/],
    ['a prefix no account has', ['system:serviceaccount:shop:Front*'], /entry "system:serviceaccount:shop:Front\*" can never match/],
    ['a kubernetes: prefix', ['kubernetes:shop:frontend'], /entry "kubernetes:shop:frontend" can never match: service-account subjects carry no "kubernetes:" prefix/],
    ['an issuer that is not configured', ['auth0:alice'], /entry "auth0:alice" can never match: no JWT issuer is named "auth0" \(none is configured\)/],
  ])('%s', (_what, subjects, message) => {
    const err = refusal(() => shop(subjectsRule(subjects)));
    expect(err.prop).toBe('routes[0]');
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
  });

  it('an issuer named so: the message lists the configured ones', () => {
    expect(refusal(() => shop({ jwtIssuers: [OKTA], ...subjectsRule(['auth0:alice']) })).message).toMatch(/no JWT issuer is named "auth0" \(configured: okta\)/);
  });

  it('addRoute is checked the same way, naming addRoute[0]', () => {
    const { app } = shop();
    const err = refusal(() => app.addRoute({ path: '/x', effect: RouteEffect.SUBJECTS, subjects: ['system:serviceaccount:shop'] }));
    expect(err.prop).toBe('addRoute[0]');
  });

  it('well-formed entries of every shape pass', () => {
    const ok = ['ci', 'ci-*', 'okta:alice', 'okta:*', 'system:serviceaccount:shop:frontend', 'system:serviceaccount:shop:*', 'system:serviceaccount:sh*', 'system:*', 'sys*', 'system:serviceaccount:shop:front.end-1'];
    expect(() => shop({ jwtIssuers: [OKTA], ...subjectsRule(ok) })).not.toThrow();
  });
});
