/**
 * In-process unit tests of the two config loaders (issue 9 §3): the accepted side, with exact parsed
 * values. The refused side, one table of bad values per variable, is test/config-errors.test.ts.
 */
import * as http from 'http';
import * as path from 'path';
import { MAIN_ENV, SIDECAR_ENV } from '../../lib/src/contract';
import { ConfigError as MainConfigError, loadConfig as loadMainConfig } from '../../apps/main/src/config';
import { ConfigError, loadConfig as loadSidecarConfig, upstreamAddressOf } from '../../apps/sidecar/src/config';
import type { SidecarConfig } from '../../apps/sidecar/src/config';

const TOKENS = '/var/run/secrets/sidecar/tokens';
const REQUIRED = { [SIDECAR_ENV.tokensDir]: TOKENS };

/** The config as plain data: the URL by its href (jest does not compare URL objects by value). */
function plain(cfg: SidecarConfig): Record<string, unknown> {
  const { upstream, ...rest } = cfg;
  return { ...rest, upstream: upstream.href };
}

/** The ConfigError `load` throws, or a failure. */
function refusal<E extends Error>(load: () => unknown, type: new (...args: never[]) => E): E {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(type);
    return err as E;
  }
  throw new Error('expected a ConfigError, got a config');
}

const SIDECAR_DEFAULT_CONFIG = {
  host: '0.0.0.0',
  port: 8081,
  adminPort: 9091,
  upstream: 'http://127.0.0.1:8080/',
  upstreamAddress: { hostname: '127.0.0.1', port: 8080, authority: '127.0.0.1:8080' },
  tokensDir: TOKENS,
  credentialSources: ['tokens'],
  routes: { rules: [], default: 'authenticated' },
  upstreamCheck: 'http',
  upstreamHealthPath: '/healthz',
  upstreamTimeoutMs: 15_000,
  upstreamIdleTimeoutMs: 4_000,
  headersTimeoutMs: 10_000,
  drainDelayMs: 5_000,
  shutdownTimeoutMs: 33_000,
  forwardAuthorization: false,
  trustedProxyHops: 0,
  realm: 'sidecar',
  tokensPollIntervalMs: 2_000,
  logLevel: 'info',
  jwtIssuers: [],
  kubernetesAuth: undefined,
  drainHook: false,
  jwtCacheBytes: 8 * 1024 * 1024,
};

