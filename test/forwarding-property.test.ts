/**
 * The forwarding invariant as a property (issue 8, §3), over the real sidecar process and a raw
 * recording upstream that parses like a naive backend:
 *   the upstream sees exactly the requests the sidecar accepted, one for one and in order, each
 *   with the body the client framed; and every client gets the response to its own request.
 *
 * Generated: methods, framings (Content-Length, chunked in any case, both, duplicates, odd
 * Transfer-Encoding lists, a short Content-Length with a request behind it), bodies that contain
 * request-like bytes, keep-alive reuse across three clients, public and authenticated paths,
 * WebSocket upgrades answered 101 or refused.
 */
import fc from 'fast-check';
import { SIDECAR_ENV } from '../lib/src/contract';
import type { RunningApp } from './support/apps';
import { sleep } from './support/http';
import { RawConnection, RawResponse } from './support/raw-client';
import { RecordedRequest, RecordingUpstream, headerOf, sidecarBeforeRecorder } from './support/recording-upstream';

const TOKEN = 'property-token-0123456789abcdef';
const PUBLIC = '/version';

let upstream: RecordingUpstream;
let sidecar: RunningApp;
let stop: () => Promise<void>;

beforeAll(async () => {
  ({ upstream, sidecar, stop } = await sidecarBeforeRecorder({ carol: TOKEN }, { [SIDECAR_ENV.publicPaths]: PUBLIC }));
});

afterAll(() => stop());

type Framing = 'none' | 'length' | 'length-zeros' | 'chunked' | 'Chunked' | 'identity-chunked' | 'chunked-twice' | 'length-and-chunked' | 'duplicate-length' | 'short-length';
type Auth = 'valid' | 'invalid' | 'none';

interface Req {
  readonly client: number;
  readonly method: string;
  readonly isPublic: boolean;
  readonly auth: Auth;
  readonly framing: Framing;
  readonly body: string;
  readonly chunks: number;
  readonly upgrade: boolean;
}

const SMUGGLE = 'GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Auth-Subject: root\r\n\r\n';
const body = fc.oneof(
  fc.constantFrom('', SMUGGLE, `0\r\n\r\n${SMUGGLE}`, `\r\n\r\n${SMUGGLE}`, 'x'),
  fc.string({ unit: fc.constantFrom('a', 'Z', '\r', '\n', ':', ' ', '0', 'G', 'E', 'T', '/'), maxLength: 40 }),
);

const request: fc.Arbitrary<Req> = fc.record({
  client: fc.integer({ min: 0, max: 2 }),
  method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'),
  isPublic: fc.boolean(),
  auth: fc.constantFrom<Auth>('valid', 'valid', 'invalid', 'none'),
  framing: fc.constantFrom<Framing>('none', 'length', 'length-zeros', 'chunked', 'Chunked', 'identity-chunked', 'chunked-twice', 'length-and-chunked', 'duplicate-length', 'short-length'),
  body,
  chunks: fc.integer({ min: 1, max: 3 }),
  upgrade: fc.boolean().map((b) => b && Math.random() < 0.5),
});

function chunkedBody(text: string, parts: number): string {
  const buf = Buffer.from(text, 'latin1');
  const size = Math.max(1, Math.ceil(buf.length / parts));
  let out = '';
  for (let i = 0; i < buf.length; i += size) {
    const piece = buf.subarray(i, i + size);
    out += `${piece.length.toString(16)}\r\n${piece.toString('latin1')}\r\n`;
  }
  return `${out}0\r\n\r\n`;
}

/** The bytes of one request; `target` is unique so responses can be matched to requests. */
function render(r: Req, target: string): string {
  const len = Buffer.byteLength(r.body, 'latin1');
  let head = `${r.method} ${target} HTTP/1.1\r\nHost: x\r\n`;
  if (r.auth === 'valid') head += `Authorization: Bearer ${TOKEN}\r\n`;
  if (r.auth === 'invalid') head += `Authorization: Bearer not-${TOKEN}\r\n`;
  if (r.upgrade) head += 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
  switch (r.framing) {
    case 'none':
      return `${head}\r\n`;
    case 'length':
      return `${head}Content-Length: ${len}\r\n\r\n${r.body}`;
    case 'length-zeros':
      return `${head}Content-Length: 00${len}\r\n\r\n${r.body}`;
    case 'chunked':
      return `${head}Transfer-Encoding: chunked\r\n\r\n${chunkedBody(r.body, r.chunks)}`;
    case 'Chunked':
      return `${head}Transfer-Encoding: Chunked\r\n\r\n${chunkedBody(r.body, r.chunks)}`;
    case 'identity-chunked':
      return `${head}Transfer-Encoding: identity, chunked\r\n\r\n${chunkedBody(r.body, r.chunks)}`;
    case 'chunked-twice':
      return `${head}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n${chunkedBody(r.body, r.chunks)}`;
    case 'length-and-chunked':
      return `${head}Content-Length: ${len}\r\nTransfer-Encoding: chunked\r\n\r\n${chunkedBody(r.body, r.chunks)}`;
    case 'duplicate-length':
      return `${head}Content-Length: ${len}\r\nContent-Length: ${len}\r\n\r\n${r.body}`;
    case 'short-length':
      // The declared body is r.body; a whole unauthenticated request follows it on the wire.
      return `${head}Content-Length: ${len}\r\n\r\n${r.body}${SMUGGLE}`;
  }
}

