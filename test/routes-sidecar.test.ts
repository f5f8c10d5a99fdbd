/**
 * Route rules (SIDECAR_ROUTES) through the real compiled sidecar, in front of a raw recording
 * upstream: exact, prefix and method matching, first match wins, public / authenticated / subjects
 * by static token name, JWT subject and claim value, the default (authenticated or deny), 401 before
 * 403, the deciding rule in the access log and in the 403 metric, and every spelling that could make
 * a protected path look like a public one, on raw sockets: none may reach the upstream. An admitted
 * request's target reaches the upstream byte for byte.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { JWTPayload, KeyLike } from 'jose';
import { FORWARDED_HEADERS, HEALTH_PATHS, SIDECAR_ENV, encodeJwtIssuers, encodeRoutes } from '../lib/src/contract';
import type { JwtIssuerSpec, RouteTableSpec } from '../lib/src/contract';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { request, tempDir } from './support/http';
import { RawConnection } from './support/raw-client';
import { RecordingUpstream, headerOf, startRecordingUpstream } from './support/recording-upstream';

const TOKENS = { ci: 'routes-ci-token-0123456789', ops: 'routes-ops-token-0123456789' } as const;
const ISS = 'https://okta.test';
const OTHER_ISS = 'https://other.test';

/** The table most tests run against; its rule numbers appear in the assertions. */
const TABLE: RouteTableSpec = {
  rules: [
    /* 1 */ { path: '/public/*', methods: ['GET'], effect: 'public' },
    /* 2 */ { path: '/admin/*', effect: 'subjects', subjects: ['ops', 'okta:alice'], claims: [{ issuer: 'okta', claim: 'groups', value: 'admins' }] },
    /* 3 */ { path: '/api/internal/*', effect: 'subjects', subjects: ['ci'] },
    /* 4 */ { path: '/api/*', methods: ['GET', 'HEAD'], effect: 'public' },
    /* 5 */ { path: '/api/*', effect: 'authenticated' },
    /* 6 */ { path: '/exact', effect: 'public' },
    /* 7 */ { path: '/okta/*', effect: 'subjects', subjects: ['okta:*'] },
    /* 8 */ { path: '/exact-ops', effect: 'subjects', subjects: ['ops'] },
  ],
};

const DENY_TABLE: RouteTableSpec = {
  rules: [
    /* 1 */ { path: '/open', effect: 'public' },
    /* 2 */ { path: '/api/*', effect: 'authenticated' },
  ],
  default: 'deny',
};

interface Key {
  readonly privateKey: KeyLike;
  readonly kid: string;
}

let upstream: RecordingUpstream;
let sidecar: RunningApp;
let denySidecar: RunningApp;
let dirs: { tokens: { dir: string; cleanup: () => void }; jwks: { dir: string; cleanup: () => void } };
let okta: Key;
let other: Key;

async function es256(kid: string, file: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  fs.writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'ES256' }] }));
  return { privateKey, kid };
}

const nowS = () => Math.floor(Date.now() / 1000);

function mint(key: Key, claims: JWTPayload, iss = ISS): Promise<string> {
  return new SignJWT({ iss, aud: 'api', iat: nowS(), exp: nowS() + 300, ...claims }).setProtectedHeader({ alg: 'ES256', kid: key.kid }).sign(key.privateKey);
}

