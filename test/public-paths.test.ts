/**
 * Public-path matching cannot be bypassed: every trick that could make a protected resource look
 * like a public path (dot segments, doubled or encoded slashes, encoded dots, query strings,
 * fragments, case, absolute-form targets) is tried without a token against the compiled sidecar,
 * on raw sockets so the request target goes out exactly as written.
 */
import * as fs from 'fs';
import * as path from 'path';
import { FORWARDED_HEADERS, SIDECAR_ENV } from '../lib/src/contract';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { rawHeader, rawRequest, rawStatus, tempDir } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';

const TOKEN = 'public-paths-token-7';
const PUBLIC = ['/public', '/api/status'];

let upstream: TestUpstream;
let sidecar: RunningApp;
let tokens: { dir: string; cleanup: () => void };

beforeAll(async () => {
  upstream = await startUpstream();
  tokens = tempDir('public-paths-');
  fs.writeFileSync(path.join(tokens.dir, 'client'), TOKEN);
  sidecar = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstream.url, tokens.dir),
      [SIDECAR_ENV.publicPaths]: PUBLIC.join(','),
      [SIDECAR_ENV.drainDelayMs]: '0',
    },
  });
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
  tokens?.cleanup();
});

/** One raw request; returns the status and what reached the upstream meanwhile. */
async function send(target: string, { method = 'GET', token, extra = '' }: { method?: string; token?: string; extra?: string } = {}) {
  const before = upstream.count();
  const auth = token === undefined ? '' : `Authorization: Bearer ${token}\r\n`;
  const response = await rawRequest(sidecar.port, `${method} ${target} HTTP/1.1\r\nHost: sidecar.test\r\n${auth}${extra}Connection: close\r\n\r\n`);
  return { status: rawStatus(response), response, reached: upstream.received.slice(before) };
}

/** [target, statuses allowed]. 400 only where Node's parser refuses the target outright. */
const BYPASS_ATTEMPTS: [string, string, number[]][] = [
  // Dot segments.
  ['..', '/public/../secret', [401]],
  ['..', '/public/..', [401]],
  ['..', '/public/.', [401]],
  ['..', '/public/./secret', [401]],
  ['..', '/./public', [401]],
  ['..', '/secret/../public', [401]],
  ['..', '/api/status/../../secret', [401]],
  ['..', '/public/..;/secret', [401]],
  ['..', '/public\\..\\secret', [401]],
  // Doubled and trailing slashes.
  ['//', '//public', [401]],
  ['//', '///public', [401]],
  ['//', '/public/', [401]],
  ['//', '/public//', [401]],
  ['//', '/api//status', [401]],
  ['//', '//public/../secret', [401]],
  // Percent-encoded slashes, dots and letters.
  ['%-encoded', '/public%2Fsecret', [401]],
  ['%-encoded', '/public%2fsecret', [401]],
  ['%-encoded', '/%2Fpublic', [401]],
  ['%-encoded', '/public/%2e%2e/secret', [401]],
  ['%-encoded', '/public/%2E%2E/secret', [401]],
  ['%-encoded', '/public/.%2e/secret', [401]],
  ['%-encoded', '/public/..%2fsecret', [401]],
  ['%-encoded', '/public%5c..%5csecret', [401]],
  ['%-encoded', '/%70ublic', [401]],
  ['%-encoded', '/publi%63', [401]],
  ['%-encoded', '/public%00', [401]],
  ['%-encoded', '/public%20', [401]],
  ['%-encoded', '/public%', [401]],
  ['%-encoded', '/api%2Fstatus', [401]],
  // Query strings, fragments and parameters.
  ['query/fragment', '/secret?/public', [401]],
  ['query/fragment', '/secret?path=/public', [401]],
  ['query/fragment', '/secret#/public', [401]],
  ['query/fragment', '/public#', [401]],
  ['query/fragment', '/public#/../secret', [401]],
  ['query/fragment', '/public;', [401]],
  ['query/fragment', '/public;x=1', [401]],
  ['query/fragment', '/secret;/public', [401]],
  // Case.
  ['case', '/PUBLIC', [401]],
  ['case', '/Public', [401]],
  ['case', '/pUbLiC', [401]],
  ['case', '/API/STATUS', [401]],
  // Look-alikes and near misses.
  ['near miss', '/public.json', [401]],
  ['near miss', '/publicx', [401]],
  ['near miss', '/public-admin', [401]],
  ['near miss', '/api', [401]],
  ['near miss', '/api/status2', [401]],
  ['near miss', '/publ\u0131c', [400, 401]],
  ['near miss', 'public', [400, 401]],
  ['near miss', '/public\t', [400]],
  // Absolute-form and asterisk-form targets.
  ['absolute-form', 'http://sidecar.test/public', [401]],
  ['absolute-form', 'http://sidecar.test/public/../secret', [401]],
  ['absolute-form', 'http://public/secret', [401]],
  ['absolute-form', '*', [401]],
];

