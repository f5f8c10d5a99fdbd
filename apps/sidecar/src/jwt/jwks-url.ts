/**
 * The public keys of one trusted issuer, fetched from an https: URL (an identity provider's
 * jwks_uri; later the Kubernetes API server's, with its private CA in caFile).
 *
 * Fetched at start, then every refreshSeconds (a shorter Cache-Control max-age wins, down to
 * MIN_REFRESH_MS), and again when a token names a kid no key in force has: at most once per
 * UNKNOWN_KID_REFETCH_MS however many such tokens arrive, so a flood of made-up kids cannot make the
 * sidecar hammer the issuer. Fetches never overlap.
 *
 * One fetch: node:https GET, FETCH_TIMEOUT_MS for the whole exchange, at most MAX_JWKS_BYTES, no
 * redirect followed (a 3xx is a failure like any other non-200). Any failure (refused, slow,
 * non-200, too big, not a JWKS, no usable key) keeps the last good set, with a warning and a
 * metric; until a first good fetch the issuer has no keys, so its tokens are refused (never fail
 * open) and readiness waits. Failed fetches are retried with a backoff.
 */
import * as fsp from 'fs/promises';
import * as https from 'https';
import type { JwtIssuer } from '../../../../lib/src/contract';
import type { Logger } from '../log';
import { JwksError, MAX_JWKS_BYTES, importJwks } from './keys';
import type { JwksKey } from './keys';

export const FETCH_TIMEOUT_MS = 5_000;
/** The shortest interval between scheduled fetches, whatever max-age says. */
export const MIN_REFRESH_MS = 30_000;
/** At most one unknown-kid refetch per issuer in this long. */
export const UNKNOWN_KID_REFETCH_MS = 30_000;
/** First retry after a failure while no key set was ever loaded; doubles up to the refresh interval. */
const FIRST_RETRY_MS = 1_000;
const MAX_CA_BYTES = 1024 * 1024;

export interface JwksUrlStoreOptions {
  readonly issuer: JwtIssuer;
  readonly logger: Logger;
  /** After each fetch attempt, with the number of keys now in force. */
  readonly onReload?: (result: 'success' | 'failure', count: number) => void;
  /** After a fetch that changed the key set: the verified-token cache goes. */
  readonly onChange?: () => void;
  /** @default Date.now */
  readonly now?: () => number;
  /** Bound on one whole fetch (connect, headers, body). @default FETCH_TIMEOUT_MS */
  readonly fetchTimeoutMs?: number;
}

/** The outcome of one GET: the body, and the max-age the response allows caching for. */
export interface Fetched {
  readonly text: string;
  readonly maxAgeMs: number | undefined;
}

function maxAgeOf(cacheControl: string | undefined): number | undefined {
  if (cacheControl === undefined) return undefined;
  if (/(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)/i.test(cacheControl)) return 0;
  const m = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?\s*(?:,|$)/i.exec(cacheControl);
  return m === null ? undefined : Number(m[1]) * 1000;
}

