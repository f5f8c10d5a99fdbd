/**
 * Hostile and broken requests on raw sockets against the compiled sidecar.
 *
 * For each: a definite 4xx (or, for a stalled client, a timeout that frees the connection), nothing
 * forwarded that the upstream could act on, and the next valid request still gets 200.
 * Every hostile request carries a valid token, so "nothing forwarded" is a real check.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { HEALTH_PATHS, SIDECAR_ENV, SIDECAR_INTEGERS } from '../lib/src/contract';
import { EVENT_TIMEOUT_MS } from '../tools/waits';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { rawRequest, rawStatus, request, sleep, tempDir, until } from './support/http';

const TOKEN = 'bad-requests-token-42';
const AUTH = `Authorization: Bearer ${TOKEN}\r\n`;
/** Long enough that a request sent while a slow client is connected is answered before the cut, even on a busy machine. */
const HEADERS_TIMEOUT_MS = 1_500;
/** Long enough that "aborted at once" and "aborted by this timeout" stay apart on a busy machine. */
const UPSTREAM_TIMEOUT_MS = 2_000;
/** Node checks header deadlines once a second (the sidecar's connectionsCheckingInterval). */
const CHECK_INTERVAL_MS = 1_000;
/**
 * A slow client's connection is cut by the configured headers timeout before this: far below Node's
 * own default (60 s), which is what would cut it if the setting were not applied; the rest is slack
 * for a busy machine.
 */
const CUT_BY_MS = HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + EVENT_TIMEOUT_MS / 2;

/** What the upstream saw of one request. */
interface Seen {
  readonly url: string;
  bytes: number;
  completed: boolean;
  aborted: boolean;
}

let seen: Seen[] = [];
let upstream: http.Server;
let sidecar: RunningApp;
let tokens: { dir: string; cleanup: () => void };

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    const s: Seen = { url: req.url ?? '', bytes: 0, completed: false, aborted: false };
    seen.push(s);
    req.on('data', (c: Buffer) => (s.bytes += c.length));
    // Answer only once the whole body is in: a partial body must never look complete.
    req.on('end', () => {
      s.completed = true;
      res.end('ok');
    });
    req.on('close', () => {
      if (!s.completed) s.aborted = true;
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  tokens = tempDir('bad-requests-');
  fs.writeFileSync(path.join(tokens.dir, 'client'), TOKEN);
  sidecar = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(`http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`, tokens.dir),
      [SIDECAR_ENV.headersTimeoutMs]: String(HEADERS_TIMEOUT_MS),
      [SIDECAR_ENV.upstreamTimeoutMs]: String(UPSTREAM_TIMEOUT_MS),
      [SIDECAR_ENV.drainDelayMs]: '0',
    },
  });
});

afterAll(async () => {
  await sidecar?.stop();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
  tokens?.cleanup();
});

beforeEach(() => {
  seen = [];
});

let okSeq = 0;

/** The sidecar is alive and forwards the next valid request; nothing is left in flight. */
async function expectStillServing(): Promise<void> {
  const url = `/still-ok/${++okSeq}`;
  const res = await request(sidecar.port, { path: url, headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  expect(seen.filter((s) => s.url === url && s.completed)).toHaveLength(1);
  expect(sidecar.child.exitCode).toBeNull();
  await until('no request in flight', async () => /^sidecar_http_requests_in_flight 0$/m.test((await request(sidecar.adminPort!, { path: HEALTH_PATHS.metrics })).text()));
}

/** Requests the upstream saw, other than our own liveness checks. */
const forwarded = () => seen.filter((s) => !s.url.startsWith('/still-ok/'));

/** A response must be plain: no stack trace, no echo of the credential. */
function expectClean(response: string): void {
  expect(response).not.toContain(TOKEN);
  expect(response).not.toMatch(/\n\s+at /);
}

interface Exchange {
  readonly response: string;
  /** ms from connect until the sidecar closed the connection (undefined if it did not). */
  readonly closedAfterMs: number | undefined;
}

/** Write `parts` with `gapMs` between them (stopping once the server closes), then wait up to `waitMs` for a close. */
function exchange(parts: readonly (string | Buffer)[], gapMs: number, waitMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(sidecar.port, '127.0.0.1');
    let response = '';
    let gaveUp = false;
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const writeNext = () => {
      if (i >= parts.length || !socket.writable) return;
      socket.write(parts[i++]);
      if (i < parts.length) timer = setTimeout(writeNext, gapMs);
    };
    socket.on('connect', writeNext);
    const giveUp = setTimeout(() => {
      gaveUp = true;
      socket.destroy();
    }, waitMs);
    socket.on('data', (c: Buffer) => (response += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      clearTimeout(giveUp);
      resolve({ response, closedAfterMs: gaveUp ? undefined : Date.now() - started });
    });
  });
}

