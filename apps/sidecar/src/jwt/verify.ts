/**
 * JWT bearer tokens (RFC 7519, JWS compact form) from trusted issuers.
 *
 * Cheap checks come first: size and shape, the cache, the protected header (alg, kid, crit), then the payload's
 * iss; only then a signature check, and the time and audience claims after it. A verified token is
 * cached under the SHA-256 of its text (never the text) until it expires or for at most
 * VERIFIED_TTL_MS, whichever is sooner; a key set that changes drops the cache.
 *
 * Admission is synchronous (admission.ts), and jose's verify functions are all async, so the one
 * signature operation is node:crypto's one-shot verify, called with the KeyObject jose imported and
 * the parameters jose's own Node runtime passes for the alg (digest, RSA-PSS padding, ECDSA's
 * IEEE P1363 encoding). Decoding (header, payload, base64url) is jose's.
 */
import { createHash, createHmac, constants, timingSafeEqual, verify as cryptoVerify } from 'crypto';
import type { KeyObject, VerifyKeyObjectInput } from 'crypto';
import { base64url, decodeJwt, decodeProtectedHeader } from 'jose';
import { KUBERNETES_ISSUER_NAME, MAX_FORWARDED_CLAIM_CHARS, SERVICE_ACCOUNT_SUBJECT, claimHeaderName } from '../../../../lib/src/contract';
import type { JwtAlgorithm, JwtIssuer } from '../../../../lib/src/contract';
import { authFailure } from '../auth-verdict';
import type { AuthVerdict } from '../auth-verdict';
import type { JwksKey } from './keys';

/** Larger bearer values are not parsed as JWTs. */
export const MAX_JWT_BYTES = 8 * 1024;
/** A claim forwarded as the subject is at most this long. */
export const MAX_SUBJECT_CLAIM_CHARS = MAX_FORWARDED_CLAIM_CHARS;
/** Upper bound on how long a verified token is trusted without a fresh check. */
export const VERIFIED_TTL_MS = 5 * 60_000;
export const VERIFIED_CACHE_ENTRIES = 10_000;

/** Three base64url segments; the signature may be empty (alg "none"), which is refused later. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/**
 * Printable ASCII, not starting or ending with a space: what a header value carries unchanged (an
 * HTTP parser trims surrounding whitespace, so " alice" would be judged as one name and read as another).
 */
const HEADER_SAFE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** The node:crypto verify parameters of each alg, as jose's Node runtime sets them. */
const VERIFY_PARAMS: Readonly<Record<JwtAlgorithm, { digest: string | undefined; options?: Omit<VerifyKeyObjectInput, 'key'> }>> = {
  RS256: { digest: 'sha256' },
  RS384: { digest: 'sha384' },
  RS512: { digest: 'sha512' },
  PS256: { digest: 'sha256', options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } },
  PS384: { digest: 'sha384', options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } },
  PS512: { digest: 'sha512', options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } },
  ES256: { digest: 'sha256', options: { dsaEncoding: 'ieee-p1363' } },
  ES384: { digest: 'sha384', options: { dsaEncoding: 'ieee-p1363' } },
  ES512: { digest: 'sha512', options: { dsaEncoding: 'ieee-p1363' } },
  EdDSA: { digest: undefined },
  // HMAC: recomputed, not verified (signatureValid); only ever with an issuer's own secret.
  HS256: { digest: 'sha256' },
  HS384: { digest: 'sha384' },
  HS512: { digest: 'sha512' },
};

function signatureValid(alg: JwtAlgorithm, key: KeyObject, data: Buffer, signature: Uint8Array): boolean {
  const { digest, options } = VERIFY_PARAMS[alg];
  if (key.type === 'secret') {
    if (!alg.startsWith('HS') || digest === undefined) return false;
    const expected = createHmac(digest, key).update(data).digest();
    return expected.length === signature.length && timingSafeEqual(expected, signature);
  }
  if (alg.startsWith('HS')) return false;
  try {
    return cryptoVerify(digest, data, options === undefined ? key : { ...options, key }, signature);
  } catch {
    return false;
  }
}

interface CachedVerdict {
  readonly verdict: AuthVerdict & { ok: true };
  readonly untilMs: number;
}

