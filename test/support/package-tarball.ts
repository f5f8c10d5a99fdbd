/**
 * The library as npm ships it: `npm pack` of lib/ (after `npm run build:lib`), the tarball's
 * entries and files read with tar, and child processes run with the repo's own tool binaries.
 * No mocks: everything here runs the real npm, tar, tsc and node.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { TOOL_TIMEOUT_MS } from '../../tools/waits';

const execFileAsync = promisify(execFile);

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const LIB_DIR = path.join(REPO_ROOT, 'lib');
/** A tool from the repo's devDependencies, by absolute path (works from any cwd). */
export const repoBin = (name: string): string => path.join(REPO_ROOT, 'node_modules', '.bin', name);

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment for a child npm/node outside the repo: without the variables `npm test` sets for
 * its own script (package, lifecycle, local prefix), so a nested npm only sees the folder it runs in.
 */
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^npm_(package_|lifecycle_|command$|config_(local_prefix|call|workspaces?|include_workspace_root)$)/i.test(key) || key === 'INIT_CWD') delete env[key];
  }
  // The jsii tools print a banner about this Node's end of life on every run.
  env.JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = process.versions.node.split('.')[0];
  return env;
}

/** Runs a command; a failure names the command and carries its output. */
export async function run(file: string, args: readonly string[], options: { cwd: string; timeoutMs?: number }): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, {
      cwd: options.cwd,
      env: childEnv(),
      timeout: options.timeoutMs ?? TOOL_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
      encoding: 'utf8',
    });
    return { stdout, stderr };
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string; code?: unknown; signal?: unknown };
    throw new Error(
      `\`${[path.basename(file), ...args].join(' ')}\` (in ${options.cwd}) failed (code ${String(e.code)}, signal ${String(e.signal)}):\n` +
        `--- stdout\n${e.stdout ?? ''}\n--- stderr\n${e.stderr ?? ''}`,
    );
  }
}

function newestMtime(dir: string): { file: string; mtimeMs: number } {
  let newest = { file: dir, mtimeMs: 0 };
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const { mtimeMs } = fs.statSync(file);
    if (mtimeMs > newest.mtimeMs) newest = { file, mtimeMs };
  }
  return newest;
}

/** `npm test` runs `npm run build:lib` before jest; a test run on its own needs it too. */
export function assertLibBuilt(): void {
  const outputs = ['build/index.js', 'build/index.d.ts', '.jsii'].map((f) => path.join(LIB_DIR, f));
  const missing = outputs.filter((f) => !fs.existsSync(f));
  if (missing.length > 0) throw new Error(`${missing.map((f) => path.relative(REPO_ROOT, f)).join(', ')} missing: run \`npm run build:lib\` first`);
  const source = newestMtime(path.join(LIB_DIR, 'src'));
  const assembly = fs.statSync(path.join(LIB_DIR, '.jsii')).mtimeMs;
  if (source.mtimeMs > assembly) {
    throw new Error(`lib/.jsii is older than ${path.relative(REPO_ROOT, source.file)}: run \`npm run build:lib\` first`);
  }
}

export interface PackedLibrary {
  /** Absolute path of the .tgz. */
  readonly tarball: string;
  /** Files in the tarball, relative to the package root (without tar's `package/` prefix), sorted. */
  readonly files: string[];
}

/** `npm pack` of lib/ into `destination`, as `npm publish` would pack it. */
export async function packLibrary(destination: string): Promise<PackedLibrary> {
  fs.mkdirSync(destination, { recursive: true });
  const { stdout } = await run('npm', ['pack', '--pack-destination', destination, '--json'], { cwd: LIB_DIR });
  // npm may print lifecycle output before its JSON.
  const report = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string }>;
  if (report.length !== 1) throw new Error(`npm pack reported ${report.length} packages:\n${stdout}`);
  const tarball = path.join(destination, report[0].filename);
  return { tarball, files: await tarballFiles(tarball) };
}

/** The files in a package tarball, as tar lists them. */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tzf', tarball], { cwd: path.dirname(tarball) });
  return stdout
    .split('\n')
    .filter((line) => line !== '' && !line.endsWith('/'))
    .map((line) => {
      if (!line.startsWith('package/')) throw new Error(`${tarball}: entry outside package/: ${line}`);
      return line.slice('package/'.length);
    })
    .sort();
}

/** One file of a package tarball, as text. */
export async function readFromTarball(tarball: string, file: string): Promise<string> {
  const { stdout } = await run('tar', ['-xzOf', tarball, `package/${file}`], { cwd: path.dirname(tarball) });
  return stdout;
}
