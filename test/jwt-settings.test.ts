/**
 * The contract's rule of SIDECAR_JWT_ISSUERS, in-process: what parseJwtIssuers accepts (with its
 * defaults), what it refuses and how it says so, and that encodeJwtIssuers round-trips.
 */
import { ConfigError, DEFAULT_JWT_ALGORITHMS, SIDECAR_ENV, encodeJwtIssuers, encodeKubernetesAuth, jwtIssuersProblem, parseJwtIssuers, parseKubernetesAuth } from '../lib/src/contract';
import type { JwtIssuerSpec } from '../lib/src/contract';
import { loadConfig } from '../apps/sidecar/src/config';

const BASE: JwtIssuerSpec = { name: 'idp', issuer: 'https://idp.example', audiences: ['api'], jwksFile: '/etc/jwks/idp.json' };
const one = (over: Record<string, unknown>) => JSON.stringify([{ ...BASE, ...over }]);
/** An issuer whose keys come from a URL. */
const url = (over: Record<string, unknown>) => JSON.stringify([{ ...BASE, jwksFile: undefined, jwksUrl: 'https://idp.example/jwks', ...over }]);
const hmac = (over: Record<string, unknown>) => one({ jwksFile: undefined, hmacSecretFile: '/var/run/secrets/idp/secret', ...over });

describe('parseJwtIssuers accepts', () => {
  it('the required fields alone, with the defaults applied', () => {
    expect(parseJwtIssuers(JSON.stringify([BASE]))).toEqual({
      ok: true,
      value: [{ ...BASE, algorithms: [...DEFAULT_JWT_ALGORITHMS], clockSkewSeconds: 30, maxLifetimeSeconds: undefined, subjectClaim: 'sub', forwardClaims: [], tokenTypes: ['', 'JWT', 'at+jwt'] }],
    });
    expect(DEFAULT_JWT_ALGORITHMS).toEqual(['RS256', 'ES256', 'EdDSA']);
  });

  it('every optional field, and several issuers', () => {
    const full = { ...BASE, algorithms: ['PS256', 'ES512'], clockSkewSeconds: 0, maxLifetimeSeconds: 3600, subjectClaim: 'email', forwardClaims: ['groups', 'email'], tokenTypes: ['at+jwt'] };
    const second = { ...BASE, name: 'b.2_x', issuer: 'urn:other', audiences: ['x', 'y'], clockSkewSeconds: 300 };
    const parsed = parseJwtIssuers(JSON.stringify([full, second]));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value[0]).toEqual(full);
    expect(parsed.value[1]).toMatchObject({ name: 'b.2_x', clockSkewSeconds: 300, algorithms: ['RS256', 'ES256', 'EdDSA'] });
  });

  it('a jwksUrl instead of jwksFile: refreshSeconds defaults to 300, caFile is optional', () => {
    const parsed = parseJwtIssuers(url({}));
    expect(parsed.ok && parsed.value[0]).toMatchObject({ jwksFile: undefined, jwksUrl: 'https://idp.example/jwks', caFile: undefined, refreshSeconds: 300 });
    const full = parseJwtIssuers(url({ caFile: '/var/run/secrets/ca.crt', refreshSeconds: 30 }));
    expect(full.ok && full.value[0]).toMatchObject({ caFile: '/var/run/secrets/ca.crt', refreshSeconds: 30 });
    // A file issuer gets no refresh interval: its file is watched.
    const file = parseJwtIssuers(one({}));
    expect(file.ok && file.value[0].refreshSeconds).toBeUndefined();
  });

  it('round-trips through encodeJwtIssuers; an empty list encodes to no value', () => {
    const specs: JwtIssuerSpec[] = [BASE, { ...BASE, name: 'two', issuer: 'https://two.example', maxLifetimeSeconds: 60 }];
    const text = encodeJwtIssuers(specs)!;
    expect(jwtIssuersProblem(specs)).toBeUndefined();
    const parsed = parseJwtIssuers(text);
    expect(parsed.ok && parsed.value.map((i) => [i.name, i.maxLifetimeSeconds])).toEqual([
      ['idp', undefined],
      ['two', 60],
    ]);
    expect(encodeJwtIssuers([])).toBeUndefined();
  });
});

