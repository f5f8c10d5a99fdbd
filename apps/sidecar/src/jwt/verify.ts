/**
 * JWT bearer tokens (RFC 7519, JWS compact form) from trusted issuers.
 *
 * verify runs its steps cheapest first: size and shape, then the cache (a hit needs no decoding);
 * decodeToken (one reading of header and payload, decode.ts); headerProblem (alg, crit, kid, typ
 * shape); the payload's iss; typeAccepted (the issuer's header typ values); keyFor and the
 * signature; claimsProblem (time, audience, payload typ); identityOf (the subject and the forwarded
 * claims). A verified token is cached under the SHA-256 of its text (never the text) until it
 * expires or for at most VERIFIED_TTL_MS, whichever is sooner; a key set that changes drops the cache.
 * The cache is bounded in estimated bytes (SIDECAR_JWT_CACHE_BYTES), and a verdict holds only what a
 * request needs: the subject, the forwarded claim headers and the claims route rules match on, never
 * the whole payload (a payload may be kilobytes, and 50 000 of them outgrew the container).
 *
 * Admission is synchronous (admission.ts), and jose's verify functions are all async, so the one
 * signature operation is node:crypto's one-shot verify, called with the KeyObject jose imported and
 * the parameters jose's own Node runtime passes for the alg (digest, RSA-PSS padding, ECDSA's
 * IEEE P1363 encoding). Every member is read as an own property of the parsed JSON (decode.ts's own).
 */
import { createHash, createHmac, constants, timingSafeEqual, verify as cryptoVerify } from 'crypto';
import type { KeyObject, VerifyKeyObjectInput } from 'crypto';
import { base64url } from 'jose';
import {
  KUBERNETES_ISSUER_NAME,
  MAX_FORWARDED_CLAIM_CHARS,
  SIDECAR_INTEGERS,
  NON_ACCESS_TOKEN_PAYLOAD_TYPES,
  SERVICE_ACCOUNT_SUBJECT,
  claimHeaderName,
  normalizedTokenType,
} from '../../../../lib/src/contract';
import type { JwtAlgorithm, JwtIssuer } from '../../../../lib/src/contract';
import { authFailure } from '../auth-verdict';
import type { AuthFailure, AuthVerdict } from '../auth-verdict';
import { hasDuplicateNames, own, parseSegment } from './decode';
import type { Json } from './decode';
import type { JwksKey } from './keys';

/** Larger bearer values are not parsed as JWTs. */
export const MAX_JWT_BYTES = 8 * 1024;
/** A claim forwarded as the subject is at most this long. */
export const MAX_SUBJECT_CLAIM_CHARS = MAX_FORWARDED_CLAIM_CHARS;
/** Upper bound on how long a verified token is trusted without a fresh check. */
export const VERIFIED_TTL_MS = 5 * 60_000;

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

type Verified = AuthVerdict & { ok: true };

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
  /** The cache's budget in estimated bytes (jwtCacheEntryBytes); 0: no cache. @default SIDECAR_INTEGERS.jwtCacheBytes.default */
  readonly cacheBytes?: number;
  /**
   * By issuer name, the claims route rules match on (routeClaimNames): a verdict keeps these of the
   * payload, and no other. @default none: a verdict keeps no claims.
   */
  readonly routeClaims?: ReadonlyMap<string, readonly string[]>;
}

export interface JwtVerifier {
  /** The verdict on a bearer value shaped like a JWT, or undefined when it is not one (it goes to the static tokens). */
  verify(token: string): AuthVerdict | undefined;
  /** Forget every verified token: call it when a key set changes, so a removed key stops working at once. */
  clearCache(): void;
  /** How many verdicts the cache holds, and their estimated bytes. */
  readonly cacheSize: () => number;
  readonly cacheBytes: () => number;
}

const F = authFailure;

/** The parts of a token the steps read. */
interface Decoded {
  readonly header: Json;
  readonly payload: Json;
  readonly alg: JwtAlgorithm;
}

/**
 * The header and payload, or undefined when the value is no JWT (its header is not a JSON object
 * with a string alg: then it may be a static token), or a failure when it is one read badly.
 */
