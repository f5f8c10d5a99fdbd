/**
 * `npm run bench:instructions`: user-space instructions per request, counted by callgrind, and
 * syscalls (and futex calls) per request, counted by strace, for the floor proxy, two Node peers
 * and the sidecar over one fixed load. The peers are what a Node user might pick instead of the
 * sidecar: node:http with an undici Pool (bench/peer-undici.ts) and Fastify 5 with
 * @fastify/http-proxy (bench/peer-fastify.ts), keep-alive to the upstream, the floor's plain header
 * check, no logging.
 * CPU time on a small VM swings too much to settle small differences; these counts repeat within a
 * fraction of a percent (bench/results/ records the runs).
 *
 * Method, per proxy: start it under `valgrind --tool=callgrind --instr-atstart=no` in front of the
 * tiny upstream; send WARMUP requests (V8 tiers up late under valgrind); switch instrumentation on
 * with `callgrind_control -i on`; send COUNTED requests over CONNECTIONS keep-alive connections;
 * switch it off, stop the proxy and read the totals. Syscalls: the same load on a plain process,
 * with `strace -c -f` attached for the counted part only. Kernel work is not in either count.
 *
 * The JWT targets run the sidecar with a trusted issuer (bench/jwt-tokens.ts); one with a list of
 * bearer values sends each request the next value, and the counted part carries on after the
 * warm-up's, so a first-seen token is seen once. Each first fills the verified cache with as many
 * other valid tokens as it holds (a sidecar serving many callers), but for the cached JWT on a
 * cache of one entry, which gets as many more warm-up requests instead: warm-up length moves the
 * counts (V8 is still compiling after 6,000 requests under valgrind), so the JWT targets share one.
 *
 * Needs valgrind and strace (Debian: `apt-get install valgrind strace`).
 * Env knobs: BENCH_WARMUP_REQUESTS [6000], BENCH_COUNTED_REQUESTS [3000], BENCH_LOAD_CONNECTIONS [8],
 * BENCH_CALLGRIND_DIR [unset: a temporary directory, removed]: keep the callgrind files there, for
 * callgrind_annotate; BENCH_TARGETS [all]: a regular expression, only the targets whose name it
 * matches (the tables then go to stdout only). BENCH_QUICK=1: a smoke run that the targets start,
 * proxy and are counted, not a measurement: 200 warm-up and 200 counted requests (the JWT pair too),
 * the knobs above still win, and the tables go to stdout only.
 * Writes bench/results/instructions.md.
 */
import { execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ADDRESSES, NODE_OPTIONS_ENV, SIDECAR_ENV, SIDECAR_NODE_OPTIONS } from '../lib/src/contract';
import { appsNodeVersion } from '../tools/app-node';
import { entryOf, localSidecarEnv } from '../tools/apps';
import { RunningApp, startApp } from '../tools/launcher';
import { REPO_ROOT } from '../tools/repo-root';
import { fixedLoad, fixedLoadWithTokens } from './fixed-load';
import { CACHE_ENTRIES, createJwtFixture, FIRST_SEEN_TOKENS, garbageB64token, garbageJwtShaped, JWT_ISSUER_NAME, sidecarCounted } from './jwt-tokens';
import type { ExpectCounted } from './jwt-tokens';

const QUICK = process.env.BENCH_QUICK === '1';
const WARMUP = envCount('BENCH_WARMUP_REQUESTS', QUICK ? 200 : 6000);
const COUNTED = envCount('BENCH_COUNTED_REQUESTS', QUICK ? 200 : 3000);
const CONNECTIONS = envCount('BENCH_LOAD_CONNECTIONS', 8);
const BUILD = path.join(REPO_ROOT, 'build');
/**
 * The static token and the cached JWT, the pair the 1.15× target compares, are counted over this
 * many: a full cache makes major GCs dearer, and 3,000 requests may hold none of them. (It also
 * spans the cache Map's rehash cycle, about 23,000 hits at 10,000 entries, should a hit write to it.)
 */
