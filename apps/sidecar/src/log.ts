/**
 * JSON logs on stdout via pino. Asynchronous writes keep logging off the request's critical path;
 * flushLogs() must run before process.exit.
 */
import pino from 'pino';
import type { LogLevel } from '../../../lib/src/contract';

export type Logger = pino.Logger;

let destination: (pino.DestinationStream & { flushSync?: () => void; flush?: () => void }) | undefined;

/** Log lines are batched up to this many bytes or this long: a write per line is a large share of a proxied request's CPU (bench/results/). */
const LOG_BATCH_BYTES = 4096;
const LOG_BATCH_MS = 100;

/** Error fields that are safe to log: never the stack (house rule), never request data. */
export function errorFields(err: unknown): { type: string; code?: string; message: string } {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return { type: err.name, ...(code ? { code } : {}), message: err.message.slice(0, 200) };
  }
  return { type: typeof err, message: String(err).slice(0, 200) };
}

export function createLogger(level: LogLevel, stream?: pino.DestinationStream): Logger {
  if (stream) {
    destination = stream;
  } else {
    const boom = pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES });
    destination = boom;
    setInterval(() => boom.flush(), LOG_BATCH_MS).unref();
  }
  return pino(
    {
      level,
      base: { service: 'sidecar' },
      // Epoch milliseconds ("time"): formatting an ISO date per access line is measurable on the hot path.
      formatters: { level: (label) => ({ level: label }) },
      // Already-reduced error objects pass through; real Errors lose their stack.
      serializers: { err: (e: unknown) => (e instanceof Error ? errorFields(e) : e) },
      // Belt and braces: nothing in this code logs headers, but a future change must not leak tokens.
      redact: { paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'token'], censor: '[redacted]' },
    },
    destination,
  );
}

/** Start writing buffered lines now (asynchronously), e.g. right after an important line. */
export function flushLogsSoon(): void {
  try {
    destination?.flush?.();
  } catch {
    // Destroyed at exit: nothing left to flush.
  }
}

/** Write out buffered log lines synchronously; safe to call more than once. */
export function flushLogs(): void {
  try {
    destination?.flushSync?.();
  } catch {
    // Nothing useful left to do with a log that cannot be flushed at exit.
  }
}

/** One access-log line: the request as the sidecar saw and answered it. */
export interface AccessFields {
  readonly method: string | undefined;
  readonly path: string;
  readonly status: number;
  readonly durationMs: number;
  readonly requestId: string;
  readonly subject?: string;
  readonly reason?: string;
  /** The route rule that decided (1-based), or "default". */
  readonly rule?: number | 'default';
  readonly upstreamError?: string;
  readonly aborted?: boolean;
  readonly upgrade?: boolean;
}

/**
 * The access log, one JSON line per request, in exactly the shape pino writes (same keys, same
 * order, same destination and batching). Built by hand: pino's generic path (serializers, redaction
 * scan, key loop) was the largest single cost on a proxied request (bench/results/instructions.md).
 * Every value is a number, a boolean, or a string through JSON.stringify: nothing is spliced raw.
 */
export function createAccessLog(logger: Logger): (fields: AccessFields) => void {
  const stream = (logger as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym];
  const str = JSON.stringify;
  return (a) => {
    if (!logger.isLevelEnabled('info')) return;
    let line = `{"level":"info","time":${Date.now()},"service":"sidecar"`;
    if (a.method !== undefined) line += `,"method":${str(a.method)}`;
    line += `,"path":${str(a.path)},"status":${a.status},"durationMs":${a.durationMs},"requestId":${str(a.requestId)}`;
    if (a.subject !== undefined) line += `,"subject":${str(a.subject)}`;
    if (a.reason !== undefined) line += `,"reason":${str(a.reason)}`;
    if (a.rule !== undefined) line += `,"rule":${typeof a.rule === 'number' ? a.rule : '"default"'}`;
    if (a.upstreamError !== undefined) line += `,"upstreamError":${str(a.upstreamError)}`;
    if (a.aborted === true) line += ',"aborted":true';
    if (a.upgrade === true) line += ',"upgrade":true';
    stream.write(`${line},"msg":"request"}\n`);
  };
}