export interface JwtVerifierOptions {
  readonly issuers: readonly JwtIssuer[];
  /**
   * The trusted issuer whose `iss` this is. @default a lookup in `issuers`. The service-account
   * issuer's `iss` is known only once the API server's discovery document has been read.
   */
  readonly issuerFor?: (iss: string) => JwtIssuer | undefined;
  /** The keys in force for an issuer, by name. */
  readonly keys: (issuerName: string) => readonly JwksKey[];
  /**
   * A token of this issuer named a kid (or alg) no key in force fits. Called synchronously, and must
   * not block: the token is refused now, and a key source may refetch (rate-limited) for later ones.
   */
  readonly onUnknownKey?: (issuerName: string) => void;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default VERIFIED_CACHE_ENTRIES */
  readonly cacheEntries?: number;
}

export interface JwtVerifier {
  /** The verdict on a bearer value shaped like a JWT, or undefined when it is not one (it goes to the static tokens). */
  verify(token: string): AuthVerdict | undefined;
  /** Forget every verified token: call it when a key set changes, so a removed key stops working at once. */
  clearCache(): void;
  readonly cacheSize: () => number;
}

const F = authFailure;

/**
 * A service-account token's subject must be `system:serviceaccount:<ns>:<name>`, and agree with the
 * `kubernetes.io` claims the API server adds to a projected token, when it carries them.
 */
