/**
 * Request smuggling and cross-client desync through the forwarding core (issue 8, §1).
 * The sidecar runs as a real process in front of a raw recording upstream that parses the way a
 * naive backend would; every case asserts what reached the upstream, byte for byte where it matters.
 */
import { SIDECAR_ENV } from '../lib/src/contract';
import type { RunningApp } from './support/apps';
import { sleep, until } from './support/http';
import { RawConnection, chunked } from './support/raw-client';
import { RecordingUpstream, headerNames, headerOf, sidecarBeforeRecorder } from './support/recording-upstream';

const TOKEN = 'framing-token-0123456789abcdef';
const OTHER = 'framing-other-0123456789abcdef';
const AUTH = `Authorization: Bearer ${TOKEN}\r\n`;
/** Far longer than any answer takes, so "at once" and "at the timeout" stay apart on a busy machine. */
const UPSTREAM_TIMEOUT_MS = 20_000;

let upstream: RecordingUpstream;
let sidecar: RunningApp;
let stop: () => Promise<void>;

beforeAll(async () => {
  ({ upstream, sidecar, stop } = await sidecarBeforeRecorder(
    { alice: TOKEN, bob: OTHER },
    {
      [SIDECAR_ENV.publicPaths]: '/version',
      [SIDECAR_ENV.upstreamTimeoutMs]: String(UPSTREAM_TIMEOUT_MS),
      // Pooled connections outlive the waits below: a connection seen closed was closed on purpose, not by expiry.
      [SIDECAR_ENV.upstreamIdleTimeoutMs]: '60000',
    },
  ));
});

afterAll(() => stop());

beforeEach(() => upstream.reset());

/** One raw exchange on a fresh connection. */
async function exchange(raw: string, method = 'GET') {
  const c = await RawConnection.open(sidecar.port);
  c.write(raw);
  const res = await c.response(undefined, method);
  c.close();
  return res;
}

/** Wait until the upstream has settled (no new bytes for a moment). */
async function settle(): Promise<void> {
  let last = -1;
  for (;;) {
    const now = upstream.connections.reduce((n, c) => n + c.bytes.length, 0);
    if (now === last) return;
    last = now;
    await sleep(150);
  }
}

const SMUGGLED = 'GET /admin HTTP/1.1\r\nHost: x\r\nX-Auth-Subject: root\r\n\r\n';

describe('a. chunked bodies on DELETE and OPTIONS (CVE-2026-29057)', () => {
  it.each(['DELETE', 'OPTIONS', 'GET', 'HEAD'])('%s /version with a chunked body reaches the upstream as one request, body intact', async (method) => {
    const res = await exchange(`${method} /version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(SMUGGLED)}`, method);
    expect(res?.status).toBe(200);
    await settle();
    const seen = upstream.requests();
    expect(seen.map((r) => `${r.method} ${r.target}`)).toEqual([`${method} /version`]);
    expect(seen[0].body.toString('latin1')).toBe(SMUGGLED);
    expect(headerOf(seen[0], 'transfer-encoding')).toBe('chunked');
    expect(headerOf(seen[0], 'content-length')).toBeUndefined();
  });

  it('an authenticated caller cannot forge another identity through a smuggled request', async () => {
    const res = await exchange(`DELETE /things/1 HTTP/1.1\r\nHost: x\r\n${AUTH}Transfer-Encoding: chunked\r\n\r\n${chunked(SMUGGLED)}`, 'DELETE');
    expect(res?.status).toBe(200);
    await settle();
    const seen = upstream.requests();
    expect(seen).toHaveLength(1);
    expect(headerOf(seen[0], 'x-auth-subject')).toBe('alice');
  });

  it.each(['identity, chunked', 'gzip, chunked', 'chunked;q=1', 'Chunked, chunked'])(
    'Transfer-Encoding "%s" is refused with 501 and nothing reaches the upstream',
    async (te) => {
      const res = await exchange(`DELETE /version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\n${chunked(SMUGGLED)}`, 'DELETE');
      expect([400, 501]).toContain(res?.status);
      await settle();
      expect(upstream.requests()).toEqual([]);
      expect(upstream.incomplete()).toEqual([]);
    },
  );

  it('"Transfer-Encoding: Chunked" (any case) is forwarded as "chunked"', async () => {
    const res = await exchange(`POST /version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n${chunked('abc', 'de')}`, 'POST');
    expect(res?.status).toBe(200);
    await settle();
    expect(upstream.requests()).toHaveLength(1);
    expect(headerOf(upstream.requests()[0], 'transfer-encoding')).toBe('chunked');
    expect(upstream.requests()[0].body.toString()).toBe('abcde');
  });

  it('chunk trailers never reach the upstream (they could carry an identity header)', async () => {
    const res = await exchange(`POST /version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Auth-Subject: root\r\n\r\n`, 'POST');
    expect(res?.status).toBe(200);
    await settle();
    const [seen] = upstream.requests();
    expect(seen.body.toString()).toBe('abc');
    expect(upstream.connections.map((c) => c.bytes.toString('latin1')).join('')).not.toContain('root');
  });

  it('a Content-Length with leading zeros is forwarded in canonical form', async () => {
    const res = await exchange(`POST /version HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\n\r\nabc`, 'POST');
    expect(res?.status).toBe(200);
    await settle();
    expect(headerOf(upstream.requests()[0], 'content-length')).toBe('3');
  });

  it('two Host headers get 400 and nothing reaches the upstream', async () => {
    const res = await exchange(`GET /version HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`);
    expect(res?.status).toBe(400);
    await settle();
    expect(upstream.requests()).toEqual([]);
  });
});

