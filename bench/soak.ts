/**
 * `npm run soak`: minutes of high-concurrency traffic through the compiled sidecar, then its figures.
 *
 * Traffic, all at once: autocannon with valid tokens (rotating over several), autocannon with invalid
 * tokens, and WebSocket clients that connect, echo a burst of messages, close and reconnect (some with
 * a bad token, which must get 401). The upstream is this same file in "upstream" mode: HTTP 200 plus a
 * WebSocket echo, so the sidecar's WebSocket proxying is really exercised (apps/main has no WebSocket).
 *
 * Figures: requests, errors for valid tokens (must be 0), 401s for invalid ones, WebSocket messages
 * echoed, the sidecar's RSS and open file descriptors at start and end (after the same idle settle),
 * and its event-loop delay p99 from its own /metrics (prom-client resets the histogram at each scrape,
 * so every scrape gives the p99 of the interval since the previous one).
 *
 * "Start" is measured after a warm-up and an idle settle: V8's heap and JIT grow to their working size in
 * the first seconds, which is not a leak. Pinning on 2+ cores: sidecar on CPU 0; upstream and load on CPU 1.
 *
 * Env knobs [defaults]: SOAK_SECONDS [300], SOAK_WARMUP_SECONDS [30], SOAK_CONNECTIONS [64, a quarter
 * with invalid tokens], SOAK_WS_CLIENTS [16], SOAK_SCRAPE_SECONDS [10].
 * Writes bench/results/soak.md; exits 1 when a check fails.
 *
 * SOAK_LEG=jwt runs the token-diverse leg instead (issue 20 §1): a sidecar with one JWT issuer is sent
 * SOAK_JWT_TOKENS [50000] distinct valid ES256 JWTs, then as many with a bad signature, then as many
 * again of both mixed, SOAK_JWT_CONCURRENCY [16] at a time, each token once; VmRSS is sampled every
 * 100 ms, and each phase's peak is reported with VmHWM. SOAK_JWT_CACHE_BYTES sets the cache budget
 * [the sidecar's default], SOAK_NODE_OPTIONS replaces the contract's SIDECAR_NODE_OPTIONS, and
 * SOAK_MAX_OLD_SPACE_MB adds --max-old-space-size to them [none].
 * Writes bench/results/soak-jwt.md; exits 1 when a valid token is refused or a bad one admitted.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { WebSocket, WebSocketServer } from 'ws';
import { ADDRESSES, HEALTH_PATHS, NODE_OPTIONS_ENV, SIDECAR_ENV, SIDECAR_NODE_OPTIONS } from '../lib/src/contract';
import { localSidecarEnv } from '../tools/apps';
import { createJwtFixture } from './jwt-tokens';
import { RunningApp, startApp } from '../tools/launcher';
import { REPO_ROOT } from '../tools/repo-root';

const ROLE_ENV = 'SOAK_ROLE';
/** Longer than the sidecar's client keep-alive (5 s) and upstream idle timeout (4 s): every idle socket is gone by then. */
const SETTLE_MS = 8_000;
const WS_MESSAGES_PER_CONNECTION = 50;
const VALID_TOKENS = Array.from({ length: 4 }, (_, i) => `soak-valid-${i}-${'k'.repeat(24)}`);
const INVALID_TOKENS = ['soak-invalid-0-xxxxxxxxxxxxxxxxxxxxxxxx', 'soak-valid-0-kkkkkkkkkkkkkkkkkkkkkkkj', 'short'];

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!(n > 0)) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return n;
}

// ---------------------------------------------------------------- upstream mode

