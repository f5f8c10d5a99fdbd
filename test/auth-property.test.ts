/**
 * Property-based tests of Bearer authentication against an independent reference model.
 *
 * Model: a request passes only when it carries exactly one Authorization header whose value is
 * `<"bearer" in any ASCII case> SP <token>` and <token> equals a valid token byte for byte.
 * First in-process (thousands of headers through the sidecar's own authenticator, fed through
 * Node's real IncomingMessage header handling), then over raw sockets against the compiled sidecar.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import fc from 'fast-check';
import pino from 'pino';
import { FORWARDED_HEADERS, SIDECAR_ENV } from '../lib/src/contract';
import { failureStatus } from '../apps/sidecar/src/auth-verdict';
import { createAuthenticator } from '../apps/sidecar/src/authenticate';
import type { Authenticator } from '../apps/sidecar/src/authenticate';
import { TokenStore } from '../apps/sidecar/src/tokens';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { rawHeader, rawRequest, rawStatus, tempDir } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';

/** File name → token. Two tokens share a prefix so "a valid token's prefix" can itself be valid. */
const TOKENS: Record<string, string> = {
  ci: 'ci-token-0123456789abcdef',
  deploy: 'Deploy.Token_~+/9==',
  short: 'prefix-tok',
  long: 'prefix-tok-longer',
};
const VALID = new Map(Object.entries(TOKENS).map(([name, token]) => [token, name]));
const VALID_TOKENS = [...VALID.keys()];

// ---------------------------------------------------------------------------------------------
// Reference model: deliberately written without looking at the implementation's parsing.

const EXACT = /^[Bb][Ee][Aa][Rr][Ee][Rr] ([\s\S]*)$/;

/** Subject (token name) the request must get, or undefined when it must be refused. */
function model(values: readonly string[]): string | undefined {
  if (values.length !== 1) return undefined;
  const m = EXACT.exec(values[0]);
  return m ? VALID.get(m[1]) : undefined;
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]*/;

/**
 * The answer the sidecar must give a request the parser let through (RFC 6750 §3.1): no header or
 * another auth-scheme (the leading run of tchar) → 401 without an error code; more than one header,
 * or the Bearer scheme not followed by exactly one space and a b64token → 400 invalid_request;
 * a well-formed token that is not valid → 401 invalid_token.
 */
function refusalModel(values: readonly string[]): { status: 400 | 401; error: string | undefined } {
  if (values.length === 0) return { status: 401, error: undefined };
  if (values.length > 1) return { status: 400, error: 'invalid_request' };
  const scheme = TCHAR.exec(values[0])![0];
  if (scheme.toLowerCase() !== 'bearer') return { status: 401, error: undefined };
  if (!/^ [A-Za-z0-9\-._~+/]+=*$/.test(values[0].slice(scheme.length))) return { status: 400, error: 'invalid_request' };
  return { status: 401, error: 'invalid_token' };
}

// ---------------------------------------------------------------------------------------------
// Generators. A case is the list of Authorization header lines (name as sent, value) in order.

interface Case {
  readonly label: string;
  readonly headers: readonly (readonly [string, string])[];
}

const one = (label: string, value: string): Case => ({ label, headers: [['Authorization', value]] });

const validToken = fc.constantFrom(...VALID_TOKENS);
const B64_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/';
const b64Char = fc.constantFrom(...B64_CHARS.split(''));
const b64String = (minLength: number, maxLength: number) => fc.string({ unit: b64Char, minLength, maxLength });

/** "bearer" with each letter's case chosen independently. */
const anyCaseBearer = fc
  .array(fc.boolean(), { minLength: 6, maxLength: 6 })
  .map((upper) => [...'bearer'].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(''));

const unusualScheme = fc.constantFrom(
  'Basic', 'Token', 'Digest', 'MAC', 'Bearer:', 'Bearer=', 'Bearerr', 'Beare', 'Bear', 'Bearer-', 'XBearer', 'Bearer.',
  // Look-alikes: Cyrillic В/е/а, Turkish dotted İ, fullwidth Ｂ, Latin small capital ʙ, long ſ.
  'Веаrer', 'BEARER\u0130', 'Ｂearer', 'ʙearer', 'Bearer\u200b', '\ufeffBearer', 'bearer\u0000', 'ſearer',
);

