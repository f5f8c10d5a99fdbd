/**
 * The preStop waits that end once the sidecar's proxy has closed (`?until=closed`): main's preStop
 * in container mode, so that a main which exits at once on SIGTERM gets it only after the sidecar
 * has drained. The shutdown answers them when the proxy is closed and waits until the answers are
 * written: the admin server's closeAllConnections, right after, would otherwise cut them unanswered.
 */

/** How long the shutdown waits for the answers to be written: they are a few bytes on a local socket. */
const ANSWER_WRITE_BOUND_MS = 1_000;

/** Answers one wait with the close's outcome (true: closed cleanly); resolves once the answer is written or its caller is gone. */
export type ClosedAnswer = (clean: boolean) => Promise<void>;

export class ProxyClosedWaits {
  private readonly waiting = new Set<ClosedAnswer>();
  /** Set once the proxy has closed. */
  private outcome: boolean | undefined;

  /** Answer `answer` once the proxy has closed (at once if it already has). Returns the cancel, for a wait that ends otherwise. */
  add(answer: ClosedAnswer): () => void {
    if (this.outcome !== undefined) {
      void answer(this.outcome);
      return () => undefined;
    }
    this.waiting.add(answer);
    return () => this.waiting.delete(answer);
  }

  /** The proxy has closed: answer every wait. Resolves once each answer is written, or at the bound. */
  proxyClosed(clean: boolean): Promise<void> {
    if (this.outcome !== undefined) return Promise.resolve();
    this.outcome = clean;
    const answers = [...this.waiting].map((answer) => answer(clean));
    this.waiting.clear();
    if (answers.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const bound = setTimeout(resolve, ANSWER_WRITE_BOUND_MS);
      bound.unref();
      void Promise.all(answers).then(() => {
        clearTimeout(bound);
        resolve();
      });
    });
  }
}
