/**
 * `npm run bench:instructions`: user-space instructions per request, counted by callgrind, and
 * syscalls per request, counted by strace, for the floor proxy and the sidecar over one fixed load.
 * CPU time on a small VM swings too much to settle small differences; these counts repeat within a
 * fraction of a percent (bench/results/ records the runs).
 *
 * Method, per proxy: start it under `valgrind --tool=callgrind --instr-atstart=no` in front of the
 * tiny upstream; send WARMUP requests (V8 tiers up late under valgrind); switch instrumentation on
 * with `callgrind_control -i on`; send COUNTED requests over CONNECTIONS keep-alive connections;
 * switch it off, stop the proxy and read the totals. Syscalls: the same load on a plain process,
 * with `strace -c -f` attached for the counted part only. Kernel work is not in either count.
 *
 * Needs valgrind and strace (Debian: `apt-get install valgrind strace`).
 * Env knobs: BENCH_WARMUP_REQUESTS [6000], BENCH_COUNTED_REQUESTS [3000], BENCH_LOAD_CONNECTIONS [8].
 * Writes bench/results/instructions.md.
 */
import { execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ADDRESSES, NODE_OPTIONS_ENV, SIDECAR_ENV, SIDECAR_NODE_OPTIONS } from '../lib/src/contract';
import { entryOf, localSidecarEnv } from '../tools/apps';
import { RunningApp, startApp } from '../tools/launcher';
import { REPO_ROOT } from '../tools/repo-root';
import { fixedLoad } from './fixed-load';

const WARMUP = envCount('BENCH_WARMUP_REQUESTS', 6000);
const COUNTED = envCount('BENCH_COUNTED_REQUESTS', 3000);
const CONNECTIONS = envCount('BENCH_LOAD_CONNECTIONS', 8);
const BUILD = path.join(REPO_ROOT, 'build');

