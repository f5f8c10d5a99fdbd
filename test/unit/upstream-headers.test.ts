/**
 * In-process unit tests of apps/sidecar/src/upstream-headers.ts (issue 9 §3), beside the process
 * tests in test/forwarding-*.test.ts. upstreamRequestHeaders reads an IncomingMessage: each case gets
 * a real one, parsed by a real http.Server on 127.0.0.1 from raw bytes written by a real socket.
 * Nothing of the HTTP stack is mocked; the other functions take plain data.
 */
import * as http from 'http';
import * as net from 'net';
import type { AddressInfo } from 'net';
import { FORWARDED_HEADERS } from '../../lib/src/contract';
import { contextOf } from '../../apps/sidecar/src/context';
import { requestFraming } from '../../apps/sidecar/src/framing';
import type { BodyFraming } from '../../apps/sidecar/src/framing';
import {
  clientResponseHeaders,
  normalizedHeaderName,
  rawResponseHead,
  upstreamRequestHeaders,
  upstreamTarget,
} from '../../apps/sidecar/src/upstream-headers';
import type { UpstreamHeaderInput } from '../../apps/sidecar/src/upstream-headers';

const NONE: BodyFraming = { kind: 'none' };

/** The input passes.ts gives a plain GET, with a subject; overridden per case. */
const BASE: UpstreamHeaderInput = {
  subject: 'alice',
  requestId: 'rid-1',
  forwardAuthorization: false,
  framing: NONE,
  upgrade: false,
  fallbackHost: '127.0.0.1:8080',
};

/**
 * The end of every list forwarded for a 127.0.0.1 client that sent Host `host` (after framing and
 * connection): subject (null: none), X-Forwarded-For and X-Real-IP (its leftmost entry), the rest
 * of X-Forwarded-*, request id.
 */
function tail(host: string | undefined, subject: string | null = 'alice', requestId = 'rid-1', forwardedFor = '127.0.0.1', proto = 'http'): string[] {
  return [
    ...(subject === null ? [] : [FORWARDED_HEADERS.subject, subject]),
    'x-forwarded-for',
    forwardedFor,
    'x-real-ip',
    forwardedFor.split(', ')[0],
    'x-forwarded-proto',
    proto,
    ...(host === undefined ? [] : ['x-forwarded-host', host]),
    FORWARDED_HEADERS.requestId,
    requestId,
  ];
}

let server: http.Server;
let port: number;
let pending: { fn: (req: http.IncomingMessage) => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void } | undefined;

function settle(req: http.IncomingMessage): void {
  const p = pending;
  pending = undefined;
  if (p === undefined) return;
  try {
    p.resolve(p.fn(req));
  } catch (err) {
    p.reject(err);
  }
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    settle(req);
    res.end();
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    settle(req);
    socket.destroy();
  });
  server.on('clientError', (err: Error, socket: net.Socket) => {
    const p = pending;
    pending = undefined;
    p?.reject(new Error(`Node refused the test request: ${err.message}`));
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Send `raw` on a fresh connection; run `fn` on the IncomingMessage Node parsed from it. */
function parsed<T>(raw: string, fn: (req: http.IncomingMessage) => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    pending = {
      fn,
      resolve: (v) => {
        socket.destroy();
        resolve(v as T);
      },
      reject: (e) => {
        socket.destroy();
        reject(e);
      },
    };
    socket.write(raw);
  });
}

/** The headers sent upstream for `raw`, with `input` over BASE. */
function upstreamOf(raw: string, input: Partial<UpstreamHeaderInput> = {}): Promise<string[]> {
  return parsed(raw, (req) => upstreamRequestHeaders(req, { ...BASE, ...input }));
}

describe('normalizedHeaderName', () => {
  it.each([
    ['x-auth-subject', 'xauthsubject'],
    ['X-Auth-Subject', 'xauthsubject'],
    ['X_Auth_Subject', 'xauthsubject'],
    ['X.Auth.Subject', 'xauthsubject'],
    ['-x-auth-subject-', 'xauthsubject'],
    ['Content-Length', 'contentlength'],
    ['TE', 'te'],
    ['HOST', 'host'],
    ['X-Forwarded-For', 'xforwardedfor'],
    ['Sec-WebSocket-Key2', 'secwebsocketkey2'],
    ["!#$%&'*+.^_`|~", ''],
    ['', ''],
    ['x-\u00e9t\u00e9', 'xt'],
  ])('%j → %j', (name, expected) => {
    expect(normalizedHeaderName(name)).toBe(expected);
  });
});

