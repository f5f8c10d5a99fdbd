/**
 * `npm run bench`: the sidecar's CPU cost per request at saturation, against the Node floor proxy,
 * nginx-class figures aside, in one run; plus added latency at a fixed rate and RSS over a long run.
 * JWT scenarios run on a second sidecar with a trusted issuer (bench/jwt-tokens.ts), next to a
 * static token on that same sidecar: a cached JWT, first-seen JWTs, bad signatures and garbage.
 * Its verified cache is filled first, as a sidecar serving many callers has it; a third sidecar,
 * which only ever sees the one cached JWT, gives the same hit on a cache of one entry.
 *
 * Saturation (2 cores): the proxy under test runs alone on CPU 0; wrk (one thread, CONNECTIONS
 * connections) and a tiny node:http upstream (bench/tiny-upstream.ts) share CPU 1. The upstream
 * costs a fraction of the proxy, so the proxy is the bottleneck and runs flat out. A CPU figure is
 * counted only when the proxy was at least 95% busy over the measured window: a proxy that idles
 * pays for wake-ups, not for requests, and its CPU per request says little.
 * Rounds repeat the whole set; tables show medians and every round's figure, so a swing shows.
 * A scenario with a round below 95% runs again in extra rounds at the end, at most EXTRA_ROUNDS of
 * them; what still is not counted is listed in the output and the results file.
 * Beside the floor, two Node peers a Node user might pick instead of the sidecar: node:http with an
 * undici Pool (bench/peer-undici.ts) and Fastify 5 with @fastify/http-proxy (bench/peer-fastify.ts),
 * both keep-alive to the upstream, with the floor's plain header check and no logging.
 * Children are spawned in this process's session (no setsid), so they share its autogroup and
 * `nice` would reach them; nothing here depends on priorities.
 * For a figure that repeats within a fraction of a percent, see `npm run bench:instructions`.
 *
 * A scenario with a token list sends the next value of it with each request (a wrk Lua script);
 * on a sidecar, its metrics must show that every response was what the scenario says (the 401
 * reason, or a JWT admitted under the issuer's name), or the run fails.
 *
 * Needs wrk (Debian: apt-get install wrk). Results go to stdout and bench/results/latest.md.
 * Env knobs (defaults in brackets): BENCH_ROUNDS [3], BENCH_SECONDS [10], BENCH_WARMUP_SECONDS [3],
 * BENCH_CONNECTIONS [32], BENCH_RATE [1000], BENCH_RATE_SECONDS [10], BENCH_SOAK_SECONDS [60],
 * BENCH_EXTRA_ROUNDS [3]. BENCH_QUICK=1: a smoke run that every scenario starts, proxies and is
 * counted, not a measurement: 1 round of 1 s after 1 s of warm-up, 1 s at the fixed rate, a 2 s soak,
 * 1 extra round (the knobs above still win), and nothing written to bench/results/.
 */
import { execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ADDRESSES, NODE_OPTIONS_ENV, SIDECAR_ENV, SIDECAR_NODE_OPTIONS } from '../lib/src/contract';
import { appsNodeVersion } from '../tools/app-node';
import { localSidecarEnv } from '../tools/apps';
import { RunningApp, startApp } from '../tools/launcher';
import { REPO_ROOT } from '../tools/repo-root';
import { fixedLoadWithTokens } from './fixed-load';
import type { ExpectCounted } from './jwt-tokens';
import {
  CACHE_ENTRIES,
  createJwtFixture,
  FIRST_SEEN_TOKENS,
  garbageB64token,
  garbageJwtShaped,
  JWT_ISSUER_NAME,
  sidecarCounted,
  WRK_TOKENS_SCRIPT,
  writeTokenList,
} from './jwt-tokens';

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = envNumber('BENCH_ROUNDS', QUICK ? 1 : 3);
const SECONDS = envNumber('BENCH_SECONDS', QUICK ? 1 : 10);
const WARMUP = envNumber('BENCH_WARMUP_SECONDS', QUICK ? 1 : 3);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 32);
const RATE = envNumber('BENCH_RATE', 1000);
const RATE_SECONDS = envNumber('BENCH_RATE_SECONDS', QUICK ? 1 : 10);
const SOAK_SECONDS = envNumber('BENCH_SOAK_SECONDS', QUICK ? 2 : 60);
/**
 * Extra rounds, at most, for the scenarios with fewer than ROUNDS rounds at BUSY_MIN. Each costs up to
 * a whole round (every scenario's WARMUP + SECONDS), and on a machine busy enough to miss BUSY_MIN
 * this many more times another one is unlikely to count either: the bench must end in a known time.
 */