const oddWhitespace = fc.constantFrom(' ', '  ', '\t', '\t ', ' \t', '\u00a0', '\u000b', '\u000c', '\r', '\n', '\u3000', '\u2028');
const maybeWs = fc.oneof(fc.constant(''), oddWhitespace);

const exactCases = fc.tuple(anyCaseBearer, validToken).map(([s, t]) => one('exact', `${s} ${t}`));

const whitespaceCases = fc
  .tuple(maybeWs, anyCaseBearer, fc.oneof(oddWhitespace, fc.constant(' ')), validToken, maybeWs)
  .map(([lead, s, sep, t, trail]) => one('whitespace', `${lead}${s}${sep}${t}${trail}`));

const schemeCases = fc
  .tuple(fc.oneof(anyCaseBearer, unusualScheme), fc.constantFrom(' ', ''), fc.oneof(validToken, b64String(1, 30)))
  .map(([s, sep, t]) => one('scheme', `${s}${sep}${t}`));

const commaCases = fc
  .tuple(anyCaseBearer, validToken, fc.constantFrom(',', ', ', ' ,', ',\t', ' , '), fc.oneof(validToken, fc.constant(''), validToken.map((t) => `Bearer ${t}`), b64String(1, 20)))
  .chain(([s, t, comma, second]) =>
    fc.constantFrom(one('comma', `${s} ${t}${comma}${second}`), one('comma', `${second}${comma}${s} ${t}`)),
  );

const authName = fc.constantFrom('Authorization', 'authorization', 'AUTHORIZATION', 'aUtHoRiZaTiOn');
const anyValue = fc.oneof(
  fc.tuple(anyCaseBearer, validToken).map(([s, t]) => `${s} ${t}`),
  b64String(0, 30).map((t) => `Bearer ${t}`),
  fc.string({ maxLength: 40 }),
);
const duplicateCases = fc
  .array(fc.tuple(authName, anyValue), { minLength: 2, maxLength: 4 })
  .map((headers) => ({ label: 'duplicate', headers }) as Case);

/** A control, DEL, Latin-1 high or other non-ASCII character. */
const strangeChar = fc.oneof(
  fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
  fc.constant('\u007f'),
  fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => c.charCodeAt(0) > 0x7f),
  fc.constantFrom('é', 'ü', '€', '𝔅', '\u00a0', '\ufffd', 'Ω'),
);
const strangeCases = fc
  .tuple(anyCaseBearer, validToken, strangeChar, fc.nat(), fc.constantFrom('insert', 'replace', 'append', 'prepend'))
  .map(([s, t, c, at, how]) => {
    const v = `${s} ${t}`;
    const i = at % (v.length + 1);
    const out =
      how === 'insert' ? v.slice(0, i) + c + v.slice(i) :
      how === 'replace' ? v.slice(0, Math.min(i, v.length - 1)) + c + v.slice(Math.min(i, v.length - 1) + 1) :
      how === 'append' ? v + c : c + v;
    return one('non-ascii/control', out);
  });

const longCases = fc.oneof(
  fc.tuple(validToken, fc.integer({ min: 1_000, max: 70_000 })).map(([t, n]) => one('long', `Bearer ${t}${'A'.repeat(n)}`)),
  fc.integer({ min: 1_000, max: 70_000 }).map((n) => one('long', `Bearer ${'x'.repeat(n)}`)),
  fc.tuple(validToken, fc.integer({ min: 1, max: 200 })).map(([t, n]) => one('long', `Bearer ${t.repeat(n)}`)),
);

