/**
 * A process's output as lines, with its JSON log lines parsed and waitable.
 */
import { EVENT_TIMEOUT_MS } from './waits';

/** One parsed JSON log line (pino writes one object per line). */
export type LogLine = Record<string, unknown>;

export type LogPredicate = (line: LogLine) => boolean;

/** The JSON object on a line, or undefined for any other text. */
export function parseLogLine(line: string): LogLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

export class OutputLines {
  /** Every complete line so far, from all fed streams, in arrival order. */
  readonly lines: string[] = [];
  private discarding = false;
  /** Set once the output is over (the process exited and its pipes closed): no line can come. */
  private ended: string | undefined;
  private readonly waiters: { pred: LogPredicate; resolve: (line: LogLine) => void; end: (why: string) => void }[] = [];

  /**
   * @param label names the process in timeout messages
   * @param onLine sees every kept line as it comes
   */
  constructor(
    private readonly label: string,
    private readonly onLine?: (line: string) => void,
  ) {}

  /** A data listener for one stream. A line split across chunks is kept once its newline arrives. */
  feeder(): (chunk: Buffer) => void {
    let partial = '';
    return (chunk) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) this.take(line);
    };
  }

  /** Drop every line from now on (long runs log a line per request). */
  discard(): void {
    this.discarding = true;
  }

  logs(): LogLine[] {
    return this.lines.map(parseLogLine).filter((l): l is LogLine => l !== undefined);
  }

  /**
   * Resolve with the first JSON log line matching `pred`, already seen or future. Rejects when
   * `timeoutMs` passes or the output ends first, with the output so far.
   */
  waitFor(pred: LogPredicate, timeoutMs = EVENT_TIMEOUT_MS): Promise<LogLine> {
    const seen = this.logs().find(pred);
    if (seen) return Promise.resolve(seen);
    if (this.ended !== undefined) return Promise.reject(this.noLine(this.ended));
    return new Promise<LogLine>((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
      };
      // unref: a wait nobody awaits any more must not keep the test process alive.
      const timer = setTimeout(() => (settle(), reject(this.noLine(`within ${timeoutMs} ms`))), timeoutMs).unref();
      const waiter = {
        pred,
        resolve: (line: LogLine) => (settle(), resolve(line)),
        end: (why: string) => (settle(), reject(this.noLine(why))),
      };
      this.waiters.push(waiter);
    });
  }

  /** No more output will come (`why`, e.g. "before its exit"): every pending waitFor rejects now. */
  end(why: string): void {
    if (this.ended !== undefined) return;
    this.ended = why;
    for (const waiter of [...this.waiters]) waiter.end(why);
  }

  private noLine(why: string): Error {
    return new Error(`no matching log line from ${this.label} ${why}; output:\n${this.lines.join('\n')}`);
  }

  private take(line: string): void {
    if (this.discarding) return;
    this.lines.push(line);
    this.onLine?.(line);
    const parsed = parseLogLine(line);
    if (!parsed) return;
    for (const waiter of [...this.waiters]) if (waiter.pred(parsed)) waiter.resolve(parsed);
  }
}
