/**
 * What authentication decides: the verdict types, the 401 reasons, and the shared frozen failures.
 * Below both authenticate.ts and jwt/verify.ts, which each hand out these verdicts.
 */
/**
 * Why a credential was refused (401, or 400 for `malformed`); also the `reason` label of
 * sidecar_auth_failures_total. `malformed`: the Authorization header is not one well-formed Bearer
 * credential (two headers, no token, a second word, a character outside b64token).
 * The jwt_* reasons and invalid_claim are those of a bearer value shaped like a JWT (jwt/verify.ts):
 * malformed (header or payload not decodable, not strict UTF-8, or naming a member twice), unknown_issuer (iss trusted by no issuer),
 * unknown_key (no key of the issuer's JWKS fits kid and alg), bad_signature, expired, not_yet_valid
 * (nbf or iat ahead, beyond the skew), invalid (alg not allowed, crit, aud, exp missing, lifetime),
 * wrong_type (a header typ the issuer does not accept, or a payload typ of no access token),
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
  'jwt_wrong_type',
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
  | {
      readonly ok: false;
      readonly reason: AuthFailureReason;
      /**
       * The RFC 6750 §3.1 error code of the refusal: `invalid_request` (answered 400) for a header
       * that is not one well-formed Bearer credential, which no refreshed token can mend;
       * `invalid_token` (401) for a well-formed one that does not authenticate, which a client may
       * refresh and retry; undefined (401, no error code) when no Bearer credential was presented.
       */
      readonly error: BearerError | undefined;
    };

export type BearerError = 'invalid_request' | 'invalid_token';

export type AuthFailure = AuthVerdict & { readonly ok: false };

/** The status of a refused credential: RFC 6750 §3.1 asks 400 for invalid_request, 401 otherwise. */
export function failureStatus(failure: AuthFailure): 400 | 401 {
  return failure.error === 'invalid_request' ? 400 : 401;
}

const fail = (reason: AuthFailureReason, error: BearerError | undefined) => Object.freeze({ ok: false as const, reason, error });
/** No Authorization header. */
export const MISSING = fail('missing', undefined);
/** An Authorization header of another scheme than Bearer. */
export const WRONG_SCHEME = fail('wrong_scheme', undefined);
/** No Authorization header, and static tokens are the only source and none is loaded: the sidecar, not the client, is at fault. */
export const NO_TOKENS_NO_HEADER = fail('no_tokens_loaded', undefined);
const BEARER_FAILURES = new Map(AUTH_FAILURE_REASONS.map((r) => [r, fail(r, r === 'malformed' ? 'invalid_request' : 'invalid_token')]));

/** The shared verdict of a presented Bearer credential refused for `reason`. */
export function authFailure(reason: AuthFailureReason): AuthFailure {
  return BEARER_FAILURES.get(reason)!;
}
