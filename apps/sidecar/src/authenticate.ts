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
