/**
 * Bearer authentication (RFC 6750) against the token set, in constant time, and, when issuers are
 * configured, of bearer values shaped like a JWT against them (jwt/verify.ts). The verdicts are
 * shared constants (but for the subject), so a refusal costs no allocation.
 */
import { createHash, timingSafeEqual } from 'crypto';
import type { IncomingMessage } from 'http';
import { TOKEN_PATTERN } from '../../../lib/src/contract';
import { MISSING, NO_TOKENS_NO_HEADER, WRONG_SCHEME, authFailure } from './auth-verdict';
import type { AuthFailure, AuthVerdict } from './auth-verdict';
import type { JwtVerifier } from './jwt/verify';
import type { TokenSet } from './tokens';

const MALFORMED = authFailure('malformed');
const INVALID = authFailure('invalid_token');
const NO_TOKENS = authFailure('no_tokens_loaded');
const NO_STATIC_TOKENS: TokenSet = Object.freeze({ entries: Object.freeze([]), names: Object.freeze([]) });

export interface AuthenticatorOptions {
  /** Returns the token set in force (read once per request); undefined: static tokens are no source. */
  readonly tokens?: () => TokenSet;
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

/** Node keeps only the first of duplicate Authorization headers; count them from the raw list. */
function authorizationCount(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 13 && (name === 'Authorization' || name === 'authorization' || name.toLowerCase() === 'authorization')) n++;
  }
  return n;
}

/** RFC 9110 tchar: the characters an auth-scheme is made of. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/**
 * Whether the header's auth-scheme (its leading run of tchar, RFC 9110 §11.4) is Bearer, in any
 * case. `Bearer\ttok` and `Bearer:tok` use the Bearer scheme, badly (400); `Bearerx tok` and
 * `Basic …` use another one (401, no error code).
 */
function isBearerScheme(header: string): boolean {
  if (header.length < 6 || header.slice(0, 6).toLowerCase() !== 'bearer') return false;
  if (header.length === 6) return true;
  const c = header.charCodeAt(6);
  return c >= 128 || TCHAR[c] !== 1;
}

export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const challengeBare = `Bearer realm="${opts.realm}"`;
  const challengeInvalid = `Bearer realm="${opts.realm}", error="invalid_token"`;
  const challengeRequest = `Bearer realm="${opts.realm}", error="invalid_request"`;
  const challenge = (failure: AuthFailure) =>
    failure.error === undefined ? challengeBare : failure.error === 'invalid_token' ? challengeInvalid : challengeRequest;

  const jwt = opts.jwt;
  const tokens = opts.tokens ?? (() => NO_STATIC_TOKENS);
  // no_tokens_loaded names a source that is configured and empty: with another source configured, a
  // request without a credential is just that, missing; without static tokens, an unknown bearer value is invalid.
  const emptyNoHeader = jwt === undefined && opts.tokens !== undefined ? NO_TOKENS_NO_HEADER : MISSING;
  const emptyBearer = opts.tokens !== undefined ? NO_TOKENS : INVALID;

  function authenticate(req: IncomingMessage): AuthVerdict {
    const header = req.headers.authorization;
    const set = tokens();
    if (header === undefined) return set.entries.length === 0 ? emptyNoHeader : MISSING;
    // A header-level syntax error is invalid_request (400): no refreshed token can mend it, so an
    // OAuth client must not be told invalid_token (401), which makes it refresh and retry. That is
    // two Authorization headers (whatever their schemes), and a Bearer scheme not followed by
    // exactly one space and one b64token. Another scheme is a missing credential (401, no error).
    if (authorizationCount(req.rawHeaders) !== 1) return MALFORMED;
    if (!isBearerScheme(header)) return WRONG_SCHEME;
    if (header.charCodeAt(6) !== 32) return MALFORMED;
    const token = header.slice(7);
    if (!TOKEN_PATTERN.test(token)) return MALFORMED;
    if (jwt !== undefined) {
      const verdict = jwt.verify(token);
      if (verdict !== undefined) return verdict;
    }
    if (set.entries.length === 0) return emptyBearer;
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
