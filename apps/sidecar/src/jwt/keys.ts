/**
 * The public keys of one trusted issuer, read from a JWKS file (a mounted ConfigMap or Secret key)
 * and reloaded on change: an fs.watch of its directory, and a poll in case an event is missed (the
 * kubelet swaps a mount's `..data` link, which a watch of the file itself would not follow).
 *
 * Keys are imported with jose once per load; a reload builds a complete new set, then swaps one
 * reference. A file that cannot be read or holds no usable key keeps the last good set in force,
 * with a warning and a metric: never fail open, never drop good keys for a bad file.
 */
import { createHash, createSecretKey } from 'crypto';
import type { KeyObject } from 'crypto';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { importJWK } from 'jose';
import type { JWK } from 'jose';
import { HMAC_JWT_ALGORITHMS, JWT_ALGORITHMS, MIN_HMAC_SECRET_BYTES } from '../../../../lib/src/contract';
import type { HmacJwtAlgorithm, JwtAlgorithm, JwtIssuer } from '../../../../lib/src/contract';
import type { Logger } from '../log';
import { WatchedSource } from '../watched-source';

/** A JWKS is small; anything bigger is a wrong file. */
export const MAX_JWKS_BYTES = 1024 * 1024;
const MAX_JWKS_KEYS = 100;
/** jose's floor for RSA signatures. */
const MIN_RSA_BITS = 2048;

/** One verification key and the algorithms it may check. */
export interface JwksKey {
  /** undefined: the JWK has no kid; it then matches only tokens without one. */
  readonly kid: string | undefined;
  readonly algorithms: ReadonlySet<JwtAlgorithm>;
  readonly key: KeyObject;
}

/** The algorithms a public key of this type can verify (jose's rules: curve per ES alg, RSA >= 2048 bits). */
function algorithmsOf(key: KeyObject): JwtAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= MIN_RSA_BITS ? ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] : [];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      return [];
    }
    case 'ed25519':
    case 'ed448':
      return ['EdDSA'];
    default:
      return [];
  }
}

/** The default alg jose's importJWK needs when the JWK names none; the key type decides the rest. */
function importAlg(jwk: Record<string, unknown>): string {
  if (typeof jwk.alg === 'string') return jwk.alg;
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'EC') return jwk.crv === 'P-384' ? 'ES384' : jwk.crv === 'P-521' ? 'ES512' : 'ES256';
  return 'EdDSA';
}

/** A JWKS document (or its source) that holds no usable key set; its message is the reason logged. */
export class JwksError extends Error {}

