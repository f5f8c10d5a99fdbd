/**
 * Through the real compiled sidecar: an HMAC issuer with an explicit secret file (and its rotation),
 * forwarded claims as x-auth-claim-* headers, and every client spelling of those headers stripped,
 * whoever authenticated (raw bytes, so Node's header handling on our side cannot tidy them).
 */
import * as fs from 'fs';
import * as path from 'path';
import { SignJWT } from 'jose';
import { FORWARDED_HEADERS, HEALTH_PATHS, SIDECAR_ENV, encodeJwtIssuers } from '../lib/src/contract';
import type { JwtIssuerSpec } from '../lib/src/contract';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { eventually, rawRequest, rawStatus, request, tempDir } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';

const ISS = 'https://shared.test';
const STATIC_TOKEN = 'static-token-0123456789abcdef';
const SECRET = 'an-hmac-secret-of-at-least-32-bytes!!';
const NEW_SECRET = 'the-rotated-hmac-secret-also-32-bytes+';
const nowS = () => Math.floor(Date.now() / 1000);

let upstream: TestUpstream;
let sidecar: RunningApp;
let dir: { dir: string; cleanup: () => void };
let secretFile: string;

const sign = (secret: string, claims: Record<string, unknown> = {}, alg = 'HS256') =>
  new SignJWT({ iss: ISS, aud: 'api', sub: 'billing', iat: nowS(), exp: nowS() + 300, ...claims }).setProtectedHeader({ alg }).sign(Buffer.from(secret));

/** Write atomically, as a Secret update lands. */
function writeSecret(text: string): void {
  fs.writeFileSync(`${secretFile}.tmp`, text);
  fs.renameSync(`${secretFile}.tmp`, secretFile);
}

beforeAll(async () => {
  upstream = await startUpstream();
  dir = tempDir('jwt-hmac-');
  fs.mkdirSync(path.join(dir.dir, 'tokens'));
  fs.mkdirSync(path.join(dir.dir, 'secret'));
  fs.writeFileSync(path.join(dir.dir, 'tokens', 'ci'), STATIC_TOKEN);
  secretFile = path.join(dir.dir, 'secret', 'hmac');
  writeSecret(`${SECRET}\n`);
  const issuers: JwtIssuerSpec[] = [{ name: 'shared', issuer: ISS, audiences: ['api'], hmacSecretFile: secretFile, forwardClaims: ['groups', 'tenant', 'constructor', '__proto__'] }];
  sidecar = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstream.url, path.join(dir.dir, 'tokens')),
      [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers(issuers),
      [SIDECAR_ENV.tokensPollIntervalMs]: '200',
      [SIDECAR_ENV.drainDelayMs]: '0',
    },
  });
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
  dir?.cleanup();
});

const get = (token: string) => request(sidecar.port, { path: '/who', headers: { authorization: `Bearer ${token}` } });
const last = () => upstream.received[upstream.received.length - 1];

describe('an HMAC issuer', () => {
  it('admits a token signed with the secret in the file (its trailing newline ignored), as <name>:<sub>', async () => {
    const res = await get(await sign(SECRET));
    expect(res.status).toBe(200);
    expect(last().headers[FORWARDED_HEADERS.subject]).toBe('shared:billing');
  });

  it.each([
    ['another secret', () => sign('x'.repeat(40))],
    ['an asymmetric alg name', async () => (await sign(SECRET)).replace(/^[^.]+/, Buffer.from('{"alg":"RS256"}').toString('base64url'))],
    ['HS512 where only HS256 is allowed', () => sign(`${SECRET}${SECRET}`, {}, 'HS512')],
  ])('refuses %s with 401', async (_what, make) => {
    const before = upstream.count();
    expect((await get(await make())).status).toBe(401);
    expect(upstream.count()).toBe(before);
  });

  it('picks up a rotated secret without a restart: the old one stops working at once', async () => {
    const old = await sign(SECRET);
    expect((await get(old)).status).toBe(200);
    writeSecret(NEW_SECRET);
    const fresh = await sign(NEW_SECRET);
    expect(await eventually(async () => (await get(fresh)).status === 200, undefined, 100)).toBe(true);
    // Cached before, refused now: a changed key set empties the cache.
    expect((await get(old)).status).toBe(401);
    writeSecret(SECRET);
    expect(await eventually(async () => (await get(await sign(SECRET))).status === 200, undefined, 100)).toBe(true);
  });

  it('a secret shorter than 32 bytes is not loaded; the last good one stays, and a warning says why', async () => {
    writeSecret('too-short');
    const warned = () => sidecar.lines.some((l) => l.includes('the HMAC secret is 9 bytes; HS256 needs at least 32'));
    expect(await eventually(warned, undefined, 100)).toBe(true);
    expect((await get(await sign(SECRET))).status).toBe(200);
    expect((await get(await sign('too-short'))).status).toBe(401);
    // The warning names the file, never the secret.
    expect(sidecar.lines.join('\n')).not.toContain(SECRET);
    writeSecret(SECRET);
  });
});