beforeAll(async () => {
  upstream = await startRecordingUpstream();
  dirs = { tokens: tempDir('routes-tokens-'), jwks: tempDir('routes-jwks-') };
  for (const [name, token] of Object.entries(TOKENS)) fs.writeFileSync(path.join(dirs.tokens.dir, name), token);
  okta = await es256('okta-1', path.join(dirs.jwks.dir, 'okta.json'));
  other = await es256('other-1', path.join(dirs.jwks.dir, 'other.json'));
  const issuers: JwtIssuerSpec[] = [
    { name: 'okta', issuer: ISS, audiences: ['api'], jwksFile: path.join(dirs.jwks.dir, 'okta.json'), algorithms: ['ES256'] },
    { name: 'other', issuer: OTHER_ISS, audiences: ['api'], jwksFile: path.join(dirs.jwks.dir, 'other.json'), algorithms: ['ES256'] },
  ];
  const env = (table: RouteTableSpec) => ({
    ...localSidecarEnv(upstream.url, dirs.tokens.dir),
    [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers(issuers)!,
    [SIDECAR_ENV.routes]: encodeRoutes(table)!,
    [SIDECAR_ENV.drainDelayMs]: '0',
  });
  [sidecar, denySidecar] = await Promise.all([startApp('sidecar', { env: env(TABLE) }), startApp('sidecar', { env: env(DENY_TABLE) })]);
});

afterAll(async () => {
  await Promise.all([sidecar?.stop(), denySidecar?.stop()]);
  await upstream?.close();
  dirs?.tokens.cleanup();
  dirs?.jwks.cleanup();
});

/** Every byte the upstream has received so far, on every connection. */
const upstreamBytes = () => upstream.connections.reduce((n, c) => n + c.bytes.length, 0);

let nextId = 0;

/** One request through `app`; what it answered, the target the upstream got (if any), and the access line. */
async function send(target: string, opts: { method?: string; token?: string; app?: RunningApp } = {}) {
  const app = opts.app ?? sidecar;
  const method = opts.method ?? 'GET';
  const requestId = `routes-${++nextId}`;
  const before = upstream.requests().length;
  const bytesBefore = upstreamBytes();
  const conn = await RawConnection.open(app.port);
  const auth = opts.token === undefined ? '' : `Authorization: Bearer ${opts.token}\r\n`;
  conn.write(`${method} ${target} HTTP/1.1\r\nHost: routes.test\r\nX-Request-Id: ${requestId}\r\n${auth}Connection: close\r\n\r\n`);
  const res = await conn.response(undefined, method);
  conn.close();
  const line = res === undefined || res.status === 400 ? undefined : await app.waitForLog((l) => l.msg === 'request' && l.requestId === requestId);
  const reached = upstream.requests().slice(before);
  return { status: res?.status ?? 0, res, reached, line, bytesSent: upstreamBytes() - bytesBefore };
}

const metrics = async (app: RunningApp = sidecar) => (await request(app.adminPort!, { path: HEALTH_PATHS.metrics })).text();
const counter = (text: string, name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1] ?? '0');

describe('matching: exact, prefix, methods, first match wins', () => {
  it.each([
    // [target, method, token, status, rule]
    ['/exact', 'GET', undefined, 200, 6],
    ['/exact/', 'GET', undefined, 401, 'default'],
    ['/exactly', 'GET', undefined, 401, 'default'],
    ['/public', 'GET', undefined, 200, 1],
    ['/public/', 'GET', undefined, 200, 1],
    ['/public/a/b', 'GET', undefined, 200, 1],
    ['/publicx', 'GET', undefined, 401, 'default'],
    ['/Public/a', 'GET', undefined, 401, 'default'],
    // Methods: only GET (and so HEAD, which servers answer with the GET handler) is public under /public.
    ['/public/a', 'HEAD', undefined, 200, 1],
    ['/public/a', 'POST', undefined, 401, 'default'],
    ['/public/a', 'POST', TOKENS.ci, 200, 'default'],
    // First match wins: /api/internal is restricted before /api is public for GET.
    ['/api/internal/x', 'GET', undefined, 401, 3],
    ['/api/internal', 'GET', undefined, 401, 3],
    ['/api/internalx', 'GET', undefined, 200, 4],
    ['/api/x', 'GET', undefined, 200, 4],
    ['/api/x', 'HEAD', undefined, 200, 4],
    ['/api', 'GET', undefined, 200, 4],
    ['/api/x', 'DELETE', undefined, 401, 5],
    ['/api/x', 'DELETE', TOKENS.ops, 200, 5],
    ['/elsewhere', 'GET', TOKENS.ci, 200, 'default'],
    // A subjects rule matches every case of its path (Express's router ignores case); public ones do not.
    ['/ADMIN/panel', 'GET', TOKENS.ci, 403, 2],
    ['/Admin/Panel', 'GET', TOKENS.ops, 200, 2],
    ['/API/Internal/x', 'GET', TOKENS.ops, 403, 3],
    ['/EXACT-OPS', 'GET', TOKENS.ci, 403, 8],
    ['/PUBLIC/a', 'GET', undefined, 401, 'default'],
  ] as const)('%s %s (token %s): %i, decided by rule %p', async (target, method, token, status, rule) => {
    const { status: got, reached, line } = await send(target, { method, token });
    expect(got).toBe(status);
    expect(reached).toHaveLength(status === 200 ? 1 : 0);
    expect(line?.rule).toBe(rule);
    if (status === 200) expect(reached[0].target).toBe(target);
    if (status === 200 && token === undefined) {
      expect(line?.reason).toBe('public');
      expect(headerOf(reached[0], FORWARDED_HEADERS.subject)).toBeUndefined();
    }
  });
});

