/**
 * The tokens directory swapped under load, kubelet style, many times: no request may be judged
 * against a half-loaded set.
 *
 * Swaps come in storms of ten, 15 ms apart, then a 200 ms pause, so reloads both race swaps and complete.
 * The two versions hold the same two tokens under swapped names: v-even {x: P, y: Q}, v-odd {x: Q, y: P}.
 * Every whole set accepts both P and Q, under different names. A set mixing the versions holds one
 * token twice and the other not at all, and a set read half-way lacks one: either way P or Q gets a 401.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { FORWARDED_HEADERS, HEALTH_PATHS, SIDECAR_ENV } from '../lib/src/contract';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { EVENT_TIMEOUT_MS } from '../tools/waits';
import { request, sleep, tempDir, until } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';

const P = 'swap-token-P-0123456789abcdef';
const Q = 'swap-token-Q-fedcba9876543210';
const NOT_A_TOKEN = 'swap-token-R-never-valid-00000';
const SWAP_EVERY_MS = 15;
/** Every 10th swap waits this long, past the sidecar's change debounce (100 ms), so some reloads complete between storms. */
const PAUSE_EVERY_10TH_MS = 200;
/** The load runs until all of these have happened, however long a busy machine takes. */
const MIN_VERSIONS = 80;
const MIN_RELOADS = 10;
const MIN_VERDICTS = 500;
/** Only a machine that cannot reach them by then fails the test (naming what was missing). */
const MAX_RUN_MS = 90_000;

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Version n of the Secret. */
const versionFiles = (n: number): Record<string, string> => (n % 2 === 0 ? { x: P, y: Q } : { x: Q, y: P });

/** What the kubelet does on a Secret update: new `..<version>` dir, atomic `..data` rename, old dir removed. */
function publish(dir: string, n: number): void {
  const version = `..v${n}`;
  fs.mkdirSync(path.join(dir, version));
  for (const [name, token] of Object.entries(versionFiles(n))) fs.writeFileSync(path.join(dir, version, name), `${token}\n`);
  const dataLink = path.join(dir, '..data');
  const old = fs.existsSync(dataLink) ? fs.readlinkSync(dataLink) : undefined;
  fs.symlinkSync(version, path.join(dir, '..data_tmp'));
  fs.renameSync(path.join(dir, '..data_tmp'), dataLink);
  for (const name of Object.keys(versionFiles(n))) {
    if (!fs.existsSync(path.join(dir, name))) fs.symlinkSync(path.join('..data', name), path.join(dir, name));
  }
  if (old !== undefined) fs.rmSync(path.join(dir, old), { recursive: true, force: true });
}

interface Verdict {
  readonly token: string;
  readonly status?: number;
  readonly subject?: string;
  readonly error?: string;
}

function send(port: number, agent: http.Agent, token: string): Promise<Verdict> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/whoami', agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        // The test upstream echoes the headers it received, including the subject the sidecar set.
        const subject = res.statusCode === 200 ? JSON.parse(Buffer.concat(chunks).toString('utf8')).headers[FORWARDED_HEADERS.subject] : undefined;
        resolve({ token, status: res.statusCode, subject });
      });
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ token, error: err.code ?? err.message }));
    });
    req.setTimeout(EVENT_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('hung'), { code: 'HUNG' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ token, error: err.code ?? err.message }));
  });
}

async function reloads(sidecar: RunningApp): Promise<Record<string, number>> {
  const text = (await request(sidecar.adminPort!, { path: HEALTH_PATHS.metrics })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^sidecar_token_reloads_total\{result="(\w+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

it('judges every request against one whole token set while the directory is swapped a hundred times and more', async () => {
  const upstream: TestUpstream = await startUpstream();
  cleanups.push(() => upstream.close());
  const tokens = tempDir('faults-tokens-');
  cleanups.push(tokens.cleanup);
  let version = 0;
  publish(tokens.dir, version);

  const sidecar = await startApp('sidecar', {
    env: {
      ...localSidecarEnv(upstream.url, tokens.dir),
      // Poll as often as allowed, on top of the change events: as many reloads as possible race the swaps.
      [SIDECAR_ENV.tokensPollIntervalMs]: '50',
      [SIDECAR_ENV.drainDelayMs]: '0',
    },
    discardOutputAfterStart: true,
  });
  cleanups.push(() => sidecar.stop('SIGKILL'));
  const reloadsBefore = await reloads(sidecar);

  let running = true;
  const swapper = (async () => {
    while (running) {
      await sleep(version % 10 === 9 ? PAUSE_EVERY_10TH_MS : SWAP_EVERY_MS);
      publish(tokens.dir, ++version);
    }
  })();
  const verdicts: Verdict[] = [];
  // Not a fixed wall-clock run: on a busy machine timers slip and fewer swaps, reloads and requests
  // fit in one. The load runs until each has happened as often as the assertions below need.
  const servedAs = (subject: string) => verdicts.some((v) => v.token === P && v.status === 200 && v.subject === subject);
  let reloaded = 0;
  const progress = async () => {
    reloaded = (await reloads(sidecar)).success - reloadsBefore.success;
    return version > MIN_VERSIONS && reloaded > MIN_RELOADS && verdicts.length > MIN_VERDICTS && servedAs('x') && servedAs('y');
  };
  let loading = true;
  const clients = Array.from({ length: 8 }, async (_, i) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let n = 0; loading; n++) {
      const token = n % 10 === 9 ? NOT_A_TOKEN : (n + i) % 2 === 0 ? P : Q;
      verdicts.push(await send(sidecar.port, agent, token));
    }
    agent.destroy();
  });
  try {
    await until(`the swaps, reloads and verdicts to happen (so far ${version} versions, ${reloaded} reloads, ${verdicts.length} verdicts)`, progress, MAX_RUN_MS, 100);
  } finally {
    loading = false;
    await Promise.all(clients);
    running = false;
    await swapper;
  }

  const tally: Record<string, number> = {};
  for (const v of verdicts) {
    const who = v.token === P ? 'P' : v.token === Q ? 'Q' : 'R';
    const key = `${who} ${v.error ?? v.status} ${v.subject ?? ''}`.trim();
    tally[key] = (tally[key] ?? 0) + 1;
  }
  // P and Q always pass, each under one of the two names; the never-valid token never does.
  const allowed = new Set(['P 200 x', 'P 200 y', 'Q 200 x', 'Q 200 y', 'R 401']);
  expect(Object.keys(tally).filter((k) => !allowed.has(k))).toEqual([]);
  expect(verdicts.length).toBeGreaterThan(MIN_VERDICTS);

  // The swaps really reached the sidecar while the load ran: both mappings were served, after many reloads.
  expect(tally['P 200 x']).toBeGreaterThan(0);
  expect(tally['P 200 y']).toBeGreaterThan(0);
  expect(version).toBeGreaterThan(MIN_VERSIONS);
  const reloadsAfter = await reloads(sidecar);
  expect(reloadsAfter.success - reloadsBefore.success).toBeGreaterThan(MIN_RELOADS);

  // Once the swaps stop, the last version is the one in force.
  const finalSubjectOfP = versionFiles(version).x === P ? 'x' : 'y';
  const agent = new http.Agent({ keepAlive: false });
  await until(`P to be served as ${finalSubjectOfP}, the name of the last version`, async () => (await send(sidecar.port, agent, P)).subject === finalSubjectOfP);
}, MAX_RUN_MS + 60_000);
