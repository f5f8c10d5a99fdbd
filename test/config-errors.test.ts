/**
 * Every environment setting of both apps, given an invalid value, stops start-up with one line on
 * stderr that names the setting. The table is checked against the contract, so a new variable
 * without a bad-value case here fails this file. Every value goes through each app's own config
 * loader in-process (fast); one value per variable also goes through the compiled process.
 */
import * as net from 'net';
import { MAIN_ENV, SIDECAR_ENV } from '../lib/src/contract';
import { loadConfig as loadMainConfig } from '../apps/main/src/config';
import { loadConfig as loadSidecarConfig } from '../apps/sidecar/src/config';
import { AppName, runToExit, startApp } from './support/apps';
import { tempDir } from './support/http';

type SidecarVar = (typeof SIDECAR_ENV)[keyof typeof SIDECAR_ENV];
type MainVar = (typeof MAIN_ENV)[keyof typeof MAIN_ENV];

/** At least two invalid values per variable; the colleague's sidecar/main tests hold more. */
const SIDECAR_BAD: Record<SidecarVar, string[]> = {
  [SIDECAR_ENV.port]: ['8080.0', '0x50', ' 8080', '65536'],
  [SIDECAR_ENV.host]: ['exa mple', '-dash.example', 'under_score', 'http://127.0.0.1'],
  [SIDECAR_ENV.upstream]: ['ftp://127.0.0.1:21', 'http://127.0.0.1:0', 'http://127.0.0.1:8080#x', 'http://[::1', 'http://127.0.0.1:99999', '127.0.0.1:8080'],
  [SIDECAR_ENV.tokensDir]: ['/var/run/tokens\u0001', 'tokens\ndir'],
  [SIDECAR_ENV.adminPort]: ['admin', '65536', '-9091'],
  [SIDECAR_ENV.publicPaths]: ['/a b', '/a#b', '/ok,relative', ',', '/a;b', '/api/*'],
  [SIDECAR_ENV.routes]: [
    'not json',
    '{"rules":[]}',
    '[{"path":"/x","effect":"public"}]',
    '{"rules":[{"path":"/x/../y","effect":"public"}]}',
    '{"rules":[{"path":"/api/*","effect":"public"},{"path":"/api/x","effect":"authenticated"}]}',
    '{"rules":[{"path":"/x","effect":"subjects"}]}',
    '{"rules":[{"path":"/x","effect":"subjects","subjects":["*"]}]}',
    '{"rules":[{"path":"/x","methods":["get"],"effect":"public"}]}',
    '{"rules":[{"path":"/x","effect":"subjects","claims":[{"issuer":"idp","claim":"groups","value":"ops"}]}]}',
    '{"rules":[],"default":"allow"}',
  ],
  [SIDECAR_ENV.upstreamHealthPath]: ['/healthz?x=1', '/health#z', '/he alth'],
  [SIDECAR_ENV.upstreamCheck]: ['HTTP', 'tcp ', 'grpc', 'exec'],
  [SIDECAR_ENV.upstreamTimeoutMs]: ['1e3', '3600001', '-1'],
  [SIDECAR_ENV.upstreamIdleTimeoutMs]: ['0', 'idle', '600001'],
  [SIDECAR_ENV.headersTimeoutMs]: ['600001', 'fast', '10s'],
  [SIDECAR_ENV.drainDelayMs]: ['600001', '1.5', 'none'],
  [SIDECAR_ENV.shutdownTimeoutMs]: ['3600001', 'later', '0'],
  [SIDECAR_ENV.forwardAuthorization]: ['TRUE', '1', 'on'],
  [SIDECAR_ENV.trustedProxyHops]: ['11', '-1', '1.5', 'all'],
  [SIDECAR_ENV.realm]: ['back\\slash', 'x'.repeat(129), 'r\u00e9alm', 'tab\there'],
  [SIDECAR_ENV.tokensPollIntervalMs]: ['49', 'often', '3600001'],
  [SIDECAR_ENV.logLevel]: ['INFO', 'loud', 'warning'],
  [SIDECAR_ENV.drainHook]: ['yes', 'TRUE', '1'],
  [SIDECAR_ENV.jwtCacheBytes]: ['-1', '1073741825', '8MiB', '1e6'],
  [SIDECAR_ENV.jwtIssuers]: [
    'not json',
    '[]',
    '{"name":"idp"}',
    '[{"name":"idp","issuer":"https://idp.example","audiences":["api"],"jwksFile":"jwks.json"}]',
    '[{"name":"idp","issuer":"https://idp.example","audiences":["api"],"jwksFile":"/jwks.json","algorithms":["none"]}]',
    '[{"name":"idp","issuer":"https://idp.example","audiences":["api"],"jwksFile":"/jwks.json","algorithms":["HS256"]}]',
    '[{"name":"idp","issuer":"https://idp.example","audiences":[],"jwksFile":"/jwks.json"}]',
    '[{"name":"kubernetes","issuer":"https://idp.example","audiences":["api"],"jwksFile":"/jwks.json"}]',
    '[{"name":"idp","issuer":"https://idp.example","audiences":["api"],"hmacSecretFile":"/s","algorithms":["RS256"]}]',
    '[{"name":"idp","issuer":"https://idp.example","audiences":["api"],"jwksFile":"/jwks.json","forwardClaims":["a.b","a_b"]}]',
  ],
  [SIDECAR_ENV.kubernetesAuth]: [
    'on',
    '{"audiences":["api"],"tokenFile":"/t","caFile":"/ca.crt","apiServer":"http://127.0.0.1:6443"}',
    '{"audiences":[],"tokenFile":"/t","caFile":"/ca.crt","apiServer":"https://127.0.0.1:6443"}',
    '{"audiences":["api"],"tokenFile":"t","caFile":"/ca.crt","apiServer":"https://127.0.0.1:6443"}',
    // No apiServer, and the test env has no KUBERNETES_SERVICE_HOST.
    '{"audiences":["api"],"tokenFile":"/t","caFile":"/ca.crt"}',
  ],
};

