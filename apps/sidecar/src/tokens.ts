/**
 * The set of valid tokens, read from a directory laid out like a mounted Secret.
 *
 * Kubelet layout: `..data -> ..2024_xx` (swapped atomically by rename on update) and
 * `<name> -> ..data/<name>`. We resolve `..data` once, read that version only, and check it
 * did not move meanwhile, so a reload never mixes two versions of the Secret.
 * A reload builds a complete new set, then swaps one reference: readers never see half a set.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { TOKEN_PATTERN } from '../../../lib/src/contract';
import type { Logger } from './log';
import { WatchedSource } from './watched-source';

/** Kubernetes Secret key. */
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const MAX_TOKEN_FILE_BYTES = 64 * 1024;
const KUBELET_DATA_LINK = '..data';

export interface TokenEntry {
  readonly digest: Buffer;
  readonly name: string;
}

export interface TokenSet {
  readonly entries: readonly TokenEntry[];
  /** Token names, sorted; safe to log. */
  readonly names: readonly string[];
}

export interface TokenStoreOptions {
  readonly dir: string;
  readonly pollIntervalMs: number;
  readonly logger: Logger;
  /** Another credential source (JWT issuers, service accounts) is configured: an empty set refuses static tokens only. @default false */
  readonly otherSources?: boolean;
  /** Called after each reload attempt with the number of tokens now in force. */
  readonly onReload?: (result: 'success' | 'failure', count: number) => void;
}

export function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

class ReloadError extends Error {}

/** Holds the current token set; reloads on directory change events and on a poll as a fallback. */
export class TokenStore extends WatchedSource {
  private current: TokenSet = { entries: [], names: [] };
  private everLoaded = false;
  private lastError: string | undefined = 'not loaded yet';
  private lastFingerprint = '';
  private watchWarned = false;
  /**
   * Why each entry was skipped at the last reading, so a skip is warned once, not on every poll: a
   * directory with no valid token fails each reload, and each poll reads it again.
   */
  private skipped = new Map<string, string>();

  constructor(private readonly opts: TokenStoreOptions) {
    super(opts.dir, opts.pollIntervalMs);
  }

  /** The set in force. Read it once per request; it is replaced, never mutated. */
  get tokens(): TokenSet {
    return this.current;
  }

  /** Why there are no tokens, when there never were any; undefined once a set has loaded. */
  get unavailableReason(): string | undefined {
    return this.everLoaded ? undefined : `no tokens loaded: ${this.lastError ?? 'unknown'}`;
  }

  protected async changed(): Promise<boolean> {
    let fp: string;
    try {
      fp = await this.fingerprint();
    } catch (err) {
      fp = `error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`;
    }
    return fp !== this.lastFingerprint;
  }

  protected onWatchError(err: unknown, when: 'start' | 'later'): void {
    // The poll still covers us; e.g. the directory was removed and will come back.
    if (when === 'later') this.opts.logger.warn({ err, dir: this.opts.dir }, 'tokens directory watch failed; relying on polling');
    // Retried on every poll; say it once.
    else if (!this.watchWarned) this.opts.logger.warn({ err, dir: this.opts.dir }, 'cannot watch tokens directory; relying on polling');
    if (when === 'start') this.watchWarned = true;
  }

  /** Cheap summary of what a reload would read: resolved version dir plus each entry's identity. */
  private async fingerprint(): Promise<string> {
    return this.fingerprintOf((await this.resolveRoot()).root);
  }

  private async fingerprintOf(root: string): Promise<string> {
    const names = (await fsp.readdir(root)).filter((n) => !n.startsWith('.')).sort();
    const parts = [root];
    for (const n of names) {
      try {
        const st = await fsp.stat(path.join(root, n));
        parts.push(`${n}:${st.ino}:${st.size}:${st.mtimeMs}`);
      } catch {
        parts.push(`${n}:missing`);
      }
    }
    return parts.join('|');
  }

