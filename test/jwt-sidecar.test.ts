/**
 * JWT bearer tokens through the real compiled sidecar: tokens minted in-test with jose (RS256, ES256,
 * EdDSA keys generated here; hand-built ones signed by support/jws.ts), JWKS files in a temp dir, a real
 * upstream that records what reaches it.
 */
import type { KeyObject } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { SignJWT, UnsecuredJWT, base64url, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import type { JWK, JWTPayload, KeyLike } from 'jose';
import { FORWARDED_HEADERS, HEALTH_PATHS, SIDECAR_ENV, encodeJwtIssuers } from '../lib/src/contract';
import type { JwtIssuerSpec } from '../lib/src/contract';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { eventually, request, tempDir } from './support/http';
import { es256Token } from './support/jws';
import { TestUpstream, startUpstream } from './support/upstream';

const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const STATIC_TOKEN = 'static-token-0123456789abcdef';
const DOTTED_STATIC_TOKEN = 'abc.def.ghi';
const ISS = 'https://idp.test';
const OTHER_ISS = 'https://other.test';

interface SigningKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256' | 'EdDSA';
  readonly privateKey: KeyLike;
  readonly publicJwk: JWK;
  readonly spki: string;
}

async function signingKey(kid: string, alg: SigningKey['alg']): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : undefined);
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, use: 'sig' }, spki: await exportSPKI(publicKey) };
}

/** Write atomically, as a ConfigMap update lands: the reader sees the old file or the new one. */
function writeJwks(file: string, keys: readonly SigningKey[] | string): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, typeof keys === 'string' ? keys : JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
  fs.renameSync(tmp, file);
}

const nowS = () => Math.floor(Date.now() / 1000);

/** A token that passes every check unless `claims`/`header` say otherwise. */
async function mint(key: SigningKey, claims: JWTPayload = {}, typ = 'JWT'): Promise<string> {
  return new SignJWT({ iss: ISS, aud: 'api', sub: 'alice', iat: nowS(), exp: nowS() + 300, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ })
    .sign(key.privateKey);
}

let upstream: TestUpstream;
let sidecar: RunningApp;
let dirs: { tokens: { dir: string; cleanup: () => void }; jwks: { dir: string; cleanup: () => void } };
let rsa: SigningKey;
let ec: SigningKey;
let ed: SigningKey;
let other: SigningKey;
let stranger: SigningKey;
let idpJwks: string;

beforeAll(async () => {
  [rsa, ec, ed, other, stranger] = await Promise.all([
    signingKey('rsa-1', 'RS256'),
    signingKey('ec-1', 'ES256'),
    signingKey('ed-1', 'EdDSA'),
    signingKey('other-1', 'ES256'),
    signingKey('stranger', 'RS256'),
  ]);
  upstream = await startUpstream();
  dirs = { tokens: tempDir('jwt-tokens-'), jwks: tempDir('jwt-jwks-') };
  fs.writeFileSync(path.join(dirs.tokens.dir, 'ci'), STATIC_TOKEN);
  fs.writeFileSync(path.join(dirs.tokens.dir, 'dotted'), DOTTED_STATIC_TOKEN);
  idpJwks = path.join(dirs.jwks.dir, 'idp.json');
  const otherJwks = path.join(dirs.jwks.dir, 'other.json');
  writeJwks(idpJwks, [rsa, ec, ed]);
  writeJwks(otherJwks, [other]);
  const issuers: JwtIssuerSpec[] = [
    { name: 'idp', issuer: ISS, audiences: ['api', 'api2'], jwksFile: idpJwks },
    { name: 'other', issuer: OTHER_ISS, audiences: ['api'], jwksFile: otherJwks, algorithms: ['ES256'], subjectClaim: 'email', maxLifetimeSeconds: 600 },
  ];
  sidecar = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstream.url, dirs.tokens.dir),
      [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers(issuers),
      [SIDECAR_ENV.tokensPollIntervalMs]: '200',
      [SIDECAR_ENV.drainDelayMs]: '0',
    },
  });
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
  dirs?.tokens.cleanup();
  dirs?.jwks.cleanup();
});