function runUpstream(): void {
  const body = 'ok\n';
  const server = http.createServer((req, res) => {
    // Drain any body so the connection stays reusable.
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }).end(body));
  });
  // The sidecar's pool must be the one closing idle sockets (see faults-keepalive.test.ts).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  });
  server.listen(0, ADDRESSES.loopback, () => {
    process.stdout.write(`${JSON.stringify({ msg: 'listening', port: (server.address() as AddressInfo).port })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

// ---------------------------------------------------------------- measurements

/** A line of /proc/<pid>/status. RssAnon is what the memory limit's OOM killer weighs; RssFile is mostly node's own binary, clean pages the kernel can drop. */
function statusKb(pid: number, key: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function get(port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: ADDRESSES.loopback, port, path: urlPath, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

/** Gauges and counters from a Prometheus text exposition, keyed by name{labels}. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

interface Snapshot {
  readonly rssKb: number;
  readonly fds: number;
  readonly heapUsedMb: number;
}

async function snapshot(pid: number, adminPort: number): Promise<Snapshot> {
  const metrics = parseMetrics(await get(adminPort, HEALTH_PATHS.metrics));
  // Sampled after the scrape: its own connection is closed by then.
  await new Promise((r) => setTimeout(r, 200));
  return { rssKb: statusKb(pid, 'VmRSS'), fds: openFds(pid), heapUsedMb: (metrics.get('nodejs_heap_size_used_bytes') ?? NaN) / 2 ** 20 };
}

const percentile = (values: readonly number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};

// ---------------------------------------------------------------- load

interface CannonResult {
  requests: { total: number; average: number };
  latency: { p50: number; p99: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}
type Cannon = (opts: Record<string, unknown>) => Promise<CannonResult>;
// autocannon ships no types; this is the slice we use.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as Cannon;

function cannon(port: number, connections: number, seconds: number, tokens: readonly string[]): Promise<CannonResult> {
  return autocannon({
    url: `http://${ADDRESSES.loopback}:${port}`,
    connections,
    duration: seconds,
    timeout: 10,
    // Each connection cycles through these, so every token is used on every connection.
    requests: tokens.map((t, i) => ({ method: 'GET', path: `/soak/${i}?n=${i}`, headers: { authorization: `Bearer ${t}` } })),
  });
}

interface WsTally {
  connections: number;
  messages: number;
  refused401: number;
  /** Anything that went wrong on a connection with a valid token, or a bad token that got in. */
  errors: number;
  lastError?: string;
}