describe('b. no response reaches the wrong client', () => {
  it('after a smuggling attempt, an innocent request on a new connection gets its own response', async () => {
    await exchange(`DELETE /version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(SMUGGLED)}`, 'DELETE');
    for (let i = 0; i < 5; i++) {
      const res = await exchange(`GET /innocent/${i} HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
      expect(res?.status).toBe(200);
      expect(JSON.parse(res!.body.toString()).target).toBe(`/innocent/${i}`);
    }
    await settle();
    expect(upstream.requests().map((r) => r.target)).toEqual(['/version', '/innocent/0', '/innocent/1', '/innocent/2', '/innocent/3', '/innocent/4']);
  });
});

describe('c. upgrades', () => {
  afterEach(() => {
    upstream.upgradeAnswer = 101;
  });

  it.each([
    ['Content-Length: 20', 'x'.repeat(20)],
    ['Transfer-Encoding: chunked', chunked('x'.repeat(20))],
  ])('an upgrade with a body (%s) gets 400, reaches nothing, and the next client is served', async (framing, body) => {
    const c = await RawConnection.open(sidecar.port);
    c.write(`GET /version HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${framing}\r\n\r\n${body}`);
    const res = await c.response();
    expect(res?.status).toBe(400);
    expect(res?.headers.connection).toBe('close');
    expect(await c.waitClosed()).toBe(true);
    const next = await exchange(`GET / HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
    expect(next?.status).toBe(200);
    await settle();
    expect(upstream.requests().map((r) => r.target)).toEqual(['/']);
  });

  it('a non-101 answer reaches the client with Connection: close, and both sockets are destroyed', async () => {
    upstream.upgradeAnswer = 403;
    const c = await RawConnection.open(sidecar.port);
    c.write(`GET /ws HTTP/1.1\r\nHost: x\r\n${AUTH}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    const res = await c.response();
    expect(res?.status).toBe(403);
    expect(res?.headers.connection).toBe('close');
    expect(res?.body.toString()).toBe('nope\n');
    expect(await c.waitClosed()).toBe(true);
    await settle();
    const upgradeConn = upstream.connections.find((k) => k.requests.some((r) => r.target === '/ws'));
    expect(upgradeConn).toBeDefined();
    await until('the upgrade\'s upstream connection closed', () => upgradeConn!.closed);
    // The next request does not land on the upgrade's upstream connection.
    const next = await exchange(`GET /after HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
    expect(next?.status).toBe(200);
    expect(Number(next?.headers['x-conn'])).not.toBe(upgradeConn?.id);
  });
});

describe('d. smaller findings', () => {
  it.each(['X.Auth.Subject', 'X_Auth_Subject', 'x-auth_subject', 'XAuthSubject', 'X-AUTH-SUBJECT', 'x~auth~subject'])(
    'a client-sent %s never reaches the upstream beside ours',
    async (name) => {
      const res = await exchange(`GET / HTTP/1.1\r\nHost: x\r\n${AUTH}${name}: root\r\n\r\n`);
      expect(res?.status).toBe(200);
      await settle();
      const [seen] = upstream.requests();
      const subjectish = headerNames(seen).filter((n) => n.toLowerCase().replace(/[^a-z0-9]/g, '') === 'xauthsubject');
      expect(subjectish).toEqual(['x-auth-subject']);
      expect(headerOf(seen, 'x-auth-subject')).toBe('alice');
    },
  );

  it('a malformed chunk line: the upstream never gets a complete request, and its connection is closed', async () => {
    const c = await RawConnection.open(sidecar.port);
    c.write(`POST /version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n`);
    // The bad chunk line comes once forwarding has begun.
    await until('the first chunk at the upstream', () => upstream.connections.some((k) => k.bytes.includes('abc')));
    c.write(`zz\r\n${SMUGGLED}\r\n0\r\n\r\n`);
    const res = await c.response();
    expect(res === undefined || res.status >= 400).toBe(true);
    await settle();
    expect(upstream.requests()).toEqual([]);
    const carried = upstream.connections.filter((k) => k.bytes.includes('abc'));
    expect(carried).toHaveLength(1);
    await until('the upstream connection that carried it closed', () => carried[0].closed);
  });
});

describe('the upstream pool', () => {
  afterEach(() => {
    upstream.stray = undefined;
  });

  it('a pooled connection that receives bytes with no request outstanding is destroyed, never reused', async () => {
    const poison = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Conn: 0\r\nX-Seq: 0\r\n\r\npoisoned';
    upstream.stray = { afterMs: 100, bytes: poison };
    const first = await exchange(`GET /first HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
    expect(first?.status).toBe(200);
    const firstConn = Number(first?.headers['x-conn']);
    // The sidecar destroys the pooled connection once the stray bytes reach it (it would otherwise
    // stay pooled for the idle timeout, a minute here).
    await until('the poisoned pooled connection closed', () => upstream.connections.find((c) => c.id === firstConn)?.closed === true);
    upstream.stray = undefined;
    const second = await exchange(`GET /second HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
    expect(second?.status).toBe(200);
    expect(second?.body.toString()).not.toContain('poisoned');
    expect(JSON.parse(second!.body.toString()).target).toBe('/second');
    expect(Number(second?.headers['x-conn'])).not.toBe(firstConn);
  });
});

describe('found by attack-hunting', () => {
  afterEach(() => {
    upstream.answerWith = undefined;
    upstream.delayMs = 0;
  });

  it.each(['Transfer_Encoding: chunked', 'Transfer.Encoding: chunked', 'Content_Length: 0', 'content.length: 0', 'Con_nection: close', 'Ho_st: evil'])(
    'a look-alike framing or routing header (%s) never reaches the upstream',
    async (line) => {
      const body = `0\r\n\r\n${SMUGGLED}`;
      const res = await exchange(`POST /version HTTP/1.1\r\nHost: x\r\n${line}\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 'POST');
      expect(res?.status).toBe(200);
      await settle();
      const seen = upstream.requests();
      expect(seen).toHaveLength(1);
      const name = line.slice(0, line.indexOf(':'));
      expect(headerNames(seen[0]).map((n) => n.toLowerCase())).not.toContain(name.toLowerCase());
      expect(headerOf(seen[0], 'content-length')).toBe(String(body.length));
    },
  );

  it.each(['-x-auth-subject', '_x_auth_subject', '.x.auth.subject', 'xauthsubject', 'XRequestId', 'x_forwarded_host'])('the spelling %s of a header we set is dropped', async (name) => {
    const res = await exchange(`GET / HTTP/1.1\r\nHost: x\r\n${AUTH}${name}: forged\r\n\r\n`);
    expect(res?.status).toBe(200);
    await settle();
    const [seen] = upstream.requests();
    expect(seen.headers.filter(([, v]) => v === 'forged')).toEqual([]);
  });

  it.each(['a/admin?', 'a b', 'a@b', 'x\\y'])('a Host that is not an authority (%s) gets 400 and reaches nothing', async (host) => {
    const res = await exchange(`GET /version HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    expect(res?.status).toBe(400);
    await settle();
    expect(upstream.requests()).toEqual([]);
  });

  it.each(['000', '099', '101', '600'])('an upstream status %s gets the client a 502, and that connection is not reused', async (status) => {
    upstream.answerWith = (r) => (r.target === '/odd' ? `HTTP/1.1 ${status} X\r\nContent-Length: 0\r\n\r\n` : undefined);
    const res = await exchange(`GET /odd HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
    expect(res?.status).toBe(502);
    upstream.answerWith = undefined;
    const next = await exchange(`GET /next HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
    expect(JSON.parse(next!.body.toString()).target).toBe('/next');
    const odd = upstream.requests().find((r) => r.target === '/odd');
    expect(Number(next?.headers['x-conn'])).not.toBe(odd?.conn);
  });

  it('a 101 with Upgrade to a plain request gets a 502 at once, not a hang', async () => {
    upstream.answerWith = (r) => (r.target === '/odd' ? 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\npoison' : undefined);
    const started = Date.now();
    const res = await exchange(`GET /odd HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
    expect(res?.status).toBe(502);
    // At once: not at the upstream timeout.
    expect(Date.now() - started).toBeLessThan(UPSTREAM_TIMEOUT_MS);
  });

  it('a HEAD exchange never leaves its connection in the pool (a late body cannot reach the next client)', async () => {
    upstream.answerWith = (r) => (r.method === 'HEAD' ? 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n' : undefined);
    upstream.stray = { afterMs: 50, bytes: 'poison' };
    const head = await exchange(`HEAD /h HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`, 'HEAD');
    expect(head?.status).toBe(200);
    upstream.answerWith = undefined;
    upstream.stray = undefined;
    const next = await exchange(`GET /next HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
    expect(next?.status).toBe(200);
    expect(JSON.parse(next!.body.toString()).target).toBe('/next');
    const headReq = upstream.requests().find((r) => r.method === 'HEAD');
    expect(headerOf(headReq!, 'connection')).toBe('close');
  });

  it('an upgrade pipelined behind a 401 that closed the connection never reaches the upstream', async () => {
    const c = await RawConnection.open(sidecar.port);
    c.write(
      'POST /admin HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc' +
        'GET /version HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nWSDATA',
    );
    expect((await c.response())?.status).toBe(401);
    expect(await c.waitClosed()).toBe(true);
    await settle();
    expect(upstream.requests()).toEqual([]);
    expect(upstream.connections.map((k) => k.bytes.toString('latin1')).join('')).not.toContain('WSDATA');
  });

  it('an upgrade pipelined behind a slow response is refused after that response, never ahead of it', async () => {
    upstream.delayMs = 300;
    const c = await RawConnection.open(sidecar.port);
    c.write(
      'GET /version?slow HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /version HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nWSDATA',
    );
    const first = await c.response();
    expect(first?.status).toBe(200);
    expect(JSON.parse(first!.body.toString()).target).toBe('/version?slow');
    const second = await c.response();
    expect(second?.status).toBe(400);
    expect(await c.waitClosed()).toBe(true);
    await settle();
    expect(upstream.requests().map((r) => r.target)).toEqual(['/version?slow']);
  });

  it('bytes after a Connection: close request: the forwarded request gets its real answer, not a 400', async () => {
    upstream.delayMs = 100;
    const c = await RawConnection.open(sidecar.port);
    c.write('GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /version HTTP/1.1\r\nHost: x\r\n\r\n');
    const res = await c.response();
    expect(res?.status).toBe(200);
    expect(await c.response(1_000)).toBeUndefined();
    expect(await c.waitClosed()).toBe(true);
  });
});
