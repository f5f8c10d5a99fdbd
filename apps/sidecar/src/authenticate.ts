/**
 * Bearer authentication (RFC 6750) against the token set, in constant time, and, when issuers are
 * configured, of bearer values shaped like a JWT against them (jwt/verify.ts). The verdicts are
 * shared constants (but for the subject), so a refusal costs no allocation.
 */
import { createHash, timingSafeEqual } from 'crypto';
import type { IncomingMessage } from 'http';
import { TOKEN_PATTERN } from '../../../lib/src/contract';
import type { JwtVerifier } from './jwt/verify';
import type { TokenSet } from './tokens';

/**
 * Why a request was refused with 401; also the `reason` label of sidecar_auth_failures_total.
 * The jwt_* reasons and invalid_claim are those of a bearer value shaped like a JWT (jwt/verify.ts):
 * malformed (header or payload not decodable), unknown_issuer (iss trusted by no issuer),
 * unknown_key (no key of the issuer's JWKS fits kid and alg), bad_signature, expired, not_yet_valid
 * (nbf or iat ahead, beyond the skew), invalid (alg not allowed, crit, aud, exp missing, lifetime),
 * invalid_claim (the subject claim is not 1-256 printable ASCII characters).
 */
export const AUTH_FAILURE_REASONS = [
  'missing',
  'wrong_scheme',
  'malformed',
  'invalid_token',
  'no_tokens_loaded',
  'jwt_malformed',
  'jwt_unknown_issuer',
  'jwt_unknown_key',
  'jwt_bad_signature',
  'jwt_expired',
  'jwt_not_yet_valid',
  'jwt_invalid',
  'invalid_claim',
] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

export type AuthVerdict =
  | {
      readonly ok: true;
      /** The identity, as the subject header forwards it. */
      readonly subject: string;
      /** The JWT issuer's name (the service-account issuer's is "kubernetes"); undefined: a static token. */
      readonly issuer?: string;
      /** The verified JWT's payload; route rules match claim values in it. */
      readonly claims?: Readonly<Record<string, unknown>>;
      /** The issuer's forwardClaims, a flat [header, value, …] list for the upstream request. */
      readonly claimHeaders?: readonly string[];
    }
  | { readonly ok: false; readonly reason: AuthFailureReason; /** A Bearer credential was presented. */ readonly bearer: boolean };

export type AuthFailure = AuthVerdict & { readonly ok: false };

export interface AuthenticatorOptions {
  /** Returns the token set in force (read once per request). */
  readonly tokens: () => TokenSet;
  /** Realm for WWW-Authenticate; printable ASCII without '"' or '\'. */
  readonly realm: string;
  /** Verifies bearer values shaped like a JWT; undefined (no issuers): every value is a static token. */
  readonly jwt?: JwtVerifier;
}

export interface Authenticator {
  authenticate(req: IncomingMessage): AuthVerdict;
  /** The WWW-Authenticate value of a refusal. */
  challenge(failure: AuthFailure): string;
}

const fail = (reason: AuthFailureReason, bearer: boolean) => Object.freeze({ ok: false as const, reason, bearer });
const MISSING = fail('missing', false);
const WRONG_SCHEME = fail('wrong_scheme', false);
const NO_TOKENS_NO_HEADER = fail('no_tokens_loaded', false);
const BEARER_FAILURES = new Map(AUTH_FAILURE_REASONS.map((r) => [r, fail(r, true)]));
const MALFORMED = BEARER_FAILURES.get('malformed')!;
const INVALID = BEARER_FAILURES.get('invalid_token')!;
const NO_TOKENS = BEARER_FAILURES.get('no_tokens_loaded')!;

/** The shared verdict of a presented Bearer credential refused for `reason`. */
export function authFailure(reason: AuthFailureReason): AuthFailure {
  return BEARER_FAILURES.get(reason)!;
}

/** Node keeps only the first of duplicate Authorization headers; count them from the raw list. */
function authorizationCount(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 13 && (name === 'Authorization' || name === 'authorization' || name.toLowerCase() === 'authorization')) n++;
  }
  return n;
}

export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const challengeBare = `Bearer realm="${opts.realm}"`;
  const challengeInvalid = `Bearer realm="${opts.realm}", error="invalid_token"`;
  const challenge = (failure: AuthFailure) => (failure.bearer ? challengeInvalid : challengeBare);

  const jwt = opts.jwt;

  function authenticate(req: IncomingMessage): AuthVerdict {
    const header = req.headers.authorization;
    const set = opts.tokens();
    if (header === undefined) return set.entries.length === 0 ? NO_TOKENS_NO_HEADER : MISSING;
    const sp = header.indexOf(' ');
    const scheme = sp === -1 ? header : header.slice(0, sp);
    if (scheme.length !== 6 || scheme.toLowerCase() !== 'bearer') return WRONG_SCHEME;
    if (sp === -1 || authorizationCount(req.rawHeaders) !== 1) return MALFORMED;
    const token = header.slice(sp + 1);
    if (!TOKEN_PATTERN.test(token)) return MALFORMED;
    if (jwt !== undefined) {
      const verdict = jwt.verify(token);
      if (verdict !== undefined) return verdict;
    }
    if (set.entries.length === 0) return NO_TOKENS;
    const presented = createHash('sha256').update(token, 'utf8').digest();
    // Compare with every digest, no early exit: timing reveals neither content nor length nor position.
    let subject: string | undefined;
    for (const entry of set.entries) {
      if (timingSafeEqual(entry.digest, presented)) subject = entry.name;
    }
    return subject === undefined ? INVALID : { ok: true, subject };
  }

  return { authenticate, challenge };
}