const prefixCases = fc.oneof(
  // A strict prefix of a valid token (may happen to be another valid token: the model knows).
  fc.tuple(validToken, fc.nat()).map(([t, k]) => one('prefix', `Bearer ${t.slice(0, k % t.length)}`)),
  // A valid token followed by more token characters.
  fc.tuple(validToken, b64String(1, 8)).map(([t, extra]) => one('prefix', `Bearer ${t}${extra}`)),
  fc.tuple(validToken, fc.constantFrom('=', '==', '/', '.', '\\', '"', ';', '%00', '\u0000')).map(([t, extra]) => one('prefix', `Bearer ${t}${extra}`)),
  fc.tuple(b64String(1, 8), validToken).map(([extra, t]) => one('prefix', `Bearer ${extra}${t}`)),
  // Quoted, or one character changed in place.
  validToken.map((t) => one('prefix', `Bearer "${t}"`)),
  fc.tuple(validToken, fc.nat(), b64Char).map(([t, i, c]) => {
    const k = i % t.length;
    return one('prefix', `Bearer ${t.slice(0, k)}${c}${t.slice(k + 1)}`);
  }),
);

const emptyCases = fc
  .tuple(fc.constantFrom('', 'Bearer', 'Bearer ', 'Bearer  ', 'bearer\t', ' ', 'Bearer =', 'Bearer ==', '\t'), fc.boolean())
  .map(([v, present]) => (present ? one('empty', v) : { label: 'empty', headers: [] }));

const fuzzCases = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }).map((v) => one('fuzz', v)),
  fc.string({ maxLength: 60 }).map((v) => one('fuzz', `Bearer ${v}`)),
  fc.tuple(anyCaseBearer, fc.string({ unit: fc.constantFrom(...`${B64_CHARS}= \t,;"`.split('')), maxLength: 40 })).map(([s, t]) => one('fuzz', `${s} ${t}`)),
);

const CATEGORIES: Record<string, fc.Arbitrary<Case>> = {
  'odd whitespace and tabs': whitespaceCases,
  'lowercase or unusual-case scheme, and look-alike schemes': schemeCases,
  'a comma-joined second credential': commaCases,
  'duplicated Authorization headers': duplicateCases,
  'non-ASCII and control characters': strangeCases,
  'a very long token': longCases,
  "a valid token's prefix, or a valid token as prefix": prefixCases,
  'an empty token or no header': emptyCases,
  'random strings': fuzzCases,
};
const allCases = fc.oneof(exactCases, ...Object.values(CATEGORIES));

// ---------------------------------------------------------------------------------------------
// In-process: the real authenticator, the real token loader on real files.

let tokensDir: { dir: string; cleanup: () => void };
let store: TokenStore;
let authenticator: Authenticator;
const probeSocket = new net.Socket();

beforeAll(async () => {
  tokensDir = tempDir('auth-property-');
  for (const [name, token] of Object.entries(TOKENS)) fs.writeFileSync(path.join(tokensDir.dir, name), `${token}\n`);
  store = new TokenStore({ dir: tokensDir.dir, pollIntervalMs: 60_000, logger: pino({ level: 'silent' }) });
  await store.start();
  expect(store.tokens.names).toEqual(Object.keys(TOKENS).sort());
  authenticator = createAuthenticator({ tokens: () => store.tokens, realm: 'prop' });
});

afterAll(() => {
  store?.close();
  tokensDir?.cleanup();
});

/** A real IncomingMessage, filled the way Node's parser fills it: Node derives `headers` (first Authorization wins). */
function messageWith(c: Case): http.IncomingMessage {
  const msg = new http.IncomingMessage(probeSocket);
  const raw = ['Host', 'sidecar.test', ...c.headers.flatMap(([n, v]) => [n, v])];
  (msg as unknown as { _addHeaderLines(h: string[], n: number): void })._addHeaderLines(raw, raw.length);
  return msg;
}

function verdictSubject(c: Case): string | undefined {
  const v = authenticator.authenticate(messageWith(c));
  return v.ok ? v.subject : undefined;
}

const RUNS_PER_CATEGORY = 700;

