/**
 * What authentication decides: the verdict types, the 401 reasons, and the shared frozen failures.
 * Below both authenticate.ts and jwt/verify.ts, which each hand out these verdicts.
 */
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

const fail = (reason: AuthFailureReason, bearer: boolean) => Object.freeze({ ok: false as const, reason, bearer });
/** No Authorization header. */
export const MISSING = fail('missing', false);
/** An Authorization header of another scheme than Bearer. */
export const WRONG_SCHEME = fail('wrong_scheme', false);
/** No Authorization header, and no static token loaded. */
export const NO_TOKENS_NO_HEADER = fail('no_tokens_loaded', false);
const BEARER_FAILURES = new Map(AUTH_FAILURE_REASONS.map((r) => [r, fail(r, true)]));

/** The shared verdict of a presented Bearer credential refused for `reason`. */
export function authFailure(reason: AuthFailureReason): AuthFailure {
  return BEARER_FAILURES.get(reason)!;
}