describe('oversized headers', () => {
  const cases: [string, string, number[]][] = [
    ['one header over 16 KiB', `GET /big-one HTTP/1.1\r\nHost: x\r\n${AUTH}X-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`, [431, 400]],
    ['40 headers of 500 bytes (20 KiB in all)', `GET /big-sum HTTP/1.1\r\nHost: x\r\n${AUTH}${Array.from({ length: 40 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(500)}\r\n`).join('')}\r\n`, [431, 400]],
    ['a request line over 16 KiB', `GET /${'u'.repeat(17 * 1024)} HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`, [431, 400, 414]],
    ['101 headers', `GET /many HTTP/1.1\r\nHost: x\r\n${AUTH}${Array.from({ length: 99 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, [431]],
    ['2,000 tiny headers', `GET /very-many HTTP/1.1\r\nHost: x\r\n${AUTH}${Array.from({ length: 2_000 }, (_, i) => `X${i}:\r\n`).join('')}\r\n`, [431, 400]],
  ];

  it.each(cases)('%s: refused, nothing forwarded', async (_label, raw, statuses) => {
    const response = await rawRequest(sidecar.port, raw);
    expect(statuses).toContain(rawStatus(response));
    expect(response).toMatch(/\r\nconnection: close\r\n/i);
    expectClean(response);
    expect(forwarded()).toEqual([]);
    await expectStillServing();
  });

  it('exactly 100 headers is still served', async () => {
    // Host + Authorization + 97 + Connection = 100.
    const raw = `GET /hundred HTTP/1.1\r\nHost: x\r\n${AUTH}${Array.from({ length: 97 }, (_, i) => `X-H${i}: v\r\n`).join('')}Connection: close\r\n\r\n`;
    expect(rawStatus(await rawRequest(sidecar.port, raw))).toBe(200);
    expect(forwarded().map((s) => s.url)).toEqual(['/hundred']);
  });
});

describe('malformed request line', () => {
  const lines: [string, string][] = [
    ['extra token after the version', 'GET /x HTTP/1.1 extra'],
    ['space inside the method', 'GE T /x HTTP/1.1'],
    ['unknown protocol name', 'GET /x HTTX/1.1'],
    ['unsupported version 9.9', 'GET /x HTTP/9.9'],
    ['space inside the target', 'GET /a b HTTP/1.1'],
    ['tab instead of space', 'GET\t/x\tHTTP/1.1'],
    ['NUL before the method', '\u0000GET /x HTTP/1.1'],
    ['control character in the target', 'GET /a\u0001b HTTP/1.1'],
    ['lower-case method', 'get /x HTTP/1.1'],
    ['bare LF line ends', 'GET /x HTTP/1.1\nHost: x\n'],
  ];

  it.each(lines)('%s: 400, nothing forwarded', async (_label, line) => {
    const raw = line.includes('\n') ? `${line}${AUTH.replace('\r\n', '\n')}\n` : `${line}\r\nHost: x\r\n${AUTH}\r\n`;
    const response = await rawRequest(sidecar.port, raw);
    expect(rawStatus(response)).toBe(400);
    expectClean(response);
    expect(forwarded()).toEqual([]);
    await expectStillServing();
  });
});

describe('request lines Node parses but the sidecar must not forward', () => {
  it.each([
    ['no version at all (HTTP/0.9 style, yet with headers)', 'GET /v09 HTTP', 400],
    ['HTTP/0.9 stated', 'GET /v09 HTTP/0.9', 400],
    ['HTTP/2.0 in an HTTP/1 request line', 'GET /v20 HTTP/2.0', 505],
  ])('%s (%s): %d, nothing forwarded', async (_label, line, expected) => {
    const requestLine = line.endsWith(' HTTP') ? line.slice(0, -' HTTP'.length) : line;
    const response = await rawRequest(sidecar.port, `${requestLine}\r\nHost: x\r\n${AUTH}\r\n`);
    expect(rawStatus(response)).toBe(expected);
    expect(response).toMatch(/\r\nconnection: close\r\n/i);
    expectClean(response);
    expect(forwarded()).toEqual([]);
    await expectStillServing();
  });

  it('CONNECT (the sidecar is not a forward proxy): 405, nothing forwarded', async () => {
    const response = await rawRequest(sidecar.port, `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n${AUTH}\r\n`);
    expect(rawStatus(response)).toBe(405);
    expectClean(response);
    expect(forwarded()).toEqual([]);
    await expectStillServing();
  });
});

describe('malformed header lines', () => {
  const headers: [string, string][] = [
    ['obsolete line folding', `X-Folded: a\r\n b\r\n`],
    ['a space before the colon', `X-Spaced : a\r\n`],
    ['no colon at all', `X-No-Colon\r\n`],
    ['NUL in a value', `X-Nul: a\u0000b\r\n`],
    ['a non-token character in a name', `X(bad): a\r\n`],
    ['an empty name', `: a\r\n`],
  ];

  it.each(headers)('%s: 400, nothing forwarded', async (_label, line) => {
    const response = await rawRequest(sidecar.port, `GET /x HTTP/1.1\r\nHost: x\r\n${AUTH}${line}\r\n`);
    expect(rawStatus(response)).toBe(400);
    expectClean(response);
    expect(forwarded()).toEqual([]);
    await expectStillServing();
  });
});

describe('request smuggling: conflicting Content-Length and Transfer-Encoding', () => {
  const smuggled = (n: number) => `GET /smuggled-${n} HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`;
  const variants: [string, string][] = [
    ['TE chunked then CL', `POST /outer HTTP/1.1\r\nHost: x\r\n${AUTH}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${smuggled(1)}`],
    ['CL then TE chunked', `POST /outer HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled(2)}`],
    ['CL with TE in upper case', `POST /outer HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Length: 48\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n${smuggled(3)}`],
    ['CL with TE after a tab', `POST /outer HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Length: 4\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n${smuggled(4)}`],
    ['CL with an obfuscated TE (xchunked)', `POST /outer HTTP/1.1\r\nHost: x\r\n${AUTH}Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${smuggled(5)}`],
    ['TE with a space before the colon', `POST /outer HTTP/1.1\r\nHost: x\r\n${AUTH}Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${smuggled(6)}`],
    ['TE chunked not last (chunked, identity)', `POST /outer HTTP/1.1\r\nHost: x\r\n${AUTH}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${smuggled(7)}`],
    ['two different Content-Lengths', `POST /outer HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Length: 0\r\nContent-Length: 60\r\n\r\n${smuggled(8)}`],
    ['a signed Content-Length', `POST /outer HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Length: +0\r\n\r\n${smuggled(9)}`],
    ['CL and TE on an HTTP/1.0 request', `POST /outer HTTP/1.0\r\nHost: x\r\n${AUTH}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n${smuggled(10)}`],
  ];

  it.each(variants)('%s: 400, neither the outer nor the smuggled request forwarded', async (_label, raw) => {
    const response = await rawRequest(sidecar.port, raw);
    expect(rawStatus(response)).toBe(400);
    // Exactly one response: the smuggled request got no answer of its own either.
    expect(response.match(/HTTP\/1\.1 \d{3}/g)).toHaveLength(1);
    expectClean(response);
    expect(forwarded()).toEqual([]);
    await expectStillServing();
  });
});

describe('invalid chunked encoding', () => {
  const bodies: [string, string][] = [
    ['a non-hex chunk size', 'zz\r\nabc\r\n0\r\n\r\n'],
    ['more data than the chunk size', '3\r\nabcdef\r\n0\r\n\r\n'],
    ['no CRLF after the chunk data', '3\r\nabc0\r\n\r\n'],
    ['a negative chunk size', '-1\r\na\r\n0\r\n\r\n'],
    ['a chunk size that overflows 64 bits', 'fffffffffffffffffff\r\na\r\n0\r\n\r\n'],
    ['a control character in a chunk extension', '3;\u0001\r\nabc\r\n0\r\n\r\n'],
  ];

  it.each(bodies)('%s: 400, and the upstream never sees a complete request', async (_label, body) => {
    const response = await rawRequest(sidecar.port, `POST /chunked HTTP/1.1\r\nHost: x\r\n${AUTH}Transfer-Encoding: chunked\r\n\r\n${body}`);
    expect(rawStatus(response)).toBe(400);
    expectClean(response);
    expect(forwarded().filter((s) => s.completed)).toEqual([]);
    await expectStillServing();
  });

  it('a bad chunk after a good one, once forwarding has begun: the upstream request is aborted, never completed', async () => {
    const socket = net.connect(sidecar.port, '127.0.0.1');
    let response = '';
    socket.on('data', (c: Buffer) => (response += c.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.write(`POST /chunked-late HTTP/1.1\r\nHost: x\r\n${AUTH}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
    await until('the first chunk at the upstream', () => forwarded().some((s) => s.url === '/chunked-late' && s.bytes === 5), EVENT_TIMEOUT_MS, 10);
    socket.write('zz\r\n');
    await closed;
    // Either a 400 or a cut connection: the client must not see a success.
    expect([0, 400]).toContain(rawStatus(response));
    await until('the upstream request aborted', () => forwarded().some((s) => s.url === '/chunked-late' && s.aborted), EVENT_TIMEOUT_MS, 10);
    expect(forwarded().filter((s) => s.completed)).toEqual([]);
    await expectStillServing();
  });
});

describe('slow clients', () => {
  it(`slowloris: headers trickled one line every 100 ms are cut off by the ${HEADERS_TIMEOUT_MS} ms headers timeout`, async () => {
    const parts = ['GET /slowloris HTTP/1.1\r\n', 'Host: x\r\n', AUTH, ...Array.from({ length: 60 }, (_, i) => `X-Slow-${i}: y\r\n`)];
    let slowlorisClosed = false;
    const pending = exchange(parts, 100, CUT_BY_MS + EVENT_TIMEOUT_MS).finally(() => (slowlorisClosed = true));
    // Others are served meanwhile: answered while the slow client is still connected.
    await sleep(150);
    expect((await request(sidecar.port, { path: '/meanwhile', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect(slowlorisClosed).toBe(false);
    const { response, closedAfterMs } = await pending;
    expect(closedAfterMs).toBeDefined();
    expect(closedAfterMs!).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(closedAfterMs!).toBeLessThan(CUT_BY_MS);
    expect([0, 408]).toContain(rawStatus(response));
    expect(forwarded().map((s) => s.url)).toEqual(['/meanwhile']);
    await expectStillServing();
  });

  it('a connection that never sends a byte is closed by the same timeout', async () => {
    const { response, closedAfterMs } = await exchange([], 0, CUT_BY_MS + EVENT_TIMEOUT_MS);
    expect(closedAfterMs).toBeDefined();
    expect(closedAfterMs!).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(closedAfterMs!).toBeLessThan(CUT_BY_MS);
    expect([0, 408]).toContain(rawStatus(response));
    expect(forwarded()).toEqual([]);
    await expectStillServing();
  });

  it('a request line sent byte by byte, never finished, is closed by the same timeout', async () => {
    // 30 bytes 100 ms apart: still dripping when the timeout cuts it.
    const { response, closedAfterMs } = await exchange([...'GET /drip HTTP/1.1\r\nHost: x\r\n'], 100, CUT_BY_MS + EVENT_TIMEOUT_MS);
    expect(closedAfterMs).toBeDefined();
    expect(closedAfterMs!).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(closedAfterMs!).toBeLessThan(CUT_BY_MS);
    expect([0, 408]).toContain(rawStatus(response));
    expect(forwarded()).toEqual([]);
    await expectStillServing();
  });
});

describe('abandoned request body', () => {
  const head = `POST /abandoned HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Length: 100\r\n\r\n0123456789`;

  it('client stops sending: the upstream timeout frees both sides (504 or a cut), the upstream request is aborted', async () => {
    const defaultTimeoutMs = SIDECAR_INTEGERS.upstreamTimeoutMs.default;
    const { response, closedAfterMs } = await exchange([head], 0, defaultTimeoutMs + EVENT_TIMEOUT_MS);
    expect(closedAfterMs).toBeDefined();
    // The configured timeout did it: not before it, and long before the default would have.
    expect(closedAfterMs!).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS - 50);
    expect(closedAfterMs!).toBeLessThan(defaultTimeoutMs);
    expect([0, 504]).toContain(rawStatus(response));
    // Forwarded as it streamed in, but the upstream never got a complete body.
    await until('the upstream request aborted', () => forwarded().some((s) => s.url === '/abandoned' && s.aborted), EVENT_TIMEOUT_MS, 10);
    expect(forwarded()).toEqual([{ url: '/abandoned', bytes: 10, completed: false, aborted: true }]);
    await expectStillServing();
  });

  it('client goes away mid-body: the upstream request is aborted at once and logged as 499', async () => {
    const socket = net.connect(sidecar.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(head.replace('/abandoned', '/abandoned-gone'));
    await until('the first 10 bytes at the upstream', () => forwarded().some((s) => s.url === '/abandoned-gone' && s.bytes === 10), EVENT_TIMEOUT_MS, 10);
    const t0 = Date.now();
    socket.destroy();
    await until('the upstream request aborted', () => forwarded().some((s) => s.url === '/abandoned-gone' && s.aborted), EVENT_TIMEOUT_MS, 10);
    // At once: not by the upstream timeout, which would fire only after UPSTREAM_TIMEOUT_MS.
    expect(Date.now() - t0).toBeLessThan(UPSTREAM_TIMEOUT_MS);
    expect(forwarded().filter((s) => s.completed)).toEqual([]);
    const line = await sidecar.waitForLog((l) => l.msg === 'request' && l.path === '/abandoned-gone');
    expect(line.status).toBe(499);
    await expectStillServing();
  });
});

describe('one connection, several requests', () => {
  it('pipelined requests are judged one by one: a token on the first does not carry over', async () => {
    const response = await rawRequest(
      sidecar.port,
      `GET /pipe-1 HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n` + 'GET /pipe-2 HTTP/1.1\r\nHost: x\r\n\r\n' + `GET /pipe-3 HTTP/1.1\r\nHost: x\r\n${AUTH}Connection: close\r\n\r\n`,
    );
    // Unanchored: a body without a final newline runs into the next status line.
    expect(response.match(/HTTP\/1\.1 \d{3} /g)).toEqual(['HTTP/1.1 200 ', 'HTTP/1.1 401 ', 'HTTP/1.1 200 ']);
    expect(forwarded().map((s) => s.url)).toEqual(['/pipe-1', '/pipe-3']);
    await expectStillServing();
  });

  it('an unauthenticated body pipelined with a request behind it: 401, the connection closes, the second request is never read', async () => {
    const response = await rawRequest(
      sidecar.port,
      'POST /unauth-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' + `GET /behind HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`,
    );
    expect(response.match(/HTTP\/1\.1 \d{3} /g)).toEqual(['HTTP/1.1 401 ']);
    expect(response).toMatch(/\r\nconnection: close\r\n/i);
    expect(forwarded()).toEqual([]);
    await expectStillServing();
  });

  it('Expect: 100-continue without a valid token gets 401, never "100 Continue", and nothing is forwarded', async () => {
    const { response } = await exchange(['POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n'], 0, EVENT_TIMEOUT_MS);
    expect(response).not.toContain('100 Continue');
    expect(rawStatus(response)).toBe(401);
    expect(forwarded()).toEqual([]);
    await expectStillServing();
  });

  it('Expect: 100-continue with a valid token gets "100 Continue", then the body is forwarded', async () => {
    const socket = net.connect(sidecar.port, '127.0.0.1');
    let response = '';
    socket.on('data', (c: Buffer) => (response += c.toString('latin1')));
    socket.write(`POST /expect-ok HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
    await until('100 Continue', () => response.startsWith('HTTP/1.1 100 Continue'), EVENT_TIMEOUT_MS, 10);
    // write, not end: Node's server treats a half-close as the client leaving.
    socket.write('hello');
    await new Promise((r) => socket.on('close', r));
    expect(response).toMatch(/HTTP\/1\.1 200/);
    expect(forwarded()).toEqual([{ url: '/expect-ok', bytes: 5, completed: true, aborted: false }]);
    await expectStillServing();
  });
});
