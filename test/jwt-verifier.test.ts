/**
 * The JWT verifier and the JWKS import, in-process with a controlled clock: which keys a JWKS gives,
 * the verified-token cache (bounded, never past exp, dropped on demand), the skew edges.
 */
import { generateKeyPairSync } from 'crypto';
import { SignJWT, base64url, exportJWK, generateKeyPair } from 'jose';
import type { JWK, KeyLike } from 'jose';
import { parseJwtIssuers } from '../lib/src/contract';
import type { JwtIssuer } from '../lib/src/contract';
import { importHmacSecret, importJwks } from '../apps/sidecar/src/jwt/keys';
import { kubernetesIssuer } from '../apps/sidecar/src/jwt/kubernetes';
import type { JwksKey } from '../apps/sidecar/src/jwt/keys';
import { createJwtVerifier } from '../apps/sidecar/src/jwt/verify';

const ISS = 'https://idp.test';
const T0 = 1_700_000_000;

function issuer(over: Record<string, unknown> = {}): JwtIssuer {
  const parsed = parseJwtIssuers(JSON.stringify([{ name: 'idp', issuer: ISS, audiences: ['api'], jwksFile: '/jwks.json', ...over }]));
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value[0];
}

let privateKey: KeyLike;
let keys: JwksKey[];
let publicJwk: JWK;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1' };
  keys = await importJwks(JSON.stringify({ keys: [publicJwk] }), () => undefined);
});

const mint = (claims: Record<string, unknown>) =>
  new SignJWT({ iss: ISS, aud: 'api', sub: 'alice', exp: T0 + 60, ...claims }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);

function verifier(clock: { s: number }, over: { issuer?: JwtIssuer; cacheEntries?: number; keys?: () => JwksKey[] } = {}) {
  return createJwtVerifier({ issuers: [over.issuer ?? issuer()], keys: over.keys ?? (() => keys), now: () => clock.s * 1000, cacheEntries: over.cacheEntries });
}

