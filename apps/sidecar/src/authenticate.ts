/**
 * Bearer authentication (RFC 6750) against the token set, in constant time. The verdicts are shared
 * constants (but for the subject), so a refusal costs no allocation.
 */
import { createHash, timingSafeEqual } from 'crypto';
import type { IncomingMessage } from 'http';
import { TOKEN_PATTERN } from '../../../lib/src/contract';
import type { TokenSet } from './tokens';

/** Why a request was refused with 401; also the `reason` label of sidecar_auth_failures_total. */
export type AuthFailureReason = 'missing' | 'wrong_scheme' | 'malformed' | 'invalid_token' | 'no_tokens_loaded';
export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = ['missing', 'wrong_scheme', 'malformed', 'invalid_token', 'no_tokens_loaded'];

export type AuthVerdict =
  | { readonly ok: true; readonly subject: string }
  | { readonly ok: false; readonly reason: AuthFailureReason; /** A Bearer credential was presented. */ readonly bearer: boolean };

export type AuthFailure = AuthVerdict & { readonly ok: false };

export interface AuthenticatorOptions {
  /** Returns the token set in force (read once per request). */
  readonly tokens: () => TokenSet;
  /** Realm for WWW-Authenticate; printable ASCII without '"' or '\'. */
  readonly realm: string;
}

export interface Authenticator {
  authenticate(req: IncomingMessage): AuthVerdict;
  /** The WWW-Authenticate value of a refusal. */
  challenge(failure: AuthFailure): string;
}

const fail = (reason: AuthFailureReason, bearer: boolean) => Object.freeze({ ok: false as const, reason, bearer });
const MISSING = fail('missing', false);
const WRONG_SCHEME = fail('wrong_scheme', false);
const MALFORMED = fail('malformed', true);
const INVALID = fail('invalid_token', true);
const NO_TOKENS = fail('no_tokens_loaded', true);
const NO_TOKENS_NO_HEADER = fail('no_tokens_loaded', false);

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