function decodeToken(token: string, firstDot: number, secondDot: number): Decoded | AuthFailure | undefined {
  const header = parseSegment(token.slice(0, firstDot));
  if (header === undefined) return undefined;
  const alg = own(header.json, 'alg');
  if (typeof alg !== 'string') return undefined;
  // From here on it is a JWT, and only a verified one passes.
  if (hasDuplicateNames(header.text)) return F('jwt_malformed');
  const payload = parseSegment(token.slice(firstDot + 1, secondDot));
  if (payload === undefined || hasDuplicateNames(payload.text)) return F('jwt_malformed');
  return { header: header.json, payload: payload.json, alg: alg as JwtAlgorithm };
}

/** The protected header's own checks, before any issuer is known: alg "none" and HS* are in no allow-list unless an issuer has a secret. */
function headerProblem(header: Json, alg: JwtAlgorithm, anyAllowed: ReadonlySet<string>): AuthFailure | undefined {
  if (!anyAllowed.has(alg)) return F('jwt_invalid');
  if (own(header, 'crit') !== undefined) return F('jwt_invalid');
  const kid = own(header, 'kid');
  if (kid !== undefined && typeof kid !== 'string') return F('jwt_malformed');
  const typ = own(header, 'typ');
  if (typ !== undefined && typeof typ !== 'string') return F('jwt_malformed');
  return undefined;
}

/** The issuer's accepted header typ values, normalized; computed once per issuer object. */
const acceptedTypes = new WeakMap<JwtIssuer, ReadonlySet<string>>();

/** Whether the issuer accepts the header's typ (absent: the "" entry). A present typ that normalizes to "" is none of them. */
function typeAccepted(issuer: JwtIssuer, typ: unknown): boolean {
  let accepted = acceptedTypes.get(issuer);
  if (accepted === undefined) {
    accepted = new Set(issuer.tokenTypes.map(normalizedTokenType));
    acceptedTypes.set(issuer, accepted);
  }
  if (typ === undefined) return accepted.has('');
  const normalized = normalizedTokenType(typ as string);
  return normalized !== '' && accepted.has(normalized);
}

/**
 * The keys that may have signed, or undefined when none fits or the choice is the token's. A shared
 * secret has no kid: it fits every token of its issuer, kid or not. Without a kid, the key must be
 * the only one that fits (as jose's JWKS lookup requires): a token cannot make the sidecar try a
 * whole key set.
 */
function candidateKeys(keys: readonly JwksKey[], kid: string | undefined, alg: JwtAlgorithm): readonly JwksKey[] | undefined {
  const candidates = keys.filter((k) => (kid === undefined || k.kid === kid || k.key.type === 'secret') && k.algorithms.has(alg));
  return candidates.length === 0 || (kid === undefined && candidates.length > 1) ? undefined : candidates;
}

/** Whether the signature segment is the one spelling of a signature that verifies the token's first two segments. */
function signatureProblem(token: string, alg: JwtAlgorithm, candidates: readonly JwksKey[]): AuthFailure | undefined {
  const dot = token.lastIndexOf('.');
  const signatureText = token.slice(dot + 1);
  const signature = base64url.decode(signatureText);
  // One spelling per signature: unused low bits of the last character would make 16 of them.
  if (base64url.encode(signature) !== signatureText) return F('jwt_malformed');
  const data = Buffer.from(token.slice(0, dot), 'latin1');
  return candidates.some((k) => signatureValid(alg, k.key, data, signature)) ? undefined : F('jwt_bad_signature');
}

const finiteOrAbsent = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v));

