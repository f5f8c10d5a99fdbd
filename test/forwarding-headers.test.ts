/**
 * Forwarding headers through the real sidecar process (issue 18 §3, findings 1 and 3), against a
 * raw recording upstream that shows every header line main would get.
 *
 * 1. A client's Forwarded, X-Real-IP, X-Forwarded-Port/-Scheme/-Ssl/-Prefix and the rest of the
 *    proxy-only headers never reach main, in any spelling; the X-Forwarded-For main gets is the
 *    peer alone unless SIDECAR_TRUSTED_PROXY_HOPS says how many proxies in front to believe.
 * 3. Connection cannot strip Authorization (with SIDECAR_FORWARD_AUTHORIZATION=true) nor any header
 *    the sidecar sets.
 */
import { SIDECAR_ENV } from '../lib/src/contract';
import { normalizedHeaderName } from '../apps/sidecar/src/upstream-headers';
import type { RunningApp } from './support/apps';
import { RawConnection } from './support/raw-client';
import { RecordedRequest, RecordingUpstream, headerOf, sidecarBeforeRecorder } from './support/recording-upstream';

const TOKEN = 'forwarding-token-0123456789abcdef';
const AUTH = `Authorization: Bearer ${TOKEN}\r\n`;

/** Every header a client sends to forge what a proxy would say. */
const FORGED = [
  'Forwarded: for=6.6.6.6;proto=https;host=evil.example',
  'Forwarded: for="[2001:db8::6]"',
  'X-Real-IP: 6.6.6.6',
  'X_Real_Ip: 6.6.6.6',
  'X-Forwarded-Port: 443',
  'X-Forwarded-Scheme: https',
  'X-Forwarded-Ssl: on',
  'X-Forwarded-Prefix: /admin',
  'X-Forwarded-Server: evil.example',
  'X-Forwarded-Uri: /admin',
  'X-Forwarded-Protocol: ssl',
  'X-Forwarded-Client-Cert: By=spiffe://cluster/admin;Subject="CN=admin"',
  'X-Forwarded-User: admin',
  'X.Forwarded.Port: 443',
  'X-Original-Forwarded-For: 6.6.6.6',
  'X-Original-URL: /admin',
  'X-Rewrite-URL: /admin',
  'X-HTTP-Method-Override: DELETE',
  'X-Client-IP: 6.6.6.6',
  'Client-IP: 6.6.6.6',
  'True-Client-IP: 6.6.6.6',
  'CF-Connecting-IP: 6.6.6.6',
  'X-Cluster-Client-IP: 6.6.6.6',
  'X-Envoy-External-Address: 6.6.6.6',
  'X-Url-Scheme: https',
  'Front-End-Https: on',
  'X-SSL-Client-Verify: SUCCESS',
  // The ones the sidecar sets itself, forged too.
  'X-Forwarded-For: 6.6.6.6, 7.7.7.7',
  'X-Forwarded-Proto: https',
  'X-Forwarded-Host: evil.example',
];
const FORGED_LINES = FORGED.map((l) => `${l}\r\n`).join('');
const FORGED_NAMES = new Set(FORGED.map((l) => normalizedHeaderName(l.slice(0, l.indexOf(':')))));

/** The forwarding headers main got, each name once (normalised), with its values. */
function forwardingHeaders(req: RecordedRequest): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of req.headers) {
    const n = normalizedHeaderName(name);
    if (FORGED_NAMES.has(n)) (out[name.toLowerCase()] ??= []).push(value);
  }
  return out;
}

/** One request on a fresh connection; the response status, once main has answered. */
async function send(sidecar: RunningApp, raw: string): Promise<number | undefined> {
  const c = await RawConnection.open(sidecar.port);
  c.write(raw);
  const res = await c.response(5_000);
  c.close();
  return res?.status;
}