describe('Authorization header, in-process, against the reference model', () => {
  it('accepts the exact form `Bearer <token>` for every valid token, with the scheme in any case', () => {
    fc.assert(
      fc.property(exactCases, (c) => {
        expect(model(c.headers.map(([, v]) => v))).toBeDefined();
        expect(verdictSubject(c)).toBe(model(c.headers.map(([, v]) => v)));
      }),
      { numRuns: 300 },
    );
  });

  it.each(Object.keys(CATEGORIES))('%s: the verdict equals the model', (category) => {
    let refused = 0;
    fc.assert(
      fc.property(CATEGORIES[category], (c) => {
        const expected = model(c.headers.map(([, v]) => v));
        if (expected === undefined) refused++;
        expect(verdictSubject(c)).toBe(expected);
      }),
      { numRuns: RUNS_PER_CATEGORY },
    );
    // Each category is about refusals: make sure it really generated some.
    expect(refused).toBeGreaterThan(RUNS_PER_CATEGORY / 4);
  });

  it('a refusal never carries a subject, and an accepted header names the token it matched', () => {
    fc.assert(
      fc.property(allCases, (c) => {
        const v = authenticator.authenticate(messageWith(c));
        const expected = model(c.headers.map(([, val]) => val));
        if (expected === undefined) {
          expect(v.ok).toBe(false);
          expect(v).not.toHaveProperty('subject');
        } else {
          expect(v).toEqual({ ok: true, subject: expected });
        }
      }),
      { numRuns: 1_000 },
    );
  });

  it('a refusal is 400 invalid_request, 401 invalid_token or a 401 without error code exactly as the RFC 6750 model says', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(allCases, (c) => {
        const values = c.headers.map(([, val]) => val);
        const v = authenticator.authenticate(messageWith(c));
        if (v.ok) return;
        const want = refusalModel(values);
        expect({ status: failureStatus(v), error: v.error }).toEqual(want);
        expect(authenticator.challenge(v)).toBe(want.error === undefined ? 'Bearer realm="prop"' : `Bearer realm="prop", error="${want.error}"`);
        seen.add(`${want.status} ${want.error}`);
      }),
      { numRuns: 3_000 },
    );
    expect([...seen].sort()).toEqual(['400 invalid_request', '401 invalid_token', '401 undefined']);
  });
});

// ---------------------------------------------------------------------------------------------
// Over real sockets: raw bytes to the compiled sidecar, a recording upstream behind it.

/** What Node's HTTP parser hands the application for one header value, or "rejected" (400). */
function parsedValue(sent: string): string | 'rejected' {
  const seen = Buffer.from(sent, 'utf8').toString('latin1');
  // llhttp refuses control characters other than HTAB in a field value (and CR/LF end it).
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(seen)) return 'rejected';
  // Leading and trailing SP/HTAB are optional whitespace, not part of the value.
  return seen.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** The socket-level model: undefined = must be refused (400 from the parser or 401 from us). */
function wireModel(c: Case): string | undefined {
  const values = c.headers.map(([, v]) => parsedValue(v));
  if (values.includes('rejected')) return undefined;
  return model(values as string[]);
}