const get = (token: string, headers: Record<string, string> = {}) => request(sidecar.port, { path: '/who', headers: { authorization: `Bearer ${token}`, ...headers } });
const lastReceived = () => upstream.received[upstream.received.length - 1];
const metrics = async () => (await request(sidecar.adminPort!, { path: HEALTH_PATHS.metrics })).text();
const failures = async (reason: string) => Number(new RegExp(`sidecar_auth_failures_total\\{reason="${reason}"\\} (\\d+)`).exec(await metrics())?.[1] ?? '0');

/** 401 with the invalid_token challenge, nothing forwarded, and the reason counted. */
async function expectRefused(token: string, reason: string): Promise<void> {
  const before = upstream.count();
  const counted = await failures(reason);
  const res = await get(token);
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toBe('Bearer realm="sidecar", error="invalid_token"');
  expect(upstream.count()).toBe(before);
  expect(await failures(reason)).toBe(counted + 1);
}

describe('valid tokens', () => {
  it.each(['RS256', 'ES256', 'EdDSA'])('%s: 200, the upstream sees <issuer name>:<sub> as the subject', async (alg) => {
    const key = { RS256: rsa, ES256: ec, EdDSA: ed }[alg]!;
    const before = upstream.count();
    const res = await get(await mint(key, { sub: `user-${alg}` }), { [FORWARDED_HEADERS.subject]: 'spoofed' });
    expect(res.status).toBe(200);
    expect(upstream.count()).toBe(before + 1);
    expect(lastReceived().headers[FORWARDED_HEADERS.subject]).toBe(`idp:user-${alg}`);
  });

  it('the same token again is served (from the verified cache) with the same subject', async () => {
    const token = await mint(rsa, { sub: 'repeat' });
    for (let i = 0; i < 3; i++) {
      expect((await get(token)).status).toBe(200);
      expect(lastReceived().headers[FORWARDED_HEADERS.subject]).toBe('idp:repeat');
    }
  });

  it('aud as a list naming one configured audience; a token without kid matches a key of its alg', async () => {
    expect((await get(await mint(ec, { aud: ['elsewhere', 'api2'] }))).status).toBe(200);
    const noKid = await new SignJWT({ iss: ISS, aud: 'api', sub: 'nokid', exp: nowS() + 60 }).setProtectedHeader({ alg: 'EdDSA' }).sign(ed.privateKey);
    expect((await get(noKid)).status).toBe(200);
    expect(lastReceived().headers[FORWARDED_HEADERS.subject]).toBe('idp:nokid');
  });

  it('exp and nbf within the 30 s clock skew are accepted', async () => {
    expect((await get(await mint(rsa, { exp: nowS() - 10 }))).status).toBe(200);
    expect((await get(await mint(rsa, { nbf: nowS() + 10 }))).status).toBe(200);
  });

  it('a configured subject claim: the second issuer forwards email', async () => {
    const token = await mint(other, { iss: OTHER_ISS, email: 'bob@example.com', exp: nowS() + 300 });
    expect((await get(token)).status).toBe(200);
    expect(lastReceived().headers[FORWARDED_HEADERS.subject]).toBe('other:bob@example.com');
  });

  it('a subject claim of exactly 256 printable characters is forwarded', async () => {
    const sub = 'a'.repeat(256);
    expect((await get(await mint(rsa, { sub }))).status).toBe(200);
    expect(lastReceived().headers[FORWARDED_HEADERS.subject]).toBe(`idp:${sub}`);
  });
});

