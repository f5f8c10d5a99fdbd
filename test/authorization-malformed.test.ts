/**
 * RFC 6750 §3.1 through the real sidecar process (issue 18 §3, finding 2): an Authorization header
 * that is not one well-formed Bearer credential is `invalid_request`, answered 400; a well-formed
 * token that does not authenticate is `invalid_token`, 401; another scheme or no header is a 401
 * without an error code. An OAuth client refreshes its token and retries on invalid_token, which
 * for a malformed header can never succeed. Raw sockets in front of a recording upstream.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SIDECAR_ENV } from '../lib/src/contract';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { request, tempDir } from './support/http';
import { RawConnection } from './support/raw-client';
import { RecordingUpstream, startRecordingUpstream } from './support/recording-upstream';

const TOKEN = 'malformed-token-0123456789abcdef';
const OTHER = 'malformed-other-0123456789abcdef';
const REALM = 'rfc6750';
const BARE = `Bearer realm="${REALM}"`;
const INVALID_TOKEN = `Bearer realm="${REALM}", error="invalid_token"`;
const INVALID_REQUEST = `Bearer realm="${REALM}", error="invalid_request"`;

let upstream: RecordingUpstream;
let sidecar: RunningApp;
let tokens: { dir: string; cleanup: () => void };

beforeAll(async () => {
  upstream = await startRecordingUpstream();
  tokens = tempDir('authorization-malformed-');
  fs.writeFileSync(path.join(tokens.dir, 'alice'), TOKEN);
  fs.writeFileSync(path.join(tokens.dir, 'bob'), OTHER);
  sidecar = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstream.url, tokens.dir),
      [SIDECAR_ENV.realm]: REALM,
      [SIDECAR_ENV.routes]: JSON.stringify({
        rules: [
          { path: '/pub', effect: 'public' },
          { path: '/admin/*', effect: 'subjects', subjects: ['bob'] },
        ],
      }),
    },
  });
});

afterAll(async () => {
  await sidecar?.stop('SIGKILL');
  await upstream?.close();
  tokens?.cleanup();
});

beforeEach(() => upstream.reset());

/** Send the head lines after `GET <target>` on a fresh connection; the first response. */
async function exchange(target: string, lines: string, requestId: string) {
  const c = await RawConnection.open(sidecar.port);
  try {
    c.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${requestId}\r\n${lines}\r\n`);
    const res = await c.response(5_000);
    if (res === undefined) throw new Error('no response');
    // Then, on the same connection, a valid request: a refused credential keeps the connection.
    c.write(`GET /after HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    const after = await c.response(5_000);
    return { res, after };
  } finally {
    c.close();
  }
}