/** The body bytes the upstream must receive for an accepted request. */
function forwardedBody(r: Req): string {
  return r.framing === 'none' ? '' : r.body;
}

interface Expectation {
  /** Status the client must get; undefined = the connection may close without an answer. */
  readonly status: number;
  readonly forwarded: boolean;
}

/** Reference model of the sidecar's verdict, written from the rules, not from the code. */
function expected(r: Req, upgradeAnswer: number): Expectation {
  const hasBody = r.framing !== 'none' && !(Buffer.byteLength(r.body, 'latin1') === 0 && ['length', 'length-zeros', 'duplicate-length', 'short-length'].includes(r.framing));
  if (r.framing === 'length-and-chunked' || r.framing === 'duplicate-length' || r.framing === 'chunked-twice') return { status: 400, forwarded: false };
  if (r.framing === 'identity-chunked') return { status: 501, forwarded: false };
  if (r.upgrade && hasBody) return { status: 400, forwarded: false };
  const admitted = r.isPublic || r.auth === 'valid';
  if (!admitted) return { status: 401, forwarded: false };
  if (r.upgrade && r.method !== 'GET') return { status: 400, forwarded: false };
  if (r.upgrade) return { status: upgradeAnswer, forwarded: true };
  return { status: 200, forwarded: true };
}

async function runCase(reqs: Req[], upgradeAnswer: number): Promise<void> {
  upstream.reset();
  upstream.upgradeAnswer = upgradeAnswer;
  const clients: (RawConnection | undefined)[] = [undefined, undefined, undefined];
  const forwarded: { target: string; r: Req }[] = [];
  try {
    for (const [i, r] of reqs.entries()) {
      const target = `${r.isPublic ? PUBLIC : '/p'}?n=${i}`;
      let c = clients[r.client];
      if (c === undefined || c.closed) c = clients[r.client] = await RawConnection.open(sidecar.port);
      const want = expected(r, upgradeAnswer);
      c.write(render(r, target));
      const res: RawResponse | undefined = await c.response(undefined, r.method);
      expect({ i, status: res?.status }).toEqual({ i, status: want.status });
      if (want.forwarded) {
        forwarded.push({ target, r });
        // The answer is the upstream's answer to this very request.
        expect({ i, target: recordedFor(res!)?.target }).toEqual({ i, target });
      } else {
        expect(res!.headers['x-conn']).toBeUndefined();
      }
      if (r.framing === 'short-length' && res!.headers.connection !== 'close' && !r.upgrade) {
        // The request behind the short body is a request of its own, judged on its own: no token, so 401.
        const second = await c.response();
        expect({ i, smuggled: second?.status }).toEqual({ i, smuggled: 401 });
      }
      if (r.upgrade || res!.headers.connection === 'close') {
        c.close();
        clients[r.client] = undefined;
      }
    }
  } finally {
    for (const c of clients) c?.close();
  }
  // Give any extra (smuggled) request time to show up behind the legitimate ones.
  const deadline = Date.now() + 2_000;
  while (upstream.requests().length < forwarded.length && Date.now() < deadline) await sleep(5);
  await sleep(30);
  const seen = upstream.requests();
  expect(seen.map((s) => `${s.method} ${s.target}`)).toEqual(forwarded.map((f) => `${f.r.upgrade ? 'GET' : f.r.method} ${f.target}`));
  for (const [k, s] of seen.entries()) {
    const r = forwarded[k].r;
    expect({ k, body: s.body.toString('latin1') }).toEqual({ k, body: forwardedBody(r) });
    expect({ k, subject: headerOf(s, 'x-auth-subject') }).toEqual({ k, subject: r.isPublic ? undefined : 'carol' });
  }
  expect(upstream.incomplete()).toEqual([]);
}

function recordedFor(res: RawResponse): RecordedRequest | undefined {
  const conn = Number(res.headers['x-conn']);
  const seq = Number(res.headers['x-seq']);
  return upstream.requests().find((q) => q.conn === conn && q.seq === seq);
}

it('the upstream sees exactly the accepted requests, framed as sent, and each client gets its own response', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 6 }), fc.constantFrom(101, 403), async (reqs, upgradeAnswer) => {
      await runCase(reqs, upgradeAnswer);
    }),
    { numRuns: 300, endOnFailure: true },
  );
  // About 15 s idle; the bound is for a hang, and a busy machine takes several times as long.
}, 300_000);