const MAIN_BAD: Record<MainVar, string[]> = {
  [MAIN_ENV.port]: ['-1', '8o8o', '65536', '80.5'],
  [MAIN_ENV.host]: ['a/b', 'has space'],
  [MAIN_ENV.drainDelayMs]: ['x', '2147483648', '-5'],
  [MAIN_ENV.keepAliveTimeoutMs]: ['2147483648', 'soon', '0'],
  [MAIN_ENV.logLevel]: ['verbose', 'loud'],
};

// Module level, not beforeAll: concurrent tests may start before beforeAll hooks finish.
const tokens = tempDir('config-errors-');

afterAll(() => tokens.cleanup());

/** Valid settings everywhere else, so the bad one is the only possible reason to stop. */
function baseEnv(app: AppName): Record<string, string> {
  return app === 'sidecar'
    ? { [SIDECAR_ENV.port]: '0', [SIDECAR_ENV.adminPort]: '0', [SIDECAR_ENV.host]: '127.0.0.1', [SIDECAR_ENV.tokensDir]: tokens.dir }
    : { [MAIN_ENV.port]: '0', [MAIN_ENV.host]: '127.0.0.1' };
}

/** Exit 2 and one line naming `name`; `afterStart` allows the JSON log lines of a start that got as far as binding. */
async function expectRefused(app: AppName, env: Record<string, string>, name: string, afterStart = false): Promise<void> {
  const { code, output } = await runToExit(app, { ...baseEnv(app), ...env });
  const lines = output
    .trim()
    .split('\n')
    .filter((l) => !(afterStart && l.startsWith('{')));
  expect({ code, lines: lines.length }).toEqual({ code: 2, lines: 1 });
  expect(lines[0].slice(0, app.length + name.length + 4)).toBe(`${app}: ${name}: `);
  expect(output).not.toMatch(/\n\s+at /);
}

describe('the table covers the contract', () => {
  it('has invalid values for every SIDECAR_* and MAIN_* variable', () => {
    expect(Object.keys(SIDECAR_BAD).sort()).toEqual(Object.values(SIDECAR_ENV).sort());
    expect(Object.keys(MAIN_BAD).sort()).toEqual(Object.values(MAIN_ENV).sort());
    for (const values of [...Object.values(SIDECAR_BAD), ...Object.values(MAIN_BAD)]) expect(values.length).toBeGreaterThanOrEqual(2);
  });

  it('the base settings alone start both apps (so a refusal below is the bad value\'s doing)', async () => {
    for (const app of ['sidecar', 'main'] as const) {
      const running = await startApp(app, { env: baseEnv(app) });
      // SIGKILL: a graceful stop would wait out the default drain delays for nothing.
      await running.stop('SIGKILL');
    }
  });
});