/** WebSocket clients that connect, echo a burst, close and reconnect until the deadline; every 10th try uses a bad token. */
async function wsLoad(port: number, clients: number, seconds: number): Promise<WsTally> {
  const tally: WsTally = { connections: 0, messages: 0, refused401: 0, errors: 0 };
  const deadline = Date.now() + seconds * 1000;
  const fail = (why: string) => {
    tally.errors++;
    tally.lastError = why;
  };
  const once = (n: number) =>
    new Promise<void>((resolve) => {
      const bad = n % 10 === 9;
      const token = bad ? INVALID_TOKENS[n % INVALID_TOKENS.length] : VALID_TOKENS[n % VALID_TOKENS.length];
      const ws = new WebSocket(`ws://${ADDRESSES.loopback}:${port}/soak/ws`, { headers: { authorization: `Bearer ${token}` }, handshakeTimeout: 10_000 });
      let sent = 0;
      let settled = false;
      const done = (why?: string) => {
        if (settled) return;
        settled = true;
        if (why !== undefined) fail(why);
        ws.terminate();
        resolve();
      };
      const next = () => ws.send(`m${n}-${++sent}`);
      ws.on('unexpected-response', (_req, res) => {
        if (bad && res.statusCode === 401) tally.refused401++;
        else fail(`upgrade answered ${res.statusCode}`);
        res.resume();
        settled = true;
        ws.terminate();
        resolve();
      });
      ws.on('open', () => {
        if (bad) return done('a bad token was upgraded');
        tally.connections++;
        next();
      });
      ws.on('message', (data) => {
        if (data.toString() !== `m${n}-${sent}`) return done('echo mismatch');
        tally.messages++;
        if (sent < WS_MESSAGES_PER_CONNECTION) next();
        else {
          settled = true;
          ws.close(1000);
          ws.once('close', () => resolve());
        }
      });
      ws.on('error', (err) => done(`ws error: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
      ws.on('close', (code) => done(code === 1000 ? undefined : `closed with ${code}`));
    });
  let n = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < deadline) await once(n++);
    }),
  );
  return tally;
}

// ---------------------------------------------------------------- driver

function pinSelf(cpu: string): void {
  try {
    execFileSync('taskset', ['-pc', cpu, String(process.pid)], { stdio: 'ignore' });
  } catch {
    // No taskset: run unpinned.
  }
}

async function runSoak(): Promise<number> {
  const seconds = envNumber('SOAK_SECONDS', 300);
  const warmup = envNumber('SOAK_WARMUP_SECONDS', 30);
  const connections = Math.max(4, Math.round(envNumber('SOAK_CONNECTIONS', 64)));
  const wsClients = Math.round(envNumber('SOAK_WS_CLIENTS', 16));
  const scrapeSeconds = envNumber('SOAK_SCRAPE_SECONDS', 10);
  const pinned = os.cpus().length >= 2;
  const invalidConnections = Math.max(1, Math.round(connections / 4));
  const validConnections = connections - invalidConnections;

  const tokensDir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-tokens-'));
  VALID_TOKENS.forEach((t, i) => fs.writeFileSync(path.join(tokensDir, `soak-${i}`), `${t}\n`));
  const apps: RunningApp[] = [];
  try {
    if (pinned) pinSelf('1');
    const upstream = await startApp('soak-upstream', { entry: __filename, env: { [ROLE_ENV]: 'upstream' }, cpus: pinned ? '1' : undefined });
    apps.push(upstream);
    const sidecar = await startApp('sidecar', {
      env: {
        ...localSidecarEnv(`http://${ADDRESSES.loopback}:${upstream.port}`, tokensDir),
        [SIDECAR_ENV.drainDelayMs]: '0',
        // As the manifest sets it.
        [NODE_OPTIONS_ENV]: SIDECAR_NODE_OPTIONS,
      },
      cpus: pinned ? '0' : undefined,
      // One access line per request, as in production; read and dropped.
      discardOutputAfterStart: true,
    });
    apps.push(sidecar);
    const pid = sidecar.child.pid!;
    const adminPort = sidecar.adminPort!;
    const log = (msg: string) => process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

    const cold = await snapshot(pid, adminPort);
    log(`sidecar pid ${pid} on port ${sidecar.port}; warming up for ${warmup} s`);
    await Promise.all([cannon(sidecar.port, validConnections, warmup, VALID_TOKENS), cannon(sidecar.port, invalidConnections, warmup, INVALID_TOKENS), wsLoad(sidecar.port, wsClients, warmup)]);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const start = await snapshot(pid, adminPort);
    log(`start: RSS ${(start.rssKb / 1024).toFixed(1)} MiB, ${start.fds} fds; soaking for ${seconds} s with ${connections} HTTP connections and ${wsClients} WebSocket clients`);

    // Drop the warm-up's interval from the event-loop histogram.
    await get(adminPort, HEALTH_PATHS.metrics);
    const lagP99: number[] = [];
    const rssSeries: number[] = [];
    let scrapeFailures = 0;
    const scraper = setInterval(() => {
      get(adminPort, HEALTH_PATHS.metrics).then(
        (text) => {
          const m = parseMetrics(text);
          lagP99.push((m.get('nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000);
          rssSeries.push(statusKb(pid, 'VmRSS'));
          if (lagP99.length % 6 === 0) log(`${lagP99.length * scrapeSeconds} s: RSS ${(rssSeries[rssSeries.length - 1] / 1024).toFixed(1)} MiB, event-loop p99 ${lagP99[lagP99.length - 1].toFixed(1)} ms`);
        },
        () => scrapeFailures++,
      );
    }, scrapeSeconds * 1000);
    const began = Date.now();
    const loadBefore = os.loadavg()[0];
    const [valid, invalid, ws] = await Promise.all([
      cannon(sidecar.port, validConnections, seconds, VALID_TOKENS),
      cannon(sidecar.port, invalidConnections, seconds, INVALID_TOKENS),
      wsLoad(sidecar.port, wsClients, seconds),
    ]);
    clearInterval(scraper);
    const loadAfter = os.loadavg()[0];
    const elapsedS = (Date.now() - began) / 1000;
    log(`load done after ${elapsedS.toFixed(0)} s; settling ${SETTLE_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const end = await snapshot(pid, adminPort);
    const peakKb = statusKb(pid, 'VmHWM');
    const alive = sidecar.child.exitCode === null && sidecar.child.signalCode === null;

    const count = (r: CannonResult, code: string) => r.statusCodeStats[code]?.count ?? 0;
    const validErrors = valid.errors + valid.timeouts + valid.non2xx;
    const invalidNot401 = invalid.requests.total - count(invalid, '401') + invalid.errors;
    const rssGrowth = (end.rssKb - start.rssKb) / start.rssKb;
    const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;

    const checks: [string, boolean][] = [
      ['valid-token errors = 0', validErrors === 0],
      ['every invalid-token request got 401', invalidNot401 === 0],
      ['WebSocket errors = 0', ws.errors === 0],
      ['RSS growth ≤ 10 %', rssGrowth <= 0.1],
      ['open fds equal at start and end', end.fds === start.fds],
      ['sidecar still running', alive],
    ];
    const rows: [string, string][] = [
      ['duration', `${elapsedS.toFixed(0)} s (+ ${warmup} s warm-up)`],
      ['load', `${validConnections} HTTP connections with ${VALID_TOKENS.length} valid tokens, ${invalidConnections} with invalid tokens, ${wsClients} WebSocket clients (${WS_MESSAGES_PER_CONNECTION} echoes per connection)`],
      ['requests, valid tokens', `${valid.requests.total} (${Math.round(valid.requests.total / elapsedS)}/s; latency p50 ${valid.latency.p50} ms, p99 ${valid.latency.p99} ms, max ${valid.latency.max} ms)`],
      ['errors, valid tokens', `${validErrors} (connection errors ${valid.errors}, timeouts ${valid.timeouts}, non-2xx ${valid.non2xx})`],
      ['requests, invalid tokens', `${invalid.requests.total}, of which 401: ${count(invalid, '401')}`],
      ['WebSocket connections / messages echoed', `${ws.connections} / ${ws.messages}; bad-token upgrades refused with 401: ${ws.refused401}; errors: ${ws.errors}${ws.lastError ? ` (last: ${ws.lastError})` : ''}`],
      ['sidecar RSS, start → end', `${mib(start.rssKb)} → ${mib(end.rssKb)} (${rssGrowth >= 0 ? '+' : ''}${(rssGrowth * 100).toFixed(1)} %); cold ${mib(cold.rssKb)}, peak ${mib(peakKb)}`],
      ['sidecar heap used, start → end', `${start.heapUsedMb.toFixed(1)} MiB → ${end.heapUsedMb.toFixed(1)} MiB`],
      ['sidecar open fds, start → end', `${start.fds} → ${end.fds}`],
      [
        'sidecar event-loop delay p99',
        `median ${percentile(lagP99, 50).toFixed(1)} ms, worst ${Math.max(...lagP99).toFixed(1)} ms over ${lagP99.length} intervals of ${scrapeSeconds} s${scrapeFailures ? ` (${scrapeFailures} scrapes failed)` : ''}`,
      ],
      ['machine', `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}${pinned ? '; sidecar pinned to CPU 0, load and upstream to CPU 1' : ''}; load average ${loadBefore.toFixed(1)} → ${loadAfter.toFixed(1)}`],
    ];

    const series = [
      `Per ${scrapeSeconds} s interval during the soak:`,
      '',
      `- event-loop delay p99 (ms): ${lagP99.map((v) => v.toFixed(1)).join(', ')}`,
      `- RSS (MiB): ${rssSeries.map((kb) => (kb / 1024).toFixed(1)).join(', ')}`,
    ].join('\n');
    const table = [
      '| figure | value |',
      '|---|---|',
      ...rows.map(([k, v]) => `| ${k} | ${v} |`),
      '',
      '| check | result |',
      '|---|---|',
      ...checks.map(([k, ok]) => `| ${k} | ${ok ? 'pass' : '**FAIL**'} |`),
    ].join('\n');
    process.stdout.write(`\n${table}\n\n${series}\n`);
    const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
    fs.mkdirSync(resultsDir, { recursive: true });
    fs.writeFileSync(
      path.join(resultsDir, 'soak.md'),
      `# Soak run, ${new Date().toISOString()}\n\n\`SOAK_SECONDS=${seconds} npm run soak\`\n\n${table}\n\n${series}\n`,
    );
    return checks.every(([, ok]) => ok) ? 0 : 1;
  } finally {
    for (const app of apps.reverse()) await app.stop();
    fs.rmSync(tokensDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- token-diverse leg

/** Send each token once, `concurrency` at a time over keep-alive connections; the count of each status. */
async function sendEach(port: number, tokens: readonly string[], concurrency: number): Promise<Map<number, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses = new Map<number, number>();
  let next = 0;
  const one = (token: string) =>
    new Promise<void>((resolve) => {
      const req = http.get({ host: ADDRESSES.loopback, port, path: '/soak/jwt', agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', () => {
          statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
          resolve();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
      req.on('error', () => {
        statuses.set(0, (statuses.get(0) ?? 0) + 1);
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < tokens.length) await one(tokens[next++]);
    }),
  );
  agent.destroy();
  return statuses;
}

async function runJwtLeg(): Promise<number> {
  const count = Math.round(envNumber('SOAK_JWT_TOKENS', 50_000));
  const concurrency = Math.round(envNumber('SOAK_JWT_CONCURRENCY', 16));
  const maxOldSpaceMb = process.env.SOAK_MAX_OLD_SPACE_MB;
  const cacheBytes = process.env.SOAK_JWT_CACHE_BYTES;
  const pinned = os.cpus().length >= 2;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-jwt-'));
  const apps: RunningApp[] = [];
  const log = (msg: string) => process.stdout.write(`[soak-jwt ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
  try {
    if (pinned) pinSelf('1');
    const fixture = createJwtFixture(dir);
    const valid = Array.from({ length: count }, () => fixture.mint('ES256'));
    const bad = Array.from({ length: count }, () => fixture.badSignature('ES256'));
    const mixed = Array.from({ length: count }, (_, i) => (i % 2 === 0 ? fixture.mint('ES256') : fixture.badSignature('ES256')));
    const baseOptions = process.env.SOAK_NODE_OPTIONS ?? SIDECAR_NODE_OPTIONS;
    const nodeOptions = maxOldSpaceMb === undefined ? baseOptions : `${baseOptions} --max-old-space-size=${maxOldSpaceMb}`;
    const upstream = await startApp('soak-upstream', { entry: __filename, env: { [ROLE_ENV]: 'upstream' }, cpus: pinned ? '1' : undefined });
    apps.push(upstream);
    const sidecar = await startApp('sidecar', {
      env: {
        [SIDECAR_ENV.port]: '0',
        [SIDECAR_ENV.adminPort]: '0',
        [SIDECAR_ENV.host]: ADDRESSES.loopback,
        [SIDECAR_ENV.upstream]: `http://${ADDRESSES.loopback}:${upstream.port}`,
        [SIDECAR_ENV.jwtIssuers]: fixture.issuersEnv,
        [SIDECAR_ENV.drainDelayMs]: '0',
        ...(cacheBytes === undefined ? {} : { [SIDECAR_ENV.jwtCacheBytes]: cacheBytes }),
        [NODE_OPTIONS_ENV]: nodeOptions,
      },
      cpus: pinned ? '0' : undefined,
      discardOutputAfterStart: true,
    });
    apps.push(sidecar);
    const pid = sidecar.child.pid!;
    const cold = statusKb(pid, 'VmRSS');
    log(`sidecar pid ${pid}, NODE_OPTIONS "${nodeOptions}", cold RSS ${(cold / 1024).toFixed(1)} MiB; ${count} tokens a phase`);
    const rows: [string, string][] = [];
    let failures = 0;
    for (const [phase, tokens, expectOk] of [
      ['distinct valid', valid, count],
      ['bad signature', bad, 0],
      ['mixed', mixed, Math.ceil(count / 2)],
    ] as const) {
      let peak = 0;
      let peakAnon = 0;
      const sample = () => {
        peak = Math.max(peak, statusKb(pid, 'VmRSS'));
        peakAnon = Math.max(peakAnon, statusKb(pid, 'RssAnon'));
      };
      const sampler = setInterval(sample, 100);
      const began = Date.now();
      const statuses = await sendEach(sidecar.port, tokens, concurrency);
      clearInterval(sampler);
      sample();
      const ok = statuses.get(200) ?? 0;
      const refused = statuses.get(401) ?? 0;
      if (ok !== expectOk || refused !== tokens.length - expectOk) failures++;
      const line = `200: ${ok}, 401: ${refused}, other: ${tokens.length - ok - refused}; peak RSS ${(peak / 1024).toFixed(1)} MiB (anonymous ${(peakAnon / 1024).toFixed(1)}, file ${(statusKb(pid, 'RssFile') / 1024).toFixed(1)}), VmHWM ${(statusKb(pid, 'VmHWM') / 1024).toFixed(1)} MiB; ${((Date.now() - began) / 1000).toFixed(0)} s`;
      log(`${phase}: ${line}`);
      rows.push([phase, line]);
    }
    const table = ['| phase | result |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
    const settings = `${count} tokens a phase, ${concurrency} at a time; NODE_OPTIONS "${nodeOptions}"; ${SIDECAR_ENV.jwtCacheBytes} ${cacheBytes ?? 'unset (default)'}; cold RSS ${(cold / 1024).toFixed(1)} MiB; Node ${process.version} driver, ${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)}`;
    process.stdout.write(`\n${settings}\n\n${table}\n`);
    const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
    fs.mkdirSync(resultsDir, { recursive: true });
    fs.writeFileSync(path.join(resultsDir, 'soak-jwt.md'), `# Token-diverse soak leg, ${new Date().toISOString()}\n\n\`SOAK_LEG=jwt npm run soak\`: ${settings}\n\n${table}\n`);
    return failures === 0 ? 0 : 1;
  } finally {
    for (const app of apps.reverse()) await app.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env[ROLE_ENV] === 'upstream') {
  runUpstream();
} else {
  (process.env.SOAK_LEG === 'jwt' ? runJwtLeg() : runSoak()).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
