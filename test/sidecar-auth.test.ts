/**
 * The sidecar's authentication and forwarding, through the real compiled process and real sockets.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import WebSocket from 'ws';
import { FORWARDED_HEADERS, HEALTH_PATHS, SIDECAR_ENV } from '../lib/src/contract';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { EVENT_TIMEOUT_MS } from '../tools/waits';
import { eventually, rawHeader, rawRequest, rawStatus, request, tempDir } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';

const CI_TOKEN = 'ci-token-0123456789abcdef';
const OTHER_TOKEN = 'other+token/with~chars==';
const REALM = 'test-realm';
const BARE = `Bearer realm="${REALM}"`;
const INVALID = `Bearer realm="${REALM}", error="invalid_token"`;
/** RFC 6750 §3.1: a header that is not one well-formed Bearer credential is invalid_request, answered 400. */
const MALFORMED = `Bearer realm="${REALM}", error="invalid_request"`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let upstream: TestUpstream;
let sidecar: RunningApp;
let tokens: { dir: string; cleanup: () => void };

beforeAll(async () => {
  upstream = await startUpstream();
  tokens = tempDir('sidecar-auth-');
  fs.writeFileSync(path.join(tokens.dir, 'ci'), `  ${CI_TOKEN}\n`);
  fs.writeFileSync(path.join(tokens.dir, 'other'), OTHER_TOKEN);
  sidecar = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstream.url, tokens.dir),
      [SIDECAR_ENV.realm]: REALM,
      [SIDECAR_ENV.publicPaths]: '/public,/also-public',
      [SIDECAR_ENV.drainDelayMs]: '0',
    },
  });
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
  tokens?.cleanup();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const lastReceived = () => upstream.received[upstream.received.length - 1];

describe('valid token', () => {
  it('forwards and returns the body unchanged', async () => {
    const body = crypto.randomBytes(256 * 1024);
    const before = upstream.count();
    const res = await request(sidecar.port, { method: 'POST', path: '/echo-body', headers: { ...bearer(CI_TOKEN), 'content-type': 'application/octet-stream' }, body });
    expect(res.status).toBe(200);
    expect(res.body.equals(body)).toBe(true);
    expect(upstream.count()).toBe(before + 1);
  });

  it('sends 100 Continue to an authenticated client, then forwards the body', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(sidecar.port, '127.0.0.1');
      let out = '';
      socket.on('data', (c) => {
        out += c.toString('latin1');
        if (out === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write('hello');
        if (out.endsWith('\r\n0\r\n\r\n')) {
          socket.destroy();
          resolve(out);
        }
      });
      socket.on('error', reject);
      socket.setTimeout(EVENT_TIMEOUT_MS, () => socket.destroy(new Error(`stalled: ${out}`)));
      socket.write(`POST /echo-body HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CI_TOKEN}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`);
    });
    expect(reply.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK')).toBe(true);
    expect(reply).toContain('\r\n5\r\nhello\r\n');
    expect(lastReceived().headers.expect).toBeUndefined();
  });

  it('streams the response: the first chunk arrives before the upstream writes the last', async () => {
    const chunks: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: sidecar.port, path: '/stream', headers: bearer(CI_TOKEN), agent: false }, (res) => {
        expect(res.statusCode).toBe(200);
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          chunks.push(c);
          // Only now may the upstream finish; a buffering proxy would never deliver this chunk.
          if (chunks.join('') === 'first\n') upstream.releaseStream();
        });
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.setTimeout(EVENT_TIMEOUT_MS, () => req.destroy(new Error('stream did not arrive')));
    });
    await done;
    expect(chunks.join('')).toBe('first\nlast\n');
    expect(chunks[0]).toBe('first\n');
  });

  it('accepts the scheme in any case and any of several tokens', async () => {
    for (const header of [`bearer ${CI_TOKEN}`, `BEARER ${CI_TOKEN}`, `Bearer ${OTHER_TOKEN}`]) {
      const res = await request(sidecar.port, { path: '/who', headers: { authorization: header } });
      expect(res.status).toBe(200);
    }
    expect(lastReceived().headers[FORWARDED_HEADERS.subject]).toBe('other');
  });

  it('passes upstream status codes through', async () => {
    const res = await request(sidecar.port, { path: '/status/418', headers: bearer(CI_TOKEN) });
    expect(res.status).toBe(418);
  });
});

