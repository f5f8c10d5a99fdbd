/** The docker CLI, run from the repo root with this environment (DOCKER_HOST is honoured): the daemon, and a container's state. */
import { spawn } from 'child_process';
import { REPO_ROOT } from '../repo-root';
import { Steps, indent } from './steps';

export interface DockerRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface DockerOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Told each line of output (stdout and stderr) as it comes. */
  readonly onLine?: (line: string) => void;
  /** SIGKILL the CLI after this long. */
  readonly timeoutMs?: number;
}

/** Run the docker CLI; never rejects (a CLI that cannot start gives code 127). */
export function docker(args: readonly string[], opts: DockerOptions = {}): Promise<DockerRun> {
  return new Promise((resolve) => {
    const child = spawn('docker', args, { cwd: REPO_ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const onData = (chunk: Buffer, isErr: boolean) => {
      const text = chunk.toString('utf8');
      if (isErr) stderr += text;
      else stdout += text;
      if (opts.onLine) {
        partial += text;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) opts.onLine(l);
      }
    };
    child.stdout.on('data', (c: Buffer) => onData(c, false));
    child.stderr.on('data', (c: Buffer) => onData(c, true));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` });
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (opts.onLine && partial) opts.onLine(partial);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** The CLI's trimmed stdout; throws naming `what` when it exits non-zero. */
export async function dockerOk(args: readonly string[], what: string): Promise<string> {
  const r = await docker(args);
  if (r.code !== 0) throw new Error(`${what}: docker ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout.trim();
}

export interface ContainerState {
  readonly running: boolean;
  readonly exitCode: number;
  readonly status: string;
}

export async function containerState(name: string): Promise<ContainerState> {
  const out = await dockerOk(['inspect', '--format', '{{.State.Running}} {{.State.ExitCode}} {{.State.Status}}', name], `inspect ${name}`);
  const [running, exitCode, status] = out.split(' ');
  return { running: running === 'true', exitCode: Number(exitCode), status };
}

/** The step that fails at once, saying how to get one, when there is no daemon to build and run with. */
export async function checkDaemon(steps: Steps): Promise<void> {
  await steps.run(`docker daemon answers (DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset: the default socket'})`, async () => {
    const r = await docker(['info', '--format', '{{.ServerVersion}} {{.OperatingSystem}} storage={{.Driver}}'], { timeoutMs: 30_000 });
    if (r.code !== 0) {
      throw new Error(
        `\`docker info\` failed, so there is no daemon to build and run the images with:\n${indent((r.stderr || r.stdout).trim(), '      ')}\n` +
          '    Start one (or point DOCKER_HOST at one); docs/images.md shows how on a machine without systemd.',
      );
    }
    return { value: undefined, detail: `server ${r.stdout.trim()}` };
  });
}