function envCount(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

/** Start a bench process and wait for its "listening" line; under valgrind that takes a while. */
function launch(name: string, entry: string, env: Record<string, string>, wrapper?: readonly string[]): Promise<RunningApp> {
  return startApp(name, { entry, env, wrapper, timeoutMs: 120_000, discardOutputAfterStart: true });
}

interface Target {
  readonly name: string;
  readonly what: string;
  readonly entry: string;
  readonly env: Record<string, string>;
  readonly headers: Record<string, string>;
  readonly status: number;
}

async function load(port: number, t: Target, total: number): Promise<void> {
  const r = await fixedLoad(port, total, CONNECTIONS, t.headers, t.status);
  if (r.responses !== total || r.unexpected > 0) {
    throw new Error(`${t.name}: ${r.responses}/${total} responses, ${r.unexpected} with a status other than ${t.status}: not measuring what it says`);
  }
}

async function instructionsPerRequest(t: Target, dir: string): Promise<number> {
  const out = path.join(dir, `${t.name.replace(/\W+/g, '-')}.callgrind`);
  const p = await launch(t.name, t.entry, t.env, ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${out}`]);
  try {
    await load(p.port, t, WARMUP);
    execFileSync('callgrind_control', ['-i', 'on', String(p.child.pid)], { stdio: 'ignore' });
    await load(p.port, t, COUNTED);
    execFileSync('callgrind_control', ['-i', 'off', String(p.child.pid)], { stdio: 'ignore' });
  } finally {
    await p.stop();
  }
  const text = fs.readFileSync(out, 'utf8');
  // "summary:" counts from the start; "totals:" only what ran with instrumentation on.
  const m = /^totals: (\d+)/m.exec(text);
  if (!m) throw new Error(`no totals in ${out}`);
  return Number(m[1]) / COUNTED;
}

async function syscallsPerRequest(t: Target, dir: string): Promise<number> {
  const out = path.join(dir, `${t.name.replace(/\W+/g, '-')}.strace`);
  const p = await launch(t.name, t.entry, t.env);
  try {
    await load(p.port, t, WARMUP);
    const strace = spawn('strace', ['-c', '-f', '-o', out, '-p', String(p.child.pid)], { stdio: 'ignore' });
    // strace attaches to every thread before the counted part begins.
    await new Promise((r) => setTimeout(r, 1000));
    await load(p.port, t, COUNTED);
    await new Promise<void>((resolve) => {
      strace.once('exit', () => resolve());
      strace.kill('SIGINT');
    });
  } finally {
    await p.stop();
  }
  // The summary's last row: "% time, seconds, usecs/call, calls, [errors,] total".
  const total = fs.readFileSync(out, 'utf8').split('\n').find((l) => /\stotal$/.test(l));
  if (total === undefined) throw new Error(`no total in ${out}`);
  return Number(total.trim().split(/\s+/)[3]) / COUNTED;
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  for (const tool of ['valgrind', 'callgrind_control', 'strace']) {
    try {
      execFileSync('which', [tool], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is not installed (Debian: apt-get install valgrind strace)`);
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-instructions-'));
  const tokensDir = path.join(dir, 'tokens');
  fs.mkdirSync(tokensDir);
  const token = crypto.randomBytes(32).toString('hex');
  fs.writeFileSync(path.join(tokensDir, 'bench'), token);
  const good = { authorization: `Bearer ${token}` };
  const bad = { authorization: `Bearer ${crypto.randomBytes(32).toString('hex')}` };
  const upstream = await launch('tiny-upstream', path.join(BUILD, 'bench', 'tiny-upstream.js'), {});
  const upstreamUrl = `http://${ADDRESSES.loopback}:${upstream.port}`;
  const sidecarEnv = {
    ...localSidecarEnv(upstreamUrl, tokensDir),
    [SIDECAR_ENV.logLevel]: 'info',
    [SIDECAR_ENV.drainDelayMs]: '0',
    [NODE_OPTIONS_ENV]: SIDECAR_NODE_OPTIONS,
  };
  const targets: Target[] = [
    { name: 'floor', what: 'node:http keep-alive proxy, plain header check', entry: path.join(BUILD, 'bench', 'floor-proxy.js'), env: { FLOOR_UPSTREAM: upstreamUrl, FLOOR_TOKEN: token }, headers: good, status: 200 },
    { name: 'sidecar', what: 'our sidecar: auth, access log, metrics', entry: entryOf('sidecar'), env: sidecarEnv, headers: good, status: 200 },
    { name: 'sidecar 401', what: 'our sidecar, bad token', entry: entryOf('sidecar'), env: sidecarEnv, headers: bad, status: 401 },
  ];
  const rows: { t: Target; instructions: number; syscalls: number }[] = [];
  try {
    for (const t of targets) {
      const instructions = await instructionsPerRequest(t, dir);
      const syscalls = await syscallsPerRequest(t, dir);
      console.error(`${t.name}: ${fmt(instructions)} instructions/request, ${fmt(syscalls, 2)} syscalls/request`);
      rows.push({ t, instructions, syscalls });
    }
  } finally {
    await upstream.stop();
  }
  const floor = rows[0].instructions;
  const sidecar = rows[1].instructions;
  const lines = [
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}, ${execFileSync('valgrind', ['--version']).toString().trim()}.`,
    `Method: ${fmt(WARMUP)} warm-up requests, then ${fmt(COUNTED)} counted, over ${CONNECTIONS} keep-alive connections, against a tiny node:http upstream. ` +
      `Instructions: callgrind (user space, all threads of the proxy). Syscalls: strace -c -f over the counted part. Production settings: info logs, metrics on.`,
    '',
    '| proxy | what | instructions/request | × floor | syscalls/request |',
    '|---|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.t.name} | ${r.t.what} | ${fmt(r.instructions)} | ${fmt(r.instructions / floor, 2)} | ${fmt(r.syscalls, 2)} |`),
    '',
    '| target | measured | verdict |',
    '|---|---|---|',
    `| instructions per proxied request ≤ 1.25× floor (stretch 1.1×) | ${fmt(sidecar / floor, 3)}× | ${sidecar / floor <= 1.25 ? 'met' : '**missed**'}${sidecar / floor <= 1.1 ? ' (stretch met)' : ''} |`,
    `| 401 ≤ 0.5× a proxied request | ${fmt(rows[2].instructions / sidecar, 2)}× | ${rows[2].instructions / sidecar <= 0.5 ? 'met' : '**missed**'} |`,
  ];
  const text = lines.join('\n') + '\n';
  process.stdout.write('\n' + text);
  const results = path.join(REPO_ROOT, 'bench', 'results');
  fs.mkdirSync(results, { recursive: true });
  fs.writeFileSync(path.join(results, 'instructions.md'), `# Instructions per request, ${new Date().toISOString().slice(0, 10)}\n\n${text}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