describe('refused with 401, never forwarded', () => {
  it('expired beyond the skew', async () => expectRefused(await mint(rsa, { exp: nowS() - 60 }), 'jwt_expired'));
  it('not yet valid beyond the skew (nbf)', async () => expectRefused(await mint(rsa, { nbf: nowS() + 120 }), 'jwt_not_yet_valid'));
  it('issued in the future beyond the skew (iat)', async () => expectRefused(await mint(rsa, { iat: nowS() + 120 }), 'jwt_not_yet_valid'));
  it('no exp', async () => {
    const token = await new SignJWT({ iss: ISS, aud: 'api', sub: 'alice' }).setProtectedHeader({ alg: 'RS256', kid: rsa.kid }).sign(rsa.privateKey);
    await expectRefused(token, 'jwt_invalid');
  });
  it('wrong aud', async () => expectRefused(await mint(rsa, { aud: 'someone-else' }), 'jwt_invalid'));
  it('no aud', async () => expectRefused(await mint(rsa, { aud: undefined }), 'jwt_invalid'));
  it('wrong iss', async () => expectRefused(await mint(rsa, { iss: 'https://evil.test' }), 'jwt_unknown_issuer'));
  it('unknown kid', async () => expectRefused(await mint({ ...stranger, kid: 'nope' }), 'jwt_unknown_key'));
  it('a known kid, signed by another key', async () => expectRefused(await mint({ ...stranger, kid: rsa.kid }), 'jwt_bad_signature'));
  it("one issuer's iss, signed with another issuer's key", async () => expectRefused(await mint(other, { iss: ISS }), 'jwt_unknown_key'));
  it('an algorithm the issuer does not allow (the second issuer takes ES256 only)', async () => {
    const token = await mint({ ...ed, kid: other.kid }, { iss: OTHER_ISS, email: 'bob@example.com' });
    await expectRefused(token, 'jwt_invalid');
  });
  it('a lifetime over the issuer\'s maxLifetimeSeconds (600)', async () => {
    await expectRefused(await mint(other, { iss: OTHER_ISS, email: 'bob@example.com', iat: nowS(), exp: nowS() + 3600 }), 'jwt_invalid');
  });
  it('alg "none"', async () => {
    const token = new UnsecuredJWT({ iss: ISS, aud: 'api', sub: 'alice', exp: nowS() + 300 }).encode();
    expect(token.endsWith('.')).toBe(true);
    await expectRefused(token, 'jwt_invalid');
  });
  it('alg "none" with a signature segment and a known kid', async () => {
    const valid = await mint(rsa);
    const [, payload, signature] = valid.split('.');
    const header = base64url.encode(JSON.stringify({ alg: 'none', kid: rsa.kid }));
    await expectRefused(`${header}.${payload}.${signature}`, 'jwt_invalid');
  });
  it('HS256 signed with the RSA public key bytes as the secret (algorithm confusion)', async () => {
    const claims = { iss: ISS, aud: 'api', sub: 'mallory', exp: nowS() + 300 };
    for (const secret of [rsa.spki, JSON.stringify(rsa.publicJwk), rsa.publicJwk.n!]) {
      const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: rsa.kid }).sign(new TextEncoder().encode(secret));
      await expectRefused(token, 'jwt_invalid');
    }
  });
  // 342 base64url characters for RS256: 6 fewer is 252 whole bytes, a well-formed but short signature.
  it('a truncated signature', async () => expectRefused((await mint(rsa)).slice(0, -6), 'jwt_bad_signature'));
  it('a truncated signature whose last character has bits left over', async () => {
    // 334 characters: the last carries 2 bits of a byte and 4 unused ones, set here (a random
    // signature leaves them all zero one time in 16, which is then a canonical, merely wrong, signature).
    const truncated = (await mint(rsa)).slice(0, -8);
    const last = BASE64URL_ALPHABET.indexOf(truncated[truncated.length - 1]);
    await expectRefused(truncated.slice(0, -1) + BASE64URL_ALPHABET[last | 1], 'jwt_malformed');
  });
  it('a valid signature spelled another way (unused low bits of its last character set)', async () => {
    const token = await mint(rsa);
    const alphabet = BASE64URL_ALPHABET;
    // The last of 342 characters carries 2 bits of the signature and 4 unused ones.
    const respelled = token.slice(0, -1) + alphabet[alphabet.indexOf(token[token.length - 1]) ^ 1];
    expect(Buffer.from(respelled.split('.')[2], 'base64url')).toEqual(Buffer.from(token.split('.')[2], 'base64url'));
    expect((await get(token)).status).toBe(200);
    await expectRefused(respelled, 'jwt_malformed');
  });
  it('a signature of another token', async () => {
    const [h, p] = (await mint(ec, { sub: 'alice' })).split('.');
    const [, , s] = (await mint(ec, { sub: 'mallory' })).split('.');
    await expectRefused(`${h}.${p}.${s}`, 'jwt_bad_signature');
  });
  it('a tampered payload', async () => {
    const [h, , s] = (await mint(rsa)).split('.');
    const p = base64url.encode(JSON.stringify({ iss: ISS, aud: 'api', sub: 'admin', exp: nowS() + 300 }));
    await expectRefused(`${h}.${p}.${s}`, 'jwt_bad_signature');
  });
  it('an undecodable payload', async () => {
    const [h, , s] = (await mint(rsa)).split('.');
    await expectRefused(`${h}.${base64url.encode('not json')}.${s}`, 'jwt_malformed');
  });
  it('a crit header (refused before any signature work)', async () => {
    const [, p, s] = (await mint(rsa)).split('.');
    const h = base64url.encode(JSON.stringify({ alg: 'RS256', kid: rsa.kid, crit: ['exp'], exp: 1 }));
    await expectRefused(`${h}.${p}.${s}`, 'jwt_invalid');
  });
  it('a subject claim with a control character', async () => expectRefused(await mint(rsa, { sub: 'alice\nx-admin: 1' }), 'invalid_claim'));
  it('a subject claim over 256 characters', async () => expectRefused(await mint(rsa, { sub: 'a'.repeat(257) }), 'invalid_claim'));
  it('a non-string subject claim, or none', async () => {
    await expectRefused(await mint(rsa, { sub: 42 as unknown as string }), 'invalid_claim');
    await expectRefused(await mint(rsa, { sub: undefined }), 'invalid_claim');
  });
  it('an ID token typed id_token+jwt (RFC 8725 §3.11: the issuer accepts none, JWT and at+jwt)', async () => {
    const token = await new SignJWT({ iss: ISS, aud: 'api', sub: 'alice', iat: nowS(), exp: nowS() + 300 })
      .setProtectedHeader({ alg: rsa.alg, kid: rsa.kid, typ: 'id_token+jwt' })
      .sign(rsa.privateKey);
    await expectRefused(token, 'jwt_wrong_type');
    expect((await get(await mint(rsa, {}, 'at+jwt'))).status).toBe(200);
  });
  it('a payload typ of ID (a Keycloak ID token), typed JWT in its header', async () => expectRefused(await mint(rsa, { typ: 'ID' }), 'jwt_wrong_type'));
  it('a payload naming sub twice, signed correctly (the upstream could read the other one)', async () => {
    const payload = `{"iss":"${ISS}","aud":"api","sub":"alice","sub":"admin","exp":${nowS() + 300}}`;
    const token = es256Token(JSON.stringify({ alg: ec.alg, kid: ec.kid }), payload, ec.privateKey as KeyObject);
    await expectRefused(token, 'jwt_malformed');
    expect((await get(es256Token(JSON.stringify({ alg: ec.alg, kid: ec.kid }), payload.replace(',"sub":"admin"', ''), ec.privateKey as KeyObject))).status).toBe(200);
  });
  it('a validly signed token over 8 KiB is not parsed as a JWT (and is no static token)', async () => {
    const token = await mint(rsa, { pad: 'x'.repeat(9 * 1024) });
    expect(token.length).toBeGreaterThan(8 * 1024);
    await expectRefused(token, 'invalid_token');
  });
});

