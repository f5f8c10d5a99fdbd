/**
 * One reading of a token (issue 18 §3, finding 3): a header or payload naming a member twice, at any
 * depth and however the name is escaped, or a segment that is not strict UTF-8, is jwt_malformed.
 * JSON.parse keeps the last of two members, many parsers the first, and lenient decoders replace
 * bad bytes or drop a BOM: main (handed the token by SIDECAR_FORWARD_AUTHORIZATION) could read
 * another token than the one judged. Every token here is hand-built and signed correctly, so the
 * reading alone refuses it. In-process against createJwtVerifier, and hasDuplicateNames itself.
 */
import type { KeyObject } from 'crypto';
import { parseJwtIssuers } from '../lib/src/contract';
import { hasDuplicateNames } from '../apps/sidecar/src/jwt/decode';
import type { JwksKey } from '../apps/sidecar/src/jwt/keys';
import { createJwtVerifier } from '../apps/sidecar/src/jwt/verify';
import { es256KeySet, es256Token } from './support/jws';

const ISS = 'https://idp.test';
const T0 = 1_700_000_000;
const HEADER = '{"alg":"ES256","kid":"k1"}';
/** The registered claims of a token that passes; tests add members after them. */
const CLAIMS = `"iss":"${ISS}","aud":"api","exp":${T0 + 60}`;

let privateKey: KeyObject;
let keys: JwksKey[];

beforeAll(async () => {
  ({ privateKey, keys } = await es256KeySet());
});

function verify(header: string | Buffer, payload: string | Buffer) {
  const parsed = parseJwtIssuers(JSON.stringify([{ name: 'idp', issuer: ISS, audiences: ['api'], jwksFile: '/jwks.json', forwardClaims: ['role'] }]));
  if (!parsed.ok) throw new Error(parsed.problem);
  // The claims a route rule could match on: what a verdict keeps of the payload.
  const routeClaims = new Map([['idp', ['sub', 'name']]]);
  return createJwtVerifier({ issuers: parsed.value, keys: () => keys, now: () => T0 * 1000, routeClaims }).verify(es256Token(header, payload, privateKey));
}

describe('a member named twice is jwt_malformed', () => {
  it.each([
    ['sub twice (JSON.parse would take "admin")', `{${CLAIMS},"sub":"alice","sub":"admin"}`],
    ['sub, then sub spelled with an escape', `{${CLAIMS},"sub":"alice","s\\u0075b":"admin"}`],
    ['sub spelled with an escape, then sub', `{${CLAIMS},"\\u0073ub":"alice","sub":"admin"}`],
    ['exp twice, the later one in the past', `{"iss":"${ISS}","aud":"api","sub":"alice","exp":${T0 + 60},"exp":${T0 - 600}}`],
    ['aud twice', `{${CLAIMS},"sub":"alice","aud":"other"}`],
    ['a name holding an escaped quote, twice', `{${CLAIMS},"sub":"alice","a\\"b":1,"a\\"b":2}`],
    ['a member twice in a nested object', `{${CLAIMS},"sub":"alice","profile":{"role":"user","role":"admin"}}`],
    ['a member twice in an object in a list', `{${CLAIMS},"sub":"alice","orgs":[{"id":1},{"id":2,"id":3}]}`],
    ['a member twice four levels down', `{${CLAIMS},"sub":"alice","a":{"b":[[{"c":{"d":1,"d":2}}]]}}`],
    ['a member twice after a nested object closes', `{${CLAIMS},"sub":"alice","x":{"y":{}},"role":"a","role":"b"}`],
  ])('in the payload: %s', (_what, payload) => {
    expect(JSON.parse(payload)).toBeDefined();
    expect(verify(HEADER, payload)).toMatchObject({ ok: false, reason: 'jwt_malformed' });
  });

  it.each([
    ['kid twice', '{"alg":"ES256","kid":"k1","kid":"k1"}'],
    ['typ twice', '{"alg":"ES256","kid":"k1","typ":"JWT","typ":"id_token+jwt"}'],
    ['alg twice, once escaped', '{"alg":"ES256","kid":"k1","\\u0061lg":"ES256"}'],
  ])('in the header: %s', (_what, header) => {
    expect(verify(header, `{${CLAIMS},"sub":"alice"}`)).toMatchObject({ ok: false, reason: 'jwt_malformed' });
  });
});