function serviceAccountClaimsAgree(subject: string, payload: Record<string, unknown>): boolean {
  const m = SERVICE_ACCOUNT_SUBJECT.exec(subject);
  if (m === null) return false;
  const k8s = payload['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown } } | undefined;
  if (k8s === undefined) return true;
  if (typeof k8s !== 'object' || k8s === null) return false;
  return k8s.namespace === m[1] && (k8s.serviceaccount === undefined || k8s.serviceaccount?.name === m[2]);
}

/**
 * The issuer's forwardClaims as a flat [header, value, …] list, or null when one holds what a
 * header must not carry. A string goes as is; a number or boolean as its JSON text; a list of
 * strings comma-joined (when none holds a comma). An absent claim sends no header.
 */
function forwardedClaimHeaders(issuer: JwtIssuer, payload: Record<string, unknown>): readonly string[] | undefined | null {
  if (issuer.forwardClaims.length === 0) return undefined;
  const out: string[] = [];
  for (const claim of issuer.forwardClaims) {
    const v = payload[claim];
    if (v === undefined) continue;
    let text: string;
    // No comma in a value: upstream, "a,b" must mean the list ["a", "b"] only.
    if (typeof v === 'string' && !v.includes(',')) text = v;
    else if (typeof v === 'number' || typeof v === 'boolean') text = JSON.stringify(v);
    else if (Array.isArray(v) && v.every((e) => typeof e === 'string' && !e.includes(',') && HEADER_SAFE.test(e))) text = v.join(',');
    else return null;
    if (text.length > MAX_FORWARDED_CLAIM_CHARS || (text !== '' && !HEADER_SAFE.test(text))) return null;
    out.push(claimHeaderName(claim), text);
  }
  return Object.freeze(out);
}

export function createJwtVerifier(opts: JwtVerifierOptions): JwtVerifier {
  const now = opts.now ?? Date.now;
  const maxEntries = opts.cacheEntries ?? VERIFIED_CACHE_ENTRIES;
  const byIss = new Map(opts.issuers.map((i) => [i.issuer, i]));
  const issuerFor = opts.issuerFor ?? ((iss: string) => byIss.get(iss));
  const anyAllowed = new Set<string>(opts.issuers.flatMap((i) => i.algorithms));
  // Oldest first out when full. A hit does not move its entry: a delete and re-insert per request
  // on a full Map costs more than the whole rest of the request (bench/results/jwt.md), and an
  // entry lives at most VERIFIED_TTL_MS anyway, so a busy token is re-verified at most that often.
  const cache = new Map<string, CachedVerdict>();

  function remember(digest: string, verdict: AuthVerdict & { ok: true }, untilMs: number): void {
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
    cache.set(digest, { verdict, untilMs });
  }

  function verify(token: string): AuthVerdict | undefined {
    if (token.length > MAX_JWT_BYTES || !JWT_SHAPE.test(token)) return undefined;
    // Only a token verified before can hit, so a hit needs no decoding at all.
    const nowMs = now();
    const digest = createHash('sha256').update(token, 'latin1').digest('base64');
    const hit = cache.get(digest);
    if (hit !== undefined) {
      if (nowMs < hit.untilMs) return hit.verdict;
      cache.delete(digest);
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return undefined;
    }
    if (typeof header.alg !== 'string') return undefined;
    // From here on it is a JWT, and only a verified one passes.

    // alg "none" is in no allow-list, nor is any HS* (the contract refuses both).
    const alg = header.alg as JwtAlgorithm;
    if (!anyAllowed.has(alg)) return F('jwt_invalid');
    if (header.crit !== undefined) return F('jwt_invalid');
    const kid = header.kid;
    if (kid !== undefined && typeof kid !== 'string') return F('jwt_malformed');
    let payload: ReturnType<typeof decodeJwt>;
    try {
      payload = decodeJwt(token);
    } catch {
      return F('jwt_malformed');
    }
    const issuer = typeof payload.iss === 'string' ? issuerFor(payload.iss) : undefined;
    if (issuer === undefined) return F('jwt_unknown_issuer');
    if (!issuer.algorithms.includes(alg)) return F('jwt_invalid');

    // A shared secret has no kid: it fits every token of its issuer, kid or not. Without a kid, the
    // key must be the only one that fits (as jose's JWKS lookup requires): a token cannot make the
    // sidecar try a whole key set.
    const candidates = opts.keys(issuer.name).filter((k) => (kid === undefined || k.kid === kid || k.key.type === 'secret') && k.algorithms.has(alg));
    if (candidates.length === 0 || (kid === undefined && candidates.length > 1)) {
      if (kid !== undefined) opts.onUnknownKey?.(issuer.name);
      return F('jwt_unknown_key');
    }
    const dot = token.lastIndexOf('.');
    const signatureText = token.slice(dot + 1);
    const signature = base64url.decode(signatureText);
    // One spelling per signature: unused low bits of the last character would make 16 of them.
    if (base64url.encode(signature) !== signatureText) return F('jwt_malformed');
    const data = Buffer.from(token.slice(0, dot), 'latin1');
    if (!candidates.some((k) => signatureValid(alg, k.key, data, signature))) return F('jwt_bad_signature');

    const nowS = nowMs / 1000;
    const skew = issuer.clockSkewSeconds;
    const { exp, nbf, iat, aud } = payload;
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return F('jwt_invalid');
    if (nowS - skew >= exp) return F('jwt_expired');
    if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf))) return F('jwt_invalid');
    if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) return F('jwt_invalid');
    if (nbf !== undefined && nbf > nowS + skew) return F('jwt_not_yet_valid');
    if (iat !== undefined && iat > nowS + skew) return F('jwt_not_yet_valid');
    if (issuer.maxLifetimeSeconds !== undefined && (iat === undefined || exp - iat > issuer.maxLifetimeSeconds)) return F('jwt_invalid');
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.some((a) => typeof a === 'string' && issuer.audiences.includes(a))) return F('jwt_invalid');

    const claim = payload[issuer.subjectClaim];
    if (typeof claim !== 'string' || claim.length > MAX_SUBJECT_CLAIM_CHARS || !HEADER_SAFE.test(claim)) return F('invalid_claim');
    const kubernetes = issuer.name === KUBERNETES_ISSUER_NAME;
    if (kubernetes && !serviceAccountClaimsAgree(claim, payload)) return F('invalid_claim');
    const claimHeaders = forwardedClaimHeaders(issuer, payload);
    if (claimHeaders === null) return F('invalid_claim');

    const verdict = Object.freeze({
      ok: true as const,
      // A service account is known by its own name, system:serviceaccount:<ns>:<name>; no JWT issuer may be called "system".
      subject: kubernetes ? claim : `${issuer.name}:${claim}`,
      issuer: issuer.name,
      claims: Object.freeze(payload),
      claimHeaders,
    });
    remember(digest, verdict, Math.min(exp * 1000, nowMs + VERIFIED_TTL_MS));
    return verdict;
  }

  return {
    verify,
    clearCache: () => cache.clear(),
    cacheSize: () => cache.size,
  };
}