describe('importJwks', () => {
  it('takes public RSA (>= 2048 bits), EC and OKP keys; skips symmetric, private, small, enc and unusable ones', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const ed = generateKeyPairSync('ed25519');
    const jwks = {
      keys: [
        { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa' },
        { ...ed.publicKey.export({ format: 'jwk' }), kid: 'ed' },
        publicJwk,
        { kty: 'oct', k: base64url.encode('secret'), kid: 'hmac' },
        { ...rsa.privateKey.export({ format: 'jwk' }), kid: 'private' },
        { ...small.publicKey.export({ format: 'jwk' }), kid: 'small' },
        { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'enc', use: 'enc' },
        { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rs-only', alg: 'RS512' },
        { ...publicJwk, kid: 'mismatch', alg: 'RS256' },
        { kty: 'RSA', kid: 'garbage', n: 'AQAB', e: 'x' },
        'not a key',
      ],
    };
    const skipped: [unknown, string][] = [];
    const got = await importJwks(JSON.stringify(jwks), (_i, kid, reason) => skipped.push([kid, reason]));
    expect(got.map((k) => [k.kid, [...k.algorithms]])).toEqual([
      ['rsa', ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']],
      ['ed', ['EdDSA']],
      ['k1', ['ES256']],
      ['rs-only', ['RS512']],
    ]);
    expect(skipped.map(([kid]) => kid)).toEqual(['hmac', 'private', 'small', 'enc', 'mismatch', 'garbage', undefined]);
    expect(skipped[0][1]).toMatch(/kty "oct"/);
    expect(skipped[1][1]).toMatch(/private/);
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['no keys list', '{"k":[]}', /no "keys" list/],
    ['no usable key', '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}', /no usable key/],
    ['an empty set', '{"keys":[]}', /no usable key/],
  ])('refuses a JWKS with %s', async (_what, text, message) => {
    await expect(importJwks(text, () => undefined)).rejects.toThrow(message);
  });
});

describe('the verifier', () => {
  it('caches a verified token until its exp, not past it, with the same verdict object', async () => {
    const clock = { s: T0 };
    let lookups = 0;
    const v = verifier(clock, { keys: () => (lookups++, keys) });
    const token = await mint({ exp: T0 + 60 });
    const first = v.verify(token);
    expect(first).toEqual({ ok: true, subject: 'idp:alice', issuer: 'idp', claims: { iss: 'https://idp.test', aud: 'api', sub: 'alice', exp: T0 + 60 }, claimHeaders: undefined });
    expect(v.verify(token)).toBe(first);
    expect(lookups).toBe(1);
    clock.s = T0 + 59;
    expect(v.verify(token)).toBe(first);
    // Past exp the cache no longer answers; within the skew a fresh check still passes.
    clock.s = T0 + 61;
    expect(v.verify(token)).toEqual(first);
    expect(lookups).toBe(2);
    clock.s = T0 + 90;
    expect(v.verify(token)).toMatchObject({ ok: false, reason: 'jwt_expired' });
  });

  it('is bounded: the oldest entry goes first, a hit does not renew it', async () => {
    const clock = { s: T0 };
    const v = verifier(clock, { cacheEntries: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((sub) => mint({ sub })));
    v.verify(a);
    v.verify(b);
    v.verify(a);
    v.verify(c);
    expect(v.cacheSize()).toBe(2);
    let lookups = 0;
    const counting = verifier(clock, { cacheEntries: 2, keys: () => (lookups++, keys) });
    for (const t of [a, b, a, c, b, a]) counting.verify(t);
    // a, b, (a hit), c evicts a (the oldest, hit or not), (b hit), a again: 4 full checks.
    expect(lookups).toBe(4);
  });

  it('clearCache forgets every verified token (what a key set change calls)', async () => {
    const clock = { s: T0 };
    let current: JwksKey[] = keys;
    const v = verifier(clock, { keys: () => current });
    const token = await mint({});
    expect(v.verify(token)).toMatchObject({ ok: true });
    current = [];
    expect(v.verify(token)).toMatchObject({ ok: true });
    v.clearCache();
    expect(v.verify(token)).toMatchObject({ ok: false, reason: 'jwt_unknown_key' });
  });

  it('the skew edges: exp and nbf exactly at the skew, with a configured skew of 5 s', async () => {
    const clock = { s: T0 };
    const v = verifier(clock, { issuer: issuer({ clockSkewSeconds: 5 }) });
    expect(v.verify(await mint({ exp: T0 - 4 }))).toMatchObject({ ok: true });
    expect(v.verify(await mint({ exp: T0 - 5 }))).toMatchObject({ ok: false, reason: 'jwt_expired' });
    expect(v.verify(await mint({ nbf: T0 + 5 }))).toMatchObject({ ok: true });
    expect(v.verify(await mint({ nbf: T0 + 6 }))).toMatchObject({ ok: false, reason: 'jwt_not_yet_valid' });
  });

  it('max lifetime needs iat: none, or exp - iat over the bound, is refused', async () => {
    const clock = { s: T0 };
    const v = verifier(clock, { issuer: issuer({ maxLifetimeSeconds: 60 }) });
    expect(v.verify(await mint({ iat: T0, exp: T0 + 60 }))).toMatchObject({ ok: true });
    expect(v.verify(await mint({ iat: T0, exp: T0 + 61 }))).toMatchObject({ ok: false, reason: 'jwt_invalid' });
    expect(v.verify(await mint({ exp: T0 + 30 }))).toMatchObject({ ok: false, reason: 'jwt_invalid' });
  });

  it('values that are no JWT are left to the static tokens; refusals are shared constants', async () => {
    const v = verifier({ s: T0 });
    for (const t of ['plain-token', 'a.b', 'a.b.c.d', 'abc.def.ghi', 'a+b.c.d', `${'a'.repeat(9000)}.b.c`]) expect(v.verify(t)).toBeUndefined();
    const expired = await mint({ exp: T0 - 100 });
    expect(v.verify(expired)).toBe(v.verify(await mint({ exp: T0 - 200 })));
  });
  it('an unknown kid tells onUnknownKey the issuer (synchronously, the token refused now); a known kid does not', async () => {
    const told: string[] = [];
    const v = createJwtVerifier({ issuers: [issuer()], keys: () => keys, now: () => T0 * 1000, onUnknownKey: (name) => told.push(name) });
    expect(v.verify(await mint({}))).toMatchObject({ ok: true });
    expect(told).toEqual([]);
    const unknown = await new SignJWT({ iss: ISS, aud: 'api', sub: 'alice', exp: T0 + 60 }).setProtectedHeader({ alg: 'ES256', kid: 'k9' }).sign(privateKey);
    expect(v.verify(unknown)).toMatchObject({ ok: false, reason: 'jwt_unknown_key' });
    expect(told).toEqual(['idp']);
    expect(v.verify(await mint({ iss: 'https://elsewhere.test' }))).toMatchObject({ ok: false, reason: 'jwt_unknown_issuer' });
    expect(told).toEqual(['idp']);
  });
});

describe('an HMAC issuer (explicit shared secret)', () => {
  const SECRET = Buffer.from('0123456789abcdef0123456789abcdef'); // 32 bytes: HS256's floor
  const hmacIssuer = issuer({ jwksFile: undefined, hmacSecretFile: '/secret' });
  const hmacKeys = importHmacSecret(Buffer.concat([SECRET, Buffer.from('\n')]), hmacIssuer.algorithms);
  const sign = (secret: Uint8Array, alg = 'HS256', claims: Record<string, unknown> = {}, kid?: string) =>
    new SignJWT({ iss: ISS, aud: 'api', sub: 'svc', exp: T0 + 60, ...claims }).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).sign(secret);
  const v = () => verifier({ s: T0 }, { issuer: hmacIssuer, keys: () => hmacKeys });

  it('admits a token signed with the secret (one trailing newline of the file ignored), kid or not', async () => {
    expect(v().verify(await sign(SECRET))).toMatchObject({ ok: true, subject: 'idp:svc' });
    expect(v().verify(await sign(SECRET, 'HS256', {}, 'any-kid'))).toMatchObject({ ok: true });
  });

  it('refuses another secret, another HS alg than allowed, and an asymmetric alg', async () => {
    expect(v().verify(await sign(Buffer.from('x'.repeat(32))))).toMatchObject({ ok: false, reason: 'jwt_bad_signature' });
    expect(v().verify(await sign(Buffer.concat([SECRET, SECRET]), 'HS512'))).toMatchObject({ ok: false, reason: 'jwt_invalid' });
    expect(v().verify(await mint({}))).toMatchObject({ ok: false, reason: 'jwt_invalid' });
  });

  it('never uses a public key as an HMAC secret, even when the issuer allows HS256 and the key fits the kid', async () => {
    // The algorithm-confusion attack: HS256 "signed" with the issuer's public key as the secret.
    const pem = Buffer.from(JSON.stringify(publicJwk));
    const forged = await sign(pem, 'HS256', {}, 'k1');
    const mixed = verifier({ s: T0 }, { issuer: { ...hmacIssuer }, keys: () => [...keys.map((k) => ({ ...k, algorithms: new Set([...k.algorithms, 'HS256' as const]) }))] });
    expect(mixed.verify(forged)).toMatchObject({ ok: false, reason: 'jwt_bad_signature' });
  });

  it('refuses a secret shorter than the hash of every allowed alg', () => {
    expect(() => importHmacSecret(Buffer.from('short-secret'), ['HS256'])).toThrow(/the HMAC secret is 12 bytes; HS256 needs at least 32/);
    expect(importHmacSecret(Buffer.alloc(48, 1), ['HS256', 'HS384', 'HS512'])[0].algorithms).toEqual(new Set(['HS256', 'HS384']));
  });
});

describe('forwarded claims', () => {
  const withClaims = issuer({ forwardClaims: ['groups', 'email', 'level', 'Org.Unit'] });
  const v = () => verifier({ s: T0 }, { issuer: withClaims });

  it('go as x-auth-claim-<name lowercased>: strings as sent, lists comma-joined, numbers as JSON; absent ones not at all', async () => {
    const verdict = v().verify(await mint({ groups: ['admin', 'ops'], email: 'a@example.com', level: 3 }));
    expect(verdict).toMatchObject({ ok: true, claimHeaders: ['x-auth-claim-groups', 'admin,ops', 'x-auth-claim-email', 'a@example.com', 'x-auth-claim-level', '3'] });
    expect(v().verify(await mint({ 'Org.Unit': 'r&d' }))).toMatchObject({ claimHeaders: ['x-auth-claim-org.unit', 'r&d'] });
  });

  it.each([
    ['a control character', { email: 'a@example.com\r\nx-auth-subject: admin' }],
    ['a non-ASCII character', { email: 'ä@example.com' }],
    ['too long a value', { email: 'a'.repeat(257) }],
    ['an object', { groups: { admin: true } }],
    ['a list holding a comma', { groups: ['a,b'] }],
    ['a string holding a comma (it would read as a list)', { groups: 'finance,admins' }],
    ['a leading space (an HTTP parser would trim it)', { email: ' a@example.com' }],
    ['a trailing space', { email: 'a@example.com ' }],
    ['a list element with a surrounding space', { groups: ['admin', ' ops'] }],
    ['a list holding a number', { groups: ['a', 1] }],
  ])('refuse the request when a claim holds %s', async (_what, claims) => {
    expect(v().verify(await mint(claims))).toMatchObject({ ok: false, reason: 'invalid_claim' });
  });
});

describe('the service-account issuer', () => {
  const auth = { audiences: ['orders'], tokenFile: '/t', caFile: '/ca', apiServer: 'https://127.0.0.1:6443', refreshSeconds: 300, clockSkewSeconds: 30, maxLifetimeSeconds: undefined };
  const k8s = kubernetesIssuer(auth, auth.apiServer, ISS);
  const v = () => verifier({ s: T0 }, { issuer: k8s });
  const sa = (claims: Record<string, unknown>) =>
    new SignJWT({ iss: ISS, aud: ['orders'], exp: T0 + 600, iat: T0, nbf: T0, ...claims }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);
  const projected = { namespace: 'shop', pod: { name: 'frontend-1', uid: 'u1' }, serviceaccount: { name: 'frontend', uid: 'u2' } };

  it('forwards the subject as it is, with no issuer prefix', async () => {
    expect(v().verify(await sa({ sub: 'system:serviceaccount:shop:frontend', 'kubernetes.io': projected }))).toMatchObject({
      ok: true,
      subject: 'system:serviceaccount:shop:frontend',
      issuer: 'kubernetes',
    });
  });

  it.each([
    ['a subject that is no service account', { sub: 'alice' }],
    ['a namespace that is no DNS label', { sub: 'system:serviceaccount:Shop:frontend' }],
    ['kubernetes.io naming another namespace', { sub: 'system:serviceaccount:shop:frontend', 'kubernetes.io': { ...projected, namespace: 'other' } }],
    ['kubernetes.io naming another account', { sub: 'system:serviceaccount:shop:frontend', 'kubernetes.io': { ...projected, serviceaccount: { name: 'admin' } } }],
  ])('refuses %s', async (_what, claims) => {
    expect(v().verify(await sa(claims))).toMatchObject({ ok: false, reason: 'invalid_claim' });
  });

  it('refuses a token for another audience', async () => {
    expect(v().verify(await sa({ sub: 'system:serviceaccount:shop:frontend', aud: ['https://kubernetes.default.svc'] }))).toMatchObject({ ok: false, reason: 'jwt_invalid' });
  });
});

describe('hardening found by the attack review', () => {
  it('a subject claim with a surrounding space is refused: the backend would read it trimmed', async () => {
    const v = verifier({ s: T0 });
    expect(v.verify(await mint({ sub: 'alice ' }))).toMatchObject({ ok: false, reason: 'invalid_claim' });
    expect(v.verify(await mint({ sub: ' alice' }))).toMatchObject({ ok: false, reason: 'invalid_claim' });
    expect(v.verify(await mint({ sub: 'alice smith' }))).toMatchObject({ ok: true, subject: 'idp:alice smith' });
  });

  it('a token without a kid is checked against the one key that fits, never a whole key set', async () => {
    const second = await generateKeyPair('ES256');
    const twoKeys = await importJwks(JSON.stringify({ keys: [publicJwk, { ...(await exportJWK(second.publicKey)), kid: 'k2' }] }), () => undefined);
    const noKid = (key: KeyLike) => new SignJWT({ iss: ISS, aud: 'api', sub: 'alice', exp: T0 + 60 }).setProtectedHeader({ alg: 'ES256' }).sign(key);
    let refetches = 0;
    const v = createJwtVerifier({ issuers: [issuer()], keys: () => twoKeys, now: () => T0 * 1000, onUnknownKey: () => refetches++ });
    expect(v.verify(await noKid(privateKey))).toMatchObject({ ok: false, reason: 'jwt_unknown_key' });
    expect(refetches).toBe(0);
    // With one key that fits, a kid-less token is fine.
    expect(verifier({ s: T0 }).verify(await noKid(privateKey))).toMatchObject({ ok: true });
  });
});