describe('static tokens alongside', () => {
  it('a static token authenticates as its name', async () => {
    expect((await get(STATIC_TOKEN)).status).toBe(200);
    expect(lastReceived().headers[FORWARDED_HEADERS.subject]).toBe('ci');
  });

  it('a static token with dots that is no JWT still goes to the token set', async () => {
    expect((await get(DOTTED_STATIC_TOKEN)).status).toBe(200);
    expect(lastReceived().headers[FORWARDED_HEADERS.subject]).toBe('dotted');
    await expectRefused('abc.def.ghx', 'invalid_token');
  });
});

describe('metrics', () => {
  it('requests are labelled with the issuer name, not the JWT subject; the JWKS gauges per issuer', async () => {
    const text = await metrics();
    expect(text).toMatch(/sidecar_http_requests_total\{code="200",subject="idp"\} \d+/);
    expect(text).toMatch(/sidecar_http_requests_total\{code="200",subject="other"\} \d+/);
    expect(text).not.toMatch(/subject="idp:/);
    expect(text).toMatch(/sidecar_jwks_keys_loaded\{issuer="idp"\} 3/);
    expect(text).toMatch(/sidecar_jwks_keys_loaded\{issuer="other"\} 1/);
  });
});

// Last: these change the idp's key set.
describe('key rotation without a restart', () => {
  it('a rewritten JWKS is picked up: the new key verifies, the removed key no longer does (even for a cached token)', async () => {
    const oldToken = await mint(rsa, { sub: 'old' });
    expect((await get(oldToken)).status).toBe(200);
    const rsa2 = await signingKey('rsa-2', 'RS256');
    const newToken = await mint(rsa2, { sub: 'new' });
    expect((await get(newToken)).status).toBe(401);
    writeJwks(idpJwks, [rsa2, ec, ed]);
    expect(await eventually(async () => (await get(newToken)).status === 200)).toBe(true);
    expect(lastReceived().headers[FORWARDED_HEADERS.subject]).toBe('idp:new');
    expect((await get(oldToken)).status).toBe(401);
  });

  it('a broken JWKS keeps the last good key set, with a failure metric', async () => {
    const token = await mint(ec, { sub: 'still' });
    expect((await get(token)).status).toBe(200);
    writeJwks(idpJwks, '{"keys": [ broken');
    expect(await eventually(async () => /sidecar_jwks_reloads_total\{issuer="idp",result="failure"\} [1-9]/.test(await metrics()))).toBe(true);
    expect((await get(token)).status).toBe(200);
    expect((await get(await mint(ed, { sub: 'fresh' }))).status).toBe(200);
    expect(await metrics()).toMatch(/sidecar_jwks_keys_loaded\{issuer="idp"\} 3/);
    writeJwks(idpJwks, JSON.stringify({ keys: [{ kty: 'oct', k: base64url.encode('secret'), kid: 'hmac' }] }));
    expect(await eventually(async () => /sidecar_jwks_reloads_total\{issuer="idp",result="failure"\} [2-9]/.test(await metrics()))).toBe(true);
    expect((await get(token)).status).toBe(200);
  });
});

describe('readiness', () => {
  it('not ready until every issuer has keys; ready once its JWKS file appears', async () => {
    const tokens = tempDir('jwt-ready-tokens-');
    const jwks = tempDir('jwt-ready-jwks-');
    fs.writeFileSync(path.join(tokens.dir, 'ci'), STATIC_TOKEN);
    const file = path.join(jwks.dir, 'late.json');
    const app = await startApp('sidecar', {
      env: {
        ...localSidecarEnv(upstream.url, tokens.dir),
        [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers([{ name: 'late', issuer: ISS, audiences: ['api'], jwksFile: file }]),
        [SIDECAR_ENV.tokensPollIntervalMs]: '100',
        [SIDECAR_ENV.drainDelayMs]: '0',
      },
    });
    try {
      const ready = await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
      expect(ready.status).toBe(503);
      expect(ready.text()).toContain('late');
      const token = await mint(rsa);
      const refused = await request(app.port, { path: '/', headers: { authorization: `Bearer ${token}` } });
      expect(refused.status).toBe(401);
      writeJwks(file, [rsa]);
      expect(await eventually(async () => (await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness })).status === 200)).toBe(true);
      expect((await request(app.port, { path: '/', headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    } finally {
      await app.stop();
      tokens.cleanup();
      jwks.cleanup();
    }
  });
});
