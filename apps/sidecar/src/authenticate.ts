/**
 * Bearer authentication (RFC 6750) against the token set, in constant time.
 * Rejections are written straight to the socket-level response: they must stay cheap.
 */
import { createHash, timingSafeEqual } from 'crypto';
import type { IncomingMessage, ServerResponse } from 'http';
import type { Duplex } from 'stream';
import { contextOf } from './context';
import type { TokenSet } from './tokens';

/** Why a request was refused with 401; also the `reason` label of sidecar_auth_failures_total. */
export type AuthFailureReason = 'missing' | 'wrong_scheme' | 'malformed' | 'invalid_token' | 'no_tokens_loaded';
export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = ['missing', 'wrong_scheme', 'malformed', 'invalid_token', 'no_tokens_loaded'];

export type AuthVerdict =
  | { readonly ok: true; readonly subject: string }
  | { readonly ok: false; readonly reason: AuthFailureReason; /** A Bearer credential was presented. */ readonly bearer: boolean };

export interface AuthenticatorOptions {
  /** Returns the token set in force (read once per request). */
  readonly tokens: () => TokenSet;
  /** Realm for WWW-Authenticate; printable ASCII without '"' or '\'. */
  readonly realm: string;
  /** Called once per refused request. */
  readonly onFailure?: (reason: AuthFailureReason) => void;
  /** Whether responses should close the connection (shutting down). */
  readonly closing?: () => boolean;
}

export interface Authenticator {
  authenticate(req: IncomingMessage): AuthVerdict;
  /** Write the 401 for a refused request. */
  reject(req: IncomingMessage, res: ServerResponse, verdict: AuthVerdict & { ok: false }): void;
  /** Write a raw 401 on an upgrade socket and close it. */
  rejectUpgrade(req: IncomingMessage, socket: Duplex, verdict: AuthVerdict & { ok: false }): void;
}

const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const BODY = 'Unauthorized\n';
const BODY_LENGTH = String(Buffer.byteLength(BODY));

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

/** True when the request still has a body to read (we refuse before reading it). */
export function hasPendingBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const challengeBare = `Bearer realm="${opts.realm}"`;
  const challengeInvalid = `Bearer realm="${opts.realm}", error="invalid_token"`;
  const challenge = (v: { bearer: boolean }) => (v.bearer ? challengeInvalid : challengeBare);

  function authenticate(req: IncomingMessage): AuthVerdict {
    const header = req.headers.authorization;
    const set = opts.tokens();
    if (header === undefined) return set.entries.length === 0 ? NO_TOKENS_NO_HEADER : MISSING;
    const sp = header.indexOf(' ');
    const scheme = sp === -1 ? header : header.slice(0, sp);
    if (scheme.length !== 6 || scheme.toLowerCase() !== 'bearer') return WRONG_SCHEME;
    if (sp === -1 || authorizationCount(req.rawHeaders) !== 1) return MALFORMED;
    const token = header.slice(sp + 1);
    if (!B64TOKEN.test(token)) return MALFORMED;
    if (set.entries.length === 0) return NO_TOKENS;
    const presented = createHash('sha256').update(token, 'utf8').digest();
    // Compare with every digest, no early exit: timing reveals neither content nor length nor position.
    let subject: string | undefined;
    for (const entry of set.entries) {
      if (timingSafeEqual(entry.digest, presented)) subject = entry.name;
    }
    return subject === undefined ? INVALID : { ok: true, subject };
  }

  function reject(req: IncomingMessage, res: ServerResponse, verdict: AuthVerdict & { ok: false }): void {
    opts.onFailure?.(verdict.reason);
    const ctx = contextOf(req);
    ctx.reason = verdict.reason;
    const headers: Record<string, string> = {
      'www-authenticate': challenge(verdict),
      'content-type': 'text/plain; charset=utf-8',
      'content-length': BODY_LENGTH,
      'cache-control': 'no-store',
      'x-request-id': ctx.requestId,
    };
    // An unauthenticated client does not get to stream a body at us; nor keep a draining pod's connection.
    if (hasPendingBody(req) || opts.closing?.()) headers.connection = 'close';
    res.writeHead(401, headers).end(BODY);
  }

  function rejectUpgrade(req: IncomingMessage, socket: Duplex, verdict: AuthVerdict & { ok: false }): void {
    opts.onFailure?.(verdict.reason);
    const ctx = contextOf(req);
    ctx.reason = verdict.reason;
    ctx.upgradeStatus = 401;
    const head =
      'HTTP/1.1 401 Unauthorized\r\n' +
      `WWW-Authenticate: ${challenge(verdict)}\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${BODY_LENGTH}\r\n` +
      'Cache-Control: no-store\r\n' +
      `X-Request-Id: ${ctx.requestId}\r\n` +
      'Connection: close\r\n\r\n';
    if (socket.writable) socket.end(head + BODY, () => socket.destroy());
    else socket.destroy();
  }

  return { authenticate, reject, rejectUpgrade };
}