const cases = (app: AppName, table: Record<string, string[]>): [AppName, string, string][] =>
  Object.entries(table).flatMap(([name, values]) => values.map((v) => [app, name, v] as [AppName, string, string]));

describe('every invalid value is refused by the config loader, naming the variable', () => {
  it.each([...cases('sidecar', SIDECAR_BAD), ...cases('main', MAIN_BAD)])('%s: %s=%j', (app, name, value) => {
    const load = app === 'sidecar' ? loadSidecarConfig : loadMainConfig;
    let error: unknown;
    try {
      load({ ...baseEnv(app), [name]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(Error);
    const e = error as Error & { variable?: string };
    expect(e.name).toBe('ConfigError');
    expect(e.variable).toBe(name);
    expect(e.message.startsWith(`${name}: `)).toBe(true);
    expect(e.message).not.toContain('\n');
  });
});

describe('the compiled apps stop with exit code 2 and one line naming the variable', () => {
  // One value per variable through the real process: the loader above covers the rest.
  it.concurrent.each([
    ...Object.entries(SIDECAR_BAD).map(([name, values]) => ['sidecar', name, values[0]] as [AppName, string, string]),
    ...Object.entries(MAIN_BAD).map(([name, values]) => ['main', name, values[0]] as [AppName, string, string]),
  ])('%s: %s=%j', async (app, name, value) => {
    await expectRefused(app, { [name]: value }, name);
  });
});

describe('combinations that are only invalid together name the variable to change', () => {
  it('sidecar: the same proxy and admin port', async () => {
    await expectRefused('sidecar', { [SIDECAR_ENV.port]: '18181', [SIDECAR_ENV.adminPort]: '18181' }, SIDECAR_ENV.adminPort);
  });

  it.each(['tcp', 'none'])('sidecar: a health path with SIDECAR_UPSTREAM_CHECK=%s, which asks none', async (check) => {
    await expectRefused('sidecar', { [SIDECAR_ENV.upstreamCheck]: check, [SIDECAR_ENV.upstreamHealthPath]: '/healthz' }, SIDECAR_ENV.upstreamHealthPath);
  });

  it('sidecar: a shutdown bound not longer than the drain delay', async () => {
    await expectRefused('sidecar', { [SIDECAR_ENV.drainDelayMs]: '3000', [SIDECAR_ENV.shutdownTimeoutMs]: '3000' }, SIDECAR_ENV.shutdownTimeoutMs);
  });
});

describe('values that are well-formed but unusable at bind time', () => {
  let blocker: net.Server;
  let takenPort: number;

  beforeAll(async () => {
    blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    takenPort = (blocker.address() as net.AddressInfo).port;
  });

  afterAll(() => new Promise<void>((r) => blocker.close(() => r())));

  it('sidecar: a proxy port already in use names SIDECAR_PORT', async () => {
    await expectRefused('sidecar', { [SIDECAR_ENV.port]: String(takenPort) }, SIDECAR_ENV.port, true);
  });

  it('sidecar: an admin port already in use names SIDECAR_ADMIN_PORT', async () => {
    await expectRefused('sidecar', { [SIDECAR_ENV.adminPort]: String(takenPort) }, SIDECAR_ENV.adminPort, true);
  });

  it('sidecar: a host name that does not resolve names SIDECAR_HOST', async () => {
    await expectRefused('sidecar', { [SIDECAR_ENV.host]: 'no-such-host.invalid' }, SIDECAR_ENV.host, true);
  });

  it('sidecar: an address that is not on this machine names SIDECAR_HOST', async () => {
    // TEST-NET-1 (RFC 5737): never a local address.
    await expectRefused('sidecar', { [SIDECAR_ENV.host]: '192.0.2.1' }, SIDECAR_ENV.host, true);
  });

  it('main: a host name that does not resolve names MAIN_HOST', async () => {
    await expectRefused('main', { [MAIN_ENV.host]: 'no-such-host.invalid' }, MAIN_ENV.host);
  });

  it('main: a port already in use names MAIN_PORT', async () => {
    await expectRefused('main', { [MAIN_ENV.port]: String(takenPort) }, MAIN_ENV.port);
  });
});
