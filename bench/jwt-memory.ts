/**
 * Heap per cached verdict, against the estimate the cache budgets with (jwtCacheEntryBytes): for a
 * few verdict shapes, fill a verifier's cache with N distinct HS256 tokens and compare the heap
 * grown (after a full GC) per entry with the estimate per entry. The estimate must stay above.
 * Its own process: run `node --expose-gc build/bench/jwt-memory.js` (a shared jest worker's heap is
 * not a measurement). Env: JWT_MEMORY_TOKENS [20000]. Prints a markdown table.
 */
import { createHmac } from 'crypto';
import { createJwtVerifier } from '../apps/sidecar/src/jwt/verify';
import { importHmacSecret } from '../apps/sidecar/src/jwt/keys';
import { parseJwtIssuers } from '../lib/src/contract';

const ISS = 'https://idp.bench.invalid';
const SECRET = Buffer.alloc(32, 7);
const b64 = (s: string) => Buffer.from(s).toString('base64url');
const HEADER = b64('{"alg":"HS256","typ":"JWT"}');

function mint(payload: Record<string, unknown>): string {
  const body = `${HEADER}.${b64(JSON.stringify(payload))}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

interface Shape {
  readonly name: string;
  readonly forwardClaims: readonly string[];
  readonly routeClaims: readonly string[];
  readonly payload: (n: number) => Record<string, unknown>;
}

const SHAPES: Shape[] = [
  { name: 'subject only', forwardClaims: [], routeClaims: [], payload: (n) => ({ sub: `user-${n}` }) },
  {
    name: 'a fat payload, nothing kept',
    forwardClaims: [],
    routeClaims: [],
    payload: (n) => ({ sub: `user-${n}`, name: `User Number ${n}`, email: `user-${n}@example.com`, groups: Array.from({ length: 20 }, (_, i) => `group-${i}-${n}`), scope: 'openid profile email offline_access' }),
  },
  { name: 'two forwarded claims', forwardClaims: ['team', 'tier'], routeClaims: [], payload: (n) => ({ sub: `user-${n}`, team: `team-${n % 100}`, tier: 'gold' }) },
  { name: 'a routed list of 5', forwardClaims: [], routeClaims: ['groups'], payload: (n) => ({ sub: `user-${n}`, groups: Array.from({ length: 5 }, (_, i) => `g${i}-${n}`) }) },
];

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('run with node --expose-gc');
  collect();
  collect();
}

function measure(shape: Shape, count: number): { heapPerEntry: number; estimatePerEntry: number } {
  const parsed = parseJwtIssuers(JSON.stringify([{ name: 'idp', issuer: ISS, audiences: ['api'], hmacSecretFile: '/s', algorithms: ['HS256'], ...(shape.forwardClaims.length > 0 ? { forwardClaims: shape.forwardClaims } : {}) }]));
  if (!parsed.ok) throw new Error(parsed.problem);
  const keys = importHmacSecret(SECRET, ['HS256']);
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const tokens = Array.from({ length: count }, (_, n) => mint({ iss: ISS, aud: 'api', exp, ...shape.payload(n) }));
  const v = createJwtVerifier({ issuers: parsed.value, keys: () => keys, cacheBytes: 1024 * 1024 * 1024, routeClaims: new Map([['idp', shape.routeClaims]]) });
  gc();
  const before = process.memoryUsage().heapUsed;
  for (const t of tokens) if (v.verify(t)?.ok !== true) throw new Error('a bench token was refused');
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  // Read after the measurement: otherwise V8 may collect the tokens (no longer used) and count that.
  if (v.cacheSize() !== count || tokens.length !== count) throw new Error(`cached ${v.cacheSize()} of ${count}`);
  return { heapPerEntry: grown / count, estimatePerEntry: v.cacheBytes() / count };
}

function main(): void {
  const count = Number(process.env.JWT_MEMORY_TOKENS ?? 20_000);
  const rows = SHAPES.map((s) => ({ s, ...measure(s, count) }));
  process.stdout.write(`| verdict shape (${count} distinct tokens) | heap per entry (B) | estimate per entry (B) |\n|---|---:|---:|\n`);
  for (const r of rows) process.stdout.write(`| ${r.s.name} | ${Math.round(r.heapPerEntry)} | ${Math.round(r.estimatePerEntry)} |\n`);
  const under = rows.filter((r) => r.estimatePerEntry < r.heapPerEntry);
  if (under.length > 0) {
    process.stderr.write(`the estimate is below the heap for: ${under.map((r) => r.s.name).join(', ')}\n`);
    process.exitCode = 1;
  }
}

main();