describe('effect subjects: static token names, JWT subjects, claim values', () => {
  it('a listed token name passes; another valid token gets 403, no token or a wrong one 401', async () => {
    const ops = await send('/admin/panel', { token: TOKENS.ops });
    expect(ops.status).toBe(200);
    expect(headerOf(ops.reached[0], FORWARDED_HEADERS.subject)).toBe('ops');
    const ci = await send('/admin/panel', { token: TOKENS.ci });
    expect(ci.status).toBe(403);
    expect(ci.reached).toEqual([]);
    expect((await send('/admin/panel')).status).toBe(401);
    expect((await send('/admin/panel', { token: 'not-a-token-at-all' })).status).toBe(401);
    // The same on the restricted /api/internal: ci is listed there, ops is not.
    expect((await send('/api/internal/jobs', { token: TOKENS.ci })).status).toBe(200);
    expect((await send('/api/internal/jobs', { token: TOKENS.ops })).status).toBe(403);
  });

  it('an exact subjects rule restricts that path alone', async () => {
    expect((await send('/exact-ops', { token: TOKENS.ops })).status).toBe(200);
    expect((await send('/exact-ops', { token: TOKENS.ci })).status).toBe(403);
  });

  it('a JWT subject <issuer>:<claim> passes when listed, or under a prefix entry', async () => {
    const alice = await mint(okta, { sub: 'alice' });
    const bob = await mint(okta, { sub: 'bob' });
    const res = await send('/admin/x', { token: alice });
    expect(res.status).toBe(200);
    expect(headerOf(res.reached[0], FORWARDED_HEADERS.subject)).toBe('okta:alice');
    expect((await send('/admin/x', { token: bob })).status).toBe(403);
    expect((await send('/okta/anything', { token: bob })).status).toBe(200);
    // okta:* is a prefix of subjects, not of token names: a static token does not pass.
    expect((await send('/okta/anything', { token: TOKENS.ci })).status).toBe(403);
    // Another issuer's bob is other:bob.
    expect((await send('/okta/anything', { token: await mint(other, { sub: 'bob' }, OTHER_ISS) })).status).toBe(403);
  });

  it.each([
    ['a list holding the value', { groups: ['users', 'admins'] }, 200],
    ['the value as a string', { groups: 'admins' }, 200],
    ['a list without it', { groups: ['users'] }, 403],
    ['a longer string', { groups: 'admins2' }, 403],
    ['a nested list', { groups: [['admins']] }, 403],
    ['another claim holding it', { roles: ['admins'] }, 403],
    ['no such claim', {}, 403],
  ])('claim groups: %s (%j) → %i', async (_what, claims, status) => {
    const token = await mint(okta, { sub: 'carol', ...claims });
    const res = await send('/admin/claims', { token });
    expect(res.status).toBe(status);
    expect(res.reached).toHaveLength(status === 200 ? 1 : 0);
  });

  it('a claim counts only from the issuer the rule names', async () => {
    const token = await mint(other, { sub: 'carol', groups: ['admins'] }, OTHER_ISS);
    expect((await send('/admin/claims', { token })).status).toBe(403);
  });
});

