/**
 * How the verifier reads a token (issue 18 §3), in-process with a controlled clock. Every token here
 * is signed correctly over the exact header and payload text given, so the check under test is the
 * only one that can refuse it:
 *  - a member named twice (at any depth, escapes decoded) is refused: a first-wins parser behind the
 *    sidecar (SIDECAR_FORWARD_AUTHORIZATION=true) would read another `sub` than the one judged;
 *  - claims are own members only: `constructor`, `__proto__`, `toString` are the token's or absent;
 *  - explicit typing (RFC 8725 §3.11): a header `typ` the issuer does not accept, or a payload `typ`
 *    of no access token (an ID token), is refused as jwt_wrong_type.
 */
import { sign } from 'crypto';
import type { KeyObject } from 'crypto';
import { exportJWK, generateKeyPair } from 'jose';
import { DEFAULT_JWT_TOKEN_TYPES, parseJwtIssuers } from '../lib/src/contract';
import type { JwtIssuer } from '../lib/src/contract';
import { importJwks } from '../apps/sidecar/src/jwt/keys';
import type { JwksKey } from '../apps/sidecar/src/jwt/keys';
import { kubernetesIssuer } from '../apps/sidecar/src/jwt/kubernetes';
import { createJwtVerifier } from '../apps/sidecar/src/jwt/verify';

const ISS = 'https://idp.test';
const T0 = 1_700_000_000;
const CLAIMS = `"iss":"${ISS}","aud":"api","exp":${T0 + 60}`;
const HEADER = '{"alg":"ES256","kid":"k1"}';

function issuer(over: Record<string, unknown> = {}): JwtIssuer {
  const parsed = parseJwtIssuers(JSON.stringify([{ name: 'idp', issuer: ISS, audiences: ['api'], jwksFile: '/jwks.json', ...over }]));
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value[0];
}

let privateKey: KeyObject;
let keys: JwksKey[];

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey as KeyObject;
  keys = await importJwks(JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1' }] }), () => undefined);
});

/** A token over exactly these header and payload texts, with a valid ES256 signature. */
function rawToken(header: string, payload: string): string {
  const input = `${Buffer.from(header).toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

function verify(token: string, over: Record<string, unknown> = {}, iss: JwtIssuer = issuer(over)) {
  return createJwtVerifier({ issuers: [iss], keys: () => keys, now: () => T0 * 1000 }).verify(token);
}

describe('one reading of a token', () => {
  it('the control: a plain token is admitted as alice', () => {
    expect(verify(rawToken(HEADER, `{${CLAIMS},"sub":"alice"}`))).toMatchObject({ ok: true, subject: 'idp:alice' });
  });

  it.each([
    ['sub twice', HEADER, `{${CLAIMS},"sub":"alice","sub":"admin"}`],
    ['sub twice, once spelled with an escape', HEADER, `{${CLAIMS},"sub":"alice","s\\u0075b":"admin"}`],
    ['a member twice inside a nested claim', HEADER, `{${CLAIMS},"sub":"alice","realm":{"roles":["a"],"roles":["admin"]}}`],
    ['aud twice', HEADER, `{${CLAIMS},"sub":"alice","aud":"other"}`],
    ['alg twice in the header', '{"alg":"ES256","kid":"k1","alg":"none"}', `{${CLAIMS},"sub":"alice"}`],
    ['kid twice in the header', '{"alg":"ES256","kid":"k1","kid":"k2"}', `{${CLAIMS},"sub":"alice"}`],
  ])('%s: jwt_malformed', (_what, header, payload) => {
    expect(verify(rawToken(header, payload))).toMatchObject({ ok: false, reason: 'jwt_malformed' });
  });

  it('the same name in two different objects is no duplicate', () => {
    expect(verify(rawToken(HEADER, `{${CLAIMS},"sub":"alice","a":{"sub":"x"},"b":[{"sub":"y"},{"sub":"z"}]}`))).toMatchObject({ ok: true });
  });

  it('a payload that is not strict UTF-8 is jwt_malformed', () => {
    const input = `${Buffer.from(HEADER).toString('base64url')}.${Buffer.concat([Buffer.from(`{${CLAIMS},"sub":"al`), Buffer.from([0xff]), Buffer.from('ice"}')]).toString('base64url')}`;
    const token = `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    expect(verify(token)).toMatchObject({ ok: false, reason: 'jwt_malformed' });
  });
});