describe('parseJwtIssuers refuses, saying which issuer and why', () => {
  it.each([
    ['not JSON', 'x', /must be a JSON list/],
    ['an object, not a list', JSON.stringify(BASE), /must be a JSON list/],
    ['an empty list', '[]', /lists no issuer/],
    ['too many issuers', JSON.stringify(Array.from({ length: 17 }, (_, i) => ({ ...BASE, name: `i${i}`, issuer: `iss${i}` }))), /at most 16/],
    ['an entry that is no object', '[1]', /issuer 1: must be an object/],
    ['an unknown field', one({ jwksUri: 'https://x' }), /issuer 1 \("idp"\): has an unknown field "jwksUri"/],
    ['both jwksFile and jwksUrl', one({ jwksUrl: 'https://idp.example/jwks' }), /issuer 1 \("idp"\): must have exactly one of jwksFile, jwksUrl and hmacSecretFile/],
    ['neither jwksFile nor jwksUrl', one({ jwksFile: undefined }), /must have exactly one of jwksFile, jwksUrl and hmacSecretFile/],
    ['an http: jwksUrl', url({ jwksUrl: 'http://idp.example/jwks' }), /issuer 1 \("idp"\): jwksUrl must be an https: URL/],
    ['a jwksUrl that is no URL', url({ jwksUrl: 'idp.example/jwks' }), /jwksUrl must be an https: URL/],
    ['a jwksUrl with credentials', url({ jwksUrl: 'https://u:p@idp.example/jwks' }), /jwksUrl must not carry credentials/],
    ['a jwksUrl with a fragment', url({ jwksUrl: 'https://idp.example/jwks#x' }), /jwksUrl must not have a fragment/],
    ['a relative caFile', url({ caFile: 'ca.pem' }), /caFile must be an absolute path/],
    ['caFile with jwksFile', one({ caFile: '/ca.pem' }), /caFile goes with jwksUrl/],
    ['refreshSeconds with jwksFile', one({ refreshSeconds: 60 }), /refreshSeconds goes with jwksUrl/],
    ['refreshSeconds under 30', url({ refreshSeconds: 29 }), /refreshSeconds must be an integer in 30\.\.86400, got 29/],
    ['a missing name', JSON.stringify([{ ...BASE, name: undefined }]), /name must be/],
    ['a name with a colon (the subject separator)', one({ name: 'a:b' }), /name must be/],
    ['a name starting with a dot', one({ name: '.idp' }), /name must be/],
    ['an empty issuer', one({ issuer: '' }), /issuer must be 1-1024 printable/],
    ['an issuer with a newline', one({ issuer: 'https://a\nb' }), /issuer must be/],
    ['no audiences', one({ audiences: [] }), /audiences must be a list of 1-16/],
    ['a string audience', one({ audiences: 'api' }), /audiences must be a list/],
    ['a non-string audience', one({ audiences: [1] }), /audiences entries must be/],
    ['an audience twice', one({ audiences: ['a', 'a'] }), /audience twice/],
    ['a relative jwksFile', one({ jwksFile: 'jwks.json' }), /jwksFile must be an absolute path/],
    ['a jwksFile with a control character', one({ jwksFile: '/etc/jw\u0001ks' }), /jwksFile must be/],
    ['alg none', one({ algorithms: ['none'] }), /must not list "none"/],
    ['alg NONE', one({ algorithms: ['RS256', 'NONE'] }), /must not list "none"/],
    ['HMAC with a key set', one({ algorithms: ['HS256'] }), /HMAC needs a shared secret \(hmacSecretFile\), never a key set's public key/],
    ['an unknown alg', one({ algorithms: ['RS1'] }), /algorithms entries must be one of RS256/],
    ['an empty algorithms list', one({ algorithms: [] }), /algorithms must be a non-empty list/],
    ['an alg twice', one({ algorithms: ['RS256', 'RS256'] }), /algorithm twice/],
    ['a skew over 300', one({ clockSkewSeconds: 301 }), /clockSkewSeconds must be an integer in 0..300, got 301/],
    ['a fractional skew', one({ clockSkewSeconds: 1.5 }), /clockSkewSeconds must be an integer/],
    ['a skew as a string', one({ clockSkewSeconds: '30' }), /clockSkewSeconds must be an integer in 0..300, got string/],
    ['a max lifetime of 0', one({ maxLifetimeSeconds: 0 }), /maxLifetimeSeconds must be an integer in 1\.\./],
    ['a subject claim with a space', one({ subjectClaim: 'my claim' }), /subjectClaim must be/],
    ['the reserved name kubernetes', one({ name: 'kubernetes' }), /name "kubernetes" is reserved/],
    ['the reserved name System (any case)', one({ name: 'System' }), /name "System" is reserved/],
    ['hmacSecretFile with jwksFile', one({ hmacSecretFile: '/s/secret' }), /exactly one of jwksFile, jwksUrl and hmacSecretFile/],
    ['a relative hmacSecretFile', hmac({ hmacSecretFile: 'secret' }), /hmacSecretFile must be an absolute path/],
    ['an asymmetric alg with hmacSecretFile', hmac({ algorithms: ['HS256', 'RS256'] }), /must not list "RS256": an issuer with hmacSecretFile verifies HMAC/],
    ['none with hmacSecretFile', hmac({ algorithms: ['none'] }), /must not list "none"/],
    ['caFile with hmacSecretFile', hmac({ caFile: '/ca.pem' }), /caFile goes with jwksUrl, not hmacSecretFile/],
    ['forwardClaims empty', one({ forwardClaims: [] }), /forwardClaims must be a list of 1-16/],
    ['forwardClaims with a space', one({ forwardClaims: ['my claim'] }), /forwardClaims entries must be claim names/],
    ['forwardClaims sharing a header', one({ forwardClaims: ['Group', 'group'] }), /forwardClaims "Group" and "group" would share one header/],
    ['forwardClaims folding alike', one({ forwardClaims: ['a.b', 'a-b'] }), /would share one header \(x-auth-claim-a-b\)/],
    ['tokenTypes not a list', one({ tokenTypes: 'at+jwt' }), /issuer 1 \("idp"\): tokenTypes must be a list of 1-8 header typ values \("" for none\)/],
    ['tokenTypes empty', one({ tokenTypes: [] }), /tokenTypes must be a list of 1-8/],
    ['tokenTypes over 8', one({ tokenTypes: ['', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] }), /tokenTypes must be a list of 1-8/],
    ['a tokenTypes entry with a space', one({ tokenTypes: ['at jwt'] }), /issuer 1 \("idp"\): tokenTypes entries must be "" \(no typ\) or a media type such as "at\+jwt", got "at jwt"/],
    ['a tokenTypes entry that is no string', one({ tokenTypes: [null] }), /tokenTypes entries must be .*, got object/],
    ['a tokenTypes entry of application/ alone', one({ tokenTypes: ['application/'] }), /tokenTypes entries must be .*, got "application\/"/],
    ['a tokenTypes entry with a control character', one({ tokenTypes: ['at+jwt\n'] }), /tokenTypes entries must be/],
    ['a tokenTypes entry of 65 characters', one({ tokenTypes: ['a'.repeat(65)] }), /tokenTypes entries must be/],
    ['a token type twice in two cases', one({ tokenTypes: ['JWT', 'jwt'] }), /tokenTypes "JWT" and "jwt" are the same type/],
    ['a token type twice, once with application/', one({ tokenTypes: ['at+jwt', 'application/AT+JWT'] }), /tokenTypes "at\+jwt" and "application\/AT\+JWT" are the same type/],
    ['no typ listed twice', one({ tokenTypes: ['', ''] }), /tokenTypes "" and "" are the same type/],
    ['two issuers with one name', JSON.stringify([BASE, { ...BASE, issuer: 'https://b' }]), /issuer 2 \("idp"\): name "idp" is used twice/],
    ['two issuers with one iss', JSON.stringify([BASE, { ...BASE, name: 'b' }]), /issuer 2 \("b"\): issuer "https:\/\/idp.example" is listed twice/],
  ])('%s', (_what, text, message) => {
    const parsed = parseJwtIssuers(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.problem).toMatch(message);
      expect(parsed.problem).not.toContain('\n');
    }
  });

  it('through the sidecar config loader: a ConfigError naming SIDECAR_JWT_ISSUERS', () => {
    let error: unknown;
    try {
      loadConfig({ [SIDECAR_ENV.tokensDir]: '/tmp', [SIDECAR_ENV.jwtIssuers]: one({ algorithms: ['none'] }) });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('SIDECAR_JWT_ISSUERS');
    expect((error as Error).message).toMatch(/^SIDECAR_JWT_ISSUERS: issuer 1 \("idp"\): algorithms must not list "none"/);
  });

  it('a bad tokenTypes through the sidecar config loader: one line naming SIDECAR_JWT_ISSUERS, the issuer and the field', () => {
    expect(() => loadConfig({ [SIDECAR_ENV.tokensDir]: '/tmp', [SIDECAR_ENV.jwtIssuers]: one({ tokenTypes: ['id token'] }) })).toThrow(
      /^SIDECAR_JWT_ISSUERS: issuer 1 \("idp"\): tokenTypes entries must be "" \(no typ\) or a media type such as "at\+jwt", got "id token"$/,
    );
  });

  it('a long bad value is quoted short', () => {
    const parsed = parseJwtIssuers(`x${'y'.repeat(500)}`);
    expect(!parsed.ok && parsed.problem.length).toBeLessThan(200);
  });
});

describe('an HMAC issuer', () => {
  it('defaults to HS256 and keeps the secret file', () => {
    const parsed = parseJwtIssuers(hmac({}));
    expect(parsed.ok && parsed.value[0]).toMatchObject({ hmacSecretFile: '/var/run/secrets/idp/secret', jwksFile: undefined, algorithms: ['HS256'] });
  });
  it('takes HS384 and HS512 when listed', () => {
    const parsed = parseJwtIssuers(hmac({ algorithms: ['HS384', 'HS512'] }));
    expect(parsed.ok && parsed.value[0].algorithms).toEqual(['HS384', 'HS512']);
  });
});

describe('SIDECAR_KUBERNETES_AUTH', () => {
  const AUTH = { audiences: ['orders'], tokenFile: '/var/run/secrets/sidecar/kubernetes/token', caFile: '/var/run/secrets/sidecar/kubernetes/ca.crt' };
  const env = (auth: unknown, extra: Record<string, string> = {}) => ({ [SIDECAR_ENV.tokensDir]: '/tmp', [SIDECAR_ENV.kubernetesAuth]: JSON.stringify(auth), ...extra });

  it('round-trips, with the defaults applied', () => {
    const text = encodeKubernetesAuth(AUTH)!;
    expect(parseKubernetesAuth(text)).toEqual({ ok: true, value: { ...AUTH, apiServer: undefined, refreshSeconds: 300, clockSkewSeconds: 30, maxLifetimeSeconds: undefined } });
    expect(encodeKubernetesAuth(undefined)).toBeUndefined();
  });

  it.each([
    ['no audiences', { ...AUTH, audiences: [] }, /audiences must be a list of 1-16/],
    ['an unknown field', { ...AUTH, issuer: 'x' }, /unknown field "issuer"/],
    ['a relative tokenFile', { ...AUTH, tokenFile: 'token' }, /tokenFile must be an absolute path/],
    ['no caFile', { ...AUTH, caFile: undefined }, /caFile must be an absolute path/],
    ['an http: apiServer', { ...AUTH, apiServer: 'http://10.96.0.1' }, /apiServer must be an https: URL/],
    ['an apiServer with a path', { ...AUTH, apiServer: 'https://10.96.0.1/api' }, /apiServer must be a base URL/],
    ['a refresh under 30 s', { ...AUTH, refreshSeconds: 5 }, /refreshSeconds must be an integer in 30\.\./],
  ])('refuses %s', (_what, auth, message) => {
    const parsed = parseKubernetesAuth(JSON.stringify(auth));
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.problem).toMatch(message);
  });

  it('takes the API server from KUBERNETES_SERVICE_HOST and _PORT, as in-cluster clients do', () => {
    expect(loadConfig(env(AUTH, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' })).kubernetesAuth?.apiServer).toBe('https://10.96.0.1:443');
    expect(loadConfig(env(AUTH, { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' })).kubernetesAuth?.apiServer).toBe('https://[fd00::1]:6443');
    expect(loadConfig(env({ ...AUTH, apiServer: 'https://127.0.0.1:6443' })).kubernetesAuth?.apiServer).toBe('https://127.0.0.1:6443');
  });

  it('without either, stops naming the setting and the kubelet variables', () => {
    expect(() => loadConfig(env(AUTH))).toThrow(/^SIDECAR_KUBERNETES_AUTH: has no apiServer, and KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT/);
    expect(() => loadConfig(env(AUTH, { KUBERNETES_SERVICE_HOST: 'a b', KUBERNETES_SERVICE_PORT: '443' }))).toThrow(/KUBERNETES_SERVICE_HOST: and KUBERNETES_SERVICE_PORT do not make an API server URL/);
  });
});