/** The verified payload's time and audience claims, and its typ; exp is required. */
function claimsProblem(issuer: JwtIssuer, payload: Json, nowMs: number): AuthFailure | undefined {
  const nowS = nowMs / 1000;
  const skew = issuer.clockSkewSeconds;
  const exp = own(payload, 'exp');
  const nbf = own(payload, 'nbf');
  const iat = own(payload, 'iat');
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return F('jwt_invalid');
  if (nowS - skew >= exp) return F('jwt_expired');
  if (!finiteOrAbsent(nbf) || !finiteOrAbsent(iat)) return F('jwt_invalid');
  if (nbf !== undefined && (nbf as number) > nowS + skew) return F('jwt_not_yet_valid');
  if (iat !== undefined && (iat as number) > nowS + skew) return F('jwt_not_yet_valid');
  if (issuer.maxLifetimeSeconds !== undefined && (iat === undefined || exp - (iat as number) > issuer.maxLifetimeSeconds)) return F('jwt_invalid');
  const aud = own(payload, 'aud');
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.some((a) => typeof a === 'string' && issuer.audiences.includes(a))) return F('jwt_invalid');
  // Keycloak types every token in its payload: an ID, refresh or logout token is no access token, whatever its header says.
  const typ = own(payload, 'typ');
  if (typeof typ === 'string' && NON_ACCESS_TOKEN_PAYLOAD_TYPES.includes(typ.toLowerCase())) return F('jwt_wrong_type');
  return undefined;
}

/**
 * A service-account token's subject must be `system:serviceaccount:<ns>:<name>`, and agree with the
 * `kubernetes.io` claims the API server adds to a projected token, when it carries them.
 */
function serviceAccountClaimsAgree(subject: string, payload: Json): boolean {
  const m = SERVICE_ACCOUNT_SUBJECT.exec(subject);
  if (m === null) return false;
  const k8s = own(payload, 'kubernetes.io');
  if (k8s === undefined) return true;
  if (typeof k8s !== 'object' || k8s === null || Array.isArray(k8s)) return false;
  const account = own(k8s as Json, 'serviceaccount');
  if (account !== undefined && (typeof account !== 'object' || account === null || Array.isArray(account))) return false;
  return own(k8s as Json, 'namespace') === m[1] && (account === undefined || own(account as Json, 'name') === m[2]);
}

/** The header name of each of the issuer's forwardClaims, made once: every cached verdict shares these strings. */
const claimHeaderNames = new WeakMap<JwtIssuer, readonly string[]>();

function claimHeaderNamesOf(issuer: JwtIssuer): readonly string[] {
  let names = claimHeaderNames.get(issuer);
  if (names === undefined) {
    names = issuer.forwardClaims.map(claimHeaderName);
    claimHeaderNames.set(issuer, names);
  }
  return names;
}

/**
 * The issuer's forwardClaims as a flat [header, value, …] list, or null when one holds what a
 * header must not carry. A string goes as is; a number or boolean as its JSON text; a list of
 * strings comma-joined (when none holds a comma). An absent claim sends no header.
 */
function forwardedClaimHeaders(issuer: JwtIssuer, payload: Json): readonly string[] | undefined | null {
  if (issuer.forwardClaims.length === 0) return undefined;
  const out: string[] = [];
  const headerNames = claimHeaderNamesOf(issuer);
  for (let i = 0; i < issuer.forwardClaims.length; i++) {
    const claim = issuer.forwardClaims[i];
    const v = own(payload, claim);
    if (v === undefined) continue;
    let text: string;
    // No comma in a value: upstream, "a,b" must mean the list ["a", "b"] only.
    if (typeof v === 'string' && !v.includes(',')) text = v;
    else if (typeof v === 'number' || typeof v === 'boolean') text = JSON.stringify(v);
    else if (Array.isArray(v) && v.every((e) => typeof e === 'string' && !e.includes(',') && HEADER_SAFE.test(e))) text = v.join(',');
    else return null;
    if (text.length > MAX_FORWARDED_CLAIM_CHARS || (text !== '' && !HEADER_SAFE.test(text))) return null;
    out.push(headerNames[i], text);
  }
  return Object.freeze(out);
}

/** A verdict of an issuer no route rule asks a claim of. */
const NO_CLAIMS: Json = Object.freeze({});

/**
 * The payload's claims named in `names`, frozen, as far as a route rule can match them (routes.ts
 * claimHolds: a string, or a list holding it): a string as is, a list as its strings; any other
 * value matches no rule and is left out, as is an absent claim.
 */