describe('the 403', () => {
  it('is plain text without a challenge, carries the request id, and is logged with the rule, the subject and reason forbidden', async () => {
    const { status, res, line } = await send('/admin/logged', { token: TOKENS.ci });
    expect(status).toBe(403);
    expect(res!.body.toString()).toBe('Forbidden\n');
    expect(res!.headers['www-authenticate']).toBeUndefined();
    expect(res!.headers['cache-control']).toBe('no-store');
    expect(res!.headers[FORWARDED_HEADERS.requestId]).toMatch(/^routes-\d+$/);
    expect(line).toMatchObject({ status: 403, rule: 2, reason: 'forbidden', subject: 'ci', path: '/admin/logged' });
  });

  it('is counted by the rule that refused', async () => {
    const before = counter(await metrics(), 'sidecar_forbidden_total', 'rule="2"');
    const beforeEight = counter(await metrics(), 'sidecar_forbidden_total', 'rule="8"');
    await send('/admin/count', { token: TOKENS.ci });
    await send('/admin/count', { token: TOKENS.ci });
    await send('/exact-ops', { token: TOKENS.ci });
    const after = await metrics();
    expect(counter(after, 'sidecar_forbidden_total', 'rule="2"')).toBe(before + 2);
    expect(counter(after, 'sidecar_forbidden_total', 'rule="8"')).toBe(beforeEight + 1);
  });

  it('keeps the connection for the next request (no body left unread)', async () => {
    const conn = await RawConnection.open(sidecar.port);
    conn.write(`GET /admin/a HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${TOKENS.ci}\r\n\r\n`);
    expect((await conn.response())?.status).toBe(403);
    conn.write(`GET /admin/b HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${TOKENS.ops}\r\nConnection: close\r\n\r\n`);
    expect((await conn.response())?.status).toBe(200);
    conn.close();
  });

  it('closes the connection when the refused request has a body it did not read', async () => {
    const conn = await RawConnection.open(sidecar.port);
    conn.write(`POST /admin/a HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${TOKENS.ci}\r\nContent-Length: 5\r\n\r\n`);
    const res = await conn.response();
    expect(res?.status).toBe(403);
    expect(res?.headers.connection).toBe('close');
    expect(await conn.waitClosed()).toBe(true);
  });

  it('refuses a WebSocket upgrade to a forbidden route on the raw socket, before the upstream', async () => {
    const bytes = upstreamBytes();
    const conn = await RawConnection.open(sidecar.port);
    conn.write(
      `GET /admin/ws HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${TOKENS.ci}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    expect((await conn.response())?.status).toBe(403);
    expect(await conn.waitClosed()).toBe(true);
    expect(upstreamBytes()).toBe(bytes);
  });
});

describe('default deny', () => {
  it('401 without a credential, 403 with one, logged as the default; the rules still apply', async () => {
    const anonymous = await send('/other', { app: denySidecar });
    expect(anonymous.status).toBe(401);
    expect(anonymous.res!.headers['www-authenticate']).toMatch(/^Bearer realm=/);
    const before = counter(await metrics(denySidecar), 'sidecar_forbidden_total', 'rule="default"');
    const ci = await send('/other', { app: denySidecar, token: TOKENS.ci });
    expect(ci.status).toBe(403);
    expect(ci.reached).toEqual([]);
    expect(ci.line).toMatchObject({ rule: 'default', reason: 'forbidden' });
    expect(counter(await metrics(denySidecar), 'sidecar_forbidden_total', 'rule="default"')).toBe(before + 1);
    expect((await send('/api/orders', { app: denySidecar, token: TOKENS.ci })).status).toBe(200);
    expect((await send('/api/orders', { app: denySidecar })).status).toBe(401);
    const open = await send('/open', { app: denySidecar });
    expect(open.status).toBe(200);
    expect(open.line).toMatchObject({ rule: 1, reason: 'public' });
  });
});

/**
 * Spellings that a naive or normalising backend (or a framework behind it) could resolve to
 * /admin, or to something under it, while a prefix rule would have judged them public.
 */
const BYPASS_SPELLINGS = [
  '/api/../admin',
  '/api/../admin/x',
  '/api/%2e%2e/admin',
  '/api/%2E%2E/admin',
  '/api/.%2E/admin',
  '/api/%2E./admin',
  '/api/%C0%AE%C0%AE/admin',
  '//admin',
  '//admin/x',
  '/public//../admin',
  '/public/..%2Fadmin',
  '/public/..%2fadmin',
  '/public%2F../admin',
  '/public%2F..%2Fadmin',
  '/public/%5C../admin',
  '/public/..%5Cadmin',
  '/public;/admin',
  '/public;/../admin',
  '/public/.;/admin',
  '/public/..;/admin',
  '/public#/../admin',
  '/public/./admin',
  '/public/.',
  '/public/..',
  '/public/%2e/admin',
  '/public/%00/../admin',
  '/public\\..\\admin',
  '/public\\../admin',
  '/%61dmin/x',
  '/%41dmin/x',
  '/admin%2Fx',
  '/okta/%40x',
  '/exact%2Dops',
  '/api/internal%2A',
  '/admin/%3Ax',
  '/%2561dmin/x',
  '/public/%252e%252e/admin',
  'http://x/public/../admin',
  'http://x/admin/x',
  'http://x/public/x',
  '*',
];

describe('bypass spellings on raw sockets: refused before any rule, nothing reaches the upstream', () => {
  it.each(BYPASS_SPELLINGS)('%j', async (target) => {
    for (const token of [undefined, TOKENS.ci]) {
      const before = counter(await metrics(), 'sidecar_client_errors_total', 'reason="non_canonical_path"');
      const { status, reached, bytesSent } = await send(target, { token });
      expect(status).toBe(400);
      expect(reached).toEqual([]);
      expect(bytesSent).toBe(0);
      // Refused by the canonical check (not merely by Node's parser), and counted as a client error.
      expect(counter(await metrics(), 'sidecar_client_errors_total', 'reason="non_canonical_path"')).toBe(before + 1);
    }
  });

  it('the refusal never echoes the path', async () => {
    const { res } = await send('/public/..%2Fsecret-looking-path');
    expect(res!.status).toBe(400);
    expect(res!.body.toString()).toBe('Bad Request\n');
    expect(JSON.stringify(res!.headers)).not.toContain('secret-looking');
  });

  it('is logged with reason non_canonical_path and no rule', async () => {
    const requestId = 'routes-non-canonical-log';
    const conn = await RawConnection.open(sidecar.port);
    conn.write(`GET /api/../admin HTTP/1.1\r\nHost: t\r\nX-Request-Id: ${requestId}\r\n\r\n`);
    expect((await conn.response())?.status).toBe(400);
    conn.close();
    const line = await sidecar.waitForLog((l) => l.msg === 'request' && l.requestId === requestId);
    expect(line).toMatchObject({ status: 400, reason: 'non_canonical_path' });
    expect(line.rule).toBeUndefined();
  });
});

describe('an admitted request reaches the upstream byte for byte', () => {
  it.each([
    '/api/caf%C3%A9/%20x',
    "/api/a%20b/!$&'()*+,=:@~-._",
    '/api/%22q%22/%3C%3E%5B%5D%7B%7D%7C%5E%60',
    '/api/x?q=%2F..%2F&next=/admin/../x#frag',
    '/api/x?',
    '/api/...',
    '/api/v1/',
    '/public/%F0%9F%98%80',
    '/exact?a=b',
  ])('%j', async (target) => {
    const { status, reached } = await send(target, { token: TOKENS.ci });
    expect(status).toBe(200);
    expect(reached).toHaveLength(1);
    expect(reached[0].target).toBe(target);
  });
});
