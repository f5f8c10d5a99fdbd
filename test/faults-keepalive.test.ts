/**
 * Keep-alive reuse against a main service that closes idle connections at its keep-alive timeout.
 * The sidecar must drop pooled sockets first (its idle timeout is shorter), so it never writes a
 * request onto a socket the main service is closing: no 502 in 20 rounds whose pauses straddle both timeouts.
 * The two timeouts are 900 ms apart, so a sidecar whose timers a busy machine delays still expires first.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { MAIN_ENV, SIDECAR_ENV } from '../lib/src/contract';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { EVENT_TIMEOUT_MS } from '../tools/waits';
import { closedPort, sleep, tempDir } from './support/http';

const TOKEN = 'faults-keepalive-token-0123456789';
const MAIN_KEEPALIVE_MS = 1_200;
const SIDECAR_IDLE_MS = 300;
/** Rounds of bursts and pauses: a count, not a stretch of time, so a busy machine runs all of them (about 20 s idle). */
const ROUNDS = 20;
const CLIENTS = 16;

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** TCP connections in TIME_WAIT, by which end of `port` they sit on. The end that closed first holds the TIME_WAIT. */
function timeWaits(port: number): { closedByServer: number; closedByClient: number } {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let closedByServer = 0;
  let closedByClient = 0;
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== '06') continue;
    if (f[1].endsWith(`:${hexPort}`)) closedByServer++;
    else if (f[2].endsWith(`:${hexPort}`)) closedByClient++;
  }
  return { closedByServer, closedByClient };
}

interface Outcome {
  readonly status?: number;
  readonly error?: string;
}

function get(port: number, agent: http.Agent): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ status: res.statusCode, error: err.code ?? err.message }));
    });
    req.setTimeout(EVENT_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('hung'), { code: 'HUNG' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

it(
  'never answers 502 from reusing a pooled socket the main service is closing',
  async () => {
    const mainPort = await closedPort();
    const before = timeWaits(mainPort);
    const main = await startApp('main', {
      env: { [MAIN_ENV.port]: String(mainPort), [MAIN_ENV.host]: '127.0.0.1', [MAIN_ENV.keepAliveTimeoutMs]: String(MAIN_KEEPALIVE_MS) },
      discardOutputAfterStart: true,
    });
    cleanups.push(() => main.stop('SIGKILL'));
    const tokens = tempDir('faults-keepalive-');
    cleanups.push(tokens.cleanup);
    fs.writeFileSync(path.join(tokens.dir, 'load'), TOKEN);
    const sidecar: RunningApp = await startApp('sidecar', {
      env: {
        ...localSidecarEnv(`http://127.0.0.1:${mainPort}`, tokens.dir),
        [SIDECAR_ENV.upstreamIdleTimeoutMs]: String(SIDECAR_IDLE_MS),
        [SIDECAR_ENV.drainDelayMs]: '0',
      },
      discardOutputAfterStart: true,
    });
    cleanups.push(() => sidecar.stop('SIGKILL'));

    const tally: Record<string, number> = {};
    // Each client keeps its own connection to the sidecar; the sidecar's pool serves them all.
    // The clients move in rounds: all burst together (so the pool grows to one upstream socket per
    // client), then all pause for the same time. A pause past the sidecar's idle timeout expires the
    // whole pool at once; a shorter one reuses it. Clients pausing independently drift apart, the
    // pool shrinks to a few sockets reused back to back, and whether any expire becomes chance.
    const agents = Array.from({ length: CLIENTS }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        agents.map(async (agent) => {
          const burst = 1 + Math.floor(Math.random() * 3);
          const outcomes = await Promise.all(Array.from({ length: burst }, () => get(sidecar.port, agent)));
          for (const o of outcomes) {
            const key = o.error === undefined ? String(o.status) : `${o.status ?? '-'}:${o.error}`;
            tally[key] = (tally[key] ?? 0) + 1;
          }
        }),
      );
      // Pauses from below the sidecar's idle timeout to above the main service's.
      await sleep(SIDECAR_IDLE_MS - 150 + Math.random() * (MAIN_KEEPALIVE_MS - SIDECAR_IDLE_MS + 350));
    }
    for (const agent of agents) agent.destroy();

    const total = Object.values(tally).reduce((a, b) => a + b, 0);
    // At least one request per client and round.
    expect(total).toBeGreaterThanOrEqual(ROUNDS * CLIENTS);
    expect(tally).toEqual({ '200': total });

    // Pooled sockets were reused and expired: the sidecar closed them; main never had to close an idle one.
    const after = timeWaits(mainPort);
    expect(after.closedByClient - before.closedByClient).toBeGreaterThan(CLIENTS);
    expect(after.closedByClient - before.closedByClient).toBeLessThan(total);
    expect(after.closedByServer - before.closedByServer).toBe(0);
  },
  // Idle about 20 s; the bound is for a hang, and a busy machine takes several times as long.
  240_000,
);