function routedClaims(names: readonly string[], payload: Json): Json {
  if (names.length === 0) return NO_CLAIMS;
  const kept: Record<string, unknown> = {};
  for (const name of names) {
    const v = own(payload, name);
    const value = typeof v === 'string' ? v : Array.isArray(v) ? Object.freeze(v.filter((e) => typeof e === 'string')) : undefined;
    // defineProperty, not assignment: a claim named "__proto__" stays an own member, never the prototype.
    if (value !== undefined) Object.defineProperty(kept, name, { value, enumerable: true });
  }
  return Object.freeze(kept);
}

/** The verdict of a verified token: its subject, the claims route rules match on and forwarded claim headers, or why its claims cannot go upstream. */
function identityOf(issuer: JwtIssuer, payload: Json, routeClaims: readonly string[]): Verified | AuthFailure {
  const claim = own(payload, issuer.subjectClaim);
  if (typeof claim !== 'string' || claim.length > MAX_SUBJECT_CLAIM_CHARS || !HEADER_SAFE.test(claim)) return F('invalid_claim');
  const kubernetes = issuer.name === KUBERNETES_ISSUER_NAME;
  if (kubernetes && !serviceAccountClaimsAgree(claim, payload)) return F('invalid_claim');
  const claimHeaders = forwardedClaimHeaders(issuer, payload);
  if (claimHeaders === null) return F('invalid_claim');
  return Object.freeze({
    ok: true as const,
    // A service account is known by its own name, system:serviceaccount:<ns>:<name>; no JWT issuer may be called "system".
    subject: kubernetes ? claim : `${issuer.name}:${claim}`,
    issuer: issuer.name,
    claims: routedClaims(routeClaims, payload),
    claimHeaders,
  });
}

/**
 * What one cached verdict may cost, in bytes, overestimated: per string its header and two bytes a
 * character (V8 keeps ASCII in one), plus the entry's objects (Map slot, entry, verdict, claims,
 * lists) as one fixed sum. The fixed sum is measured, with room: heap used per entry of the
 * bench/jwt-memory.ts shapes (bench/results/jwt-memory.md) stays below this estimate.
 */
export const CACHE_ENTRY_FIXED_BYTES = 400;
const STRING_HEADER_BYTES = 24;
const LIST_BYTES = 48;
const stringBytes = (s: string) => STRING_HEADER_BYTES + 2 * s.length;

/** The estimated bytes of a cached verdict under `digest`. */
export function jwtCacheEntryBytes(digest: string, verdict: Verified): number {
  let bytes = CACHE_ENTRY_FIXED_BYTES + stringBytes(digest) + stringBytes(verdict.subject);
  if (verdict.claimHeaders !== undefined) {
    bytes += LIST_BYTES;
    for (const h of verdict.claimHeaders) bytes += 8 + stringBytes(h);
  }
  const claims = verdict.claims ?? NO_CLAIMS;
  for (const name of Object.keys(claims)) {
    const v = claims[name];
    bytes += 16 + stringBytes(name);
    if (typeof v === 'string') bytes += stringBytes(v);
    else if (Array.isArray(v)) {
      bytes += LIST_BYTES;
      for (const e of v as string[]) bytes += 8 + stringBytes(e);
    }
  }
  return bytes;
}

interface CacheEntry {
  readonly verdict: Verified;
  readonly untilMs: number;
  readonly bytes: number;
  /** Hit since it was inserted or last spared: the eviction spares it once (second chance). */
  used: boolean;
}

/**
 * Verified verdicts by token digest, within a budget of estimated bytes. Oldest first out, but an
 * entry hit since it was inserted or last spared is spared once, moved to the newest end (a
 * second-chance approximation of LRU): a busy token outlives a flood of new ones. A hit only sets a
 * flag: a delete and re-insert per request on a full Map costs more than the whole rest of the
 * request (bench/results/jwt.md); the move is paid on insertion, which follows a signature check.
 */
class VerifiedCache {
  private readonly entries = new Map<string, CacheEntry>();
  private totalBytes = 0;

  constructor(private readonly maxBytes: number) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get(digest: string, nowMs: number): Verified | undefined {
    const hit = this.entries.get(digest);
    if (hit === undefined) return undefined;
    if (nowMs < hit.untilMs) {
      hit.used = true;
      return hit.verdict;
    }
    this.drop(digest, hit);
    return undefined;
  }

