/**
 * How long the tests and the tools wait for something that takes a moment on an idle machine.
 *
 * Sized for a busy one: CI and developers run the suite next to other work, with load averages of
 * 10 and more on 2 cores, where a node process can need several seconds to start and a reload or a
 * log line can trail by seconds. A deadline only bounds a failure: a passing run never waits for it,
 * so a generous one costs nothing. Below jest's testTimeout (jest.config.js), so that a deadline's
 * own message, naming what did not happen, is what a failure shows.
 */

/** For an app to log "listening", or a process to exit on a bad config. */
export const START_TIMEOUT_MS = 30_000;

/** For an event: a log line, a reload, a state change, an answer to one request. */
export const EVENT_TIMEOUT_MS = 30_000;

/** For one run of a command-line tool (npm, tsc, jsii-pacmak): seconds idle, a minute or more on a busy machine. */
export const TOOL_TIMEOUT_MS = 150_000;

/** For a jest hook or test around such runs: longer, so the tool's own timeout, naming the command, fails first. */
export const TOOL_TEST_TIMEOUT_MS = TOOL_TIMEOUT_MS + 30_000;