const PAIR_COUNTED = QUICK ? COUNTED : 3 * CACHE_ENTRIES;

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
  /** Instead of headers: each request's bearer value, the next of these. */
  readonly tokens?: readonly string[];
  /** Sent before the warm-up, one request each: valid tokens that fill the verified cache. */
  readonly fill?: readonly string[];
  readonly warmup: number;
  readonly counted: number;
  readonly status: number;
  /** On a sidecar: what counts each response in its metrics. */
  readonly expect?: ExpectCounted;
}

const countedBy = (p: RunningApp, t: Target) => (t.expect === undefined ? Promise.resolve(0) : sidecarCounted(`http://${ADDRESSES.loopback}:${p.adminPort}`, t.expect));

/** Every response since `base` was what the target says (its 401 reason, or admitted as that subject). */
async function checkCounted(p: RunningApp, t: Target, base: number): Promise<void> {
  if (t.expect === undefined) return;
  const n = (await countedBy(p, t)) - base;
  const total = t.warmup + t.counted;
  if (n !== total) throw new Error(`${t.name}: ${n} of ${total} responses counted as ${JSON.stringify(t.expect)}: not measuring what it says`);
}

/** The fill, if any, then the warm-up; resolves with the count checkCounted starts from. */
async function warm(p: RunningApp, t: Target): Promise<number> {
  if (t.fill !== undefined) {
    const r = await fixedLoadWithTokens(p.port, t.fill.length, CONNECTIONS, t.fill, 200);
    if (r.unexpected > 0) throw new Error(`${t.name}: ${r.unexpected} of the ${t.fill.length} tokens filling the cache refused`);
  }
  const base = await countedBy(p, t);
  await load(p.port, t, t.warmup);
  return base;
}

/** `total` requests; with a token list, from its `from`-th value on. */
async function load(port: number, t: Target, total: number, from = 0): Promise<void> {
  const r =
    t.tokens === undefined
      ? await fixedLoad(port, total, CONNECTIONS, t.headers, t.status)
      : await fixedLoadWithTokens(port, total, CONNECTIONS, [...t.tokens.slice(from), ...t.tokens.slice(0, from)], t.status);
  if (r.responses !== total || r.unexpected > 0) {
    throw new Error(`${t.name}: ${r.responses}/${total} responses, ${r.unexpected} with a status other than ${t.status}: not measuring what it says`);
  }
}

/**
 * Instructions of V8's optimising compilers (TurboFan, Maglev) in a callgrind file. Under valgrind
 * they are still at work after the warm-up, by an amount that depends on what ran before (a tenth
 * of a proxied request's count, or nearly none), so JWT ratios are taken without them.
 */
function compilerInstructions(file: string): number {
  const out = execFileSync('callgrind_annotate', ['--threshold=100', file], { maxBuffer: 256 * 1024 * 1024 }).toString();
  let sum = 0;
  for (const m of out.matchAll(/^\s*([\d,]+) \([^)]*\)\s+(.*)$/gm)) {
    if (/v8::internal::(compiler|maglev)::/.test(m[2])) sum += Number(m[1].replace(/,/g, ''));
  }
  return sum;
}