/** One bounded GET. Rejects with a JwksError whose message is the reason logged. */
export function get(url: string, ca: string | undefined, bearer?: string, timeoutMs = FETCH_TIMEOUT_MS): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(new JwksError(reason));
    };
    const headers: Record<string, string> = { accept: 'application/jwk-set+json, application/json' };
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    const req = https.get(url, { ca, agent: false, headers }, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        fail(status >= 300 && status < 400 ? `answered ${status} (redirects are not followed)` : `answered ${status}`);
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > MAX_JWKS_BYTES) {
        fail(`larger than ${MAX_JWKS_BYTES} bytes`);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_JWKS_BYTES) fail(`larger than ${MAX_JWKS_BYTES} bytes`);
        else chunks.push(chunk);
      });
      res.on('error', (err) => fail(`cannot fetch: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ text: Buffer.concat(chunks).toString('utf8'), maxAgeMs: maxAgeOf(res.headers['cache-control']) });
      });
    });
    req.on('error', (err) => fail(`cannot fetch: ${(err as NodeJS.ErrnoException).code ?? err.message}`.slice(0, 200)));
    const timer = setTimeout(() => fail(`no complete answer within ${timeoutMs} ms`), timeoutMs);
    timer.unref();
  });
}

/** The key set at one issuer's jwksUrl, kept current. Same face as JwksFileStore. */
export class JwksUrlStore {
  private current: readonly JwksKey[] = [];
  private everLoaded = false;
  private lastError: string | undefined = 'not loaded yet';
  private lastText: string | undefined;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastKidRefetchMs = -Infinity;
  private stopped = false;
  private readonly url: string;
  private readonly refreshMs: number;
  private readonly now: () => number;

  constructor(protected readonly opts: JwksUrlStoreOptions) {
    if (opts.issuer.jwksUrl === undefined) throw new Error(`issuer ${opts.issuer.name} has no jwksUrl`);
    this.url = opts.issuer.jwksUrl;
    this.refreshMs = Math.max(MIN_REFRESH_MS, (opts.issuer.refreshSeconds ?? 300) * 1000);
    this.now = opts.now ?? Date.now;
  }

  get keys(): readonly JwksKey[] {
    return this.current;
  }

  get unavailableReason(): string | undefined {
    return this.everLoaded ? undefined : `issuer ${JSON.stringify(this.opts.issuer.name)}: no keys loaded: ${this.lastError ?? 'unknown'}`;
  }

  /** Fetch once, then keep refreshing. Never rejects. */
  start(): Promise<void> {
    return this.fetch('start');
  }

  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * A token named a kid no key in force has: refetch, unless one is running or the last
   * unknown-kid refetch was under UNKNOWN_KID_REFETCH_MS ago. Returns at once.
   */
  unknownKey(): void {
    if (this.stopped || this.running) return;
    const nowMs = this.now();
    if (nowMs - this.lastKidRefetchMs < UNKNOWN_KID_REFETCH_MS) return;
    this.lastKidRefetchMs = nowMs;
    void this.fetch('unknown kid');
  }

  /** Fetch now unless a fetch is running (then that one's outcome is awaited). */
  fetch(trigger: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) return this.running;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.running = (async () => {
      let nextMs: number;
      try {
        nextMs = await this.fetchOnce(trigger);
      } finally {
        this.running = undefined;
      }
      this.schedule(nextMs);
    })();
    return this.running;
  }

  /** The JWKS document, fetched once; rejects with a JwksError. */
  protected download(ca: string | undefined): Promise<Fetched> {
    return get(this.url, ca, undefined, this.opts.fetchTimeoutMs);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.fetch('refresh'), delayMs);
    this.timer.unref();
  }

  /** One attempt; resolves with the delay until the next scheduled one. Never rejects. */
  private async fetchOnce(trigger: string): Promise<number> {
    const { logger, issuer } = this.opts;
    let keys: JwksKey[];
    let fetched: Fetched;
    try {
      let ca: string | undefined;
      if (issuer.caFile !== undefined) {
        try {
          const handle = await fsp.open(issuer.caFile, 'r');
          try {
            if ((await handle.stat()).size > MAX_CA_BYTES) throw new JwksError(`caFile ${issuer.caFile} is larger than ${MAX_CA_BYTES} bytes`);
            ca = await handle.readFile('utf8');
          } finally {
            await handle.close();
          }
        } catch (err) {
          if (err instanceof JwksError) throw err;
          throw new JwksError(`cannot read caFile ${issuer.caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      fetched = await this.download(ca);
      keys = await importJwks(fetched.text, (index, kid, reason) =>
        logger.warn({ issuer: issuer.name, url: this.url, index, kid: typeof kid === 'string' ? kid.slice(0, 128) : undefined, reason }, 'JWKS key skipped'),
      );
    } catch (err) {
      const reason = err instanceof JwksError ? err.message : `cannot fetch: ${(err as Error).message}`.slice(0, 200);
      this.lastError = reason;
      this.failures++;
      this.opts.onReload?.('failure', this.current.length);
      logger.warn(
        { issuer: issuer.name, url: this.url, reason, trigger, keysInForce: this.current.length },
        this.everLoaded ? 'JWKS fetch failed; keeping the last good key set' : 'no JWKS keys; refusing this issuer\'s tokens',
      );
      const base = this.everLoaded ? MIN_REFRESH_MS : FIRST_RETRY_MS;
      return Math.min(this.refreshMs, base * 2 ** Math.min(this.failures - 1, 16));
    }
    const nextMs = fetched.maxAgeMs === undefined ? this.refreshMs : Math.min(this.refreshMs, Math.max(MIN_REFRESH_MS, fetched.maxAgeMs));
    if (this.stopped) return nextMs;
    this.failures = 0;
    this.lastError = undefined;
    const changed = fetched.text !== this.lastText;
    this.current = keys;
    this.everLoaded = true;
    this.lastText = fetched.text;
    this.opts.onReload?.('success', keys.length);
    if (changed) {
      this.opts.onChange?.();
      logger.info({ issuer: issuer.name, url: this.url, kids: keys.map((k) => k.kid ?? null), trigger }, 'JWKS loaded');
    } else {
      logger.debug({ issuer: issuer.name, url: this.url, trigger }, 'JWKS unchanged');
    }
    return nextMs;
  }
}