  remember(digest: string, verdict: Verified, untilMs: number, nowMs: number): void {
    const bytes = jwtCacheEntryBytes(digest, verdict);
    if (bytes > this.maxBytes) return;
    const previous = this.entries.get(digest);
    if (previous !== undefined) this.drop(digest, previous);
    while (this.totalBytes + bytes > this.maxBytes && this.entries.size > 0) this.evictOne(nowMs);
    this.entries.set(digest, { verdict, untilMs, bytes, used: false });
    this.totalBytes += bytes;
  }

  clear(): void {
    this.entries.clear();
    this.totalBytes = 0;
  }

  private drop(digest: string, entry: CacheEntry): void {
    this.entries.delete(digest);
    this.totalBytes -= entry.bytes;
  }

  /** Evict the oldest entry not spared; ends, since each spared one loses its flag (and a spared entry comes round again). */
  private evictOne(nowMs: number): void {
    for (const [digest, entry] of this.entries) {
      this.entries.delete(digest);
      if (entry.used && nowMs < entry.untilMs) {
        entry.used = false;
        this.entries.set(digest, entry);
        continue;
      }
      this.totalBytes -= entry.bytes;
      return;
    }
  }
}

export function createJwtVerifier(opts: JwtVerifierOptions): JwtVerifier {
  const now = opts.now ?? Date.now;
  const byIss = new Map(opts.issuers.map((i) => [i.issuer, i]));
  const issuerFor = opts.issuerFor ?? ((iss: string) => byIss.get(iss));
  const anyAllowed = new Set<string>(opts.issuers.flatMap((i) => i.algorithms));
  const cache = new VerifiedCache(opts.cacheBytes ?? SIDECAR_INTEGERS.jwtCacheBytes.default);
  const routeClaims = (issuerName: string) => opts.routeClaims?.get(issuerName) ?? [];

  /** Everything after the cache, for a token not verified before. */
  function verifyNew(token: string, firstDot: number, digest: string, nowMs: number): AuthVerdict | undefined {
    const decoded = decodeToken(token, firstDot, token.indexOf('.', firstDot + 1));
    if (decoded === undefined || 'reason' in decoded) return decoded;
    const { header, payload, alg } = decoded;
    const refused = headerProblem(header, alg, anyAllowed);
    if (refused !== undefined) return refused;
    const iss = own(payload, 'iss');
    const issuer = typeof iss === 'string' ? issuerFor(iss) : undefined;
    if (issuer === undefined) return F('jwt_unknown_issuer');
    if (!issuer.algorithms.includes(alg)) return F('jwt_invalid');
    if (!typeAccepted(issuer, own(header, 'typ'))) return F('jwt_wrong_type');
    const kid = own(header, 'kid') as string | undefined;
    const candidates = candidateKeys(opts.keys(issuer.name), kid, alg);
    if (candidates === undefined) {
      if (kid !== undefined) opts.onUnknownKey?.(issuer.name);
      return F('jwt_unknown_key');
    }
    const problem = signatureProblem(token, alg, candidates) ?? claimsProblem(issuer, payload, nowMs);
    if (problem !== undefined) return problem;
    const verdict = identityOf(issuer, payload, routeClaims(issuer.name));
    if (verdict.ok) cache.remember(digest, verdict, Math.min((own(payload, 'exp') as number) * 1000, nowMs + VERIFIED_TTL_MS), nowMs);
    return verdict;
  }

  function verify(token: string): AuthVerdict | undefined {
    if (token.length > MAX_JWT_BYTES || !JWT_SHAPE.test(token)) return undefined;
    // Only a token verified before can hit, so a hit needs no decoding at all.
    const nowMs = now();
    const digest = createHash('sha256').update(token, 'latin1').digest('base64');
    return cache.get(digest, nowMs) ?? verifyNew(token, token.indexOf('.'), digest, nowMs);
  }

  return {
    verify,
    clearCache: () => cache.clear(),
    cacheSize: () => cache.size,
    cacheBytes: () => cache.bytes,
  };
}
