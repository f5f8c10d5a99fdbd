/**
 * Start the compiled apps, and the bench's helper servers, as real child processes. The tests, the
 * bench, the soak and the pod runner all launch through here.
 *
 * Convention shared with apps/ and bench/: once listening, a server writes a JSON log line with msg
 * "listening" and the bound ports (`port`, and `adminPort` for the sidecar). Port 0 in the env means
 * "pick an ephemeral port"; startApp reads the real one from that line.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import { appsNode } from './app-node';
import { AppName, entryOf } from './apps';
import { LogLine, LogPredicate, OutputLines } from './log-lines';
import { REPO_ROOT } from './repo-root';
import { EVENT_TIMEOUT_MS, START_TIMEOUT_MS } from './waits';

export interface LaunchOptions {
  /** The process's env, besides PATH, which is always passed on; undefined values are left out. @default only PATH */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Run this file instead of the app's compiled entry. @default entryOf(app) */
  readonly entry?: string;
  /** Arguments after the entry. @default none */
  readonly args?: readonly string[];
  /** @default REPO_ROOT */
  readonly cwd?: string;
  /** Pin the process to these CPUs with taskset, e.g. "0". @default not pinned */
  readonly cpus?: string;
  /**
   * Command that runs node, such as `['valgrind', '--tool=callgrind']`; node and the entry follow it.
   * child.pid is then the wrapper's. @default node runs directly
   */
  readonly wrapper?: readonly string[];
  /**
   * Send stdout to this file instead of a pipe (benchmarks): nobody in the run then pays for reading
   * a log line per request. The file is read only until startApp sees "listening", so `lines` and
   * `logs()` get no stdout after that. @default a pipe
   */
  readonly stdoutFile?: string;
  /**
   * Run this program instead of node and an app's entry (a local stand-in for an image that is not
   * ours); `args` follow it, `entry` and `wrapper` do not apply. Looked up on PATH. @default node runs the entry
   */
  readonly command?: readonly string[];
  /** Give the process its own process group, so a terminal's Ctrl-C reaches only this one. @default false */
  readonly detached?: boolean;
  /** Every output line as it comes. @default none (the lines are still kept) */
  readonly onLine?: (line: string) => void;
}

export interface StartOptions extends LaunchOptions {
  /** How long the app has to log "listening". @default START_TIMEOUT_MS (tools/waits.ts) */
  readonly timeoutMs?: number;
  /** Stop keeping output lines once listening (long benchmark runs log a line per request). @default false */
  readonly discardOutputAfterStart?: boolean;
}

/** Exit code, or the name of the signal that ended the process. */
export type ExitStatus = number | NodeJS.Signals | null;

