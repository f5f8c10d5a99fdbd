/**
 * JWT material for the benchmarks: an issuer with an ES256 and an RS256 key in a JWKS file, its
 * SIDECAR_JWT_ISSUERS value, and bearer values to present: valid tokens (one to be cached, or many
 * distinct ones), well-formed tokens with a wrong signature, and garbage. Lists of distinct values
 * go to a file, one a line, which bench/run.ts feeds to wrk through WRK_TOKENS_SCRIPT and
 * bench/instructions.ts through fixedLoadWithTokens (bench/fixed-load.ts). sidecarCounted reads a
 * sidecar's metrics, so a scenario can check that every response was the one it means to measure.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { jwtCacheEntryBytes } from '../apps/sidecar/src/jwt/verify';
import { encodeJwtIssuers, SIDECAR_INTEGERS, TOKEN_PATTERN } from '../lib/src/contract';
import type { JwtAlgorithm } from '../lib/src/contract';

export type BenchAlg = Extract<JwtAlgorithm, 'ES256' | 'RS256'>;

/** The issuer's name: the sidecar counts JWT requests under it (sidecar_http_requests_total's subject). */
export const JWT_ISSUER_NAME = 'bench-jwt';
const ISSUER = 'https://issuer.bench.invalid';
const AUDIENCE = 'bench-sidecar';
/** The tokens outlive any bench run; the verifier caches a hit for at most VERIFIED_TTL_MS anyway. */
const LIFETIME_S = 4 * 3600;

/**
 * How many verdicts of these tokens the default cache budget holds: their subject, no claims kept,
 * none forwarded, under a base64 SHA-256 digest (44 characters).
 */
export const CACHE_ENTRIES = Math.floor(
  SIDECAR_INTEGERS.jwtCacheBytes.default / jwtCacheEntryBytes('='.repeat(44), { ok: true, subject: `${JWT_ISSUER_NAME}:user-999`, issuer: JWT_ISSUER_NAME, claims: {}, claimHeaders: undefined }),
);

/**
 * Distinct tokens presented in a cycle miss the verified cache every time once there are more of
 * them than it holds: it evicts the oldest (a token not hit since it was inserted), and each comes back only after all the
 * others. Twice its size leaves room for wrk's connections to reorder a few.
 */
export const FIRST_SEEN_TOKENS = 2 * CACHE_ENTRIES;

/** Three base64url segments, as the verifier tests for (apps/sidecar/src/jwt/verify.ts). */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const B64TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/';

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export interface JwtFixture {
  /** The value of SIDECAR_JWT_ISSUERS. */
  readonly issuersEnv: string;
  /** A validly signed token, distinct by its jti. */
  mint(alg: BenchAlg): string;
  /** Well-formed, right iss, kid and alg, but a signature of random bytes of the right length. */
  badSignature(alg: BenchAlg): string;
}

export function createJwtFixture(dir: string): JwtFixture {
  const keys: Record<BenchAlg, { kid: string; privateKey: crypto.KeyObject; publicKey: crypto.KeyObject; sigBytes: number; options: object }> = {
    ES256: { kid: 'bench-es256', ...crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }), sigBytes: 64, options: { dsaEncoding: 'ieee-p1363' } },
    RS256: { kid: 'bench-rs256', ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }), sigBytes: 256, options: {} },
  };
  const jwksFile = path.join(dir, 'jwks.json');
  const jwks = Object.entries(keys).map(([alg, k]) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg, use: 'sig' }));
  fs.writeFileSync(jwksFile, JSON.stringify({ keys: jwks }));
  const issuersEnv = encodeJwtIssuers([{ name: JWT_ISSUER_NAME, issuer: ISSUER, audiences: [AUDIENCE], jwksFile, algorithms: ['ES256', 'RS256'] }])!;

  const iat = Math.floor(Date.now() / 1000);
  let serial = 0;
  const signingInput = (alg: BenchAlg) => {
    const header = b64url(JSON.stringify({ alg, kid: keys[alg].kid, typ: 'JWT' }));
    const n = ++serial;
    const payload = b64url(
      JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: `user-${n % 1000}`, iat, exp: iat + LIFETIME_S, jti: `${n}-${crypto.randomBytes(6).toString('hex')}` }),
    );
    return `${header}.${payload}`;
  };
  return {
    issuersEnv,
    mint(alg) {
      const input = signingInput(alg);
      const sig = crypto.sign('sha256', Buffer.from(input), { key: keys[alg].privateKey, ...keys[alg].options });
      return `${input}.${b64url(sig)}`;
    },
    badSignature(alg) {
      return `${signingInput(alg)}.${b64url(crypto.randomBytes(keys[alg].sigBytes))}`;
    },
  };
}

/** Random RFC 6750 b64token values, 32-128 characters, none shaped like a JWT: they go to the static tokens. */
export function garbageB64token(): string {
  for (;;) {
    const bytes = crypto.randomBytes(32 + crypto.randomInt(97));
    let s = '';
    for (const b of bytes) s += B64TOKEN_ALPHABET[b % B64TOKEN_ALPHABET.length];
    if (TOKEN_PATTERN.test(s) && !JWT_SHAPE.test(s)) return s;
  }
}

/** Three base64url segments of random bytes, about the size of an ES256 token: shaped like a JWT, decoding to nothing. */
export function garbageJwtShaped(): string {
  return [20 + crypto.randomInt(20), 100 + crypto.randomInt(60), 64].map((n) => b64url(crypto.randomBytes(n))).join('.');
}

/** Write `count` values of `make` to `file`, one a line. */
export function writeTokenList(file: string, count: number, make: () => string): string {
  const values: string[] = [];
  for (let i = 0; i < count; i++) values.push(make());
  fs.writeFileSync(file, values.join('\n') + '\n');
  return file;
}

/**
 * A wrk script (`wrk -t1 -s <script> <url> <token list file> <start index>`): each request carries the
 * next bearer value of the list, in a cycle, from the start index on. wrk passes the URL as args[0].
 * The requests are formatted once, in init: formatting one per request cost wrk enough CPU that it
 * could not keep a sidecar busy answering 401s.
 */
export const WRK_TOKENS_SCRIPT = `
local requests = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then requests[#requests + 1] = wrk.format(nil, nil, { Authorization = "Bearer " .. line }) end
  end
  if #requests == 0 then error("no tokens in " .. tostring(args[1])) end
  i = tonumber(args[2] or "0") % #requests
end
function request()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
`;

/**
 * What must count each response of a scenario in the sidecar's metrics: the reason of its 401s,
 * or the subject label its 200s are counted under (a token's name, or the issuer's for a JWT).
 */
export type ExpectCounted = { readonly reason: string } | { readonly subject: string };

/** The sidecar's count of `expect` so far, read from its admin port's /metrics. */
export async function sidecarCounted(adminUrl: string, expect: ExpectCounted): Promise<number> {
  const [name, labels]: [string, Record<string, string>] =
    'reason' in expect ? ['sidecar_auth_failures_total', { reason: expect.reason }] : ['sidecar_http_requests_total', { code: '200', subject: expect.subject }];
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const got = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[2]);
  }
  return sum;
}