describe('Authorization header over real sockets, against the compiled sidecar', () => {
  let upstream: TestUpstream;
  let sidecar: RunningApp;

  beforeAll(async () => {
    upstream = await startUpstream();
    sidecar = await startApp('sidecar', {
      env: {
        ...localSidecarEnv(upstream.url, tokensDir.dir),
        [SIDECAR_ENV.drainDelayMs]: '0',
      },
    });
  });

  afterAll(async () => {
    await sidecar?.stop();
    await upstream?.close();
  });

  let seq = 0;

  /** Only values that keep the request framed as written: no CR or LF inside a header line. */
  const wireSafe = (c: Case) => c.headers.every(([, v]) => !/[\r\n]/.test(v)) && c.headers.every(([, v]) => v.length < 12_000);

  it('only the exact form reaches the upstream; everything else gets 400 or 401 and forwards nothing', async () => {
    const outcomes = { forwarded: 0, refused: 0, malformed: 0, parserRefused: 0 };
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 1, arbitrary: exactCases }, { weight: 6, arbitrary: allCases }).filter(wireSafe), async (c) => {
        const target = `/prop/${++seq}`;
        const lines = c.headers.map(([n, v]) => `${n}: ${v}\r\n`).join('');
        const before = upstream.count();
        // rawRequest writes UTF-8, the bytes parsedValue() reasons about.
        const response = await rawRequest(sidecar.port, `GET ${target} HTTP/1.1\r\nHost: sidecar.test\r\n${lines}Connection: close\r\n\r\n`, 2_000);
        const status = rawStatus(response);
        const reached = upstream.received.slice(before).filter((r) => r.url === target);
        const expected = wireModel(c);
        if (expected !== undefined) {
          expect(status).toBe(200);
          expect(reached).toHaveLength(1);
          expect(reached[0].headers[FORWARDED_HEADERS.subject]).toBe(expected);
          expect(reached[0].headers.authorization).toBeUndefined();
          outcomes.forwarded++;
        } else {
          expect([400, 401]).toContain(status);
          expect(reached).toHaveLength(0);
          // The refusal never echoes what the client presented.
          for (const t of VALID_TOKENS) expect(response).not.toContain(t);
          const values = c.headers.map(([, v]) => parsedValue(v));
          const challenge = rawHeader(response, 'www-authenticate');
          if (values.includes('rejected')) {
            // Node's parser refused the header line: a plain 400, no challenge.
            expect(status).toBe(400);
            expect(challenge).toBeUndefined();
            outcomes.parserRefused++;
          } else {
            const want = refusalModel(values as string[]);
            expect(status).toBe(want.status);
            expect(challenge).toBe(want.error === undefined ? 'Bearer realm="sidecar"' : `Bearer realm="sidecar", error="${want.error}"`);
            if (want.status === 400) outcomes.malformed++;
            else outcomes.refused++;
          }
        }
      }),
      { numRuns: 400 },
    );
    // The run covered every outcome, so none of the branches above is vacuous.
    expect(outcomes.forwarded).toBeGreaterThan(20);
    expect(outcomes.refused).toBeGreaterThan(50);
    expect(outcomes.malformed).toBeGreaterThan(50);
    expect(outcomes.parserRefused).toBeGreaterThan(5);
  });

  it('duplicate Authorization headers are refused even when every copy is the same valid token', async () => {
    const token = TOKENS.ci;
    for (const names of [['Authorization', 'Authorization'], ['authorization', 'AUTHORIZATION'], ['Authorization', 'authorization', 'Authorization']]) {
      const target = `/dup/${++seq}`;
      const lines = names.map((n) => `${n}: Bearer ${token}\r\n`).join('');
      const before = upstream.count();
      const response = await rawRequest(sidecar.port, `GET ${target} HTTP/1.1\r\nHost: x\r\n${lines}Connection: close\r\n\r\n`);
      // RFC 6750 §3.1: a repeated credential is invalid_request, 400 (not invalid_token, which invites a refresh and a retry).
      expect(rawStatus(response)).toBe(400);
      expect(rawHeader(response, 'www-authenticate')).toBe('Bearer realm="sidecar", error="invalid_request"');
      expect(upstream.count()).toBe(before);
    }
  });

  it('a token anywhere but the Authorization header is ignored: query, body, Proxy-Authorization, other headers, cookie', async () => {
    const t = TOKENS.ci;
    const attempts = [
      `GET /elsewhere?access_token=${encodeURIComponent(t)} HTTP/1.1\r\nHost: x\r\n`,
      `POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${13 + t.length}\r\n\r\naccess_token=${t}`,
      `GET /elsewhere HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer ${t}\r\n`,
      `GET /elsewhere HTTP/1.1\r\nHost: x\r\nX-Auth-Token: ${t}\r\nX-Access-Token: Bearer ${t}\r\n`,
      `GET /elsewhere HTTP/1.1\r\nHost: x\r\nCookie: access_token=${t}; token=${t}\r\n`,
      `GET /elsewhere HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from(`ci:${t}`).toString('base64')}\r\n`,
    ];
    for (const head of attempts) {
      const raw = head.includes('\r\n\r\n') ? head : `${head}Connection: close\r\n\r\n`;
      const before = upstream.count();
      expect(rawStatus(await rawRequest(sidecar.port, raw))).toBe(401);
      expect(upstream.count()).toBe(before);
    }
  });

  it('keeps serving: a valid request after the run still gets 200', async () => {
    const response = await rawRequest(sidecar.port, `GET /after HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.deploy}\r\nConnection: close\r\n\r\n`);
    expect(rawStatus(response)).toBe(200);
  });
});