describe('bypass attempts against a protected path, without a token', () => {
  it.each(BYPASS_ATTEMPTS)('%s: %j is refused and nothing reaches the upstream', async (_kind, target, statuses) => {
    const { status, response, reached } = await send(target);
    expect(statuses).toContain(status);
    expect(reached).toEqual([]);
    if (status === 401) expect(rawHeader(response, 'www-authenticate')).toMatch(/^Bearer realm=/);
  });

  it.each(BYPASS_ATTEMPTS.filter(([, t]) => t !== '*'))('%s: %j is refused for other methods too', async (_kind, target, statuses) => {
    for (const method of ['POST', 'DELETE', 'OPTIONS']) {
      const { status, reached } = await send(target, { method, extra: 'Content-Length: 0\r\n' });
      expect(statuses).toContain(status);
      expect(reached).toEqual([]);
    }
  });

  it('a WebSocket upgrade on a bypass path is refused', async () => {
    const upgradeHeaders = 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    for (const target of ['/public/../secret', '//public', '/PUBLIC', '/public%2F..%2Fsecret', '/secret?/public']) {
      const before = upstream.upgrades.length;
      const response = await rawRequest(sidecar.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n${upgradeHeaders}\r\n`);
      expect(rawStatus(response)).toBe(401);
      expect(upstream.upgrades.length).toBe(before);
    }
  });
});

describe('the public paths themselves', () => {
  const PUBLIC_TARGETS: [string, string][] = [
    ['/public', '/public'],
    ['/public?x=1', '/public'],
    ['/public?', '/public'],
    ['/public?next=/../secret', '/public'],
    ['/public?a=1&b=%2F..%2Fsecret', '/public'],
    ['/api/status', '/api/status'],
    ['/api/status?verbose', '/api/status'],
  ];

  it.each(PUBLIC_TARGETS)('%j is forwarded without a token, to the same path, with no subject', async (target, pathname) => {
    const { status, reached } = await send(target);
    expect(status).toBe(200);
    expect(reached).toHaveLength(1);
    expect(reached[0].url).toBe(target);
    expect(new URL(reached[0].url, 'http://upstream').pathname).toBe(pathname);
    expect(reached[0].headers[FORWARDED_HEADERS.subject]).toBeUndefined();
  });

  it('a client-sent identity header is stripped on public paths too', async () => {
    const { status, reached } = await send('/public', { extra: `${FORWARDED_HEADERS.subject}: admin\r\nX_Auth_Subject: admin\r\n` });
    expect(status).toBe(200);
    expect(reached[0].headers[FORWARDED_HEADERS.subject]).toBeUndefined();
    expect(reached[0].rawHeaders.map((h) => h.toLowerCase())).not.toContain('x_auth_subject');
  });

  it('a bad token on a public path does not matter: the path is public', async () => {
    const { status, reached } = await send('/public', { token: 'not-a-valid-token' });
    expect(status).toBe(200);
    expect(reached).toHaveLength(1);
  });
});

describe('with a valid token', () => {
  it.each(['/secret', '/public/../secret', '//public', '/PUBLIC', '/public%2Fsecret'])('%j is forwarded, with the subject', async (target) => {
    const { status, reached } = await send(target, { token: TOKEN });
    expect(status).toBe(200);
    expect(reached).toHaveLength(1);
    expect(reached[0].headers[FORWARDED_HEADERS.subject]).toBe('client');
  });
});

describe('the upstream gets the target the sidecar judged', () => {
  // A proxy that rewrites the path after judging it makes the judgement about another resource.
  it.each(['//a//b', '/a\\b', '/a/../b', '/%2e%2e/x', '/redirect/http:/evil', '/a;b/c', '/x?y=//z'])('%j reaches the upstream unchanged', async (target) => {
    const { status, reached } = await send(target, { token: TOKEN });
    expect(status).toBe(200);
    expect(reached.map((r) => r.url)).toEqual([target]);
  });

  it('a WebSocket upgrade reaches the upstream with its target unchanged', async () => {
    const before = upstream.upgrades.length;
    const response = await rawRequest(
      sidecar.port,
      `GET //ws//a\\b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      300,
    );
    expect(rawStatus(response)).toBe(101);
    expect(upstream.upgrades.slice(before).map((r) => r.url)).toEqual(['//ws//a\\b']);
  });

  it('OPTIONS * (asterisk-form) is forwarded as it is', async () => {
    const { status, reached } = await send('*', { method: 'OPTIONS', token: TOKEN });
    expect(status).toBe(200);
    expect(reached.map((r) => `${r.method} ${r.url}`)).toEqual(['OPTIONS *']);
  });

  it('an absolute-form target reaches the upstream in origin-form, path unchanged', async () => {
    const { status, reached } = await send('http://sidecar.test//a//b?c', { token: TOKEN });
    expect(status).toBe(200);
    expect(reached.map((r) => r.url)).toEqual(['//a//b?c']);
  });
});
