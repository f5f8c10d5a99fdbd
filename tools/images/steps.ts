/**
 * The report of an images run: each step printed as it starts, then ok or FAIL with a detail, and a
 * PASS/FAIL summary at the end. A failed step stops the run; what cleans up still runs.
 */

export interface StepResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** Thrown by a failed step, after it has been reported. */
export class StepFailed extends Error {}

export function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function indent(text: string, prefix = '    '): string {
  return text
    .replace(/\s+$/, '')
    .split('\n')
    .map((l) => `${prefix}${l}`)
    .join('\n');
}

/** What a step returns: its value, and the detail printed after "ok". */
export interface StepOutcome<T> {
  readonly value: T;
  readonly detail: string;
}

export class Steps {
  readonly results: StepResult[] = [];

  /** Run one step: print its name, then ok/FAIL with a detail; a failure throws StepFailed. */
  async run<T>(name: string, fn: () => Promise<StepOutcome<T>>): Promise<T> {
    log(`\n==> ${name}`);
    const began = Date.now();
    try {
      const { value, detail } = await fn();
      const secs = ((Date.now() - began) / 1000).toFixed(1);
      this.results.push({ name, ok: true, detail });
      log(`    ok   ${detail} (${secs}s)`);
      return value;
    } catch (err) {
      const detail = (err as Error).message;
      this.results.push({ name, ok: false, detail });
      log(indent(`FAIL ${detail}`));
      throw new StepFailed(detail);
    }
  }

  /** An error outside any step (a bug of the run itself): reported as a failed step. */
  unexpected(err: unknown): void {
    if (err instanceof StepFailed) return;
    const detail = (err as Error).stack ?? String(err);
    this.results.push({ name: 'unexpected error', ok: false, detail });
    log(`\nFAIL unexpected error: ${detail}`);
  }

  /** Prints the summary; the exit code: 1 if any step failed. */
  summary(title: string): number {
    const failed = this.results.filter((r) => !r.ok);
    log(`\n==== ${title} summary ====`);
    for (const r of this.results) log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name}${r.ok ? '' : `\n      ${r.detail.split('\n')[0]}`}`);
    log(failed.length ? `\nFAIL: ${failed.length} of ${this.results.length} steps failed` : `\nPASS: all ${this.results.length} steps passed`);
    return failed.length ? 1 : 0;
  }
}