describe('upstreamTarget', () => {
  it.each([
    [undefined, '/'],
    ['', '/'],
    ['/', '/'],
    ['/a/b?c=d', '/a/b?c=d'],
    // Never normalised: what was judged is what is forwarded.
    ['/a//b/../c/./d?x=%2e%2e#frag', '/a//b/../c/./d?x=%2e%2e#frag'],
    ['//evil.example/x', '//evil.example/x'],
    ['*', '*'],
    // Absolute-form reduced to origin-form.
    ['http://example.test/a?b', '/a?b'],
    ['http://example.test', '/'],
    ['http://example.test?x=1', '/?x=1'],
    ['http://example.test#f', '/#f'],
    ['HTTPS://user:pw@example.test:8443//double/../x', '//double/../x'],
    ['ws+unix://h/p', '/p'],
    // Not absolute-form (no "://"): left as sent.
    ['example.test:443', 'example.test:443'],
    ['a', 'a'],
  ])('%j → %j', (url, expected) => {
    expect(upstreamTarget(url)).toBe(expected);
  });
});

describe('upstreamRequestHeaders', () => {
  it('a plain GET: host first, the client headers in order, then subject, forwarding headers and request id', async () => {
    const out = await upstreamOf('GET /x HTTP/1.1\r\nAccept: */*\r\nHost: example.test\r\nX-Zeta: z\r\nX-Alpha: a\r\n\r\n');
    expect(out).toEqual(['host', 'example.test', 'accept', '*/*', 'x-zeta', 'z', 'x-alpha', 'a', ...tail('example.test')]);
  });

  it('keeps repeated headers as Node parsed them: set-cookie as separate fields, others joined', async () => {
    const out = await upstreamOf(
      'GET / HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\nSet-Cookie: a=1\r\nX-Other: o\r\nX-Dup: 2\r\nSet-Cookie: b=2\r\nCookie: c=3\r\nCookie: d=4\r\n\r\n',
    );
    expect(out).toEqual(['host', 'h', 'x-dup', '1, 2', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-other', 'o', 'cookie', 'c=3; d=4', ...tail('h')]);
  });

  it('drops hop-by-hop, framing, routing, Expect and Proxy-Authorization headers in every spelling', async () => {
    const dropped = [
      'Keep-Alive: timeout=5',
      'Keep_Alive: x',
      'Proxy-Connection: keep-alive',
      'Proxy_Connection: x',
      'Proxy-Authorization: Basic Zm9vOmJhcg==',
      'proxy.authorization: Basic x',
      'TE: trailers',
      'T_E: trailers',
      'Trailer: X-Checksum',
      '-Trailer-: x',
      '.Expect: 100-continue',
      'Up_Grade: h2c',
      'Transfer_Encoding: chunked',
      'transfer.encoding: gzip',
      'Content_Length: 5',
      '-Content-Length: 7',
      '-Host: evil.example',
      'Ho.st: evil.example',
      'HOST_: evil.example',
      'Connection_: close',
      'Proxy-Connection_: x',
    ];
    const out = await upstreamOf(`GET / HTTP/1.1\r\nHost: h\r\nX-Before: 1\r\n${dropped.map((l) => `${l}\r\n`).join('')}X-After: 2\r\n\r\n`);
    expect(out).toEqual(['host', 'h', 'x-before', '1', 'x-after', '2', ...tail('h')]);
  });

  it('drops every client spelling of the headers the sidecar sets, then sets its own once', async () => {
    const forged = [
      'X-Auth-Subject: admin',
      'x_auth_subject: admin',
      'X.Auth.Subject: admin',
      '-X-AUTH-SUBJECT-: admin',
      'X-Request-Id: forged-1',
      'X_Request_Id: forged-2',
      'X_Forwarded_For: 6.6.6.6',
      'X-Forwarded-Proto: https',
      'X_Forwarded_Proto: https',
      'X-Forwarded-Host: evil.example',
      'x.forwarded.host: evil.example',
    ];
    const out = await upstreamOf(`GET / HTTP/1.1\r\nHost: h\r\n${forged.map((l) => `${l}\r\n`).join('')}X-Kept: k\r\n\r\n`, {
      subject: 'bob',
      requestId: 'rid-ours',
    });
    // The underscore spelling of X-Forwarded-For is dropped, not chained.
    expect(out).toEqual(['host', 'h', 'x-kept', 'k', ...tail('h', 'bob', 'rid-ours')]);
  });

  it("replaces the client's X-Forwarded-For with the peer address: with no trusted proxy, a chain before it is a forgery", async () => {
    const raw = 'GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\nX-Forwarded-Proto: https\r\n\r\n';
    expect(await upstreamOf(raw)).toEqual(['host', 'h', ...tail('h')]);
    expect(await upstreamOf(raw, { trustedProxyHops: 0 })).toEqual(['host', 'h', ...tail('h')]);
  });

  it.each<[number, string]>([
    [1, '10.0.0.3, 127.0.0.1'],
    [2, '10.0.0.2, 10.0.0.3, 127.0.0.1'],
    [3, '10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1'],
    [10, '10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1'],
  ])('with %d trusted proxy hops: the rightmost entries of every X-Forwarded-For line, then the peer; X-Real-IP the leftmost kept', async (hops, chain) => {
    const raw = 'GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2,10.0.0.3\r\n\r\n';
    expect(await upstreamOf(raw, { trustedProxyHops: hops })).toEqual(['host', 'h', ...tail('h', 'alice', 'rid-1', chain)]);
  });

  it('trusted hops: empty entries are skipped, and a missing X-Forwarded-For leaves the peer alone', async () => {
    expect(await upstreamOf('GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.9 , ,\r\n\r\n', { trustedProxyHops: 2 })).toEqual([
      'host',
      'h',
      ...tail('h', 'alice', 'rid-1', '10.0.0.9, 127.0.0.1'),
    ]);
    expect(await upstreamOf('GET / HTTP/1.1\r\nHost: h\r\n\r\n', { trustedProxyHops: 2 })).toEqual(['host', 'h', ...tail('h')]);
  });

  it('trusted hops: only the exact X-Forwarded-For is chained; other spellings are dropped', async () => {
    const out = await upstreamOf('GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 6.6.6.6\r\nX.Forwarded.For: 6.6.6.7\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n', {
      trustedProxyHops: 1,
    });
    expect(out).toEqual(['host', 'h', ...tail('h', 'alice', 'rid-1', '10.0.0.1, 127.0.0.1')]);
  });

  it.each<[string, number, string]>([
    ['https', 1, 'https'],
    [' HTTPS ', 1, 'https'],
    ['http', 1, 'http'],
    ['https', 0, 'http'],
    ['https, http', 1, 'http'],
    ['ftp', 1, 'http'],
    ['javascript:alert(1)', 1, 'http'],
  ])('X-Forwarded-Proto %j with %d trusted hops → %s', async (sent, hops, proto) => {
    const out = await upstreamOf(`GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: ${sent}\r\nX_Forwarded_Proto: https\r\n\r\n`, { trustedProxyHops: hops });
    expect(out).toEqual(['host', 'h', ...tail('h', 'alice', 'rid-1', '127.0.0.1', proto)]);
  });

  it('drops every header only a proxy may write, in every spelling, and the whole x-forwarded-* family', async () => {
    const forged = [
      'Forwarded: for=6.6.6.6;proto=https;host=evil.example',
      'X-Real-IP: 6.6.6.6',
      'X_Real_IP: 6.6.6.6',
      'X-Forwarded-Port: 443',
      'X-Forwarded-Scheme: https',
      'X-Forwarded-Ssl: on',
      'X-Forwarded-Prefix: /admin',
      'X-Forwarded-Server: evil.example',
      'X-Forwarded-Uri: /admin',
      'X-Forwarded-Path: /admin',
      'X-Forwarded-Protocol: ssl',
      'X-Forwarded-By: 6.6.6.6',
      'X-Forwarded: for=6.6.6.6',
      'X-Forwarded-Client-Cert: Hash=abc;Subject="CN=admin"',
      'X-Forwarded-Tls-Client-Cert: MIIB',
      'X-Forwarded-User: admin',
      'X-Forwarded-Email: admin@example.test',
      'X_Forwarded_Port: 443',
      'x.forwarded.prefix: /admin',
      'X-Original-Forwarded-For: 6.6.6.6',
      'X-Original-URL: /admin',
      'X-Original-URI: /admin',
      'X-Original-Host: evil.example',
      'X-Original-For: 6.6.6.6',
      'X-Original-Proto: https',
      'X-Rewrite-URL: /admin',
      'X_Rewrite_Url: /admin',
      'X-Envoy-Original-Path: /admin',
      'X-Envoy-External-Address: 6.6.6.6',
      'X-Envoy-Internal: true',
      'X-HTTP-Method-Override: DELETE',
      'X-HTTP-Method: DELETE',
      'X-Method-Override: DELETE',
      'X-Client-IP: 6.6.6.6',
      'Client-IP: 6.6.6.6',
      'True-Client-IP: 6.6.6.6',
      'CF-Connecting-IP: 6.6.6.6',
      'CF-Connecting-IPv6: ::6',
      'Fastly-Client-IP: 6.6.6.6',
      'X-Cluster-Client-IP: 6.6.6.6',
      'Forwarded-For: 6.6.6.6',
      'X-Scheme: https',
      'X-Url-Scheme: https',
      'Front-End-Https: on',
      'X-SSL-Client-Cert: MIIB',
      'X-SSL-Client-Verify: SUCCESS',
      'X-SSL-Client-S-DN: CN=admin',
      'X-SSL-Client-DN: CN=admin',
      'SSL-Client-Cert: MIIB',
      'X-Client-Cert: MIIB',
    ];
    const out = await upstreamOf(`GET / HTTP/1.1\r\nHost: h\r\nX-Before: 1\r\n${forged.map((l) => `${l}\r\n`).join('')}X-After: 2\r\n\r\n`, { trustedProxyHops: 3 });
    expect(out).toEqual(['host', 'h', 'x-before', '1', 'x-after', '2', ...tail('h')]);
  });

  it('keeps headers that only look like the forwarding ones', async () => {
    const kept = ['X-Original-Filename: a.txt', 'X-Forward: 1', 'Forwarded-Host-Note: n', 'X-Real: r', 'Via: 1.1 cdn'];
    const out = await upstreamOf(`GET / HTTP/1.1\r\nHost: h\r\n${kept.map((l) => `${l}\r\n`).join('')}\r\n`);
    expect(out).toEqual(['host', 'h', 'x-original-filename', 'a.txt', 'x-forward', '1', 'forwarded-host-note', 'n', 'x-real', 'r', 'via', '1.1 cdn', ...tail('h')]);
  });

  it('Connection cannot remove the headers the sidecar sets: they are written after the client headers', async () => {
    const out = await upstreamOf(
      'GET / HTTP/1.1\r\nHost: h\r\nConnection: x-auth-subject, x-request-id, x-forwarded-for, x-real-ip, x-forwarded-proto, x-forwarded-host, x-auth-claim-role\r\n' +
        'X-Auth-Subject: admin\r\nX-Auth-Claim-Role: admin\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n',
      { subject: 'bob', requestId: 'rid-ours', claimHeaders: ['x-auth-claim-role', 'viewer'] },
    );
    expect(out).toEqual(['host', 'h', FORWARDED_HEADERS.subject, 'bob', 'x-auth-claim-role', 'viewer', ...tail('h', null, 'rid-ours')]);
  });

  it('with trusted hops, a trusted X-Forwarded-For that Connection names is still read (it was for us), and not forwarded as sent', async () => {
    const out = await upstreamOf('GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Forwarded-For\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n', { trustedProxyHops: 1 });
    expect(out).toEqual(['host', 'h', ...tail('h', 'alice', 'rid-1', '10.0.0.1, 127.0.0.1')]);
  });

  it('a public path (no subject) gets no identity header, even when the client sent one', async () => {
    const out = await upstreamOf('GET /pub HTTP/1.1\r\nHost: h\r\nX-Auth-Subject: admin\r\n\r\n', { subject: undefined });
    expect(out).toEqual(['host', 'h', ...tail('h', null)]);
    expect(out).not.toContain(FORWARDED_HEADERS.subject);
  });

  it('Authorization is dropped unless forwardAuthorization, and then kept in place', async () => {
    const raw = 'GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\nAuthorization: Bearer tok\r\nX-B: b\r\n\r\n';
    expect(await upstreamOf(raw)).toEqual(['host', 'h', 'x-a', 'a', 'x-b', 'b', ...tail('h')]);
    expect(await upstreamOf(raw, { forwardAuthorization: true })).toEqual(['host', 'h', 'x-a', 'a', 'authorization', 'Bearer tok', 'x-b', 'b', ...tail('h')]);
  });

  it('Proxy-Authorization is dropped even with forwardAuthorization', async () => {
    const out = await upstreamOf('GET / HTTP/1.1\r\nHost: h\r\nProxy-Authorization: Basic eA==\r\n\r\n', { forwardAuthorization: true });
    expect(out).toEqual(['host', 'h', ...tail('h')]);
  });

  it('headers named by Connection are dropped, except host, framing and Authorization', async () => {
    const out = await upstreamOf(
      'GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret, close, Host, Authorization, keep-alive,  x-other ,\r\nX-Secret: s\r\nX-Other: o\r\nX-Kept: k\r\nAuthorization: Bearer t\r\n\r\n',
      { forwardAuthorization: true },
    );
    expect(out).toEqual(['host', 'h', 'x-kept', 'k', 'authorization', 'Bearer t', ...tail('h')]);
  });

  it('host goes first even when sent last', async () => {
    const out = await upstreamOf('GET / HTTP/1.1\r\nX-A: a\r\nX-B: b\r\nHost: late.example:8443\r\n\r\n');
    expect(out).toEqual(['host', 'late.example:8443', 'x-a', 'a', 'x-b', 'b', ...tail('late.example:8443')]);
  });

  it('HTTP/1.0 without Host: the fallback host, and no X-Forwarded-Host', async () => {
    const out = await upstreamOf('GET / HTTP/1.0\r\nX-A: a\r\n\r\n', { fallbackHost: '[::1]:8080' });
    expect(out).toEqual(['host', '[::1]:8080', 'x-a', 'a', ...tail(undefined)]);
  });

  it("a length framing replaces the client's Content-Length, after the client headers", async () => {
    const raw = 'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 005\r\nX-A: a\r\n\r\nhello';
    const out = await parsed(raw, (req) => {
      const verdict = requestFraming(req, false);
      if (!verdict.ok) throw new Error(`refused: ${verdict.reason}`);
      return upstreamRequestHeaders(req, { ...BASE, framing: verdict.framing });
    });
    expect(out).toEqual(['host', 'h', 'x-a', 'a', 'content-length', '5', ...tail('h')]);
  });

  it('a chunked framing sends exactly one Transfer-Encoding: chunked', async () => {
    const raw = 'POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-A: a\r\n\r\n0\r\n\r\n';
    const out = await upstreamOf(raw, { framing: { kind: 'chunked' } });
    expect(out).toEqual(['host', 'h', 'x-a', 'a', 'transfer-encoding', 'chunked', ...tail('h')]);
  });

  it('a none framing sends no framing header, whatever the client sent', async () => {
    const out = await upstreamOf('POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n', { framing: NONE });
    expect(out).toEqual(['host', 'h', ...tail('h')]);
  });

  it('closeAfter asks the upstream to close; the client Connection never goes through', async () => {
    const out = await upstreamOf('HEAD / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n', { closeAfter: true });
    expect(out).toEqual(['host', 'h', 'connection', 'close', ...tail('h')]);
    const kept = await upstreamOf('GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', { closeAfter: false });
    expect(kept).toEqual(['host', 'h', ...tail('h')]);
  });

  it("an upgrade sends Connection: Upgrade and the client's Upgrade (not closeAfter), keeping the WebSocket headers", async () => {
    const raw =
      'GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    const out = await upstreamOf(raw, { upgrade: true, closeAfter: true });
    expect(out).toEqual([
      'host',
      'h',
      'sec-websocket-key',
      'dGhlIHNhbXBsZSBub25jZQ==',
      'sec-websocket-version',
      '13',
      'connection',
      'Upgrade',
      'upgrade',
      'WebSocket',
      ...tail('h'),
    ]);
  });

  it('an upgrade with no Upgrade header falls back to websocket', async () => {
    const out = await upstreamOf('GET /ws HTTP/1.1\r\nHost: h\r\n\r\n', { upgrade: true });
    expect(out).toEqual(['host', 'h', 'connection', 'Upgrade', 'upgrade', 'websocket', ...tail('h')]);
  });

  it("with the request id passes.ts takes from contextOf: the client's sane id once, ours otherwise", async () => {
    const [id, out] = await parsed('GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc-123\r\n\r\n', (req) => {
      const ctx = contextOf(req);
      return [ctx.requestId, upstreamRequestHeaders(req, { ...BASE, requestId: ctx.requestId })] as const;
    });
    expect(id).toBe('abc-123');
    expect(out).toEqual(['host', 'h', ...tail('h', 'alice', 'abc-123')]);

    const [replaced, out2] = await parsed('GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: <script>\r\n\r\n', (req) => {
      const ctx = contextOf(req);
      return [ctx.requestId, upstreamRequestHeaders(req, { ...BASE, requestId: ctx.requestId })] as const;
    });
    expect(replaced).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(out2).toEqual(['host', 'h', ...tail('h', 'alice', replaced)]);
  });

  it('builds a fresh list: req.headers is left as Node parsed it', async () => {
    const [before, after] = await parsed('GET / HTTP/1.1\r\nHost: h\r\nX-Auth-Subject: admin\r\nAuthorization: Bearer t\r\n\r\n', (req) => {
      const snapshot = JSON.stringify(req.headers);
      upstreamRequestHeaders(req, BASE);
      return [snapshot, JSON.stringify(req.headers)];
    });
    expect(after).toBe(before);
    expect(JSON.parse(after)).toEqual({ host: 'h', 'x-auth-subject': 'admin', authorization: 'Bearer t' });
  });
});

describe('clientResponseHeaders', () => {
  it('drops hop-by-hop headers and the upstream request id; adds ours and our connection last', () => {
    const out = clientResponseHeaders(
      {
        'content-type': 'text/plain',
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        trailer: 'x-sum',
        'x-request-id': 'upstream-id',
        'set-cookie': ['a=1', 'b=2'],
        'content-length': '12',
        'x-app': 'v',
        'x-undefined': undefined,
      },
      'rid-9',
      'close',
    );
    expect(Object.entries(out)).toEqual([
      ['content-type', 'text/plain'],
      ['set-cookie', ['a=1', 'b=2']],
      ['content-length', '12'],
      ['x-app', 'v'],
      ['x-request-id', 'rid-9'],
      ['connection', 'close'],
    ]);
  });

  it('drops the headers the upstream Connection names, except framing', () => {
    const out = clientResponseHeaders(
      { connection: 'close, X-Internal, content-length, keep-alive', 'x-internal': 'secret', 'content-length': '3', 'x-public': 'p' },
      'r',
      'keep-alive',
    );
    expect(out).toEqual({ 'content-length': '3', 'x-public': 'p', 'x-request-id': 'r', connection: 'keep-alive' });
  });

  it('with no headers at all: only ours', () => {
    expect(clientResponseHeaders({}, 'r', 'keep-alive')).toEqual({ 'x-request-id': 'r', connection: 'keep-alive' });
  });

  it('does not change its input', () => {
    const input = { connection: 'x-a', 'x-a': '1', 'x-request-id': 'u' };
    clientResponseHeaders(input, 'r', 'close');
    expect(input).toEqual({ connection: 'x-a', 'x-a': '1', 'x-request-id': 'u' });
  });
});

describe('rawResponseHead', () => {
  it('status line, one line per value in order, blank line', () => {
    expect(rawResponseHead(101, 'Switching Protocols', { connection: 'Upgrade', upgrade: 'websocket', 'set-cookie': ['a=1', 'b=2'], 'x-request-id': 'r' })).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nx-request-id: r\r\n\r\n',
    );
  });

  it('no headers: just the status line and the blank line', () => {
    expect(rawResponseHead(502, 'Bad Gateway', {})).toBe('HTTP/1.1 502 Bad Gateway\r\n\r\n');
  });

  it('composes with clientResponseHeaders as passes.ts does for a refused upgrade', () => {
    const head = rawResponseHead(403, 'Forbidden', clientResponseHeaders({ 'content-length': '0', connection: 'keep-alive', 'x-request-id': 'u' }, 'r', 'close'));
    expect(head).toBe('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nx-request-id: r\r\nconnection: close\r\n\r\n');
  });
});