async function metric(reason: string): Promise<number> {
  const text = (await request(sidecar.adminPort!, { path: '/metrics' })).text();
  const m = new RegExp(`^sidecar_auth_failures_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

let seq = 0;

/** The line for a case: [label, header lines (CRLF-terminated)]. */
const MALFORMED: [string, string][] = [
  ['two Authorization headers, both the same valid token', `Authorization: Bearer ${TOKEN}\r\nAuthorization: Bearer ${TOKEN}\r\n`],
  ['two Authorization headers, Basic first', `Authorization: Basic dTpw\r\nauthorization: Bearer ${TOKEN}\r\n`],
  ['two Authorization headers, both Basic', 'Authorization: Basic dTpw\r\nAUTHORIZATION: Basic dTpw\r\n'],
  ['Bearer with no token', 'Authorization: Bearer\r\n'],
  ['Bearer and a space, no token (the parser drops trailing space)', 'Authorization: Bearer \r\n'],
  ['Bearer a b', 'Authorization: Bearer a b\r\n'],
  ['two spaces', `Authorization: Bearer  ${TOKEN}\r\n`],
  ['a tab instead of the space', `Authorization: Bearer\t${TOKEN}\r\n`],
  ['a colon after the scheme', `Authorization: Bearer:${TOKEN}\r\n`],
  ['a comma list', `Authorization: Bearer ${TOKEN}, Bearer ${OTHER}\r\n`],
  ['a quoted token', `Authorization: Bearer "${TOKEN}"\r\n`],
  ['a character outside b64token', `Authorization: Bearer ${TOKEN};\r\n`],
  ['padding before token characters', 'Authorization: Bearer ab=cd\r\n'],
  ['a non-ASCII byte', `Authorization: bearer ${TOKEN}\u00e9\r\n`],
];

describe('a malformed Authorization header: 400 invalid_request', () => {
  it.each(MALFORMED)('%s → 400, error="invalid_request", counted as malformed, logged, nothing forwarded', async (_label, lines) => {
    const before = await metric('malformed');
    const requestId = `malformed-${++seq}`;
    const { res, after } = await exchange('/private', lines, requestId);
    expect(res.status).toBe(400);
    expect(res.headers['www-authenticate']).toBe(INVALID_REQUEST);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-request-id']).toBe(requestId);
    expect(res.body.toString()).toBe('Bad Request\n');
    expect(res.body.toString()).not.toContain(TOKEN);
    // The connection carries on, as after a 401.
    expect(after?.status).toBe(200);
    expect(upstream.requests().map((r) => r.target)).toEqual(['/after']);
    expect(await metric('malformed')).toBe(before + 1);
    const line = await sidecar.waitForLog((l) => l.msg === 'request' && l.requestId === requestId, 5_000);
    expect(line).toMatchObject({ status: 400, reason: 'malformed' });
  });

  it('a malformed header on a subjects rule is 400 before any rule is applied, not 403', async () => {
    const { res } = await exchange('/admin/x', `Authorization: Bearer ${OTHER} extra\r\n`, `malformed-${++seq}`);
    expect(res.status).toBe(400);
    expect(res.headers['www-authenticate']).toBe(INVALID_REQUEST);
    // A well-formed credential the rule does not admit: 403, without a challenge.
    const forbidden = await exchange('/admin/x', `Authorization: Bearer ${TOKEN}\r\n`, `malformed-${++seq}`);
    expect(forbidden.res.status).toBe(403);
    expect(forbidden.res.headers['www-authenticate']).toBeUndefined();
    expect(upstream.requests().map((r) => r.target)).toEqual(['/after', '/after']);
  });

  it('a refused WebSocket upgrade with a malformed header gets a raw 400 with the challenge, and the socket closes', async () => {
    const c = await RawConnection.open(sidecar.port);
    c.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${TOKEN}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`,
    );
    const res = await c.response(5_000);
    expect(res?.status).toBe(400);
    expect(res?.headers['www-authenticate']).toBe(INVALID_REQUEST);
    expect(res?.headers.connection).toBe('close');
    expect(await c.response(5_000)).toBeUndefined();
    c.close();
    expect(upstream.requests()).toEqual([]);
  });
});

describe('what stays 401', () => {
  it.each<[string, string, string, string]>([
    ['an unknown but well-formed token', 'Authorization: Bearer unknown-but-well-formed==\r\n', INVALID_TOKEN, 'invalid_token'],
    ['a JWT-shaped token with no issuer configured', 'Authorization: Bearer abc.def.ghi\r\n', INVALID_TOKEN, 'invalid_token'],
    ['another scheme', 'Authorization: Basic dTpw\r\n', BARE, 'wrong_scheme'],
    ['a longer scheme starting with Bearer', `Authorization: Bearerx ${TOKEN}\r\n`, BARE, 'wrong_scheme'],
    ['an empty header', 'Authorization: \r\n', BARE, 'wrong_scheme'],
    ['no header', '', BARE, 'missing'],
  ])('%s → 401', async (_label, lines, challenge, reason) => {
    const requestId = `unauthorized-${++seq}`;
    const { res, after } = await exchange('/private', lines, requestId);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(challenge);
    expect(after?.status).toBe(200);
    const line = await sidecar.waitForLog((l) => l.msg === 'request' && l.requestId === requestId, 5_000);
    expect(line).toMatchObject({ status: 401, reason });
  });

  it('a public path does not judge Authorization: a malformed one is not refused', async () => {
    const { res } = await exchange('/pub', `Authorization: Bearer a b\r\n`, `public-${++seq}`);
    expect(res.status).toBe(200);
    const pub = upstream.requests().find((r) => r.target === '/pub');
    // Authorization is not forwarded (SIDECAR_FORWARD_AUTHORIZATION is off).
    expect(pub?.headers.some(([n]) => n.toLowerCase() === 'authorization')).toBe(false);
  });
});
