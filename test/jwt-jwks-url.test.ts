/**
 * JWKS fetched from an https: URL, through the real compiled sidecar: a real HTTPS issuer on
 * 127.0.0.1 with a CA made in-test (passed as caFile), counting its requests. Key rotation via the
 * unknown-kid refetch, the refetch's rate limit under a flood, readiness while the issuer is down,
 * and the last good key set kept through garbage and 500s. The store itself in-process for what the
 * process cannot show quickly (a certificate from another CA, a redirect).
 */
import * as fs from 'fs';
import * as path from 'path';
import pino from 'pino';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { JWK, JWTPayload, KeyLike } from 'jose';
import { FORWARDED_HEADERS, HEALTH_PATHS, SIDECAR_ENV, encodeJwtIssuers, parseJwtIssuers } from '../lib/src/contract';
import type { JwtIssuer, JwtIssuerSpec } from '../lib/src/contract';
import { JwksUrlStore } from '../apps/sidecar/src/jwt/jwks-url';
import { RunningApp, localSidecarEnv, runToExit, startApp } from './support/apps';
import { eventually, request, tempDir } from './support/http';
import { JwksServer, TestCa, makeTestCa, startJwksServer } from './support/jwks-server';
import { TestUpstream, startUpstream } from './support/upstream';
import { EVENT_TIMEOUT_MS } from '../tools/waits';

/** A hung issuer: far longer than any fetch bound, so giving up early cannot be mistaken for its answer. */
const STALL_MS = 60_000;

const STATIC_TOKEN = 'static-token-0123456789abcdef';
const nowS = () => Math.floor(Date.now() / 1000);

interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyLike;
  readonly publicJwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, use: 'sig' } };
}

const jwks = (...keys: SigningKey[]) => ({ body: JSON.stringify({ keys: keys.map((k) => k.publicJwk) }) });

function mint(key: SigningKey, iss: string, claims: JWTPayload = {}, kid = key.kid): Promise<string> {
  return new SignJWT({ iss, aud: 'api', sub: 'alice', iat: nowS(), exp: nowS() + 300, ...claims }).setProtectedHeader({ alg: 'ES256', kid }).sign(key.privateKey);
}

let ca: TestCa;
let issuerServer: JwksServer;
let upstream: TestUpstream;
let tokens: { dir: string; cleanup: () => void };
let sidecar: RunningApp;
let k1: SigningKey;
let k2: SigningKey;
let g1: SigningKey;
let b1: SigningKey;
let stranger: SigningKey;

const spec = (name: string, p: string, over: Partial<JwtIssuerSpec> = {}): JwtIssuerSpec => ({
  name,
  issuer: `https://${name}.test`,
  audiences: ['api'],
  jwksUrl: issuerServer.url(p),
  caFile: ca.caFile,
  algorithms: ['ES256'],
  ...over,
});

beforeAll(async () => {
  ca = makeTestCa();
  issuerServer = await startJwksServer(ca);
  [k1, k2, g1, b1, stranger] = await Promise.all(['k1', 'k2', 'g1', 'b1', 'stranger'].map(signingKey));
  issuerServer.set('/idp.json', jwks(k1));
  issuerServer.set('/garbage.json', jwks(g1));
  issuerServer.set('/broken.json', jwks(b1));
  upstream = await startUpstream();
  tokens = tempDir('jwks-url-tokens-');
  fs.writeFileSync(path.join(tokens.dir, 'ci'), STATIC_TOKEN);
  sidecar = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstream.url, tokens.dir),
      [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers([spec('idp', '/idp.json'), spec('garbage', '/garbage.json'), spec('broken', '/broken.json')]),
      [SIDECAR_ENV.drainDelayMs]: '0',
    },
  });
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
  await issuerServer?.close();
  tokens?.cleanup();
  ca?.cleanup();
});