/** Parse and import a JWKS document; `skip` hears why a key was left out. */
export async function importJwks(text: string, skip: (index: number, kid: unknown, reason: string) => void): Promise<JwksKey[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new JwksError('not JSON');
  }
  const list = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) throw new JwksError('not a JWK Set: no "keys" list');
  // Whole or nothing: a bounded prefix would let the order of the set decide which keys count.
  if (list.length > MAX_JWKS_KEYS) throw new JwksError(`the JWKS has ${list.length} keys, more than the ${MAX_JWKS_KEYS} allowed: the whole set is refused`);
  const keys: JwksKey[] = [];
  for (let i = 0; i < list.length; i++) {
    const jwk = list[i] as Record<string, unknown>;
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
      skip(i, undefined, 'not an object');
      continue;
    }
    const kid = jwk.kid;
    if (kid !== undefined && (typeof kid !== 'string' || kid === '')) {
      skip(i, undefined, 'kid is not a non-empty string');
      continue;
    }
    if (jwk.kty !== 'RSA' && jwk.kty !== 'EC' && jwk.kty !== 'OKP') {
      // Symmetric ("oct") keys above all: a shared secret never comes from a key set.
      skip(i, kid, `kty ${JSON.stringify(jwk.kty)} is not RSA, EC or OKP`);
      continue;
    }
    if ('d' in jwk || 'p' in jwk || 'q' in jwk) {
      skip(i, kid, 'holds private key material');
      continue;
    }
    if (jwk.use !== undefined && jwk.use !== 'sig') {
      skip(i, kid, `use is ${JSON.stringify(jwk.use)}, not "sig"`);
      continue;
    }
    if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) {
      skip(i, kid, 'key_ops does not include "verify"');
      continue;
    }
    if (jwk.alg !== undefined && !(JWT_ALGORITHMS as readonly unknown[]).includes(jwk.alg)) {
      skip(i, kid, `alg ${JSON.stringify(jwk.alg)} is not one the sidecar verifies`);
      continue;
    }
    let key: KeyObject;
    try {
      const imported = await importJWK(jwk as unknown as JWK, importAlg(jwk));
      if (imported instanceof Uint8Array) throw new Error('not an asymmetric key');
      key = imported as KeyObject;
    } catch (err) {
      skip(i, kid, `cannot import: ${(err as Error).message.slice(0, 120)}`);
      continue;
    }
    if (key.type !== 'public') {
      skip(i, kid, 'not a public key');
      continue;
    }
    let algorithms = algorithmsOf(key);
    if (jwk.alg !== undefined) algorithms = algorithms.filter((a) => a === jwk.alg);
    if (algorithms.length === 0) {
      skip(i, kid, 'no supported algorithm fits it (RSA under 2048 bits, an unsupported curve, or alg not matching the key)');
      continue;
    }
    keys.push({ kid, algorithms: new Set(algorithms), key });
  }
  if (keys.length === 0) throw new JwksError('holds no usable key');
  return keys;
}

/**
 * An issuer's HMAC secret file as its one key: the bytes, less one trailing newline (what
 * `kubectl create secret --from-file` keeps from an editor). Each allowed HS* algorithm needs a
 * secret at least as long as its hash (RFC 7518 §3.2).
 */
export function importHmacSecret(bytes: Buffer, algorithms: readonly JwtAlgorithm[]): JwksKey[] {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  const secret = bytes.subarray(0, end);
  const usable = algorithms.filter((a): a is HmacJwtAlgorithm => (HMAC_JWT_ALGORITHMS as readonly string[]).includes(a) && secret.length >= MIN_HMAC_SECRET_BYTES[a as HmacJwtAlgorithm]);
  if (usable.length === 0) {
    const need = Math.min(...algorithms.map((a) => MIN_HMAC_SECRET_BYTES[a as HmacJwtAlgorithm] ?? Infinity));
    throw new JwksError(`the HMAC secret is ${secret.length} bytes; ${algorithms.join(', ')} needs at least ${need}`);
  }
  return [{ kid: undefined, algorithms: new Set(usable), key: createSecretKey(Buffer.from(secret)) }];
}

export interface JwksFileStoreOptions {
  readonly issuer: JwtIssuer;
  readonly pollIntervalMs: number;
  readonly logger: Logger;
  /** After each load attempt, with the number of keys now in force. */
  readonly onReload?: (result: 'success' | 'failure', count: number) => void;
  /** After each successful load: the verified-token cache goes, so a removed key stops working at once. */
  readonly onChange?: () => void;
}

function jwksFileOf(issuer: JwtIssuer): string {
  const file = issuer.jwksFile ?? issuer.hmacSecretFile;
  if (file === undefined) throw new Error(`issuer ${issuer.name} has no jwksFile or hmacSecretFile`);
  return file;
}

/** The key set of one issuer's JWKS file (or its HMAC secret file), kept current. */
export class JwksFileStore extends WatchedSource {
  private current: readonly JwksKey[] = [];
  private everLoaded = false;
  private lastError: string | undefined = 'not loaded yet';
  private lastFingerprint = '';
  /** SHA-256 of the bytes the keys in force came from. */
  private loadedDigest: string | undefined;
  private readonly file: string;

