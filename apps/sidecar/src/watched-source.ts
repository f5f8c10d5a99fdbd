/**
 * Keeps something read from disk current: a directory watch (debounced) for prompt reloads, and a
 * poll as the fallback, since watches miss events (the kubelet's atomic `..data` swap, a volume
 * remount, a removed directory). Reloads never overlap: a reload asked for during one runs once
 * more after it. The tokens directory and each JWKS file are kept current by one of these.
 */
import * as fs from 'fs';

const RELOAD_DEBOUNCE_MS = 100;

export interface WatchedSourceHooks {
  /** The folder to watch. */
  readonly dir: string;
  readonly pollIntervalMs: number;
  /** Read and swap in the current content; never rejects. `trigger` says why, for the logs. */
  readonly load: (trigger: string) => Promise<void>;
  /** On a poll: whether what a load would read differs from what was loaded last. */
  readonly changed: () => Promise<boolean>;
  /** The watch failed or could not start; the poll keeps the content current and retries the watch. */
  readonly onWatchError?: (err: unknown, when: 'start' | 'later') => void;
}

export class WatchedSource {
  private watcher: fs.FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private stopped = false;

  constructor(private readonly hooks: WatchedSourceHooks) {}

  get closed(): boolean {
    return this.stopped;
  }

  /** Load once, then watch and poll. Never rejects. */
  async start(): Promise<void> {
    await this.reload('start');
    if (this.stopped) return;
    this.watch();
    this.pollTimer = setInterval(() => void this.poll(), this.hooks.pollIntervalMs);
    this.pollTimer.unref();
  }

  close(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
  }

  /** Reload now; concurrent calls coalesce into one extra run. */
  reload(trigger: string): Promise<void> {
    if (this.running) {
      this.rerun = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.rerun = false;
          await this.hooks.load(trigger);
        } while (this.rerun && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private watch(): void {
    try {
      this.watcher = fs.watch(this.hooks.dir, { persistent: false }, () => this.scheduleReload());
      this.watcher.on('error', (err) => {
        this.hooks.onWatchError?.(err, 'later');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.hooks.onWatchError?.(err, 'start');
    }
  }

  private scheduleReload(): void {
    if (this.stopped) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => void this.reload('change'), RELOAD_DEBOUNCE_MS);
    this.debounceTimer.unref();
  }

  private async poll(): Promise<void> {
    if (this.stopped || this.running) return;
    if (!this.watcher) this.watch();
    if (await this.hooks.changed()) await this.reload('poll');
  }
}