async function instructionsPerRequest(t: Target, dir: string): Promise<{ total: number; compiler: number }> {
  const out = path.join(dir, `${t.name.replace(/\W+/g, '-')}.callgrind`);
  const p = await launch(t.name, t.entry, t.env, ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${out}`]);
  try {
    const base = await warm(p, t);
    execFileSync('callgrind_control', ['-i', 'on', String(p.child.pid)], { stdio: 'ignore' });
    await load(p.port, t, t.counted, t.warmup);
    execFileSync('callgrind_control', ['-i', 'off', String(p.child.pid)], { stdio: 'ignore' });
    await checkCounted(p, t, base);
  } finally {
    await p.stop();
  }
  const text = fs.readFileSync(out, 'utf8');
  // "summary:" counts from the start; "totals:" only what ran with instrumentation on.
  const m = /^totals: (\d+)/m.exec(text);
  if (!m) throw new Error(`no totals in ${out}`);
  return { total: Number(m[1]) / t.counted, compiler: compilerInstructions(out) / t.counted };
}

/** Calls in the total row and in the futex row of an `strace -c` summary. */
function straceCalls(summary: string): { total: number; futex: number } {
  // Rows: "% time, seconds, usecs/call, calls, [errors,] syscall"; the last row's name is "total".
  const calls = (name: string) => {
    const row = summary.split('\n').find((l) => l.trim().split(/\s+/).at(-1) === name);
    return row === undefined ? undefined : Number(row.trim().split(/\s+/)[3]);
  };
  const total = calls('total');
  if (total === undefined) throw new Error('no total row in the strace summary');
  return { total, futex: calls('futex') ?? 0 };
}

async function syscallsPerRequest(t: Target, dir: string): Promise<{ syscalls: number; futex: number }> {
  const out = path.join(dir, `${t.name.replace(/\W+/g, '-')}.strace`);
  const p = await launch(t.name, t.entry, t.env);
  try {
    const base = await warm(p, t);
    const strace = spawn('strace', ['-c', '-f', '-o', out, '-p', String(p.child.pid)], { stdio: 'ignore' });
    // strace attaches to every thread before the counted part begins.
    await new Promise((r) => setTimeout(r, 1000));
    await load(p.port, t, t.counted, t.warmup);
    await new Promise<void>((resolve) => {
      strace.once('exit', () => resolve());
      strace.kill('SIGINT');
    });
    await checkCounted(p, t, base);
  } finally {
    await p.stop();
  }
  const { total, futex } = straceCalls(fs.readFileSync(out, 'utf8'));
  return { syscalls: total / t.counted, futex: futex / t.counted };
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
  const keep = process.env.BENCH_CALLGRIND_DIR;
  if (keep !== undefined) fs.mkdirSync(keep, { recursive: true });
  const dir = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-instructions-'));
  const tokensDir = fs.mkdtempSync(path.join(dir, 'tokens-'));
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
  const peerEnv = { PEER_UPSTREAM: upstreamUrl, PEER_TOKEN: token };
  const jwt = createJwtFixture(tokensDir);
  const jwtEnv = { ...sidecarEnv, [SIDECAR_ENV.jwtIssuers]: jwt.issuersEnv };
  const list = (make: () => string) => Array.from({ length: FIRST_SEEN_TOKENS }, make);
  const cached = { authorization: `Bearer ${jwt.mint('RS256')}` };
  // As many distinct valid tokens as the verified cache holds: a sidecar serving many callers.
  const fill = Array.from({ length: CACHE_ENTRIES }, () => jwt.mint('ES256'));
  const asJwt = { subject: JWT_ISSUER_NAME };
  const asStatic = { subject: 'bench' };
  const reason = (r: string) => ({ reason: r });
  const plain = { warmup: WARMUP, counted: COUNTED };
  const jwtTarget = (name: string, what: string, status: number, expect: ExpectCounted, on: { headers: Record<string, string> } | { tokens: string[] }): Target => ({
    name: `jwt sidecar: ${name}`,
    what,
    entry: entryOf('sidecar'),
    env: jwtEnv,
    headers: {},
    ...on,
    fill,
    ...plain,
    status,
    expect,
  });
  const targets: Target[] = [
    { name: 'floor', what: 'node:http keep-alive proxy, plain header check', entry: path.join(BUILD, 'bench', 'floor-proxy.js'), env: { FLOOR_UPSTREAM: upstreamUrl, FLOOR_TOKEN: token }, headers: good, ...plain, status: 200 },
    { name: 'undici peer', what: 'Node peer: node:http + undici Pool, keep-alive, plain header check, no logging', entry: path.join(BUILD, 'bench', 'peer-undici.js'), env: peerEnv, headers: good, ...plain, status: 200 },
    { name: 'fastify peer', what: 'Node peer: Fastify 5 + @fastify/http-proxy, keep-alive, plain header check, no logging', entry: path.join(BUILD, 'bench', 'peer-fastify.js'), env: peerEnv, headers: good, ...plain, status: 200 },
    { name: 'sidecar', what: 'our sidecar: auth, access log, metrics', entry: entryOf('sidecar'), env: sidecarEnv, headers: good, ...plain, status: 200, expect: asStatic },
    { name: 'sidecar 401', what: 'our sidecar, bad token', entry: entryOf('sidecar'), env: sidecarEnv, headers: bad, ...plain, status: 401, expect: reason('invalid_token') },
    // The sidecar with a trusted issuer (ES256 and RS256 keys in a JWKS file).
    { ...jwtTarget('static token', 'the static token, on the sidecar with an issuer', 200, asStatic, { headers: good }), counted: PAIR_COUNTED },
    {
      ...jwtTarget('cached JWT', `one RS256 JWT, verified once, then a cache hit; the cache full (${fmt(CACHE_ENTRIES)} entries)`, 200, asJwt, { headers: cached }),
      counted: PAIR_COUNTED,
    },
    {
      ...jwtTarget('cached JWT, 1-entry cache', 'the same JWT, the only one the sidecar sees', 200, asJwt, { headers: cached }),
      fill: undefined,
      warmup: WARMUP + fill.length,
    },
    jwtTarget('first-seen ES256', 'a new valid ES256 JWT per request', 200, asJwt, { tokens: list(() => jwt.mint('ES256')) }),
    jwtTarget('first-seen RS256', 'a new valid RS256 JWT per request', 200, asJwt, { tokens: list(() => jwt.mint('RS256')) }),
    jwtTarget('bad signature ES256', 'right iss, kid and alg, random signature, distinct per request', 401, reason('jwt_bad_signature'), { tokens: list(() => jwt.badSignature('ES256')) }),
    jwtTarget('bad signature RS256', 'right iss, kid and alg, random signature, distinct per request', 401, reason('jwt_bad_signature'), { tokens: list(() => jwt.badSignature('RS256')) }),
    jwtTarget('garbage b64token', 'random b64token, 32-128 chars, not JWT-shaped, distinct per request', 401, reason('invalid_token'), { tokens: list(garbageB64token) }),
    jwtTarget('garbage JWT-shaped', 'three base64url segments of random bytes, distinct per request', 401, reason('invalid_token'), { tokens: list(garbageJwtShaped) }),
  ];
  if (WARMUP + COUNTED > FIRST_SEEN_TOKENS) throw new Error(`BENCH_WARMUP_REQUESTS + BENCH_COUNTED_REQUESTS must not exceed ${FIRST_SEEN_TOKENS}: a first-seen token would come back`);
  const only = process.env.BENCH_TARGETS === undefined ? undefined : new RegExp(process.env.BENCH_TARGETS);
  const chosen = only === undefined ? targets : targets.filter((t) => only.test(t.name));
  const rows: { t: Target; instructions: number; compiler: number; syscalls: number; futex: number }[] = [];
  try {
    for (const t of chosen) {
      console.error(`${t.name}: counting (callgrind, then strace)`);
      // A failure names its target: a bare ECONNRESET after minutes under valgrind says nothing.
      const measure = async () => ({ ...(await instructionsPerRequest(t, dir)), ...(await syscallsPerRequest(t, dir)) });
      const { total: instructions, compiler, syscalls, futex } = await measure().catch((err: Error) => {
        throw new Error(`${t.name}: ${err.message}`);
      });
      console.error(`${t.name}: ${fmt(instructions)} instructions/request, ${fmt(syscalls, 2)} syscalls/request, ${fmt(futex, 2)} futex/request`);
      rows.push({ t, instructions, compiler, syscalls, futex });
    }
  } finally {
    await upstream.stop();
  }
  // NaN for a target not run (BENCH_TARGETS): its ratios and verdicts then say so.
  const ins = (name: string) => rows.find((r) => r.t.name === name)?.instructions ?? NaN;
  // Without the optimising compilers' share: what the JWT ratios are taken on.
  const net = (name: string) => {
    const r = rows.find((x) => x.t.name === name);
    return r === undefined ? NaN : r.instructions - r.compiler;
  };
  const floor = ins('floor');
  const sidecar = ins('sidecar');
  const reject = ins('sidecar 401');
  const jwtStatic = net('jwt sidecar: static token');
  const rejectNet = net('sidecar 401');
  const ratio = (x: number, digits: number) => (Number.isNaN(x) ? 'not run' : `${fmt(x, digits)}×`);
  const verdict = (x: number, limit: number) => (Number.isNaN(x) ? 'not run' : x <= limit ? 'met' : '**missed**');
  const cachedRatio = net('jwt sidecar: cached JWT') / jwtStatic;
  const cachedAloneRatio = net('jwt sidecar: cached JWT, 1-entry cache') / jwtStatic;
  const lines = [
    ...(QUICK ? ['**Smoke run (BENCH_QUICK=1): the targets start, proxy and are counted; the figures are not a measurement.**', ''] : []),
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, the proxies on Node ${appsNodeVersion().slice(1)} (this script on ${process.version}), ${execFileSync('valgrind', ['--version']).toString().trim()}.`,
    `Method: ${fmt(WARMUP)} warm-up requests, then ${fmt(COUNTED)} counted, over ${CONNECTIONS} keep-alive connections, against a tiny node:http upstream. ` +
      `Instructions: callgrind (user space, all threads of the proxy). Syscalls: strace -c -f over the counted part. Production settings: info logs, metrics on. ` +
      `Node peers (on the sidecar's Node): keep-alive to the upstream with their libraries' defaults, the floor's plain header check, no logging, no metrics. ` +
      `The JWT targets first fill the verified cache with ${fmt(fill.length)} other valid tokens (the 1-entry cache target: ${fmt(fill.length)} more warm-up requests instead). ` +
      `The static token and the cached JWT on the JWT sidecar are counted over ${fmt(PAIR_COUNTED)} requests.`,
    '',
    '| proxy | what | instructions/request | × floor | of which V8 compiling | syscalls/request | futex/request |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.t.name} | ${r.t.what} | ${fmt(r.instructions)} | ${fmt(r.instructions / floor, 2)} | ${fmt(r.compiler)} | ${fmt(r.syscalls, 2)} | ${fmt(r.futex, 2)} |`),
    '',
    '| target | measured | verdict |',
    '|---|---|---|',
    `| instructions per proxied request ≤ 1.25× floor (stretch 1.1×) | ${ratio(sidecar / floor, 3)} | ${verdict(sidecar / floor, 1.25)}${sidecar / floor <= 1.1 ? ' (stretch met)' : ''} |`,
    `| 401 ≤ 0.5× a proxied request | ${ratio(reject / sidecar, 2)} | ${verdict(reject / sidecar, 0.5)} |`,
    `| cached JWT per proxied request ≤ 1.15× the static token (same sidecar, full cache; without V8 compiling) | ${ratio(cachedRatio, 3)} | ${verdict(cachedRatio, 1.15)} |`,
    `| the same, on a cache of one entry | ${ratio(cachedAloneRatio, 3)} | ${verdict(cachedAloneRatio, 1.15)} |`,
    '',
    'JWT targets without V8 compiling, against the static token on the same sidecar and against the static-token 401 (`sidecar 401`):',
    '',
    '| JWT target | instructions/request without V8 compiling | × static token | × static 401 | syscalls/request | futex/request |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows
      .filter((r) => r.t.name.startsWith('jwt sidecar: '))
      .map((r) => {
        const n = r.instructions - r.compiler;
        return `| ${r.t.name.replace('jwt sidecar: ', '')} | ${fmt(n)} | ${ratio(n / jwtStatic, 3)} | ${ratio(n / rejectNet, 2)} | ${fmt(r.syscalls, 2)} | ${fmt(r.futex, 2)} |`;
      }),
  ];
  const text = lines.join('\n') + '\n';
  process.stdout.write('\n' + text);
  if (only === undefined && !QUICK) {
    const results = path.join(REPO_ROOT, 'bench', 'results');
    fs.mkdirSync(results, { recursive: true });
    fs.writeFileSync(path.join(results, 'instructions.md'), `# Instructions per request, ${new Date().toISOString().slice(0, 10)}\n\n${text}`);
  }
  if (keep === undefined) fs.rmSync(dir, { recursive: true, force: true });
  else fs.rmSync(tokensDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