const get = (app: RunningApp, token: string) => request(app.port, { path: '/who', headers: { authorization: `Bearer ${token}` } });
const metrics = async (app: RunningApp = sidecar) => (await request(app.adminPort!, { path: HEALTH_PATHS.metrics })).text();
const counter = async (re: RegExp) => Number(re.exec(await metrics())?.[1] ?? '0');
const reloads = (issuer: string, result: string) => counter(new RegExp(`sidecar_jwks_reloads_total\\{issuer="${issuer}",result="${result}"\\} (\\d+)`));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a JWKS from an https: URL (private CA in caFile)', () => {
  it('fetched once at start; a valid token is admitted with <name>:<sub>', async () => {
    expect((await request(sidecar.adminPort!, { path: HEALTH_PATHS.sidecarReadiness })).status).toBe(200);
    expect(issuerServer.count('/idp.json')).toBe(1);
    const res = await get(sidecar, await mint(k1, 'https://idp.test'));
    expect(res.status).toBe(200);
    expect(upstream.received[upstream.received.length - 1].headers[FORWARDED_HEADERS.subject]).toBe('idp:alice');
    expect(await metrics()).toMatch(/sidecar_jwks_keys_loaded\{issuer="idp"\} 1/);
  });

  it('a rotated key is picked up by the unknown-kid refetch: 401 jwt_unknown_key now, 200 once refetched', async () => {
    issuerServer.set('/idp.json', jwks(k2));
    const token = await mint(k2, 'https://idp.test', { sub: 'rotated' });
    const first = await get(sidecar, token);
    expect(first.status).toBe(401);
    expect(await eventually(async () => (await get(sidecar, token)).status === 200)).toBe(true);
    expect(upstream.received[upstream.received.length - 1].headers[FORWARDED_HEADERS.subject]).toBe('idp:rotated');
    expect(issuerServer.count('/idp.json')).toBe(2);
    // The removed key is gone with the refetch, cached verdicts included.
    expect((await get(sidecar, await mint(k1, 'https://idp.test'))).status).toBe(401);
  });

  it('a flood of 50 unknown-kid tokens causes at most one more fetch within the rate window', async () => {
    const before = issuerServer.count('/idp.json');
    const failuresBefore = await counter(/sidecar_auth_failures_total\{reason="jwt_unknown_key"\} (\d+)/);
    const flood = await Promise.all(Array.from({ length: 50 }, async (_, i) => get(sidecar, await mint(stranger, 'https://idp.test', {}, `made-up-${i}`))));
    expect(flood.map((r) => r.status)).toEqual(Array(50).fill(401));
    await sleep(500);
    expect(issuerServer.count('/idp.json') - before).toBeLessThanOrEqual(1);
    expect(await counter(/sidecar_auth_failures_total\{reason="jwt_unknown_key"\} (\d+)/)).toBe(failuresBefore + 50);
    expect((await get(sidecar, await mint(k2, 'https://idp.test', { sub: 'after-flood' }))).status).toBe(200);
  });

  it('garbage after a good fetch: the last good keys stay in force, the failure is counted', async () => {
    expect((await get(sidecar, await mint(g1, 'https://garbage.test'))).status).toBe(200);
    issuerServer.set('/garbage.json', { body: '{"keys": [ not json' });
    const before = issuerServer.count('/garbage.json');
    // An unknown kid makes it refetch now rather than in refreshSeconds.
    expect((await get(sidecar, await mint(stranger, 'https://garbage.test'))).status).toBe(401);
    expect(await eventually(async () => (await reloads('garbage', 'failure')) >= 1)).toBe(true);
    expect(issuerServer.count('/garbage.json')).toBe(before + 1);
    expect((await get(sidecar, await mint(g1, 'https://garbage.test', { sub: 'fresh' }))).status).toBe(200);
    expect(await metrics()).toMatch(/sidecar_jwks_keys_loaded\{issuer="garbage"\} 1/);
    expect((await request(sidecar.adminPort!, { path: HEALTH_PATHS.sidecarReadiness })).status).toBe(200);
  });

  it('a 500 after a good fetch: the last good keys stay in force, the failure is counted', async () => {
    expect((await get(sidecar, await mint(b1, 'https://broken.test'))).status).toBe(200);
    issuerServer.set('/broken.json', { status: 500, body: 'oops' });
    expect((await get(sidecar, await mint(stranger, 'https://broken.test'))).status).toBe(401);
    expect(await eventually(async () => (await reloads('broken', 'failure')) >= 1)).toBe(true);
    expect((await get(sidecar, await mint(b1, 'https://broken.test', { sub: 'fresh' }))).status).toBe(200);
    expect(await metrics()).toMatch(/sidecar_jwks_keys_loaded\{issuer="broken"\} 1/);
  });
});

describe('readiness', () => {
  it('the issuer down at start: not ready (503 naming it), tokens refused; ready once it comes up', async () => {
    const late = await startJwksServer(ca);
    await late.close();
    const app = await startApp('sidecar', {
      env: {
        ...localSidecarEnv(upstream.url, tokens.dir),
        [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers([{ ...spec('late', '/late.json'), jwksUrl: late.url('/late.json') }]),
        [SIDECAR_ENV.drainDelayMs]: '0',
      },
    });
    try {
      const ready = await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
      expect(ready.status).toBe(503);
      expect(ready.text()).toContain('late');
      const token = await mint(k1, 'https://late.test');
      expect((await get(app, token)).status).toBe(401);
      expect((await get(app, STATIC_TOKEN)).status).toBe(200);
      late.set('/late.json', jwks(k1));
      await late.listen();
      // The retries back off (1 s, 2 s, 4 s, ...): the longer a busy machine took to get here, the longer the next one waits.
      expect(await eventually(async () => (await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness })).status === 200, 2 * EVENT_TIMEOUT_MS, 200)).toBe(true);
      expect((await get(app, token)).status).toBe(200);
      expect(await metrics(app)).toMatch(/sidecar_jwks_reloads_total\{issuer="late",result="failure"\} [1-9]/);
    } finally {
      await app.stop();
      await late.close();
    }
  });
});

