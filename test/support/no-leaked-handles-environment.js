/**
 * jest's node environment, plus one check when a test file is done: it must leave behind nothing that
 * keeps the worker process alive (a timer, a socket, a server, a child process, a watcher). A jest
 * worker ends by letting its event loop drain; a handle a test file forgot keeps it alive until jest
 * kills it ("a worker process has failed to exit gracefully"), and hides which file was to blame.
 *
 * Handles closing a moment after the file's last hook (a child's 'close', a socket's FIN) are
 * waited for, with a deadline sized for a busy machine; only what is still open then fails the
 * file, naming the kinds and counts. Checked in jest's worker processes only (npm test runs two);
 * a single file run in band shares jest's own process. Plain JavaScript: jest loads an environment without ts-jest.
 */
const { TestEnvironment } = require('jest-environment-node');

/**
 * As tools/waits.ts's EVENT_TIMEOUT_MS: a handle still open after this is a leak, not a slow close.
 * JEST_LEAK_DEADLINE_MS shortens it for test/leak-check.test.ts, which proves the check fails.
 */
const LEAK_DEADLINE_MS = Number(process.env.JEST_LEAK_DEADLINE_MS) || 30_000;
const POLL_MS = 25;

/** Active resources by kind, as Node names them (Timeout, TCPSocketWrap, ProcessWrap, FSEventWrap, ...). */
function resourceCounts() {
  const counts = new Map();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** What is open now beyond what was open before the file ran, as "Kind ×n" strings. */
function leakedSince(baseline) {
  const leaked = [];
  for (const [kind, n] of resourceCounts()) {
    const extra = n - (baseline.get(kind) ?? 0);
    if (extra > 0) leaked.push(`${kind} ×${extra}`);
  }
  return leaked;
}

class NoLeakedHandlesEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.testPath = context.testPath;
    // The worker's own stdio handles are made on first use (a library reading process.stdout.columns,
    // say): made here, they are part of the baseline rather than a "leak" of the first file to ask.
    void [process.stdin, process.stdout, process.stderr];
    this.baseline = resourceCounts();
  }

  async teardown() {
    await super.teardown();
    // Only in a worker (a child process with an IPC channel): run in band, the file shares its
    // process with jest's own timers and reporters, and counts say nothing about the file.
    if (typeof process.send !== 'function') return;
    const deadline = Date.now() + LEAK_DEADLINE_MS;
    let leaked = leakedSince(this.baseline);
    while (leaked.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      leaked = leakedSince(this.baseline);
    }
    if (leaked.length > 0) {
      throw new Error(`${this.testPath} left handles open ${LEAK_DEADLINE_MS / 1000} s after its last hook: ${leaked.join(', ')} (run it alone with --detectOpenHandles to see where)`);
    }
  }
}

module.exports = NoLeakedHandlesEnvironment;
