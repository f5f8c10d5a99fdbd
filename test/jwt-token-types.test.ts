/**
 * Explicit typing (RFC 8725 §3.11; issue 18 §3, finding 2): a JWT made for another purpose than
 * access (an ID token, a logout or refresh token) is refused as jwt_wrong_type, by its header `typ`
 * (the issuer's tokenTypes, default none/JWT/at+jwt) or by a payload `typ` that marks it as no
 * access token. Service-account tokens take KUBERNETES_JWT_TOKEN_TYPES. In-process against
 * createJwtVerifier; through the real sidecar in jwt-sidecar.test.ts.
 */
import { generateKeyPairSync } from 'crypto';
import type { KeyObject } from 'crypto';
import { DEFAULT_JWT_TOKEN_TYPES, KUBERNETES_JWT_TOKEN_TYPES, NON_ACCESS_TOKEN_PAYLOAD_TYPES, parseJwtIssuers } from '../lib/src/contract';
import type { JwtIssuer } from '../lib/src/contract';
import type { JwksKey } from '../apps/sidecar/src/jwt/keys';
import { kubernetesIssuer } from '../apps/sidecar/src/jwt/kubernetes';
import { createJwtVerifier } from '../apps/sidecar/src/jwt/verify';
import { es256KeySet, es256Token } from './support/jws';

const ISS = 'https://idp.test';
const T0 = 1_700_000_000;

let privateKey: KeyObject;
let keys: JwksKey[];

beforeAll(async () => {
  ({ privateKey, keys } = await es256KeySet());
});

function issuer(over: Record<string, unknown> = {}): JwtIssuer {
  const parsed = parseJwtIssuers(JSON.stringify([{ name: 'idp', issuer: ISS, audiences: ['api'], jwksFile: '/jwks.json', ...over }]));
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value[0];
}

/** A token that passes every other check: header typ `typ` (none when undefined), payload members `claims` added. */
function token(typ: unknown, claims: Record<string, unknown> = {}): string {
  const header = { alg: 'ES256', kid: 'k1', ...(typ === undefined ? {} : { typ }) };
  return es256Token(JSON.stringify(header), JSON.stringify({ iss: ISS, aud: 'api', sub: 'alice', exp: T0 + 60, ...claims }), privateKey);
}

const verifyWith = (i: JwtIssuer, jwt: string) => createJwtVerifier({ issuers: [i], keys: () => keys, now: () => T0 * 1000 }).verify(jwt);

