/**
 * Start the compiled apps (build/apps/<name>/src/index.js) as real child processes.
 *
 * Convention shared with apps/: once listening, each app writes a JSON log line with
 * msg "listening" and the bound ports (`port`, and `adminPort` for the sidecar). Port 0
 * in the env means "pick an ephemeral port"; the helper reads the real one from that line.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { SIDECAR_ENV } from '../../contract';
import { REPO_ROOT } from '../../scripts/repo-root';

export type AppName = 'main' | 'sidecar';

export { REPO_ROOT } from '../../scripts/repo-root';

export function entryOf(app: AppName): string {
  return path.join(REPO_ROOT, 'build', 'apps', app, 'src', 'index.js');
}

export interface RunningApp {
  readonly child: ChildProcess;
  readonly port: number;
  readonly adminPort?: number;
  /** Every stdout/stderr line so far. */
  readonly lines: string[];
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Resolve with the first JSON log line matching `pred` (already seen or future). */
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** Send a signal (default SIGTERM) and wait for exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  readonly env?: Record<string, string | undefined>;
  readonly timeoutMs?: number;
  /** Run this file instead of the app's compiled entry (production-install tests). */
  readonly entry?: string;
  readonly cwd?: string;
  /** Stop keeping output lines once listening (long benchmark runs log a line per request). */
  readonly discardOutputAfterStart?: boolean;
  /** Pin the process to these CPUs with taskset (benchmarks), e.g. "0". */
  readonly cpus?: string;
  /**
   * Send stdout to this file instead of a pipe (benchmarks): nobody in the run then pays for
   * reading a log line per request. `lines` and `logs()` stay empty after "listening".
   */
  readonly stdoutFile?: string;
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

/** Spawn an app and wait until it logs "listening". Rejects with its output if it exits first. */
export function startApp(app: AppName | (string & {}), opts: StartOptions = {}): Promise<RunningApp> {
  const entry = opts.entry ?? entryOf(app as AppName);
  if (!fs.existsSync(entry)) {
    throw new Error(`${entry} is missing: run \`npm run build\` first (npm test does)`);
  }
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;
  // taskset execs node, so child.pid is the app's own pid.
  const [cmd, args] = opts.cpus === undefined ? [process.execPath, [entry]] : ['taskset', ['-c', opts.cpus, process.execPath, entry]];
  const stdoutFd = opts.stdoutFile === undefined ? undefined : fs.openSync(opts.stdoutFile, 'w');
  const child = spawn(cmd, args, { env, cwd: opts.cwd ?? REPO_ROOT, stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'] });
  if (stdoutFd !== undefined) fs.closeSync(stdoutFd);
  const lines: string[] = [];
  let discarding = false;
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  const onData = (buf: { partial: string }) => (chunk: Buffer) => {
    const parts = (buf.partial + chunk.toString('utf8')).split('\n');
    buf.partial = parts.pop() ?? '';
    for (const line of parts) {
      if (discarding) continue;
      lines.push(line);
      const parsed = parseJson(line);
      if (!parsed) continue;
      for (const w of [...waiters]) {
        if (w.pred(parsed)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  };
  child.stderr!.on('data', onData({ partial: '' }));
  let pollFile: NodeJS.Timeout | undefined;
  if (opts.stdoutFile === undefined) {
    child.stdout!.on('data', onData({ partial: '' }));
  } else {
    // Read the file until "listening" shows; after that nobody reads it.
    const file = opts.stdoutFile;
    const fromFile = onData({ partial: '' });
    let offset = 0;
    pollFile = setInterval(() => {
      const buf = fs.readFileSync(file);
      if (buf.length > offset) fromFile(buf.subarray(offset));
      offset = buf.length;
    }, 20);
  }
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const logs = () => lines.map(parseJson).filter((l): l is Record<string, unknown> => l !== undefined);
  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) => {
    const seen = logs().find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`no matching log line from ${app} within ${timeoutMs} ms; output:\n${lines.join('\n')}`));
      }, timeoutMs);
      const w = { pred, resolve: (l: Record<string, unknown>) => (clearTimeout(timer), resolve(l)) };
      waiters.push(w);
    });
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };

  return new Promise<RunningApp>((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    exited.then((code) => reject(new Error(`${app} exited with ${code} before listening; output:\n${lines.join('\n')}`)));
    waitForLog((l) => l.msg === 'listening', timeoutMs).then(
      (l) => {
        if (pollFile !== undefined) clearInterval(pollFile);
        discarding = opts.discardOutputAfterStart === true;
        resolve({ child, port: Number(l.port), adminPort: l.adminPort === undefined ? undefined : Number(l.adminPort), lines, logs, waitForLog, exited, stop });
      },
      (err) => {
        if (pollFile !== undefined) clearInterval(pollFile);
        child.kill('SIGKILL');
        reject(err);
      },
    );
  });
}

/** Run an app to completion (e.g. a config error) and return its exit code and output. */
export function runToExit(app: AppName, env: Record<string, string | undefined>, timeoutMs = 10_000): Promise<{ code: number | null; output: string }> {
  const merged: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  const child = spawn(process.execPath, [entryOf(app)], { env: merged, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${app} did not exit within ${timeoutMs} ms; output:\n${output}`));
    }, timeoutMs);
    // 'close', not 'exit': 'exit' can fire before the last stderr bytes are read (seen under load).
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/**
 * The env every local sidecar run needs: ephemeral ports on 127.0.0.1, an upstream and a tokens
 * directory. Spread it into an env object and add the case's own settings after it.
 */
export function localSidecarEnv(upstream: string, tokensDir: string): Record<string, string> {
  return {
    [SIDECAR_ENV.port]: '0',
    [SIDECAR_ENV.adminPort]: '0',
    [SIDECAR_ENV.host]: '127.0.0.1',
    [SIDECAR_ENV.upstream]: upstream,
    [SIDECAR_ENV.tokensDir]: tokensDir,
  };
}
