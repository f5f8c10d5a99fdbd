/**
 * A process's output as lines, with its JSON log lines parsed and waitable.
 */

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
  private readonly waiters: { pred: LogPredicate; resolve: (line: LogLine) => void }[] = [];

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

  /** Resolve with the first JSON log line matching `pred`, already seen or future. */
  waitFor(pred: LogPredicate, timeoutMs = 10_000): Promise<LogLine> {
    const seen = this.logs().find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no matching log line from ${this.label} within ${timeoutMs} ms; output:\n${this.lines.join('\n')}`));
      }, timeoutMs);
      const waiter = { pred, resolve: (line: LogLine) => (clearTimeout(timer), resolve(line)) };
      this.waiters.push(waiter);
    });
  }

  private take(line: string): void {
    if (this.discarding) return;
    this.lines.push(line);
    this.onLine?.(line);
    const parsed = parseLogLine(line);
    if (!parsed) return;
    for (const waiter of [...this.waiters]) {
      if (waiter.pred(parsed)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(parsed);
      }
    }
  }
}
