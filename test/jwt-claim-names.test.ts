/**
 * Claim names that every JavaScript object answers to (`constructor`, `toString`, `__proto__`)
 * in an issuer's subjectClaim and forwardClaims, and in a token's payload (issue 18 §3, finding 1):
 * the verifier reads a payload's members as own properties only (jwt/decode.ts's `own`), so a claim
 * the token lacks is absent, whatever Object.prototype holds, and a `__proto__` member is plain
 * data. In-process against createJwtVerifier; through the real sidecar in jwt-hmac-claims.test.ts.
 */
import type { KeyObject } from 'crypto';
import { parseJwtIssuers } from '../lib/src/contract';
import type { JwtIssuer } from '../lib/src/contract';
import type { JwksKey } from '../apps/sidecar/src/jwt/keys';
import { createJwtVerifier } from '../apps/sidecar/src/jwt/verify';
import { es256KeySet, es256Token } from './support/jws';

const ISS = 'https://idp.test';
const T0 = 1_700_000_000;
const HEADER = '{"alg":"ES256","kid":"k1"}';

let privateKey: KeyObject;
let keys: JwksKey[];

beforeAll(async () => {
  ({ privateKey, keys } = await es256KeySet());
});

/** An issuer as the contract parses it: these names are claim names to it. */
function issuer(over: Record<string, unknown>): JwtIssuer {
  const parsed = parseJwtIssuers(JSON.stringify([{ name: 'idp', issuer: ISS, audiences: ['api'], jwksFile: '/jwks.json', ...over }]));
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value[0];
}

/** The payload as exact JSON text after the registered claims, so `"__proto__"` stays a member name. */
const token = (extra = '', sub = '"alice"') => es256Token(HEADER, `{"iss":"${ISS}","aud":"api",${sub === '' ? '' : `"sub":${sub},`}"exp":${T0 + 60}${extra}}`, privateKey);

const verify = (over: Record<string, unknown>, jwt: string, routeClaims?: ReadonlyMap<string, readonly string[]>) =>
  createJwtVerifier({ issuers: [issuer(over)], keys: () => keys, now: () => T0 * 1000, routeClaims }).verify(jwt);

/** Run `f` with Object.prototype holding `values` (as a polluting dependency would), restored after. */
function polluted<T>(values: Record<string, unknown>, f: () => T): T {
  const proto = Object.prototype as Record<string, unknown>;
  for (const [name, value] of Object.entries(values)) Object.defineProperty(proto, name, { value, configurable: true, writable: true, enumerable: false });
  try {
    return f();
  } finally {
    for (const name of Object.keys(values)) delete proto[name];
  }
}

describe('forwardClaims named like Object.prototype members', () => {
  it('a token without a constructor (toString, __proto__) claim sends no such header; its other claims go', () => {
    const verdict = verify({ forwardClaims: ['constructor', 'toString', '__proto__', 'groups'] }, token(',"groups":["ops"]'));
    expect(verdict).toMatchObject({ ok: true, subject: 'idp:alice', claimHeaders: ['x-auth-claim-groups', 'ops'] });
  });

  it("a token's own member of such a name is its claim, forwarded like any other", () => {
    const verdict = verify({ forwardClaims: ['constructor', '__proto__'] }, token(',"constructor":"ops","__proto__":"admins"'));
    expect(verdict).toMatchObject({ ok: true, claimHeaders: ['x-auth-claim-constructor', 'ops', 'x-auth-claim-__proto__', 'admins'] });
  });

  it('a claim only a polluted Object.prototype holds is absent: no header', () => {
    const verdict = polluted({ tenant: 'acme' }, () => verify({ forwardClaims: ['tenant', 'groups'] }, token(',"groups":"ops"')));
    expect(verdict).toMatchObject({ ok: true, claimHeaders: ['x-auth-claim-groups', 'ops'] });
  });
});

describe('a subjectClaim named like an Object.prototype member', () => {
  it('constructor on a token without it is invalid_claim; a token holding it is known by it', () => {
    expect(verify({ subjectClaim: 'constructor' }, token())).toMatchObject({ ok: false, reason: 'invalid_claim' });
    expect(verify({ subjectClaim: 'constructor' }, token(',"constructor":"bob"'))).toMatchObject({ ok: true, subject: 'idp:bob' });
  });

  it('a subject only a polluted Object.prototype holds is missing: invalid_claim, never that subject', () => {
    const verdict = polluted({ email: 'root@example.com' }, () => verify({ subjectClaim: 'email' }, token()));
    expect(verdict).toMatchObject({ ok: false, reason: 'invalid_claim' });
  });

  it('sub itself, when only a polluted Object.prototype has one: invalid_claim', () => {
    expect(polluted({ sub: 'root' }, () => verify({}, token('', '')))).toMatchObject({ ok: false, reason: 'invalid_claim' });
  });
});

describe('a payload member named "__proto__" is plain data', () => {
  it('it lends the token no claims and sets no prototype; the claims stay an ordinary, frozen object', () => {
    // Route rules asking these claims: the verdict keeps each the payload itself has (as a string or a list of strings).
    const routeClaims = new Map([['idp', ['__proto__', 'groups', 'admin']]]);
    const verdict = verify({ forwardClaims: ['groups'] }, token(',"__proto__":{"sub":"root","groups":["admins"],"admin":true}', ''), routeClaims);
    expect(verdict).toMatchObject({ ok: false, reason: 'invalid_claim' });
    const ok = verify({ forwardClaims: ['groups'] }, token(',"__proto__":{"groups":["admins"],"admin":true}'), routeClaims);
    expect(ok).toMatchObject({ ok: true, subject: 'idp:alice', claimHeaders: [] });
    const claims = (ok as { claims: Record<string, unknown> }).claims;
    expect(Object.getPrototypeOf(claims)).toBe(Object.prototype);
    // The "__proto__" member is an object, which no rule value equals: not kept; groups and admin are its, not the payload's.
    expect(Object.keys(claims)).toEqual([]);
    expect(claims.admin).toBeUndefined();
    expect(Object.isFrozen(claims)).toBe(true);
    // A string "__proto__" claim is kept as an own member of that name, never as the prototype.
    const named = verify({}, token(',"__proto__":"admins"'), routeClaims) as { claims: Record<string, unknown> };
    expect(Object.getPrototypeOf(named.claims)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(named.claims, '__proto__')!.value).toBe('admins');
    expect(Object.keys(named.claims)).toEqual(['__proto__']);
  });

  it('the header too is read as own members: an alg or crit only the prototype (or a "__proto__" member) holds is none', () => {
    const v = createJwtVerifier({ issuers: [issuer({})], keys: () => keys, now: () => T0 * 1000 });
    const payload = `{"iss":"${ISS}","aud":"api","sub":"alice","exp":${T0 + 60}}`;
    // An alg only the prototype has is no alg: not a JWT at all (left to the static tokens).
    expect(polluted({ alg: 'ES256' }, () => v.verify(es256Token('{"kid":"k1"}', payload, privateKey)))).toBeUndefined();
    expect(v.verify(es256Token('{"__proto__":{"alg":"ES256"},"kid":"k1"}', payload, privateKey))).toBeUndefined();
    // A crit only the prototype has is none: the token passes.
    expect(polluted({ crit: ['exp'] }, () => v.verify(es256Token(HEADER, payload, privateKey)))).toMatchObject({ ok: true });
  });
});