describe('sidecar loadConfig', () => {
  it('defaults for everything but the tokens directory', () => {
    const cfg = loadSidecarConfig(REQUIRED);
    expect(plain(cfg)).toEqual(SIDECAR_DEFAULT_CONFIG);
    expect(cfg.upstream).toBeInstanceOf(URL);
  });

  it('an empty value is unset: every variable "" but the tokens directory gives the defaults', () => {
    const env: Record<string, string> = Object.fromEntries(Object.values(SIDECAR_ENV).map((name) => [name, '']));
    expect(plain(loadSidecarConfig({ ...env, ...REQUIRED }))).toEqual(SIDECAR_DEFAULT_CONFIG);
  });

  it('ignores variables that are not its own, and refuses an unknown one of its own prefix (issue 19)', () => {
    expect(plain(loadSidecarConfig({ ...REQUIRED, MAIN_PORT: '1', PATH: '/bin' }))).toEqual(SIDECAR_DEFAULT_CONFIG);
    expect(() => loadSidecarConfig({ ...REQUIRED, SIDECAR_PORTS: 'x' })).toThrow(/^SIDECAR_PORTS: is not a setting of the sidecar; did you mean SIDECAR_PORT\? /);
  });

  it('parses every variable', () => {
    const cfg = loadSidecarConfig({
      [SIDECAR_ENV.port]: '8000',
      [SIDECAR_ENV.host]: '::',
      [SIDECAR_ENV.upstream]: 'http://[::1]:9000',
      [SIDECAR_ENV.tokensDir]: '/etc/tokens',
      [SIDECAR_ENV.adminPort]: '9001',
      [SIDECAR_ENV.publicPaths]: '/version,/ping,/a:b',
      [SIDECAR_ENV.upstreamHealthPath]: '/ready/z',
      [SIDECAR_ENV.upstreamCheck]: 'http',
      [SIDECAR_ENV.upstreamTimeoutMs]: '2700000',
      [SIDECAR_ENV.upstreamIdleTimeoutMs]: '1',
      [SIDECAR_ENV.headersTimeoutMs]: '600000',
      [SIDECAR_ENV.drainDelayMs]: '0',
      [SIDECAR_ENV.shutdownTimeoutMs]: '1',
      [SIDECAR_ENV.forwardAuthorization]: 'true',
      [SIDECAR_ENV.trustedProxyHops]: '2',
      [SIDECAR_ENV.realm]: "my realm !~'",
      [SIDECAR_ENV.tokensPollIntervalMs]: '50',
      [SIDECAR_ENV.logLevel]: 'trace',
      [SIDECAR_ENV.drainHook]: 'true',
      [SIDECAR_ENV.jwtIssuers]: '[{"name":"idp","issuer":"https://idp.example","audiences":["api"],"jwksFile":"/etc/jwks/idp.json"}]',
      [SIDECAR_ENV.jwtCacheBytes]: '0',
    });
    expect(plain(cfg)).toEqual({
      host: '::',
      port: 8000,
      adminPort: 9001,
      upstream: 'http://[::1]:9000/',
      upstreamAddress: { hostname: '::1', port: 9000, authority: '[::1]:9000' },
      tokensDir: '/etc/tokens',
      credentialSources: ['tokens', 'jwt:idp'],
      routes: {
        rules: [
          { path: '/version', effect: 'public' },
          { path: '/ping', effect: 'public' },
          { path: '/a:b', effect: 'public' },
        ],
        default: 'authenticated',
      },
      upstreamCheck: 'http',
      upstreamHealthPath: '/ready/z',
      upstreamTimeoutMs: 2_700_000,
      upstreamIdleTimeoutMs: 1,
      headersTimeoutMs: 600_000,
      drainDelayMs: 0,
      shutdownTimeoutMs: 1,
      forwardAuthorization: true,
      trustedProxyHops: 2,
      realm: "my realm !~'",
      tokensPollIntervalMs: 50,
      logLevel: 'trace',
      drainHook: true,
      jwtIssuers: [
        {
          name: 'idp',
          issuer: 'https://idp.example',
          audiences: ['api'],
          jwksFile: '/etc/jwks/idp.json',
          algorithms: ['RS256', 'ES256', 'EdDSA'],
          clockSkewSeconds: 30,
          maxLifetimeSeconds: undefined,
          subjectClaim: 'sub',
          forwardClaims: [],
          tokenTypes: ['', 'JWT', 'at+jwt'],
        },
      ],
      jwtCacheBytes: 0,
    });
  });

  it.each([
    [SIDECAR_ENV.port, '0', 'port', 0],
    [SIDECAR_ENV.port, '65535', 'port', 65_535],
    [SIDECAR_ENV.adminPort, '1', 'adminPort', 1],
    [SIDECAR_ENV.upstreamTimeoutMs, '1', 'upstreamTimeoutMs', 1],
    [SIDECAR_ENV.upstreamIdleTimeoutMs, '600000', 'upstreamIdleTimeoutMs', 600_000],
    [SIDECAR_ENV.headersTimeoutMs, '1', 'headersTimeoutMs', 1],
    [SIDECAR_ENV.drainDelayMs, '0', 'drainDelayMs', 0],
    [SIDECAR_ENV.shutdownTimeoutMs, '3598000', 'shutdownTimeoutMs', 3_598_000],
    [SIDECAR_ENV.tokensPollIntervalMs, '3600000', 'tokensPollIntervalMs', 3_600_000],
    [SIDECAR_ENV.forwardAuthorization, 'false', 'forwardAuthorization', false],
    [SIDECAR_ENV.trustedProxyHops, '0', 'trustedProxyHops', 0],
    [SIDECAR_ENV.trustedProxyHops, '10', 'trustedProxyHops', 10],
    [SIDECAR_ENV.jwtCacheBytes, '1073741824', 'jwtCacheBytes', 1_073_741_824],
    [SIDECAR_ENV.logLevel, 'silent', 'logLevel', 'silent'],
    [SIDECAR_ENV.host, '127.0.0.1', 'host', '127.0.0.1'],
    [SIDECAR_ENV.host, 'localhost', 'host', 'localhost'],
    [SIDECAR_ENV.realm, 'r'.repeat(128), 'realm', 'r'.repeat(128)],
    [SIDECAR_ENV.realm, ' ', 'realm', ' '],
    [SIDECAR_ENV.upstreamHealthPath, '/', 'upstreamHealthPath', '/'],
    [SIDECAR_ENV.upstreamHealthPath, '/a,b', 'upstreamHealthPath', '/a,b'],
  ])('%s=%j → %s %j', (name, value, field, expected) => {
    const cfg = loadSidecarConfig({ ...REQUIRED, [name]: value }) as unknown as Record<string, unknown>;
    expect(cfg[field]).toEqual(expected);
    // Nothing else moved.
    expect({ ...plain(cfg as unknown as SidecarConfig), [field]: undefined }).toEqual({ ...SIDECAR_DEFAULT_CONFIG, [field]: undefined });
  });

  it('keeps the public paths as exact public rules, exactly as listed', () => {
    const cfg = loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.publicPaths]: '/Version,/version' });
    expect(cfg.routes).toEqual({
      rules: [
        { path: '/Version', effect: 'public' },
        { path: '/version', effect: 'public' },
      ],
      default: 'authenticated',
    });
  });

  it('reads SIDECAR_ROUTES with the configured JWT issuer names, defaults applied', () => {
    const issuers = '[{"name":"idp","issuer":"https://idp.example","audiences":["api"],"jwksFile":"/etc/jwks/idp.json"}]';
    const routes = '{"rules":[{"path":"/api/*","methods":["GET"],"effect":"subjects","claims":[{"issuer":"idp","claim":"groups","value":"ops"}]}]}';
    const cfg = loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.jwtIssuers]: issuers, [SIDECAR_ENV.routes]: routes });
    expect(cfg.routes).toEqual({
      rules: [{ path: '/api/*', methods: ['GET'], effect: 'subjects', claims: [{ issuer: 'idp', claim: 'groups', value: 'ops' }] }],
      default: 'authenticated',
    });
    // Without the issuer, its claim rule is refused, naming the variable.
    const err = refusal(() => loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.routes]: routes }), ConfigError);
    expect(err.message).toBe(`${SIDECAR_ENV.routes}: rule 1 (/api/*) claims issuer "idp" is no configured JWT issuer (none is configured)`);
  });

  it('refuses SIDECAR_ROUTES and SIDECAR_PUBLIC_PATHS together, naming both', () => {
    const err = refusal(
      () => loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.publicPaths]: '/version', [SIDECAR_ENV.routes]: '{"rules":[{"path":"/x","effect":"public"}]}' }),
      ConfigError,
    );
    expect(err.variable).toBe(SIDECAR_ENV.routes);
    expect(err.message).toContain(SIDECAR_ENV.publicPaths);
  });

  it('refuses a public path that is not canonical or holds a *, naming SIDECAR_PUBLIC_PATHS', () => {
    for (const paths of ['/a;b', '/version,//x', '/api/*', '/a/../b']) {
      expect(refusal(() => loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.publicPaths]: paths }), ConfigError).variable).toBe(SIDECAR_ENV.publicPaths);
    }
  });

  it('resolves the tokens directory to an absolute path', () => {
    expect(loadSidecarConfig({ [SIDECAR_ENV.tokensDir]: 'tokens' }).tokensDir).toBe(path.join(process.cwd(), 'tokens'));
    expect(loadSidecarConfig({ [SIDECAR_ENV.tokensDir]: '/a/../b/./c/' }).tokensDir).toBe('/b/c');
    expect(loadSidecarConfig({ [SIDECAR_ENV.tokensDir]: '/t\u00f6kens dir' }).tokensDir).toBe('/t\u00f6kens dir');
  });

  it('requires the tokens directory (unset or empty) when no other credential source is set', () => {
    const reason = 'is required when neither SIDECAR_JWT_ISSUERS nor SIDECAR_KUBERNETES_AUTH is set (the sidecar would have no credential source): the directory holding one file per token';
    for (const env of [{}, { [SIDECAR_ENV.tokensDir]: '' }]) {
      const e = refusal(() => loadSidecarConfig(env), ConfigError);
      expect([e.name, e.variable, e.reason, e.message]).toEqual(['ConfigError', 'SIDECAR_TOKENS_DIR', reason, `SIDECAR_TOKENS_DIR: ${reason}`]);
    }
  });

  describe('upstream', () => {
    it.each([
      ['http://127.0.0.1:8080', 'http://127.0.0.1:8080/', { hostname: '127.0.0.1', port: 8080, authority: '127.0.0.1:8080' }],
      ['http://localhost:3000/', 'http://localhost:3000/', { hostname: 'localhost', port: 3000, authority: 'localhost:3000' }],
      ['HTTP://Main.Example:8080', 'http://main.example:8080/', { hostname: 'main.example', port: 8080, authority: 'main.example:8080' }],
      ['http://[::1]:8080', 'http://[::1]:8080/', { hostname: '::1', port: 8080, authority: '[::1]:8080' }],
      ['http://[0:0:0:0:0:0:0:1]:8080', 'http://[::1]:8080/', { hostname: '::1', port: 8080, authority: '[::1]:8080' }],
      ['http://[fe80::1]:1', 'http://[fe80::1]:1/', { hostname: 'fe80::1', port: 1, authority: '[fe80::1]:1' }],
      ['http://10.0.0.1:65535', 'http://10.0.0.1:65535/', { hostname: '10.0.0.1', port: 65_535, authority: '10.0.0.1:65535' }],
      ['http://127.0.0.1:08080', 'http://127.0.0.1:8080/', { hostname: '127.0.0.1', port: 8080, authority: '127.0.0.1:8080' }],
    ])('%s → %s %j', (value, href, address) => {
      const cfg = loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.upstream]: value });
      expect(cfg.upstream.href).toBe(href);
      expect(cfg.upstreamAddress).toEqual(address);
      expect(upstreamAddressOf(cfg.upstream)).toEqual(address);
    });

    it('upstreamAddressOf strips the brackets of an IPv6 literal only', () => {
      expect(upstreamAddressOf(new URL('http://[::1]:8080'))).toEqual({ hostname: '::1', port: 8080, authority: '[::1]:8080' });
      expect(upstreamAddressOf(new URL('http://[::ffff:127.0.0.1]:81'))).toEqual({ hostname: '::ffff:7f00:1', port: 81, authority: '[::ffff:7f00:1]:81' });
      expect(upstreamAddressOf(new URL('http://main:81'))).toEqual({ hostname: 'main', port: 81, authority: 'main:81' });
    });

    // Was a bug: URL elides the scheme's default port, so for an explicit :80 url.port is '' and
    // upstreamAddressOf gives port Number('') = 0 (and authority '127.0.0.1'). The loader accepts
    // http://127.0.0.1:80 (the port must be explicit, and 80 is one), so UpstreamAddress.port, "a
    // socket address", is 0. Today only http.request reads it, and it treats port 0 as its default 80,
    // which hides the bug; any net.connect-style use would dial port 0.
    it('an explicit :80 upstream gives port 80', () => {
      const cfg = loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.upstream]: 'http://127.0.0.1:80' });
      expect(cfg.upstreamAddress.port).toBe(80);
    });
  });

  describe('combination rules', () => {
    it('the proxy and admin ports must differ', () => {
      const e = refusal(() => loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.port]: '9000', [SIDECAR_ENV.adminPort]: '9000' }), ConfigError);
      expect([e.variable, e.message]).toEqual(['SIDECAR_ADMIN_PORT', 'SIDECAR_ADMIN_PORT: must differ from SIDECAR_PORT (9000)']);
    });

    it('the admin port may not take the default proxy port either', () => {
      const e = refusal(() => loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.adminPort]: '8081' }), ConfigError);
      expect(e.message).toBe('SIDECAR_ADMIN_PORT: must differ from SIDECAR_PORT (8081)');
    });

    it('both on port 0 (any free port) is fine', () => {
      const cfg = loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.port]: '0', [SIDECAR_ENV.adminPort]: '0' });
      expect([cfg.port, cfg.adminPort]).toEqual([0, 0]);
    });

    it('the shutdown bound must be longer than the drain delay', () => {
      const e = refusal(() => loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.drainDelayMs]: '3000', [SIDECAR_ENV.shutdownTimeoutMs]: '3000' }), ConfigError);
      expect([e.variable, e.reason]).toEqual(['SIDECAR_SHUTDOWN_TIMEOUT_MS', 'must be longer than SIDECAR_DRAIN_DELAY_MS (3000 ms)']);
      const ok = loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.drainDelayMs]: '3000', [SIDECAR_ENV.shutdownTimeoutMs]: '3001' });
      expect([ok.drainDelayMs, ok.shutdownTimeoutMs]).toEqual([3_000, 3_001]);
    });

    it('without a shutdown bound, a long drain gets one that fits it (standalone timing budget)', () => {
      // Grace stretched to preStop 5 + ceil((33000 + 15000) / 1000) + 5 = 58 s; bound = (58 - 5 - 2) s.
      const cfg = loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.drainDelayMs]: '33000' });
      expect([cfg.drainDelayMs, cfg.shutdownTimeoutMs]).toEqual([33_000, 51_000]);
      // Short drains keep the default pod's bound: (40 - 5 - 2) s.
      expect(loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.drainDelayMs]: '200' }).shutdownTimeoutMs).toBe(33_000);
    });
  });

  // Was a bug: the path rule let through characters Node's http client refuses in a request path
  // (ERR_UNESCAPED_CHARACTERS), so /readyz answered 500 forever instead of start-up naming the variable.
  it('a health path the readiness check cannot send is refused at start-up', () => {
    expect(() => loadSidecarConfig({ ...REQUIRED, [SIDECAR_ENV.upstreamHealthPath]: '/gesundheit\u20ac' })).toThrow(ConfigError);
  });

  it("(the premise of the case above: Node's http client refuses that path)", () => {
    let code: unknown;
    try {
      const req = http.request({ host: '127.0.0.1', port: 9, path: '/gesundheit\u20ac' });
      req.on('error', () => undefined);
      req.destroy();
    } catch (err) {
      code = (err as NodeJS.ErrnoException).code;
    }
    expect(code).toBe('ERR_UNESCAPED_CHARACTERS');
  });
});