describe('claims are own members of the payload', () => {
  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__'])('subjectClaim %s on a token without it: invalid_claim', (name) => {
    expect(verify(rawToken(HEADER, `{${CLAIMS},"sub":"alice"}`), { subjectClaim: name === '__proto__' ? 'proto' : name })).toMatchObject({ ok: false, reason: 'invalid_claim' });
  });

  it('forwardClaims constructor and toString on a token without them send no header', () => {
    const verdict = verify(rawToken(HEADER, `{${CLAIMS},"sub":"alice","groups":"g"}`), { forwardClaims: ['constructor', 'toString', 'groups'] });
    expect(verdict).toMatchObject({ ok: true, claimHeaders: ['x-auth-claim-groups', 'g'] });
  });

  it('a token that carries them as its own claims forwards its own values', () => {
    const verdict = verify(rawToken(HEADER, `{${CLAIMS},"sub":"alice","constructor":"c1"}`), { subjectClaim: 'constructor', forwardClaims: ['constructor'] });
    expect(verdict).toMatchObject({ ok: true, subject: 'idp:c1', claimHeaders: ['x-auth-claim-constructor', 'c1'] });
  });

  it('a "__proto__" member is plain data: it sets no prototype and passes no claim', () => {
    const verdict = verify(rawToken(HEADER, `{${CLAIMS},"sub":"alice","__proto__":{"admin":true,"groups":"root"}}`), { forwardClaims: ['admin', 'groups'] });
    expect(verdict).toMatchObject({ ok: true, claimHeaders: [] });
    const claims = (verdict as { claims: Record<string, unknown> }).claims;
    expect(Object.getPrototypeOf(claims)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(claims, '__proto__')).toBe(true);
  });
});

describe('explicit typing (RFC 8725 §3.11)', () => {
  const payload = `{${CLAIMS},"sub":"alice"}`;
  const typed = (typ: string) => rawToken(`{"alg":"ES256","kid":"k1","typ":${JSON.stringify(typ)}}`, payload);

  it('by default: untyped, JWT and at+jwt in any spelling are access tokens', () => {
    expect(DEFAULT_JWT_TOKEN_TYPES).toEqual(['', 'JWT', 'at+jwt']);
    for (const token of [rawToken(HEADER, payload), typed('JWT'), typed('jwt'), typed('at+jwt'), typed('application/AT+JWT')]) {
      expect(verify(token)).toMatchObject({ ok: true });
    }
  });

  it.each(['id_token+jwt', 'logout+jwt', 'dpop+jwt', 'secevent+jwt', 'application/', ''])('by default a header typ %p is jwt_wrong_type', (typ) => {
    expect(verify(typed(typ))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
  });

  it.each(['ID', 'Refresh', 'logout'])('a payload typ %p (an ID, refresh or logout token, as Keycloak types them) is jwt_wrong_type', (typ) => {
    expect(verify(rawToken(HEADER, `{${CLAIMS},"sub":"alice","typ":"${typ}"}`))).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
    expect(verify(rawToken(HEADER, `{${CLAIMS},"sub":"alice","typ":"Bearer"}`))).toMatchObject({ ok: true });
  });

  it('tokenTypes ["at+jwt"], RFC 9068 strict: only at+jwt passes', () => {
    expect(verify(typed('at+jwt'), { tokenTypes: ['at+jwt'] })).toMatchObject({ ok: true });
    expect(verify(rawToken(HEADER, payload), { tokenTypes: ['at+jwt'] })).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
    expect(verify(typed('JWT'), { tokenTypes: ['at+jwt'] })).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
  });

  it('a service-account issuer takes untyped tokens and JWT, nothing else', () => {
    const sa = kubernetesIssuer({ audiences: ['api'], maxLifetimeSeconds: 3600 } as never, 'https://kubernetes.default.svc', ISS);
    const saPayload = `{${CLAIMS},"iat":${T0},"sub":"system:serviceaccount:ns:caller"}`;
    expect(verify(rawToken(HEADER, saPayload), {}, sa)).toMatchObject({ ok: true, subject: 'system:serviceaccount:ns:caller' });
    expect(verify(rawToken('{"alg":"ES256","kid":"k1","typ":"at+jwt"}', saPayload), {}, sa)).toMatchObject({ ok: false, reason: 'jwt_wrong_type' });
  });

  it.each([
    [['bad type!'], 'tokenTypes entries must be'],
    [[], 'tokenTypes must be a list of 1-8'],
    [['JWT', 'application/jwt'], 'are the same type'],
  ])('the setting %j is refused in one line naming tokenTypes', (tokenTypes, message) => {
    const parsed = parseJwtIssuers(JSON.stringify([{ name: 'idp', issuer: ISS, audiences: ['api'], jwksFile: '/j.json', tokenTypes }]));
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.problem).toContain(message);
    expect(parsed.ok ? '' : parsed.problem).not.toContain('\n');
  });
});
