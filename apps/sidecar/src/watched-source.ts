/**
 * Keeps something read from disk current: a directory watch (debounced) for prompt reloads, and a
 * poll as the fallback, since watches miss events (the kubelet's atomic `..data` swap, a volume
 * remount, a removed directory). Reloads never overlap: a reload asked for during one runs once
 * more after it. TokenStore and JwksFileStore extend it.
 */
import * as fs from 'fs';

const RELOAD_DEBOUNCE_MS = 100;

/** Subclasses say how to load and how to tell a change; this class says when. */
export abstract class WatchedSource {
  private watcher: fs.FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private stopped = false;

  /** `dir` is the folder to watch. */
  constructor(
    private readonly dir: string,
    private readonly pollIntervalMs: number,
  ) {}

  /** Read and swap in the current content; never rejects. `trigger` says why, for the logs. */
  protected abstract reloadOnce(trigger: string): Promise<void>;

  /** On a poll: whether what a load would read differs from what was loaded last. */
  protected abstract changed(): Promise<boolean>;

  /** The watch failed or could not start; the poll keeps the content current and retries the watch. */
  protected onWatchError(_err: unknown, _when: 'start' | 'later'): void {}

  get closed(): boolean {
    return this.stopped;
  }

  /** Load once, then watch and poll. Never rejects. */
  async start(): Promise<void> {
    await this.reload('start');
    if (this.stopped) return;
    this.watch();
    this.pollTimer = setInterval(() => void this.poll(), this.pollIntervalMs);
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
          await this.reloadOnce(trigger);
        } while (this.rerun && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private watch(): void {
    try {
      this.watcher = fs.watch(this.dir, { persistent: false }, () => this.scheduleReload());
      this.watcher.on('error', (err) => {
        this.onWatchError(err, 'later');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.onWatchError(err, 'start');
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
    if (await this.changed()) await this.reload('poll');
  }
}
