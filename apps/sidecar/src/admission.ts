/**
 * Admission: the one decision, shared by plain requests and upgrades, of whether a request may be
 * forwarded. Each step either passes or names a refusal; the first refusal wins. The verdicts are
 * shared constants, so admitting a request allocates nothing.
 */
import type { IncomingMessage } from 'http';
import { canonicalPathProblem } from '../../../lib/src/contract';
import { failureStatus } from './auth-verdict';
import type { AuthFailure } from './auth-verdict';
import type { Authenticator } from './authenticate';
import type { RequestContext } from './context';
import { requestFraming } from './framing';
import type { FramingVerdict } from './framing';
import type { RefusalStatus } from './refusals';
import { admits } from './routes';
import type { CompiledRule, RouteMatcher } from './routes';

/** Labels of sidecar_client_errors_total: a request refused for its form, not its credential (here or at parse time). */
export const CLIENT_ERROR_REASONS = ['bad_request', 'headers_too_large', 'too_many_headers', 'headers_timeout', 'bad_framing', 'non_canonical_path'] as const;
export type ClientErrorReason = (typeof CLIENT_ERROR_REASONS)[number];

export interface Refusal {
  readonly admitted: false;
  readonly status: RefusalStatus;
  /** Why, for the access log. */
  readonly reason: string;
  /** Counted as a client error. */
  readonly clientError?: ClientErrorReason;
  /** Counted as an authentication failure. */
  readonly auth?: AuthFailure;
  /** The WWW-Authenticate value of a 401 (or of the 400 of a malformed Authorization), made once with the refusal. */
  readonly challenge?: string;
  /** A 403: the label of the rule (or "default") that refused the caller. */
  readonly forbiddenRule?: string;
  /** The connection may carry on after the answer (a refused credential or a 403), unless a body is left unread. */
  readonly keepAlive?: boolean;
}

export type Admission = { readonly admitted: true } | Refusal;

export type RequestKind = 'request' | 'upgrade';

/** More headers than this is abuse, not a client. */
export const MAX_HEADERS = 100;

const ADMITTED: Admission = Object.freeze({ admitted: true });
const refusal = (status: RefusalStatus, reason: string, clientError?: ClientErrorReason): Refusal =>
  Object.freeze({ admitted: false, status, reason, clientError });
// Node accepts HTTP/0.9-style and 2.0 request lines; neither is ours to forward. An upgrade needs 1.1.
const NEWER_VERSION = refusal(505, 'bad_version', 'bad_request');
const OLDER_VERSION = refusal(400, 'bad_version', 'bad_request');
const TOO_MANY_HEADERS = refusal(431, 'too_many_headers', 'too_many_headers');
const NOT_WEBSOCKET = refusal(400, 'not_websocket');
// Judged before any rule: a second spelling of a path must not be matched as another path.
const NON_CANONICAL_PATH = refusal(400, 'non_canonical_path', 'non_canonical_path');

/** The refusal for a verdict, made once: framing and auth verdicts are shared constants too. */
function memo<K extends object>(cache: Map<K, Refusal>, key: K, make: () => Refusal): Refusal {
  let found = cache.get(key);
  if (found === undefined) cache.set(key, (found = make()));
  return found;
}
const framingRefusals = new Map<FramingVerdict, Refusal>();

/** Raw path of the request target, before any query; no decoding or normalisation on purpose. */
function rawPathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export interface AdmissionOptions {
  /** The compiled route table: which rule decides a request, and what it demands. */
  readonly routes: RouteMatcher;
  readonly authenticator: Authenticator;
}

/** Decide on a request; on admission its context holds the framing, the deciding rule and the subject (undefined: public). */
export type Admit = (req: IncomingMessage, ctx: RequestContext, kind: RequestKind) => Admission;

export function createAdmission(opts: AdmissionOptions): Admit {
  const { routes, authenticator } = opts;
  const authRefusals = new Map<AuthFailure, Refusal>();
  const forbidden = new Map<CompiledRule, Refusal>();

  return function admit(req, ctx, kind) {
    if (kind === 'upgrade' ? req.httpVersionMajor !== 1 || req.httpVersionMinor !== 1 : req.httpVersionMajor !== 1) {
      return kind === 'request' && req.httpVersionMajor > 1 ? NEWER_VERSION : OLDER_VERSION;
    }
    if (req.rawHeaders.length > MAX_HEADERS * 2) return TOO_MANY_HEADERS;
    const framing = requestFraming(req, kind === 'upgrade');
    if (!framing.ok) return memo(framingRefusals, framing, () => refusal(framing.status, framing.reason, 'bad_framing'));
    ctx.framing = framing.framing;
    let rule: CompiledRule;
    if (routes.empty) {
      rule = routes.match('', req.method);
    } else {
      const path = rawPathOf(req.url);
      if (routes.canonicalOnly && canonicalPathProblem(path) !== undefined) return NON_CANONICAL_PATH;
      rule = routes.match(path, req.method);
    }
    ctx.rule = rule.logValue;
    if (rule.effect === 'public') {
      ctx.reason = 'public';
    } else {
      const verdict = authenticator.authenticate(req);
      if (!verdict.ok) {
        return memo(authRefusals, verdict, () =>
          Object.freeze({ admitted: false, status: failureStatus(verdict), reason: verdict.reason, auth: verdict, challenge: authenticator.challenge(verdict), keepAlive: true }),
        );
      }
      ctx.subject = verdict.subject;
      ctx.claimHeaders = verdict.claimHeaders;
      if (rule.effect !== 'authenticated' && !admits(rule, verdict)) {
        return memo(forbidden, rule, () => Object.freeze({ admitted: false, status: 403, reason: 'forbidden', forbiddenRule: rule.label, keepAlive: true }));
      }
    }
    // Only WebSocket upgrades are proxied; anything else (h2c, …) is refused plainly.
    if (kind === 'upgrade' && (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket')) return NOT_WEBSOCKET;
    return ADMITTED;
  };
}