describe('refused requests', () => {
  const cases: [string, Record<string, string>, string, string][] = [
    ['no header', {}, BARE, 'missing'],
    ['wrong scheme', { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` }, BARE, 'wrong_scheme'],
    ['token as scheme', { authorization: CI_TOKEN }, BARE, 'wrong_scheme'],
    ['empty token', { authorization: 'Bearer ' }, MALFORMED, 'malformed'],
    ['wrong token', { authorization: 'Bearer wrong' }, INVALID, 'invalid_token'],
    ['prefix of a token', { authorization: `Bearer ${CI_TOKEN.slice(0, -1)}` }, INVALID, 'invalid_token'],
    ['token with a suffix', { authorization: `Bearer ${CI_TOKEN}x` }, INVALID, 'invalid_token'],
    ['double space', { authorization: `Bearer  ${CI_TOKEN}` }, MALFORMED, 'malformed'],
    ['tab separator', { authorization: `Bearer\t${CI_TOKEN}` }, MALFORMED, 'malformed'],
    ['second token', { authorization: `Bearer ${CI_TOKEN} ${OTHER_TOKEN}` }, MALFORMED, 'malformed'],
    ['comma list', { authorization: `Bearer ${CI_TOKEN},${OTHER_TOKEN}` }, MALFORMED, 'malformed'],
    ['comma and space', { authorization: `Bearer ${CI_TOKEN}, Bearer ${OTHER_TOKEN}` }, MALFORMED, 'malformed'],
    ['token with trailing text', { authorization: `Bearer ${CI_TOKEN} extra` }, MALFORMED, 'malformed'],
  ];

  it.each(cases)('%s → 401 (400 when malformed) with the right challenge, and nothing reaches the upstream', async (_name, headers, challenge) => {
    const before = upstream.count();
    const res = await request(sidecar.port, { path: '/private', headers });
    const malformed = challenge === MALFORMED;
    expect(res.status).toBe(malformed ? 400 : 401);
    expect(res.headers['www-authenticate']).toBe(challenge);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers[FORWARDED_HEADERS.requestId]).toMatch(UUID);
    expect(res.text()).toBe(malformed ? 'Bad Request\n' : 'Unauthorized\n');
    expect(res.text()).not.toContain(CI_TOKEN);
    expect(upstream.count()).toBe(before);
  });

  it('refuses duplicate Authorization headers even if one is valid', async () => {
    const before = upstream.count();
    for (const order of [[CI_TOKEN, 'wrong'], ['wrong', CI_TOKEN], [CI_TOKEN, CI_TOKEN]]) {
      const res = await rawRequest(
        sidecar.port,
        `GET /dup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${order[0]}\r\nauthorization: Bearer ${order[1]}\r\nConnection: close\r\n\r\n`,
      );
      expect(rawStatus(res)).toBe(400);
      expect(rawHeader(res, 'www-authenticate')).toBe(MALFORMED);
    }
    expect(upstream.count()).toBe(before);
  });

  it('closes the connection instead of reading an unauthenticated body', async () => {
    const res = await request(sidecar.port, { method: 'POST', path: '/echo-body', body: 'x'.repeat(1000) });
    expect(res.status).toBe(401);
    expect(res.headers.connection).toBe('close');
  });

  it('answers Expect: 100-continue with 401, not an invitation to send the body', async () => {
    const res = await rawRequest(sidecar.port, 'POST /echo-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    expect(res.startsWith('HTTP/1.1 401 ')).toBe(true);
    expect(res).not.toContain('100 Continue');
  });

  it('answers 431 to more than 100 headers', async () => {
    const raw: string[] = [];
    for (let i = 0; i < 101; i++) raw.push(`x-h-${i}`, 'v');
    const before = upstream.count();
    const res = await request(sidecar.port, { path: '/', headers: ['host', 'x', ...raw, 'authorization', `Bearer ${CI_TOKEN}`] });
    expect(res.status).toBe(431);
    expect(upstream.count()).toBe(before);
  });

  it('answers 400 to garbage and stays up', async () => {
    const res = await rawRequest(sidecar.port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(rawStatus(res)).toBe(400);
    expect((await request(sidecar.port, { path: '/after-garbage', headers: bearer(CI_TOKEN) })).status).toBe(200);
  });
});

describe('forwarded headers', () => {
  it('removes Authorization and every client identity header, then sets the subject', async () => {
    const res = await rawRequest(
      sidecar.port,
      'GET /identity HTTP/1.1\r\nHost: app.example\r\n' +
        `Authorization: Bearer ${CI_TOKEN}\r\n` +
        'X-Auth-Subject: admin\r\nx_auth_subject: admin\r\nX-AUTH-SUBJECT: admin\r\nX_Auth-Subject: admin\r\nx-auth_subject: admin\r\n' +
        'Connection: close\r\n\r\n',
    );
    expect(rawStatus(res)).toBe(200);
    const got = lastReceived();
    expect(got.url).toBe('/identity');
    expect(got.headers.authorization).toBeUndefined();
    expect(got.headers[FORWARDED_HEADERS.subject]).toBe('ci');
    const identityHeaders = got.rawHeaders.filter((_, i) => i % 2 === 0).filter((n) => n.toLowerCase().replace(/_/g, '-') === 'x-auth-subject');
    expect(identityHeaders).toHaveLength(1);
    expect(JSON.stringify(got.rawHeaders)).not.toContain('admin');
    expect(JSON.stringify(got.rawHeaders)).not.toContain(CI_TOKEN);
  });

  it('sets X-Forwarded-For (the peer alone: no proxy in front is trusted by default), X-Real-IP, -Proto and -Host', async () => {
    await request(sidecar.port, { path: '/xff', headers: { ...bearer(CI_TOKEN), host: 'app.example:8443', 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' } });
    const h = lastReceived().headers;
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-real-ip']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-host']).toBe('app.example:8443');
    expect(h.host).toBe('app.example:8443');
  });

  it('passes a sane X-Request-Id through and returns it', async () => {
    const res = await request(sidecar.port, { path: '/rid', headers: { ...bearer(CI_TOKEN), 'x-request-id': 'abc-123.def:9_x' } });
    expect(res.headers[FORWARDED_HEADERS.requestId]).toBe('abc-123.def:9_x');
    expect(lastReceived().headers[FORWARDED_HEADERS.requestId]).toBe('abc-123.def:9_x');
  });

  it('creates an X-Request-Id when missing or insane, and returns the same one', async () => {
    for (const sent of [undefined, 'has space', 'x'.repeat(129), '<script>']) {
      const headers: Record<string, string> = { ...bearer(CI_TOKEN) };
      if (sent !== undefined) headers['x-request-id'] = sent;
      const res = await request(sidecar.port, { path: '/rid', headers });
      const id = res.headers[FORWARDED_HEADERS.requestId];
      expect(id).toMatch(UUID);
      expect(lastReceived().headers[FORWARDED_HEADERS.requestId]).toBe(id);
    }
  });

  it('strips hop-by-hop headers and the headers Connection names', async () => {
    await request(sidecar.port, { path: '/hop', headers: { ...bearer(CI_TOKEN), connection: 'keep-alive, x-secret-hop', 'x-secret-hop': '1', 'proxy-authorization': 'Basic abc', te: 'trailers' } });
    const h = lastReceived().headers;
    expect(h['x-secret-hop']).toBeUndefined();
    expect(h['proxy-authorization']).toBeUndefined();
    expect(h.te).toBeUndefined();
  });
});

describe('public paths', () => {
  it('forwards exact public paths without a token and without a subject', async () => {
    for (const p of ['/public', '/also-public', '/public?x=1']) {
      const res = await request(sidecar.port, { path: p, headers: { 'x-auth-subject': 'admin' } });
      expect(res.status).toBe(200);
      expect(lastReceived().headers[FORWARDED_HEADERS.subject]).toBeUndefined();
    }
  });

  it.each(['/public/', '/PUBLIC', '//public', '/%70ublic', '/public/../x', '/x/../public', '/public;x', '/publicx'])('%s is not public', async (p) => {
    const before = upstream.count();
    const res = await request(sidecar.port, { path: p });
    expect(res.status).toBe(401);
    expect(upstream.count()).toBe(before);
  });
});

describe('WebSocket', () => {
  const wsUrl = () => `ws://127.0.0.1:${sidecar.port}/ws`;

  it('echoes through the proxy with a token, with the identity header set', async () => {
    const before = upstream.upgrades.length;
    const ws = new WebSocket(wsUrl(), { headers: { ...bearer(CI_TOKEN), 'x-auth-subject': 'admin' } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
    ws.send('hello through the sidecar');
    expect(await echoed).toBe('hello through the sidecar');
    ws.close();
    expect(upstream.upgrades.length).toBe(before + 1);
    const h = upstream.upgrades[upstream.upgrades.length - 1].headers;
    expect(h[FORWARDED_HEADERS.subject]).toBe('ci');
    expect(h.authorization).toBeUndefined();
  });

  it('tears down the upstream side when the client vanishes', async () => {
    // Earlier tests' sockets finish closing first, so the count below is ours alone.
    expect(await eventually(() => upstream.openWebSockets() === 0)).toBe(true);
    const ws = new WebSocket(wsUrl(), { headers: bearer(CI_TOKEN) });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    expect(await eventually(() => upstream.openWebSockets() === 1)).toBe(true);
    ws.terminate();
    expect(await eventually(() => upstream.openWebSockets() === 0)).toBe(true);
  });

  it('refuses an upgrade without a valid token, even after authenticated traffic on the same server', async () => {
    // A plain request first: http-proxy-middleware with ws:true would then hook upgrades itself, unauthenticated.
    expect((await request(sidecar.port, { path: '/warm', headers: bearer(CI_TOKEN) })).status).toBe(200);
    const before = upstream.upgrades.length;
    for (const headers of [{}, bearer('wrong')]) {
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(wsUrl(), { headers });
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => reject(new Error('upgrade was accepted')));
        ws.once('error', () => undefined);
      });
      expect(status).toBe(401);
    }
    const res = await rawRequest(sidecar.port, 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    expect(rawStatus(res)).toBe(401);
    expect(rawHeader(res, 'www-authenticate')).toBe(BARE);
    await new Promise((r) => setTimeout(r, 100));
    expect(upstream.upgrades.length).toBe(before);
  });
});

describe('observability', () => {
  it('exposes the metrics with token names, never token values', async () => {
    const admin = sidecar.adminPort!;
    const res = await request(admin, { path: HEALTH_PATHS.metrics });
    expect(res.status).toBe(200);
    const text = res.text();
    for (const name of [
      'sidecar_http_requests_total',
      'sidecar_auth_failures_total',
      'sidecar_http_requests_in_flight',
      'sidecar_upstream_duration_seconds_bucket',
      'sidecar_tokens_loaded',
      'sidecar_token_reloads_total',
      'sidecar_client_errors_total',
    ]) {
      expect(text).toContain(name);
    }
    expect(text).toMatch(/sidecar_http_requests_total\{code="200",subject="ci"\} [1-9]/);
    expect(text).toMatch(/sidecar_http_requests_total\{code="401",subject=""\} [1-9]/);
    expect(text).toMatch(/sidecar_auth_failures_total\{reason="invalid_token"\} [1-9]/);
    expect(text).toMatch(/sidecar_auth_failures_total\{reason="malformed"\} [1-9]/);
    expect(text).toMatch(/sidecar_tokens_loaded 2/);
    expect(text).not.toContain(CI_TOKEN);
    expect(text).not.toContain(OTHER_TOKEN);
  });

  it('answers liveness, readiness and 404 on the admin port', async () => {
    const admin = sidecar.adminPort!;
    expect((await request(admin, { path: HEALTH_PATHS.sidecarLiveness })).status).toBe(200);
    const ready = await request(admin, { path: HEALTH_PATHS.sidecarReadiness });
    expect(ready.status).toBe(200);
    expect((await request(admin, { path: '/nope' })).status).toBe(404);
  });

  it('writes one access line per request, and never a token', async () => {
    await request(sidecar.port, { path: '/logged?secret=q', headers: { ...bearer(CI_TOKEN), 'x-request-id': 'log-line-1' } });
    const line = await sidecar.waitForLog((l) => l.msg === 'request' && l.requestId === 'log-line-1');
    expect(line).toMatchObject({ method: 'GET', path: '/logged', status: 200, subject: 'ci' });
    expect(typeof line.durationMs).toBe('number');
    await request(sidecar.port, { path: '/refused', headers: { ...bearer('nope-token'), 'x-request-id': 'log-line-2' } });
    const refused = await sidecar.waitForLog((l) => l.msg === 'request' && l.requestId === 'log-line-2');
    expect(refused).toMatchObject({ status: 401, reason: 'invalid_token' });
    const all = sidecar.lines.join('\n');
    for (const secret of [CI_TOKEN, OTHER_TOKEN, 'nope-token', 'secret=q']) expect(all).not.toContain(secret);
    expect(all).not.toMatch(/authorization/i);
  });
});