describe('a name used once per object passes', () => {
  it.each([
    ['one name in sibling objects and at two depths', `{${CLAIMS},"sub":"alice","a":{"x":1},"b":{"x":1},"x":{"x":[{"x":1}]}}`],
    ['a value that spells a name', `{${CLAIMS},"sub":"alice","note":"sub","list":["sub","sub"]}`],
    ['names that differ in case only', `{${CLAIMS},"sub":"alice","Sub":"bob","SUB":"carol"}`],
    ['a value holding escaped quotes that look like members', `{${CLAIMS},"sub":"alice","note":"x\\",\\"sub\\":\\"admin"}`],
    ['a value ending in an escaped backslash', `{${CLAIMS},"sub":"alice","path":"c:\\\\","role":"r"}`],
    ['empty objects and lists', `{${CLAIMS},"sub":"alice","e":{},"l":[],"n":[{},[],{"e":{}}]}`],
  ])('%s', (_what, payload) => {
    expect(verify(HEADER, payload)).toMatchObject({ ok: true, subject: 'idp:alice' });
  });

  it('the one reading is what the claims hold', () => {
    expect(verify(HEADER, `{${CLAIMS},"s\\u0075b":"alice","name":"r\\u00e9mi"}`)).toMatchObject({ ok: true, subject: 'idp:alice', claims: { sub: 'alice', name: 'r\u00e9mi' } });
  });
});

describe('a segment that is not strict UTF-8 is jwt_malformed', () => {
  const payloadWith = (bytes: number[]) => Buffer.concat([Buffer.from(`{${CLAIMS},"sub":"alice","name":"a`), Buffer.from(bytes), Buffer.from('"}')]);

  it.each([
    ['a lone 0xff byte', [0xff]],
    ['a lone continuation byte', [0x80]],
    ['an overlong "/" (0xc0 0xaf)', [0xc0, 0xaf]],
    ['an encoded surrogate (CESU-8)', [0xed, 0xa0, 0x80]],
    ['a truncated three-byte sequence', [0xe2, 0x82]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ])('the payload holding %s', (_what, bytes) => {
    expect(verify(HEADER, payloadWith(bytes))).toMatchObject({ ok: false, reason: 'jwt_malformed' });
  });

  it('a payload starting with a byte order mark (a lenient decoder drops it)', () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`{${CLAIMS},"sub":"alice"}`)]);
    expect(verify(HEADER, bom)).toMatchObject({ ok: false, reason: 'jwt_malformed' });
  });

  it('valid multi-byte UTF-8 passes', () => {
    expect(verify(HEADER, payloadWith([0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]))).toMatchObject({ ok: true, claims: { name: 'a\u00e9\u20ac\u{1f600}' } });
  });

  it('a header that is not strict UTF-8 is no JWT at all: never verified, left to the static tokens', () => {
    const header = Buffer.concat([Buffer.from('{"alg":"ES256","kid":"k1","x":"'), Buffer.from([0xff]), Buffer.from('"}')]);
    expect(verify(header, `{${CLAIMS},"sub":"alice"}`)).toBeUndefined();
    expect(verify(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(HEADER)]), `{${CLAIMS},"sub":"alice"}`)).toBeUndefined();
  });
});

describe('hasDuplicateNames', () => {
  it.each([
    ['{}', false],
    ['{"a":1,"b":{"a":1}}', false],
    ['{"a":[1,{"a":2}],"b":[{"b":1},{"b":2}]}', false],
    ['{"a":"\\\\","b":"\\""}', false],
    ['{ "a" : 1 , "a" : 2 }', true],
    ['{"a":[{"b":1}],"b":2,"b":3}', true],
    ['{"\\u00e9":1,"\u00e9":2}', true],
    ['{"\\/":1,"/":2}', true],
  ])('%s: %s', (text, expected) => {
    expect(hasDuplicateNames(text)).toBe(expected);
  });
});
