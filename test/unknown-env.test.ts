/**
 * An unknown SIDECAR_* or MAIN_* variable (a typo, a setting of another version) stops the app at
 * start-up with one line naming it and the nearest known name, instead of being silently ignored.
 * The rule is the contract's (prefix, list, nearest name); each app's config calls it once. What
 * the construct itself sets stays accepted: every name of the manifests SidecarApp writes, the
 * caller-token variable `<CALLEE>_TOKEN_FILE` even for a callee named "main" (MAIN_TOKEN_FILE) or
 * "sidecar-demo", and the chart's own SIDECAR_APP_* variables.
 */
import { Chart, Testing } from 'cdk8s';
import {
  CHART_ENV_PREFIX,
  CONTAINER_NAMES,
  MAIN_ENV,
  MAIN_ENV_OWNERSHIP,
  SIDECAR_ENV,
  SIDECAR_ENV_OWNERSHIP,
  callerTokenEnvName,
  editDistance,
  nearestName,
  unknownEnvProblem,
} from '../lib/src/contract';
import { SidecarApp } from '../lib/src';
import { loadConfig as loadMainConfig } from '../apps/main/src/config';
import { loadConfig as loadSidecarConfig } from '../apps/sidecar/src/config';
import { IMAGE_ENV, MODE_ENV } from '../main';
import { AppName, runToExit, startApp } from './support/apps';
import { tempDir } from './support/http';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Manifest = any;

const tokens = tempDir('unknown-env-');
afterAll(() => tokens.cleanup());

function baseEnv(app: AppName): Record<string, string> {
  return app === 'sidecar'
    ? { [SIDECAR_ENV.port]: '0', [SIDECAR_ENV.adminPort]: '0', [SIDECAR_ENV.host]: '127.0.0.1', [SIDECAR_ENV.tokensDir]: tokens.dir }
    : { [MAIN_ENV.port]: '0', [MAIN_ENV.host]: '127.0.0.1' };
}

describe('the contract\u2019s rule', () => {
  test('edit distance and the nearest name', () => {
    expect(editDistance('SIDECAR_PORT', 'SIDECAR_PORT')).toBe(0);
    expect(editDistance('SIDECAR_UPSTREM', 'SIDECAR_UPSTREAM')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(nearestName('SIDECAR_UPSTREAM_TIMEOUT', SIDECAR_ENV_OWNERSHIP.names)).toBe(SIDECAR_ENV.upstreamTimeoutMs);
    expect(nearestName('SIDECAR_TOKEN_DIR', SIDECAR_ENV_OWNERSHIP.names)).toBe(SIDECAR_ENV.tokensDir);
    expect(nearestName('MAIN_KEEP_ALIVE_TIMEOUT_MS', MAIN_ENV_OWNERSHIP.names)).toBe(MAIN_ENV.keepAliveTimeoutMs);
    // Cut short: the name it starts, though SIDECAR_PORT is no more edits away (and first in the list).
    expect(editDistance('SIDECAR_FORWARD_AUTH', SIDECAR_ENV.port)).toBeLessThanOrEqual(editDistance('SIDECAR_FORWARD_AUTH', SIDECAR_ENV.forwardAuthorization));
    expect(nearestName('SIDECAR_FORWARD_AUTH', SIDECAR_ENV_OWNERSHIP.names)).toBe(SIDECAR_ENV.forwardAuthorization);
    expect(nearestName('SIDECAR_UPSTREAM', ['SIDECAR_UPSTREAM_TIMEOUT_MS', 'SIDECAR_UPSTREAM_HEALTH_PATH'])).toBe('SIDECAR_UPSTREAM_TIMEOUT_MS');
  });

  test('the lists are every name of each app; other prefixes, and known names, pass', () => {
    expect(SIDECAR_ENV_OWNERSHIP.names).toEqual(Object.values(SIDECAR_ENV));
    expect(MAIN_ENV_OWNERSHIP.names).toEqual(Object.values(MAIN_ENV));
    const all = Object.fromEntries([...Object.values(SIDECAR_ENV), ...Object.values(MAIN_ENV), 'PATH', 'HOME', 'NODE_OPTIONS', 'SIDECARX'].map((n) => [n, 'x']));
    expect(unknownEnvProblem(all, SIDECAR_ENV_OWNERSHIP)).toBeUndefined();
    expect(unknownEnvProblem(all, MAIN_ENV_OWNERSHIP)).toBeUndefined();
  });

  test('an unknown name is refused with one line: the name, the nearest known name; the first in name order', () => {
    const problem = unknownEnvProblem({ SIDECAR_UPSTREM: 'http://127.0.0.1:1', SIDECAR_ZZZ: '' }, SIDECAR_ENV_OWNERSHIP);
    expect(problem?.variable).toBe('SIDECAR_UPSTREM');
    expect(problem?.message).toBe(
      "SIDECAR_UPSTREM: is not a setting of the sidecar; did you mean SIDECAR_UPSTREAM? (SIDECAR_* variables are the sidecar's, and an unknown one would be ignored)",
    );
    // An empty value is still a mistyped name.
    expect(unknownEnvProblem({ MAIN_PROT: '' }, MAIN_ENV_OWNERSHIP)?.message).toMatch(/^MAIN_PROT: is not a setting of main; did you mean MAIN_PORT\? /);
  });

  test('the caller-token variable passes under either prefix: MAIN_TOKEN_FILE (a callee named "main"), SIDECAR_DEMO_TOKEN_FILE', () => {
    expect(callerTokenEnvName('main')).toBe('MAIN_TOKEN_FILE');
    expect(callerTokenEnvName('sidecar-demo')).toBe('SIDECAR_DEMO_TOKEN_FILE');
    expect(unknownEnvProblem({ MAIN_TOKEN_FILE: '/t', MAIN_API_TOKEN_FILE: '/t' }, MAIN_ENV_OWNERSHIP)).toBeUndefined();
    expect(unknownEnvProblem({ SIDECAR_DEMO_TOKEN_FILE: '/t' }, SIDECAR_ENV_OWNERSHIP)).toBeUndefined();
    // Not the suffix: refused.
    expect(unknownEnvProblem({ MAIN_TOKEN_FILES: '/t' }, MAIN_ENV_OWNERSHIP)?.variable).toBe('MAIN_TOKEN_FILES');
  });

  test('the chart\u2019s SIDECAR_APP_* variables (main.ts) are left alone by the sidecar', () => {
    for (const name of [...Object.values(IMAGE_ENV), MODE_ENV]) expect(name.startsWith(CHART_ENV_PREFIX)).toBe(true);
    expect(unknownEnvProblem({ [IMAGE_ENV.main]: 'a:1', [MODE_ENV]: 'native' }, SIDECAR_ENV_OWNERSHIP)).toBeUndefined();
  });
});

describe('every env name SidecarApp writes passes its app\u2019s check', () => {
  test('default app, and a caller of an app named "main" (MAIN_TOKEN_FILE in the caller\u2019s main container) and of "sidecar-demo"', () => {
    const chart = new Chart(Testing.app(), 'shop', { namespace: 'shop' });
    const callee = new SidecarApp(chart, 'main');
    const other = new SidecarApp(chart, 'sidecar-demo', { main: { port: 4000 }, sidecar: { port: 4001 }, adminPort: 4002 });
    const caller = new SidecarApp(chart, 'web', { main: { port: 3000 }, sidecar: { port: 3001 }, adminPort: 3002, serviceAccountAuth: {}, jwtIssuers: [] });
    callee.allowCallsFrom(caller);
    other.allowCallsFrom(caller);
    const manifests: Manifest[] = Testing.synth(chart);
    const deployments = manifests.filter((m) => m.kind === 'Deployment');
    expect(deployments).toHaveLength(3);
    const webMain = deployments.find((d) => d.metadata.name === 'web').spec.template.spec.containers.find((c: Manifest) => c.name === CONTAINER_NAMES.main);
    expect(webMain.env.map((e: Manifest) => e.name)).toEqual(expect.arrayContaining(['MAIN_TOKEN_FILE', 'SIDECAR_DEMO_TOKEN_FILE']));
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        const env = Object.fromEntries((c.env ?? []).map((e: Manifest) => [e.name, e.value ?? '']));
        const owner = c.name === CONTAINER_NAMES.main ? MAIN_ENV_OWNERSHIP : SIDECAR_ENV_OWNERSHIP;
        expect({ deployment: d.metadata.name, container: c.name, problem: unknownEnvProblem(env, owner)?.message }).toEqual({ deployment: d.metadata.name, container: c.name, problem: undefined });
      }
    }
  });
});