const EXTRA_ROUNDS = envNumber('BENCH_EXTRA_ROUNDS', QUICK ? 1 : 3, { zeroAllowed: true });
const SERVER_CPU = '0';
const LOAD_CPU = '1';
const BUSY_MIN = 0.95;
const UNDICI_PEER = 'undici peer';
const FASTIFY_PEER = 'fastify peer';
const JWT_STATIC = 'jwt sidecar: static token';
const JWT_CACHED = 'jwt sidecar: cached JWT';
const JWT_CACHED_ALONE = 'jwt sidecar: cached JWT, 1-entry cache';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const BUILD = path.join(REPO_ROOT, 'build');
const versionOf = (pkg: string): string => JSON.parse(fs.readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')).version;
const UNDICI_VERSION = versionOf('undici');
const FASTIFY_VERSION = versionOf('fastify');
const FASTIFY_PROXY_VERSION = versionOf('@fastify/http-proxy');
const baseUrl = (port: number) => `http://${ADDRESSES.loopback}:${port}`;

function envNumber(name: string, fallback: number, { zeroAllowed = false } = {}): number {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (zeroAllowed ? !(Number.isInteger(n) && n >= 0) : !(n > 0)) throw new Error(`${name} must be a ${zeroAllowed ? 'whole number ≥ 0' : 'positive number'}, got "${raw}"`);
  return n;
}

/** utime + stime of a process, in microseconds. */
function cpuMicros(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6;
}

function statusKb(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

interface LoadResult {
  rps: number;
  responses: number;
  non2xx: number;
  errors: number;
}

/**
 * What each request carries: fixed headers, or the next bearer value of a token list file. The
 * list's cursor carries on from one wrk run to the next, past any request left in flight, so a
 * value comes back only after all the others (bench/jwt-tokens.ts FIRST_SEEN_TOKENS says why).
 */
type Load = { headers: Record<string, string>; tokens?: undefined } | { tokens: string; cursor: number; headers?: undefined };

/** wrk's "N requests in …", "Non-2xx or 3xx responses: N", "Socket errors: …" lines. */
async function wrk(url: string, seconds: number, load: Load): Promise<LoadResult> {
  const args = ['-c', LOAD_CPU, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`];
  for (const [k, v] of Object.entries(load.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (load.tokens !== undefined) args.push('-s', wrkScript, url, load.tokens, String(load.cursor));
  else args.push(url);
  const out = await run('taskset', args);
  const responses = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = socketErrors ? socketErrors.slice(1).reduce((n, x) => n + Number(x), 0) : 0;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  if (!Number.isFinite(responses)) throw new Error(`cannot read wrk's output:\n${out}`);
  if (load.tokens !== undefined) load.cursor += responses + CONNECTIONS;
  return { rps, responses, non2xx, errors };
}

/** The wrk script of token lists (bench/jwt-tokens.ts WRK_TOKENS_SCRIPT), written where main puts the lists. */
let wrkScript = '';

interface Scenario {
  name: string;
  what: string;
  server: RunningApp;
  load: Load;
  expectStatus: '2xx' | '401';
  /** On a sidecar: what counts each response in its metrics. */
  expectCounted?: ExpectCounted;
}

interface Sample extends LoadResult {
  cpuPerReqUs: number;
  /** Share of the measured window the proxy spent on CPU. */
  busy: number;
  round: number;
}

const countedBy = (s: Scenario) => sidecarCounted(baseUrl(s.server.adminPort!), s.expectCounted!);

async function measure(s: Scenario, round: number): Promise<Sample> {
  const url = `${baseUrl(s.server.port)}/`;
  await wrk(url, WARMUP, s.load);
  // Read outside the measured window: the admin port is served by the same process.
  const countedBefore = s.expectCounted === undefined ? 0 : await countedBy(s);
  const pid = s.server.child.pid!;
  const before = cpuMicros(pid);
  const began = performance.now();
  const r = await wrk(url, SECONDS, s.load);
  const wallUs = (performance.now() - began) * 1000;
  const cpu = cpuMicros(pid) - before;
  const unexpected = s.expectStatus === '2xx' ? r.non2xx : r.responses - r.non2xx;
  // wrk counts a 401 as "non-2xx"; the 401 scenario expects every response to be one.
  if (unexpected > 0 || r.errors > 0) throw new Error(`${s.name}: ${unexpected} unexpected statuses, ${r.errors} errors: the bench is not measuring what it says`);
  if (s.expectCounted !== undefined) {
    // wrk leaves up to one request per connection unanswered when it stops, and the sidecar may
    // count those of the warm-up after countedBefore was read: at most two per connection either way.
    const counted = (await countedBy(s)) - countedBefore;
    if (Math.abs(counted - r.responses) > 2 * CONNECTIONS) {
      throw new Error(`${s.name}: ${r.responses} responses but ${counted} counted as ${JSON.stringify(s.expectCounted)}: the bench is not measuring what it says`);
    }
  }
  return { ...r, cpuPerReqUs: cpu / r.responses, busy: cpu / wallUs, round };
}

async function fixedRate(port: number, headers: Record<string, string>): Promise<{ p50Us: number; p99Us: number }> {
  const args = ['-c', LOAD_CPU, process.execPath, path.join(BUILD, 'bench', 'fixed-rate.js'), `${baseUrl(port)}/`, String(RATE), String(RATE_SECONDS)];
  for (const [k, v] of Object.entries(headers)) args.push(`${k}: ${v}`);
  const r = JSON.parse(await run('taskset', args));
  if (r.errors > 0 || r.non2xx > 0) throw new Error(`fixed-rate run had ${r.errors} errors and ${r.non2xx} non-2xx`);
  return r;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');

/** Which rounds were below BUSY_MIN, per scenario, and the scenarios left short of ROUNDS counted rounds. */
function notCountedReport(rows: { name: string; samples: Sample[] }[]): string {
  const missed = rows.filter((r) => r.samples.some((x) => x.busy < BUSY_MIN));
  if (missed.length === 0) return `Every round was at least ${BUSY_MIN * 100}% busy: all counted.`;
  const lines = [`Rounds not counted (below ${BUSY_MIN * 100}% busy), after at most ${EXTRA_ROUNDS} extra rounds:`, ''];
  for (const r of missed) {
    const low = r.samples.filter((x) => x.busy < BUSY_MIN).map((x) => `round ${x.round} (${fmt(x.busy * 100, 0)}%)`);
    const counted = r.samples.length - low.length;
    lines.push(`- ${r.name}: ${low.join(', ')}; ${counted} of ${ROUNDS} counted${counted < ROUNDS ? ' (**short**)' : ''}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  try {
    execFileSync('which', ['wrk'], { stdio: 'ignore' });
  } catch {
    throw new Error('wrk is not installed (Debian: apt-get install wrk)');
  }
  const tokensDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tokens-'));
  const token = crypto.randomBytes(32).toString('hex');
  fs.writeFileSync(path.join(tokensDir, 'bench'), token);
  const good = { authorization: `Bearer ${token}` };
  const bad = { authorization: `Bearer ${crypto.randomBytes(32).toString('hex')}` };
  // The JWT material: keys, the JWKS file, the issuer, and lists of distinct bearer values.
  const jwtDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-jwt-'));
  const jwt = createJwtFixture(jwtDir);
  wrkScript = path.join(jwtDir, 'tokens.lua');
  fs.writeFileSync(wrkScript, WRK_TOKENS_SCRIPT);
  const list = (name: string, make: () => string) => ({ tokens: writeTokenList(path.join(jwtDir, `${name}.txt`), FIRST_SEEN_TOKENS, make), cursor: 0 });
  const cachedJwt = { authorization: `Bearer ${jwt.mint('RS256')}` };
  const fill = Array.from({ length: CACHE_ENTRIES }, () => jwt.mint('ES256'));
  const firstSeenEs = list('first-seen-es256', () => jwt.mint('ES256'));
  const firstSeenRs = list('first-seen-rs256', () => jwt.mint('RS256'));
  const badSigEs = list('bad-signature-es256', () => jwt.badSignature('ES256'));
  const badSigRs = list('bad-signature-rs256', () => jwt.badSignature('RS256'));
  const garbage = list('garbage-b64token', garbageB64token);
  const garbageJwt = list('garbage-jwt-shaped', garbageJwtShaped);
  const quiet = { discardOutputAfterStart: true };
  // Access logs go to files: a reader of a line per request on either core would skew the run.
  const logsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-logs-'));
  const logFile = (name: string) => ({ stdoutFile: path.join(logsDir, `${name}.log`) });

  const procs: RunningApp[] = [];
  const started = async (p: Promise<RunningApp>) => {
    const app = await p;
    procs.push(app);
    return app;
  };
  try {
    const upstream = await started(startApp('tiny-upstream', { ...quiet, cpus: LOAD_CPU, entry: path.join(BUILD, 'bench', 'tiny-upstream.js') }));
    const upstreamUrl = baseUrl(upstream.port);
    const floor = await started(
      startApp('floor', { ...quiet, cpus: SERVER_CPU, entry: path.join(BUILD, 'bench', 'floor-proxy.js'), env: { FLOOR_UPSTREAM: upstreamUrl, FLOOR_TOKEN: token } }),
    );
    const peerEnv = { PEER_UPSTREAM: upstreamUrl, PEER_TOKEN: token };
    const undiciPeer = await started(startApp('undici peer', { ...quiet, cpus: SERVER_CPU, entry: path.join(BUILD, 'bench', 'peer-undici.js'), env: peerEnv }));
    const fastifyPeer = await started(startApp('fastify peer', { ...quiet, cpus: SERVER_CPU, entry: path.join(BUILD, 'bench', 'peer-fastify.js'), env: peerEnv }));
    const sidecarEnv = {
      ...localSidecarEnv(upstreamUrl, tokensDir),
      [SIDECAR_ENV.logLevel]: 'info',
      // As the manifest sets it.
      [NODE_OPTIONS_ENV]: SIDECAR_NODE_OPTIONS,
    };
    const sidecar = await started(startApp('sidecar', { ...quiet, ...logFile('sidecar'), cpus: SERVER_CPU, env: sidecarEnv }));
    const expressDesign = await started(
      startApp('express-design', { ...quiet, ...logFile('express-design'), cpus: SERVER_CPU, entry: path.join(BUILD, 'bench', 'express-design.js'), env: sidecarEnv }),
    );

    const jwtSidecar = await started(
      startApp('sidecar', { ...quiet, ...logFile('sidecar-jwt'), cpus: SERVER_CPU, env: { ...sidecarEnv, [SIDECAR_ENV.jwtIssuers]: jwt.issuersEnv } }),
    );
    // A full verified cache: as many distinct valid tokens as it holds.
    const filled = await fixedLoadWithTokens(jwtSidecar.port, fill.length, CONNECTIONS, fill, 200);
    if (filled.unexpected > 0) throw new Error(`filling the verified cache: ${filled.unexpected} of ${fill.length} tokens refused`);
    const jwtAlone = await started(
      startApp('sidecar', { ...quiet, ...logFile('sidecar-jwt-alone'), cpus: SERVER_CPU, env: { ...sidecarEnv, [SIDECAR_ENV.jwtIssuers]: jwt.issuersEnv } }),
    );
    const asJwt = { subject: JWT_ISSUER_NAME };
    const asStatic = { subject: 'bench' };
    const reason = (r: string) => ({ reason: r });

    const scenarios: Scenario[] = [
      { name: 'floor', what: 'node:http keep-alive proxy, plain header check', server: floor, load: { headers: good }, expectStatus: '2xx' },
      { name: UNDICI_PEER, what: 'Node peer: node:http + undici Pool, keep-alive, plain header check, no logging', server: undiciPeer, load: { headers: good }, expectStatus: '2xx' },
      { name: FASTIFY_PEER, what: 'Node peer: Fastify 5 + @fastify/http-proxy, keep-alive, plain header check, no logging', server: fastifyPeer, load: { headers: good }, expectStatus: '2xx' },
      { name: 'sidecar', what: 'our sidecar: auth, access log, metrics', server: sidecar, load: { headers: good }, expectStatus: '2xx', expectCounted: asStatic },
      { name: 'sidecar 401', what: 'our sidecar, bad token', server: sidecar, load: { headers: bad }, expectStatus: '401', expectCounted: reason('invalid_token') },
      { name: 'express design', what: 'same pipeline mounted in Express 5 (rejected design)', server: expressDesign, load: { headers: good }, expectStatus: '2xx' },
      // The JWT sidecar: the sidecar with a trusted issuer (ES256 and RS256 keys in a JWKS file).
      { name: JWT_STATIC, what: 'the static token, on the sidecar with an issuer', server: jwtSidecar, load: { headers: good }, expectStatus: '2xx', expectCounted: asStatic },
      { name: JWT_CACHED, what: `one RS256 JWT, verified once, then a cache hit; the cache full (${fmt(CACHE_ENTRIES)} entries)`, server: jwtSidecar, load: { headers: cachedJwt }, expectStatus: '2xx', expectCounted: asJwt },
      { name: JWT_CACHED_ALONE, what: 'the same JWT, on a sidecar with an issuer that sees no other', server: jwtAlone, load: { headers: cachedJwt }, expectStatus: '2xx', expectCounted: asJwt },
      { name: 'jwt sidecar: first-seen ES256', what: `a new valid ES256 JWT per request (${fmt(FIRST_SEEN_TOKENS)} in a cycle: every one a cache miss)`, server: jwtSidecar, load: firstSeenEs, expectStatus: '2xx', expectCounted: asJwt },
      { name: 'jwt sidecar: first-seen RS256', what: `a new valid RS256 JWT per request (${fmt(FIRST_SEEN_TOKENS)} in a cycle: every one a cache miss)`, server: jwtSidecar, load: firstSeenRs, expectStatus: '2xx', expectCounted: asJwt },
      { name: 'jwt sidecar: bad signature ES256', what: 'right iss, kid and alg, random signature, distinct per request', server: jwtSidecar, load: badSigEs, expectStatus: '401', expectCounted: reason('jwt_bad_signature') },
      { name: 'jwt sidecar: bad signature RS256', what: 'right iss, kid and alg, random signature, distinct per request', server: jwtSidecar, load: badSigRs, expectStatus: '401', expectCounted: reason('jwt_bad_signature') },
      { name: 'jwt sidecar: garbage b64token', what: 'random b64token, 32-128 chars, not JWT-shaped, distinct per request', server: jwtSidecar, load: garbage, expectStatus: '401', expectCounted: reason('invalid_token') },
      { name: 'jwt sidecar: garbage JWT-shaped', what: 'three base64url segments of random bytes, distinct per request', server: jwtSidecar, load: garbageJwt, expectStatus: '401', expectCounted: reason('invalid_token') },
    ];
    const samples = new Map<string, Sample[]>(scenarios.map((s) => [s.name, []]));
    // A round below BUSY_MIN is shown but not counted; up to EXTRA_ROUNDS more make up for it.
    const countedRounds = (s: Scenario) => samples.get(s.name)!.filter((x) => x.busy >= BUSY_MIN).length;
    console.error(`${scenarios.length} scenarios × ${ROUNDS} rounds (+ at most ${EXTRA_ROUNDS} extra) × ${WARMUP + SECONDS} s: at most ${fmt((scenarios.length * (ROUNDS + EXTRA_ROUNDS) * (WARMUP + SECONDS)) / 60, 1)} min at saturation`);
    for (let round = 1; round <= ROUNDS + EXTRA_ROUNDS; round++) {
      const wanted = scenarios.filter((s) => countedRounds(s) < ROUNDS);
      if (round > ROUNDS && wanted.length === 0) break;
      for (const s of round <= ROUNDS ? scenarios : wanted) {
        const r = await measure(s, round);
        samples.get(s.name)!.push(r);
        console.error(`round ${round} ${s.name}: ${fmt(r.rps)} req/s, ${fmt(r.cpuPerReqUs, 1)} µs CPU/req, ${fmt(r.busy * 100, 1)}% busy${r.busy < BUSY_MIN ? ' (not counted)' : ''}`);
      }
    }
    type Latency = { p50Us: number; p99Us: number };
    // The floor runs at the same rate too: it pays the same trips between CPUs as the sidecar,
    // so it shows how much of the added latency any proxy on another core would add.
    const rate = { direct: [] as Latency[], floor: [] as Latency[], sidecar: [] as Latency[] };
    for (let round = 1; round <= ROUNDS; round++) {
      rate.direct.push(await fixedRate(upstream.port, {}));
      rate.floor.push(await fixedRate(floor.port, good));
      rate.sidecar.push(await fixedRate(sidecar.port, good));
      console.error(
        `round ${round} fixed rate: direct p50 ${rate.direct.at(-1)!.p50Us} µs, floor p50 ${rate.floor.at(-1)!.p50Us} µs, sidecar p50 ${rate.sidecar.at(-1)!.p50Us} µs`,
      );
    }

    // RSS over a long run at saturation: the first and last 10 s of SOAK_SECONDS of load.
    const pid = sidecar.child.pid!;
    const rss: number[] = [];
    const sampler = setInterval(() => rss.push(statusKb(pid, 'VmRSS')), 1000);
    await wrk(`${baseUrl(sidecar.port)}/`, SOAK_SECONDS, { headers: good });
    clearInterval(sampler);
    const window = Math.min(10, Math.floor(rss.length / 2));
    const rssFirst = median(rss.slice(0, window)) / 1024;
    const rssLast = median(rss.slice(-window)) / 1024;
    const peakMb = statusKb(pid, 'VmHWM') / 1024;

    const all = (name: string) => samples.get(name)!;
    const counted = (name: string) => all(name).filter((s) => s.busy >= BUSY_MIN);
    const m = (name: string, key: keyof Sample) => median(counted(name).map((s) => s[key]));
    const saturated = (name: string) => counted(name).length > 0;
    const cpuRatio = m('sidecar', 'cpuPerReqUs') / m('floor', 'cpuPerReqUs');
    const rejectRatio = m('sidecar 401', 'cpuPerReqUs') / m('sidecar', 'cpuPerReqUs');
    const cachedRatio = m(JWT_CACHED, 'cpuPerReqUs') / m(JWT_STATIC, 'cpuPerReqUs');
    const cachedAloneRatio = m(JWT_CACHED_ALONE, 'cpuPerReqUs') / m(JWT_STATIC, 'cpuPerReqUs');
    const addedP50 = median(rate.sidecar.map((r) => r.p50Us)) - median(rate.direct.map((r) => r.p50Us));
    const addedP99 = median(rate.sidecar.map((r) => r.p99Us)) - median(rate.direct.map((r) => r.p99Us));
    const growth = (rssLast - rssFirst) / rssFirst;
    const judged = (ok: boolean, names: string[]) => (names.every(saturated) ? verdict(ok) : `not counted: no round at ${BUSY_MIN * 100}% busy`);

    const lines: string[] = [];
    if (QUICK) lines.push('**Smoke run (BENCH_QUICK=1): the scenarios start, proxy and are counted; the figures are not a measurement.**', '');
    lines.push(`Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, the proxies on Node ${appsNodeVersion().slice(1)} (this script on ${process.version}), Linux ${os.release()}.`);
    lines.push(
      `Method: saturation. The proxy under test alone on CPU ${SERVER_CPU}; wrk (1 thread, ${CONNECTIONS} connections) and a tiny node:http upstream on CPU ${LOAD_CPU}. ` +
        `${WARMUP} s warm-up then ${SECONDS} s measured, ${ROUNDS} rounds, medians; a scenario short of ${ROUNDS} rounds at ${BUSY_MIN * 100}% busy runs again in at most ${EXTRA_ROUNDS} extra rounds. CPU per request = utime+stime of the proxy from /proc/<pid>/stat over the measured window / responses; ` +
        `busy = that CPU time / wall time. Sidecar at its production settings: one access line per request, metrics on. ` +
        `Node peers (on the sidecar's Node): node:http + undici ${UNDICI_VERSION} Pool, and Fastify ${FASTIFY_VERSION} + @fastify/http-proxy ${FASTIFY_PROXY_VERSION}; ` +
        `both keep-alive to the upstream with their libraries' defaults, the floor's plain header check, no logging, no metrics. ` +
        `JWT sidecar: the same with a trusted issuer, its verified cache first filled with ${fmt(fill.length)} valid tokens; ` +
        `a token-list scenario sends the next value of a list of ${fmt(FIRST_SEEN_TOKENS)} per request.`,
    );
    lines.push('');
    lines.push(`| scenario | what | requests/s | CPU µs/request (median of rounds ≥ ${BUSY_MIN * 100}% busy) | each round (µs @ busy) | peak RSS MB |`);
    lines.push('|---|---|---:|---:|---|---:|');
    for (const s of scenarios) {
      lines.push(
        `| ${s.name} | ${s.what} | ${fmt(m(s.name, 'rps'))} | ${fmt(m(s.name, 'cpuPerReqUs'), 1)} | ` +
          `${all(s.name).map((x) => `${fmt(x.cpuPerReqUs, 1)} @ ${fmt(x.busy * 100, 0)}%${x.busy >= BUSY_MIN ? '' : ' (not counted)'}`).join(', ')} | ${fmt(statusKb(s.server.child.pid!, 'VmHWM') / 1024, 1)} |`,
      );
    }
    lines.push('');
    lines.push(notCountedReport(scenarios.map((s) => ({ name: s.name, samples: all(s.name) }))));
    lines.push('');
    lines.push('The sidecar beside the floor and the Node peers, from the table above (CPU per proxied request at saturation):');
    lines.push('');
    lines.push('| proxy | CPU µs/request | × floor | sidecar × this |');
    lines.push('|---|---:|---:|---:|');
    for (const name of ['floor', UNDICI_PEER, FASTIFY_PEER, 'sidecar']) {
      const cpu = m(name, 'cpuPerReqUs');
      lines.push(`| ${name} | ${fmt(cpu, 1)} | ${fmt(cpu / m('floor', 'cpuPerReqUs'), 2)}× | ${fmt(m('sidecar', 'cpuPerReqUs') / cpu, 2)}× |`);
    }
    lines.push('');
    lines.push(
      `JWT costs, from the table above. "× static" is against the static token on the JWT sidecar (each round's pair in brackets; the cached JWT's is measured right after it); ` +
        `"× static 401" against the sidecar's static-token 401.`,
    );
    lines.push('');
    lines.push('| JWT scenario | status | responses/s | CPU µs/request | × static | × static 401 |');
    lines.push('|---|---|---:|---:|---:|---:|');
    for (const s of scenarios.filter((x) => x.server === jwtSidecar || x.server === jwtAlone)) {
      const perRound = counted(s.name).flatMap((x) => counted(JWT_STATIC).filter((y) => y.round === x.round).map((y) => x.cpuPerReqUs / y.cpuPerReqUs));
      lines.push(
        `| ${s.name.replace('jwt sidecar: ', '')} | ${s.expectStatus} | ${fmt(m(s.name, 'rps'))} | ${fmt(m(s.name, 'cpuPerReqUs'), 1)} | ` +
          `${fmt(m(s.name, 'cpuPerReqUs') / m(JWT_STATIC, 'cpuPerReqUs'), 2)}×${perRound.length > 0 ? ` (${perRound.map((r) => fmt(r, 2)).join(', ')})` : ''} | ${fmt(m(s.name, 'cpuPerReqUs') / m('sidecar 401', 'cpuPerReqUs'), 2)}× |`,
      );
    }
    lines.push('');
    lines.push(`Fixed rate ${RATE} req/s for ${RATE_SECONDS} s (open loop, µs resolution), medians of ${ROUNDS}; "direct" is the tiny upstream alone:`);
    lines.push('');
    lines.push('| path | p50 µs | p99 µs |');
    lines.push('|---|---:|---:|');
    lines.push(`| direct | ${fmt(median(rate.direct.map((r) => r.p50Us)))} | ${fmt(median(rate.direct.map((r) => r.p99Us)))} |`);
    lines.push(`| floor (for context) | ${fmt(median(rate.floor.map((r) => r.p50Us)))} | ${fmt(median(rate.floor.map((r) => r.p99Us)))} |`);
    lines.push(`| sidecar | ${fmt(median(rate.sidecar.map((r) => r.p50Us)))} | ${fmt(median(rate.sidecar.map((r) => r.p99Us)))} |`);
    lines.push('');
    lines.push('| target | measured | verdict |');
    lines.push('|---|---|---|');
    lines.push(`| sidecar CPU per proxied request at saturation ≤ 1.0× floor | ${fmt(cpuRatio, 2)}× | ${judged(cpuRatio <= 1.0, ['sidecar', 'floor'])} |`);
    for (const peer of [UNDICI_PEER, FASTIFY_PEER]) {
      const r = m('sidecar', 'cpuPerReqUs') / m(peer, 'cpuPerReqUs');
      lines.push(`| sidecar CPU per proxied request below the ${peer}'s | ${fmt(r, 2)}× the ${peer} | ${judged(r < 1, ['sidecar', peer])} |`);
    }
    lines.push(`| 401 CPU ≤ 0.5× proxied request | ${fmt(rejectRatio, 2)}× | ${judged(rejectRatio <= 0.5, ['sidecar', 'sidecar 401'])} |`);
    lines.push(`| cached JWT per proxied request ≤ 1.15× the static token (same sidecar, full cache) | ${fmt(cachedRatio, 3)}× | ${judged(cachedRatio <= 1.15, [JWT_STATIC, JWT_CACHED])} |`);
    lines.push(`| the same, on a cache of one entry | ${fmt(cachedAloneRatio, 3)}× | ${judged(cachedAloneRatio <= 1.15, [JWT_STATIC, JWT_CACHED_ALONE])} |`);
    lines.push(`| added p50 at ${RATE} req/s ≤ 0.5 ms | ${fmt(addedP50 / 1000, 3)} ms | ${verdict(addedP50 <= 500)} |`);
    lines.push(`| added p99 at ${RATE} req/s ≤ 2 ms | ${fmt(addedP99 / 1000, 3)} ms | ${verdict(addedP99 <= 2000)} |`);
    lines.push(`| sidecar peak RSS under load ≤ 96 MB | ${fmt(peakMb, 1)} MB | ${verdict(peakMb <= 96)} |`);
    lines.push(
      `| RSS growth, first vs last 10 s of ${SOAK_SECONDS} s ≤ 10% | ${fmt(rssFirst, 1)} → ${fmt(rssLast, 1)} MB (${fmt(growth * 100, 1)}%) | ${verdict(growth <= 0.1)} |`,
    );
    const text = lines.join('\n') + '\n';
    process.stdout.write('\n' + text);
    if (QUICK) {
      console.error('BENCH_QUICK=1: a smoke run, nothing written to bench/results/');
      return;
    }
    const out = path.join(REPO_ROOT, 'bench', 'results');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'latest.md'), `# Benchmark, ${new Date().toISOString().slice(0, 10)}\n\n` + text);
    console.error(`written to ${path.relative(process.cwd(), path.join(out, 'latest.md'))}`);
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    fs.rmSync(tokensDir, { recursive: true, force: true });
    fs.rmSync(jwtDir, { recursive: true, force: true });
    fs.rmSync(logsDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