export interface LaunchedApp {
  readonly child: ChildProcess;
  /** Every stdout/stderr line so far. */
  readonly lines: string[];
  /** Parsed JSON log lines so far. */
  logs(): LogLine[];
  /**
   * Resolve with the first JSON log line matching `pred` (already seen or future); rejects if the
   * process's output ends first. @default timeoutMs EVENT_TIMEOUT_MS (tools/waits.ts)
   */
  waitForLog(pred: LogPredicate, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code once the process has exited and its output is read (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  /** Resolves with the exit code or the signal's name once the process has exited and its output is read. */
  readonly exitStatus: Promise<ExitStatus>;
  isRunning(): boolean;
  /** Send a signal (default SIGTERM) unless it has exited, and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface RunningApp extends LaunchedApp {
  readonly port: number;
  readonly adminPort?: number;
}

/** Node and the entry (behind the wrapper), or opts.command; then the args. */
function commandLine(label: string, opts: LaunchOptions): string[] {
  if (opts.command !== undefined) {
    if (opts.command.length === 0) throw new Error(`${label}: command is empty`);
    return [...opts.command, ...(opts.args ?? [])];
  }
  const entry = opts.entry ?? entryOf(label as AppName);
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first (npm test does)`);
  return [...(opts.wrapper ?? []), appsNode(), entry, ...(opts.args ?? [])];
}

function spawnProcess(label: string, opts: LaunchOptions, stdout: 'pipe' | number): ChildProcess {
  const command = commandLine(label, opts);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;
  // taskset execs its command, so child.pid stays the app's (or the wrapper's) own pid.
  const argv = opts.cpus === undefined ? command : ['taskset', '-c', opts.cpus, ...command];
  return spawn(argv[0], argv.slice(1), { env, cwd: opts.cwd ?? REPO_ROOT, stdio: ['ignore', stdout, 'pipe'], detached: opts.detached ?? false });
}

interface Launch {
  readonly app: LaunchedApp;
  readonly output: OutputLines;
  /** Stop reading opts.stdoutFile. */
  stopReadingFile(): void;
}

function launch(label: string, opts: LaunchOptions): Launch {
  const stdoutFd = opts.stdoutFile === undefined ? undefined : fs.openSync(opts.stdoutFile, 'w');
  let child: ChildProcess;
  try {
    child = spawnProcess(label, opts, stdoutFd ?? 'pipe');
  } finally {
    if (stdoutFd !== undefined) fs.closeSync(stdoutFd);
  }
  const output = new OutputLines(label, opts.onLine);
  child.stderr!.on('data', output.feeder());
  let readFile: (() => void) | undefined;
  let filePoll: NodeJS.Timeout | undefined;
  if (opts.stdoutFile === undefined) {
    child.stdout!.on('data', output.feeder());
  } else {
    const file = opts.stdoutFile;
    const feed = output.feeder();
    let offset = 0;
    readFile = () => {
      const buf = fs.readFileSync(file);
      if (buf.length > offset) feed(buf.subarray(offset));
      offset = buf.length;
    };
    filePoll = setInterval(readFile, 20);
  }
  const stopReadingFile = () => {
    if (filePoll !== undefined) clearInterval(filePoll);
    filePoll = undefined;
  };
  const exitStatus = new Promise<ExitStatus>((resolve) => {
    // 'close', not 'exit': 'exit' can come before the last output lines are read (seen under load),
    // and a test that looks at the logs once the process has exited must see all of them.
    child.on('close', (code, signal) => {
      if (filePoll !== undefined) readFile?.();
      stopReadingFile();
      output.end(`before its exit (${code ?? signal})`);
      resolve(code ?? signal);
    });
    // A wrapper or taskset that is not installed: no process, so no exit event to wait for.
    child.on('error', (err) => {
      if (child.pid !== undefined) return;
      output.lines.push(`${label} could not be started: ${err.message}`);
      stopReadingFile();
      output.end('(it could not be started)');
      resolve(null);
    });
  });
  const exited = exitStatus.then((status) => (typeof status === 'number' ? status : null));
  const isRunning = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  const app: LaunchedApp = {
    child,
    lines: output.lines,
    logs: () => output.logs(),
    waitForLog: (pred, timeoutMs = EVENT_TIMEOUT_MS) => output.waitFor(pred, timeoutMs),
    exited,
    exitStatus,
    isRunning,
    stop: async (signal = 'SIGTERM') => {
      if (isRunning()) child.kill(signal);
      return exited;
    },
  };
  return { app, output, stopReadingFile };
}

/** Spawn an app and return at once; its output is collected. For servers that log "listening", use startApp. */
export function spawnApp(app: AppName | (string & {}), opts: LaunchOptions = {}): LaunchedApp {
  return launch(app, opts).app;
}

/** Spawn an app and wait until it logs "listening". Rejects with its output if it exits first. */
export function startApp(app: AppName | (string & {}), opts: StartOptions = {}): Promise<RunningApp> {
  const { app: launched, output, stopReadingFile } = launch(app, opts);
  return new Promise<RunningApp>((resolve, reject) => {
    launched.exitStatus.then((status) => reject(new Error(`${app} exited with ${status} before listening; output:\n${output.lines.join('\n')}`)));
    output.waitFor((l) => l.msg === 'listening', opts.timeoutMs ?? START_TIMEOUT_MS).then(
      (l) => {
        stopReadingFile();
        if (opts.discardOutputAfterStart === true) output.discard();
        resolve({ ...launched, port: Number(l.port), adminPort: l.adminPort === undefined ? undefined : Number(l.adminPort) });
      },
      (err) => {
        stopReadingFile();
        launched.child.kill('SIGKILL');
        reject(err);
      },
    );
  });
}

/** Run an app to completion (e.g. a config error) and return its exit code and output. */
export function runToExit(app: AppName, env: Readonly<Record<string, string | undefined>>, timeoutMs = START_TIMEOUT_MS): Promise<{ code: number | null; output: string }> {
  const child = spawnProcess(app, { env }, 'pipe');
  let output = '';
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
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