describe('the default tokenTypes (none, JWT, at+jwt)', () => {
  it('are the contract default', () => {
    expect(DEFAULT_JWT_TOKEN_TYPES).toEqual(['', 'JWT', 'at+jwt']);
    expect(issuer().tokenTypes).toEqual(['', 'JWT', 'at+jwt']);
  });

  it.each([
    ['no typ', undefined],
    ['JWT', 'JWT'],
    ['jwt (media types ignore case)', 'jwt'],
    ['at+jwt (RFC 9068)', 'at+jwt'],
    ['AT+JWT', 'AT+JWT'],
    ['application/at+jwt (RFC 7515 §4.1.9)', 'application/at+jwt'],
    ['application/JWT', 'application/JWT'],
  ])('accept %s', (_what, typ) => {
    expect(verifyWith(issuer(), token(typ))).toMatchObject({ ok: true, subject: 'idp:alice' });
  });

  it.each([
    ['an ID token typed id_token+jwt', 'id_token+jwt'],
    ['a logout token (OIDC back-channel logout)', 'logout+jwt'],
    ['a DPoP proof', 'dpop+jwt'],
    ['a security event token', 'secevent+jwt'],
    ['an ID token typed application/id_token+jwt', 'application/id_token+jwt'],
    ['a typ of "" (present, so not "no typ")', ''],
    ['a typ of application/ (no type at all)', 'application/'],
    ['JWT under another top-level type', 'text/jwt'],
  ])('refuse %s as jwt_wrong_type', (_what, typ) => {
    expect(verifyWith(issuer(), token(typ))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
  });

  it('a typ that is no string is jwt_malformed', () => {
    expect(verifyWith(issuer(), token(1))).toMatchObject({ ok: false, reason: 'jwt_malformed' });
    expect(verifyWith(issuer(), token(['at+jwt']))).toMatchObject({ ok: false, reason: 'jwt_malformed' });
  });
});

describe('a payload typ marking the token as no access token (Keycloak types every token so)', () => {
  it.each(['ID', 'id', 'Refresh', 'Offline', 'Logout', 'Serialized-ID'])('"%s" is jwt_wrong_type, whatever the header says', (typ) => {
    expect(verifyWith(issuer(), token('JWT', { typ }))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
    expect(verifyWith(issuer(), token(undefined, { typ }))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
  });

  it('every one listed in the contract is refused', () => {
    for (const typ of NON_ACCESS_TOKEN_PAYLOAD_TYPES) expect(verifyWith(issuer(), token(undefined, { typ }))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
  });

  it('"Bearer" (a Keycloak access token) and a typ that is no string pass', () => {
    expect(verifyWith(issuer(), token('JWT', { typ: 'Bearer' }))).toMatchObject({ ok: true });
    expect(verifyWith(issuer(), token(undefined, { typ: 1 }))).toMatchObject({ ok: true });
  });

  it('is judged only after the signature: a forged one is jwt_bad_signature', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const forged = es256Token('{"alg":"ES256","kid":"k1"}', JSON.stringify({ iss: ISS, aud: 'api', sub: 'alice', exp: T0 + 60, typ: 'ID' }), other);
    expect(verifyWith(issuer(), forged)).toMatchObject({ ok: false, reason: 'jwt_bad_signature' });
  });
});

describe('a configured tokenTypes', () => {
  it("['at+jwt'] (RFC 9068's strict profile) refuses an untyped token and JWT, accepts at+jwt in any spelling", () => {
    const strict = issuer({ tokenTypes: ['at+jwt'] });
    expect(verifyWith(strict, token(undefined))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
    expect(verifyWith(strict, token('JWT'))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
    expect(verifyWith(strict, token('at+jwt'))).toMatchObject({ ok: true });
    expect(verifyWith(strict, token('application/AT+JWT'))).toMatchObject({ ok: true });
  });

  it("[''] accepts untyped tokens only", () => {
    const untyped = issuer({ tokenTypes: [''] });
    expect(verifyWith(untyped, token(undefined))).toMatchObject({ ok: true });
    expect(verifyWith(untyped, token('JWT'))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
    expect(verifyWith(untyped, token('at+jwt'))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
  });

  it('a listed type in another spelling matches: application/at+jwt configured, at+jwt sent', () => {
    expect(verifyWith(issuer({ tokenTypes: ['application/at+jwt'] }), token('at+jwt'))).toMatchObject({ ok: true });
  });

  it('cannot let a payload typ of ID through: that refusal holds for every issuer', () => {
    expect(verifyWith(issuer({ tokenTypes: ['', 'JWT', 'id_token+jwt'] }), token('id_token+jwt', { typ: 'ID' }))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
    expect(verifyWith(issuer({ tokenTypes: ['', 'JWT', 'id_token+jwt'] }), token('id_token+jwt'))).toMatchObject({ ok: true });
  });
});

describe('the service-account issuer', () => {
  const auth = { audiences: ['orders'], tokenFile: '/t', caFile: '/ca', apiServer: 'https://127.0.0.1:6443', refreshSeconds: 300, clockSkewSeconds: 30, maxLifetimeSeconds: undefined };
  const k8s = kubernetesIssuer(auth, auth.apiServer, ISS);
  const sa = (typ: unknown, claims: Record<string, unknown> = {}) =>
    token(typ, { aud: ['orders'], sub: 'system:serviceaccount:shop:frontend', ...claims });

  it('takes KUBERNETES_JWT_TOKEN_TYPES: untyped (as the API server issues them) or JWT', () => {
    expect(k8s.tokenTypes).toEqual(KUBERNETES_JWT_TOKEN_TYPES);
    expect(KUBERNETES_JWT_TOKEN_TYPES).toEqual(['', 'JWT']);
    expect(verifyWith(k8s, sa(undefined))).toMatchObject({ ok: true, subject: 'system:serviceaccount:shop:frontend' });
    expect(verifyWith(k8s, sa('JWT'))).toMatchObject({ ok: true });
  });

  it('refuses any other type, and a payload typ of no access token', () => {
    for (const typ of ['at+jwt', 'id_token+jwt', 'logout+jwt']) expect(verifyWith(k8s, sa(typ))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
    expect(verifyWith(k8s, sa(undefined, { typ: 'ID' }))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
  });
});