describe('forwarded claims', () => {
  it('go upstream as x-auth-claim-<claim>, lists comma-joined', async () => {
    expect((await get(await sign(SECRET, { groups: ['billing', 'ops'], tenant: 'acme' }))).status).toBe(200);
    expect(last().headers['x-auth-claim-groups']).toBe('billing,ops');
    expect(last().headers['x-auth-claim-tenant']).toBe('acme');
  });

  it('claims named constructor and __proto__ that the token lacks send no header (never what every object inherits); its own ones go', async () => {
    expect((await get(await sign(SECRET, { groups: ['billing'] }))).status).toBe(200);
    const sent = (headers: Record<string, unknown>) => Object.keys(headers).filter((n) => n.startsWith('x-auth-claim-'));
    expect(sent(last().headers)).toEqual(['x-auth-claim-groups']);
    // JSON.parse makes "__proto__" an own member; the payload is signed as JSON.stringify writes it.
    const own = JSON.parse('{"constructor":"ops","__proto__":"admins"}') as Record<string, unknown>;
    expect((await get(await sign(SECRET, own))).status).toBe(200);
    expect(last().headers).toMatchObject({ 'x-auth-claim-constructor': 'ops', 'x-auth-claim-__proto__': 'admins' });
  });

  it('a claim value with a control character refuses the request instead of being forwarded', async () => {
    const before = upstream.count();
    const res = await get(await sign(SECRET, { tenant: 'acme\r\nx-auth-subject: root' }));
    expect(res.status).toBe(401);
    expect(upstream.count()).toBe(before);
  });

  const spoofed = ['X-Auth-Claim-Groups: admin', 'x_auth_claim_groups: admin', 'X.Auth.Claim.Tenant: evil', 'x-auth-claim-role: root'];

  it.each([
    ['a JWT caller', () => sign(SECRET, { groups: ['billing'] })],
    ['a static-token caller', async () => STATIC_TOKEN],
  ])('every client spelling of a claim header is stripped, for %s', async (_who, token) => {
    const before = upstream.count();
    const raw = `GET /who HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${await token()}\r\n${spoofed.join('\r\n')}\r\nConnection: close\r\n\r\n`;
    expect(rawStatus(await rawRequest(sidecar.port, raw))).toBe(200);
    expect(upstream.count()).toBe(before + 1);
    const headers = upstream.received[upstream.received.length - 1].headers;
    const claimNames = Object.keys(headers).filter((n) => n.replace(/[^a-z0-9]/g, '').startsWith('xauthclaim'));
    expect(claimNames.map((n) => [n, headers[n]])).toEqual(_who === 'a JWT caller' ? [['x-auth-claim-groups', 'billing']] : []);
  });
});

describe('readiness', () => {
  it('an HMAC issuer whose secret file is missing at start: not ready, its tokens refused', async () => {
    const app = await startApp('sidecar', {
      env: {
        ...localSidecarEnv(upstream.url, path.join(dir.dir, 'tokens')),
        [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers([{ name: 'gone', issuer: 'https://gone.test', audiences: ['api'], hmacSecretFile: path.join(dir.dir, 'secret', 'absent') }]),
        [SIDECAR_ENV.drainDelayMs]: '0',
      },
    });
    try {
      const ready = await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
      expect(ready.status).toBe(503);
      expect(ready.text()).toContain('gone');
    } finally {
      await app.stop();
    }
  });
});