describe('no trusted proxy (the default): forged forwarding headers never reach main', () => {
  let upstream: RecordingUpstream;
  let sidecar: RunningApp;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ upstream, sidecar, stop } = await sidecarBeforeRecorder(
      { alice: TOKEN },
      { [SIDECAR_ENV.publicPaths]: '/version', [SIDECAR_ENV.forwardAuthorization]: 'true' },
    ));
  });
  afterAll(() => stop());
  beforeEach(() => upstream.reset());

  it.each([
    ['an authenticated request', `GET /things HTTP/1.1\r\nHost: app.example:8443\r\n${AUTH}${FORGED_LINES}\r\n`],
    ['a public path', `GET /version HTTP/1.1\r\nHost: app.example:8443\r\n${FORGED_LINES}\r\n`],
  ])('%s: main gets only the peer in X-Forwarded-For and X-Real-IP, http, the client Host, and nothing else of the kind', async (_label, raw) => {
    expect(await send(sidecar, raw)).toBe(200);
    const [got] = upstream.requests();
    expect(forwardingHeaders(got)).toEqual({
      'x-forwarded-for': ['127.0.0.1'],
      'x-real-ip': ['127.0.0.1'],
      'x-forwarded-proto': ['http'],
      'x-forwarded-host': ['app.example:8443'],
    });
    // The request main serves is the one judged: no override of its method or path survives.
    expect(`${got.method} ${got.target}`).toMatch(/^GET \/(things|version)$/);
  });

  it('a WebSocket upgrade gets the same headers', async () => {
    const c = await RawConnection.open(sidecar.port);
    c.write(
      `GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${AUTH}${FORGED_LINES}\r\n`,
    );
    expect((await c.response(5_000))?.status).toBe(101);
    c.close();
    const [got] = upstream.requests();
    expect(forwardingHeaders(got)).toEqual({
      'x-forwarded-for': ['127.0.0.1'],
      'x-real-ip': ['127.0.0.1'],
      'x-forwarded-proto': ['http'],
      'x-forwarded-host': ['app.example'],
    });
  });

  it('Connection: authorization does not strip the credential main is configured to receive (SIDECAR_FORWARD_AUTHORIZATION=true)', async () => {
    for (const connection of ['authorization', 'Authorization, close', 'keep-alive, AUTHORIZATION']) {
      upstream.reset();
      expect(await send(sidecar, `GET /things HTTP/1.1\r\nHost: x\r\nConnection: ${connection}\r\n${AUTH}\r\n`)).toBe(200);
      const [got] = upstream.requests();
      expect(got.headers.filter(([n]) => n.toLowerCase() === 'authorization')).toEqual([['authorization', `Bearer ${TOKEN}`]]);
      expect(headerOf(got, 'x-auth-subject')).toBe('alice');
    }
  });

  it('Connection cannot strip the headers the sidecar sets, and a client copy of them is dropped anyway', async () => {
    const raw =
      'GET /things HTTP/1.1\r\nHost: x\r\nX-Request-Id: rid-conn-1\r\n' +
      'Connection: x-auth-subject, x-request-id, x-forwarded-for, x-real-ip, x-forwarded-proto, x-forwarded-host, x-auth-claim-role, x-custom\r\n' +
      `X-Auth-Subject: admin\r\nX-Auth-Claim-Role: admin\r\nX-Custom: hop\r\nX-Kept: end-to-end\r\n${AUTH}\r\n`;
    expect(await send(sidecar, raw)).toBe(200);
    const [got] = upstream.requests();
    const value = (name: string) => got.headers.filter(([n]) => normalizedHeaderName(n) === normalizedHeaderName(name)).map(([, v]) => v);
    expect(value('x-auth-subject')).toEqual(['alice']);
    expect(value('x-request-id')).toEqual(['rid-conn-1']);
    expect(value('x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(value('x-real-ip')).toEqual(['127.0.0.1']);
    expect(value('x-forwarded-proto')).toEqual(['http']);
    expect(value('x-forwarded-host')).toEqual(['x']);
    expect(value('x-auth-claim-role')).toEqual([]);
    // What Connection names is hop-by-hop and dropped; the rest goes through.
    expect(value('x-custom')).toEqual([]);
    expect(value('x-kept')).toEqual(['end-to-end']);
  });
});

describe('SIDECAR_TRUSTED_PROXY_HOPS=1: an Ingress in front', () => {
  let upstream: RecordingUpstream;
  let sidecar: RunningApp;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ upstream, sidecar, stop } = await sidecarBeforeRecorder({ alice: TOKEN }, { [SIDECAR_ENV.trustedProxyHops]: '1' }));
  });
  afterAll(() => stop());
  beforeEach(() => upstream.reset());

  it("keeps the entry the Ingress appended and its X-Forwarded-Proto, not the client's forged prefix", async () => {
    // The client forged 6.6.6.6; the Ingress appended the address it saw, 203.0.113.7, and said https.
    const raw = `GET /things HTTP/1.1\r\nHost: app.example\r\n${AUTH}X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\r\n`;
    expect(await send(sidecar, raw)).toBe(200);
    const [got] = upstream.requests();
    expect(forwardingHeaders(got)).toEqual({
      'x-forwarded-for': ['203.0.113.7, 127.0.0.1'],
      'x-real-ip': ['203.0.113.7'],
      'x-forwarded-proto': ['https'],
      'x-forwarded-host': ['app.example'],
    });
  });

  it('still drops the other proxy headers, and a proto that is not exactly http or https', async () => {
    const raw = `GET /things HTTP/1.1\r\nHost: app.example\r\n${AUTH}X-Forwarded-Proto: gopher\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /admin\r\n\r\n`;
    expect(await send(sidecar, raw)).toBe(200);
    const [got] = upstream.requests();
    expect(forwardingHeaders(got)).toEqual({
      'x-forwarded-for': ['127.0.0.1'],
      'x-real-ip': ['127.0.0.1'],
      'x-forwarded-proto': ['http'],
      'x-forwarded-host': ['app.example'],
    });
  });
});