describe('each app\u2019s config calls the rule', () => {
  test.each([
    ['sidecar', 'SIDECAR_UPSTREAM_TIMEOUT', 'SIDECAR_UPSTREAM_TIMEOUT_MS'],
    ['main', 'MAIN_LOGLEVEL', 'MAIN_LOG_LEVEL'],
  ] as const)('%s: %s', (app, name, nearest) => {
    const load = app === 'sidecar' ? loadSidecarConfig : loadMainConfig;
    expect(() => load({ ...baseEnv(app), [name]: '1' })).toThrow(new RegExp(`^${name}: is not a setting of .*; did you mean ${nearest}\\? `));
  });
});

describe('the compiled apps refuse to start: exit code 2, one line', () => {
  test.concurrent.each([
    ['sidecar', 'SIDECAR_TOKEN_DIR', 'SIDECAR_TOKENS_DIR'],
    ['sidecar', 'SIDECAR_FORWARD_AUTH', 'SIDECAR_FORWARD_AUTHORIZATION'],
    ['main', 'MAIN_DRAIN_DELAY', 'MAIN_DRAIN_DELAY_MS'],
  ] as const)('%s with %s names it and %s', async (app, name, nearest) => {
    const { code, output } = await runToExit(app, { ...baseEnv(app), [name]: '1' });
    const lines = output.trim().split('\n');
    expect({ code, lines }).toEqual({ code: 2, lines: [expect.stringMatching(new RegExp(`^${app}: ${name}: is not a setting of .*; did you mean ${nearest}\\? `))] });
  });

  test.concurrent.each([
    ['main', { MAIN_TOKEN_FILE: '/var/run/secrets/sidecar-app/calls/main/token' }],
    ['sidecar', { [IMAGE_ENV.sidecar]: 'sidecar-app-sidecar:0.1.0', SIDECAR_DEMO_TOKEN_FILE: '/t' }],
  ] as const)('%s starts with %j', async (app, extra) => {
    const running = await startApp(app, { env: { ...baseEnv(app), ...extra } });
    expect(running.port).toBeGreaterThan(0);
    // SIGKILL: a graceful stop would wait out the default drain delays for nothing.
    await running.stop('SIGKILL');
  });
});