  constructor(private readonly opts: JwksFileStoreOptions) {
    super(path.dirname(jwksFileOf(opts.issuer)), opts.pollIntervalMs);
    this.file = jwksFileOf(opts.issuer);
  }

  /** The keys in force; the list is replaced, never mutated. */
  get keys(): readonly JwksKey[] {
    return this.current;
  }

  /** Why this issuer has no keys, while it never had any. */
  get unavailableReason(): string | undefined {
    return this.everLoaded ? undefined : `issuer ${JSON.stringify(this.opts.issuer.name)}: no keys loaded: ${this.lastError ?? 'unknown'}`;
  }

  protected async changed(): Promise<boolean> {
    return (await this.fingerprint()) !== this.lastFingerprint;
  }

  /** The file's resolved path and identity: what a reload would read. */
  private async fingerprint(): Promise<string> {
    try {
      const real = await fsp.realpath(this.file);
      const st = await fsp.stat(real);
      return `${real}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      return `error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`;
    }
  }

  protected async reloadOnce(trigger: string): Promise<void> {
    const { logger, issuer } = this.opts;
    const fingerprint = await this.fingerprint();
    // The watch is of the whole directory: a change to a sibling (another issuer's file, a log
    // written beside it) leaves this file as it was, and must neither reload nor empty the cache.
    if (trigger === 'change' && fingerprint === this.lastFingerprint) return;
    let keys: JwksKey[];
    let loadedDigest: string | undefined;
    try {
      const handle = await fsp.open(this.file, 'r');
      let bytes: Buffer;
      try {
        const st = await handle.stat();
        if (!st.isFile()) throw new JwksError('not a regular file');
        if (st.size > MAX_JWKS_BYTES) throw new JwksError(`larger than ${MAX_JWKS_BYTES} bytes`);
        bytes = await handle.readFile();
      } finally {
        await handle.close();
      }
      if (bytes.length > MAX_JWKS_BYTES) throw new JwksError(`larger than ${MAX_JWKS_BYTES} bytes`);
      // The bytes in force, read again (a poll that raced the write it then read whole, a rerun the
      // watch asked for meanwhile): nothing changed, so neither the keys nor the verified cache go.
      const digest = createHash('sha256').update(bytes).digest('hex');
      if (digest === this.loadedDigest && this.lastError === undefined) {
        this.lastFingerprint = fingerprint;
        return;
      }
      loadedDigest = digest;
      keys =
        issuer.hmacSecretFile !== undefined
          ? importHmacSecret(bytes, issuer.algorithms)
          : await importJwks(bytes.toString('utf8'), (index, kid, reason) =>
              logger.warn({ issuer: issuer.name, file: this.file, index, kid: typeof kid === 'string' ? kid.slice(0, 128) : undefined, reason }, 'JWKS key skipped'),
            );
    } catch (err) {
      const reason = err instanceof JwksError ? err.message : `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      const changed = reason !== this.lastError;
      this.lastError = reason;
      this.lastFingerprint = fingerprint;
      this.opts.onReload?.('failure', this.current.length);
      if (changed || trigger !== 'poll') {
        logger.warn(
          { issuer: issuer.name, file: this.file, reason, trigger, keysInForce: this.current.length },
          this.everLoaded ? 'JWKS reload failed; keeping the last good key set' : 'no JWKS keys; refusing this issuer\'s tokens',
        );
      }
      return;
    }
    if (this.closed) return;
    this.current = keys;
    this.everLoaded = true;
    this.lastError = undefined;
    this.lastFingerprint = fingerprint;
    this.loadedDigest = loadedDigest;
    this.opts.onReload?.('success', keys.length);
    this.opts.onChange?.();
    logger.info({ issuer: issuer.name, file: this.file, kids: keys.map((k) => k.kid ?? null), trigger }, issuer.hmacSecretFile !== undefined ? 'HMAC secret loaded' : 'JWKS loaded');
  }
}