  private async resolveRoot(): Promise<{ root: string; kubelet: boolean }> {
    const link = path.join(this.opts.dir, KUBELET_DATA_LINK);
    try {
      return { root: await fsp.realpath(link), kubelet: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await fsp.access(this.opts.dir, fs.constants.R_OK);
      return { root: this.opts.dir, kubelet: false };
    }
  }

  protected async reloadOnce(trigger: string): Promise<void> {
    const log = this.opts.logger;
    let set: TokenSet;
    let fingerprint: string;
    try {
      ({ set, fingerprint } = await this.readConsistent());
      if (set.entries.length === 0) throw new ReloadError('directory holds no valid token');
    } catch (err) {
      const reason = err instanceof ReloadError ? err.message : `cannot read directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      const changed = reason !== this.lastError;
      this.lastError = reason;
      this.lastFingerprint = `error:${reason}`;
      this.opts.onReload?.('failure', this.current.entries.length);
      // Log once per distinct failure, not on every poll.
      if (changed || trigger !== 'poll') {
        log.error(
          { dir: this.opts.dir, reason, trigger, tokensInForce: this.current.entries.length },
          this.everLoaded
            ? 'token reload failed; keeping the last good set'
            : this.opts.otherSources
              ? 'no valid tokens; refusing every static token (the other credential sources still authenticate)'
              : 'no valid tokens; refusing every request',
        );
      }
      return;
    }
    const before = this.current.names.join(',');
    this.current = set;
    this.everLoaded = true;
    this.lastError = undefined;
    this.lastFingerprint = fingerprint;
    this.opts.onReload?.('success', set.entries.length);
    if (before !== set.names.join(',') || trigger === 'start') {
      log.info({ dir: this.opts.dir, tokens: set.names, trigger }, 'tokens loaded');
    } else {
      log.debug({ dir: this.opts.dir, tokens: set.names, trigger }, 'tokens reloaded');
    }
  }

  /** Read one version of the directory; retry if kubelet swapped `..data` while we read. */
  private async readConsistent(): Promise<{ set: TokenSet; fingerprint: string }> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const { root, kubelet } = await this.resolveRoot();
      try {
        const fingerprint = await this.fingerprintOf(root);
        const set = await this.readDir(root);
        if (!kubelet) return { set, fingerprint };
        if ((await fsp.realpath(path.join(this.opts.dir, KUBELET_DATA_LINK))) === root) return { set, fingerprint };
      } catch (err) {
        // The old version directory vanished under us: kubelet finished a swap. Read the new one.
        if (!kubelet || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    throw new ReloadError('directory kept changing while being read');
  }

  private async readDir(root: string): Promise<TokenSet> {
    const names = (await fsp.readdir(root)).filter((n) => !n.startsWith('.')).sort();
    const entries: TokenEntry[] = [];
    const seen = new Map<string, string>();
    const skippedNow = new Map<string, string>();
    for (const name of names) {
      const read = await readEntry(name, path.join(root, name));
      const key = typeof read === 'string' ? '' : read.digest.toString('hex');
      const why = typeof read === 'string' ? read : seen.has(key) ? `same token as "${seen.get(key)}"` : undefined;
      if (why !== undefined) {
        skippedNow.set(name, why);
        if (this.skipped.get(name) !== why) this.opts.logger.warn({ dir: this.opts.dir, name, reason: why }, 'token file skipped');
        continue;
      }
      seen.set(key, name);
      entries.push({ digest: (read as { digest: Buffer }).digest, name });
    }
    this.skipped = skippedNow;
    return { entries, names: entries.map((e) => e.name) };
  }
}

/**
 * One entry of the tokens directory: its token's digest, or why it is skipped. Throws ENOENT when
 * the entry vanished (in a kubelet layout: a swap mid-read, and the caller reads the new version).
 */
async function readEntry(name: string, file: string): Promise<{ digest: Buffer } | string> {
  if (!SECRET_KEY.test(name)) return 'name is not a valid Secret key';
  let st: fs.Stats;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // A dangling link in a plain directory is skipped; in a vanished kubelet version it means "retry".
      if (await fsp.lstat(file).then((l) => l.isSymbolicLink(), () => false)) return 'dangling symlink';
      throw err;
    }
    // One bad entry (a symlink loop, a file we may not read) must not take the others down.
    return code === 'ELOOP' ? 'symlink loop (ELOOP)' : `cannot stat: ${code ?? 'unknown error'}`;
  }
  if (st.isDirectory()) return 'is a directory';
  if (!st.isFile()) return 'not a regular file';
  if (st.size > MAX_TOKEN_FILE_BYTES) return `refused: too large (over ${MAX_TOKEN_FILE_BYTES} bytes)`;
  let content: string;
  try {
    content = await fsp.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOENT: the version directory vanished mid-read; the caller retries with the new one.
    if (code === 'ENOENT') throw err;
    return `cannot read: ${code ?? 'unknown error'}`;
  }
  if (content.length > MAX_TOKEN_FILE_BYTES) return `refused: too large (over ${MAX_TOKEN_FILE_BYTES} bytes)`;
  const token = content.trim();
  if (token === '') return 'empty';
  if (!TOKEN_PATTERN.test(token)) return 'content is not a valid bearer token (RFC 6750 b64token)';
  return { digest: sha256(token) };
}
