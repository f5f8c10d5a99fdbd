/**
 * The JWT verifier and the JWKS import, in-process with a controlled clock: which keys a JWKS gives,
 * the verified-token cache (bounded in estimated bytes, a hit spared once, never past exp, dropped on
 * demand, holding only the claims route rules match on), the skew edges.
 */
import { generateKeyPairSync } from 'crypto';
import { SignJWT, base64url, exportJWK, generateKeyPair } from 'jose';
import type { JWK, KeyLike } from 'jose';
import { parseJwtIssuers } from '../lib/src/contract';
import type { JwtIssuer } from '../lib/src/contract';
import { importHmacSecret, importJwks } from '../apps/sidecar/src/jwt/keys';
import { kubernetesIssuer } from '../apps/sidecar/src/jwt/kubernetes';
import type { JwksKey } from '../apps/sidecar/src/jwt/keys';
import { createJwtVerifier, jwtCacheEntryBytes } from '../apps/sidecar/src/jwt/verify';

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

interface VerifierOver {
  issuer?: JwtIssuer;
  cacheBytes?: number;
  routeClaims?: ReadonlyMap<string, readonly string[]>;
  keys?: () => JwksKey[];
}

function verifier(clock: { s: number }, over: VerifierOver = {}) {
  return createJwtVerifier({ issuers: [over.issuer ?? issuer()], keys: over.keys ?? (() => keys), now: () => clock.s * 1000, cacheBytes: over.cacheBytes, routeClaims: over.routeClaims });
}

/** The estimated bytes of the cached verdict of a token minted with `sub` and no other claim (digests are all 44 characters). */
const entryBytesOf = (sub: string) => jwtCacheEntryBytes('='.repeat(44), { ok: true, subject: `idp:${sub}`, issuer: 'idp', claims: {}, claimHeaders: undefined });

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
    // No route rule asks a claim of this issuer: the verdict keeps none of the payload.
    expect(first).toEqual({ ok: true, subject: 'idp:alice', issuer: 'idp', claims: {}, claimHeaders: undefined });
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

  it('keeps of the payload only the claims route rules match on, as far as a rule can match them', async () => {
    const clock = { s: T0 };
    const v = verifier(clock, { routeClaims: new Map([['idp', ['groups', 'tier', 'level', 'absent']], ['other', ['sub']]]) });
    const token = await mint({ groups: ['ops', 7, 'dev', { x: 1 }], tier: 'gold', level: 3, name: 'Alice', big: 'x'.repeat(2000) });
    const verdict = v.verify(token) as { claims: Record<string, unknown> };
    // A number never equals a rule's string value: left out, as is every claim no rule names.
    expect(verdict.claims).toEqual({ groups: ['ops', 'dev'], tier: 'gold' });
    expect(Object.isFrozen(verdict.claims)).toBe(true);
    expect(Object.isFrozen(verdict.claims.groups)).toBe(true);
  });

  it('is bounded in bytes: after every one of many distinct tokens the estimate is within the budget, and the newest stay', async () => {
    const clock = { s: T0 };
    const subs = Array.from({ length: 300 }, (_, i) => `user-${String(i).padStart(3, '0')}`);
    const tokens = await Promise.all(subs.map((sub) => mint({ sub })));
    const budget = 20 * entryBytesOf(subs[0]);
    let lookups = 0;
    const v = verifier(clock, { cacheBytes: budget, keys: () => (lookups++, keys) });
    for (const t of tokens) {
      expect(v.verify(t)).toMatchObject({ ok: true });
      expect(v.cacheBytes()).toBeLessThanOrEqual(budget);
    }
    expect(v.cacheSize()).toBe(20);
    expect(v.cacheBytes()).toBe(20 * entryBytesOf(subs[0]));
    // The 20 newest are hits (no key lookup); the first is long gone.
    lookups = 0;
    for (const t of tokens.slice(-20)) v.verify(t);
    expect(lookups).toBe(0);
    v.verify(tokens[0]);
    expect(lookups).toBe(1);
  });

  it('a larger verdict costs more of the budget: the estimate counts its strings', async () => {
    const clock = { s: T0 };
    const small = await mint({ sub: 'a' });
    const large = await mint({ sub: 'a'.repeat(200) });
    const v = verifier(clock, { cacheBytes: 10_000_000 });
    v.verify(small);
    const smallBytes = v.cacheBytes();
    v.clearCache();
    expect(v.cacheBytes()).toBe(0);
    v.verify(large);
    expect(v.cacheBytes()).toBeGreaterThanOrEqual(smallBytes + 2 * 199);
    // Forwarded claims and kept claims count too.
    const forwarding = verifier(clock, { cacheBytes: 10_000_000, issuer: issuer({ forwardClaims: ['team'] }), routeClaims: new Map([['idp', ['groups']]]) });
    forwarding.verify(await mint({ sub: 'a', team: 't'.repeat(100), groups: ['g'.repeat(100)] }));
    expect(forwarding.cacheBytes()).toBeGreaterThanOrEqual(smallBytes + 2 * 2 * 100);
  });

  it('a hit spares an entry once: a busy token outlives a flood of new ones', async () => {
    const clock = { s: T0 };
    const hot = await mint({ sub: 'hot' });
    const flood = await Promise.all(Array.from({ length: 200 }, (_, i) => mint({ sub: `cold${String(i).padStart(3, '0')}` })));
    let hotLookups = 0;
    let counting = false;
    const v = verifier(clock, { cacheBytes: 10 * entryBytesOf('cold000'), keys: () => (counting && hotLookups++, keys) });
    v.verify(hot);
    for (let i = 0; i < flood.length; i++) {
      v.verify(flood[i]);
      // Used between its turns at the old end: spared each time.
      if (i % 5 === 0) {
        counting = true;
        v.verify(hot);
        counting = false;
      }
      expect(v.cacheBytes()).toBeLessThanOrEqual(10 * entryBytesOf('cold000'));
    }
    expect(hotLookups).toBe(0);
  });

  it('a budget of 0 caches nothing, and every presentation is verified afresh', async () => {
    const clock = { s: T0 };
    let lookups = 0;
    const v = verifier(clock, { cacheBytes: 0, keys: () => (lookups++, keys) });
    const token = await mint({});
    expect(v.verify(token)).toMatchObject({ ok: true });
    expect(v.verify(token)).toMatchObject({ ok: true });
    expect(lookups).toBe(2);
    expect(v.cacheSize()).toBe(0);
  });

  it('a refused token is not cached', async () => {
    const clock = { s: T0 };
    const v = verifier(clock, { cacheBytes: 10_000_000 });
    const token = await mint({ aud: 'elsewhere' });
    expect(v.verify(token)).toMatchObject({ ok: false, reason: 'jwt_invalid' });
    expect(v.cacheSize()).toBe(0);
    expect(v.cacheBytes()).toBe(0);
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