describe('main loadConfig', () => {
  const DEFAULTS = { port: 8080, host: '0.0.0.0', drainDelayMs: 10_000, keepAliveTimeoutMs: 65_000, logLevel: 'info' };

  it('defaults when the environment is empty', () => {
    expect(loadMainConfig({})).toEqual(DEFAULTS);
  });

  it('an empty value is unset', () => {
    expect(loadMainConfig(Object.fromEntries(Object.values(MAIN_ENV).map((name) => [name, ''])))).toEqual(DEFAULTS);
  });

  it('ignores the sidecar variables', () => {
    expect(loadMainConfig({ SIDECAR_PORT: '1', SIDECAR_HOST: 'x y' })).toEqual(DEFAULTS);
  });

  it('parses every variable', () => {
    expect(
      loadMainConfig({
        [MAIN_ENV.port]: '0',
        [MAIN_ENV.host]: '::1',
        [MAIN_ENV.drainDelayMs]: '0',
        [MAIN_ENV.keepAliveTimeoutMs]: '2147482647',
        [MAIN_ENV.logLevel]: 'silent',
      }),
    ).toEqual({ port: 0, host: '::1', drainDelayMs: 0, keepAliveTimeoutMs: 2_147_482_647, logLevel: 'silent' });
  });

  it.each([
    [MAIN_ENV.port, '65535', 'port', 65_535],
    [MAIN_ENV.host, 'main.example', 'host', 'main.example'],
    [MAIN_ENV.host, '127.0.0.1', 'host', '127.0.0.1'],
    [MAIN_ENV.drainDelayMs, '2147483647', 'drainDelayMs', 2_147_483_647],
    [MAIN_ENV.keepAliveTimeoutMs, '1', 'keepAliveTimeoutMs', 1],
    [MAIN_ENV.logLevel, 'debug', 'logLevel', 'debug'],
  ])('%s=%j → %s %j', (name, value, field, expected) => {
    expect(loadMainConfig({ [name]: value })).toEqual({ ...DEFAULTS, [field]: expected });
  });

  it('a bad value throws its own ConfigError naming the variable', () => {
    const e = refusal(() => loadMainConfig({ [MAIN_ENV.keepAliveTimeoutMs]: '0' }), MainConfigError);
    expect([e.name, e.variable, e.message]).toEqual(['ConfigError', 'MAIN_KEEPALIVE_TIMEOUT_MS', 'MAIN_KEEPALIVE_TIMEOUT_MS: must be an integer in 1..2147482647, got 0']);
  });
});