describe('start-up refusal', () => {
  it('an http: jwksUrl: exit 2, one line naming SIDECAR_JWT_ISSUERS and the issuer', async () => {
    const { code, output } = await runToExit('sidecar', {
      ...localSidecarEnv(upstream.url, tokens.dir),
      [SIDECAR_ENV.jwtIssuers]: JSON.stringify([{ name: 'plain', issuer: 'https://plain.test', audiences: ['api'], jwksUrl: 'http://127.0.0.1:1/jwks.json' }]),
    });
    const lines = output.trim().split('\n');
    expect({ code, lines: lines.length }).toEqual({ code: 2, lines: 1 });
    expect(lines[0]).toMatch(/^sidecar: SIDECAR_JWT_ISSUERS: issuer 1 \("plain"\): jwksUrl must be an https: URL/);
  });
});

describe('JwksUrlStore in-process', () => {
  const logger = pino({ level: 'silent' });
  const issuerOf = (over: Partial<JwtIssuerSpec>): JwtIssuer => {
    const parsed = parseJwtIssuers(JSON.stringify([spec('unit', '/unit.json', over)]));
    if (!parsed.ok) throw new Error(parsed.problem);
    return parsed.value[0];
  };

  it('without caFile the test CA is not trusted: no keys, and the reason says why', async () => {
    issuerServer.set('/unit.json', jwks(k1));
    const store = new JwksUrlStore({ issuer: issuerOf({ caFile: undefined }), logger });
    await store.start();
    store.close();
    expect(store.keys).toHaveLength(0);
    expect(store.unavailableReason).toMatch(/issuer "unit": no keys loaded: cannot fetch: \S*(CERT|SIGNATURE|ISSUER)/);
  });

  it.each([
    ['hangs before answering', { stallMs: STALL_MS }],
    ['sends the head and a few bytes, then trickles', { stallMs: STALL_MS, partialBytes: 5 }],
  ])('an issuer that %s: the fetch gives up at its bound, no keys, and the reason says so', async (_what, slow) => {
    issuerServer.set('/slow.json', { ...jwks(k1), ...slow });
    const store = new JwksUrlStore({ issuer: issuerOf({ jwksUrl: issuerServer.url('/slow.json') }), logger, fetchTimeoutMs: 300 });
    const began = Date.now();
    await store.start();
    store.close();
    // At its own bound, long before the issuer would have answered.
    expect(Date.now() - began).toBeLessThan(STALL_MS / 2);
    expect(store.keys).toHaveLength(0);
    expect(store.unavailableReason).toMatch(/no complete answer within 300 ms/);
  });

  it('a slow issuer after a good fetch: the last good keys stay in force', async () => {
    issuerServer.set('/slow-later.json', jwks(k1));
    const results: string[] = [];
    const store = new JwksUrlStore({ issuer: issuerOf({ jwksUrl: issuerServer.url('/slow-later.json') }), logger, fetchTimeoutMs: 300, onReload: (r) => results.push(r) });
    await store.start();
    issuerServer.set('/slow-later.json', { ...jwks(k2), stallMs: STALL_MS });
    await store.fetch('test');
    store.close();
    expect(results).toEqual(['success', 'failure']);
    expect(store.keys.map((k) => k.kid)).toEqual(['k1']);
  });

  it('a redirect is not followed', async () => {
    issuerServer.set('/moved.json', { status: 302, body: '', headers: { location: issuerServer.url('/unit.json') } });
    const before = issuerServer.count('/unit.json');
    const store = new JwksUrlStore({ issuer: issuerOf({ jwksUrl: issuerServer.url('/moved.json') }), logger });
    await store.start();
    store.close();
    expect(store.keys).toHaveLength(0);
    expect(store.unavailableReason).toMatch(/answered 302 \(redirects are not followed\)/);
    expect(issuerServer.count('/unit.json')).toBe(before);
  });

  it('the unknown-kid refetch is rate-limited per store, and a success counts and swaps keys', async () => {
    issuerServer.set('/unit.json', jwks(k1));
    let clock = 1_000_000;
    const results: string[] = [];
    const store = new JwksUrlStore({ issuer: issuerOf({}), logger, now: () => clock, onReload: (r) => results.push(r) });
    await store.start();
    const before = issuerServer.count('/unit.json');
    issuerServer.set('/unit.json', jwks(k1, k2));
    for (let i = 0; i < 20; i++) store.unknownKey();
    expect(await eventually(() => store.keys.length === 2)).toBe(true);
    for (let i = 0; i < 20; i++) store.unknownKey();
    clock += 29_000;
    store.unknownKey();
    await sleep(300);
    expect(issuerServer.count('/unit.json') - before).toBe(1);
    clock += 1_000;
    store.unknownKey();
    expect(await eventually(() => issuerServer.count('/unit.json') - before === 2)).toBe(true);
    store.close();
    expect(results.every((r) => r === 'success')).toBe(true);
  });
});
