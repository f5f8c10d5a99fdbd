/**
 * `node build/bench/jwt-cache.js` (after `npm run build`): the JWT verifier in process, without
 * HTTP, to tell the verified cache's own cost from the proxy's. Times one verify() of a cache hit
 * with the cache holding one entry and holding CACHE_ENTRIES, and of first-seen tokens
 * while the cache fills and once it is full (each then evicts one). Wall time on a noisy VM, so
 * read the ratios; bench/results/jwt.md records what it showed. Prints a table to stdout.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { importJwks } from '../apps/sidecar/src/jwt/keys';
import { createJwtVerifier } from '../apps/sidecar/src/jwt/verify';
import type { JwtVerifier } from '../apps/sidecar/src/jwt/verify';
import { parseJwtIssuers } from '../lib/src/contract';
import { CACHE_ENTRIES, createJwtFixture } from './jwt-tokens';

const HITS = 100_000;
const ROUNDS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Microseconds per verify() of each token, every one of which must pass. */
function timeVerify(v: JwtVerifier, tokens: readonly string[], times = 1): number {
  const began = process.hrtime.bigint();
  for (let r = 0; r < times; r++) {
    for (const t of tokens) if (v.verify(t)?.ok !== true) throw new Error('a bench token was refused');
  }
  return Number(process.hrtime.bigint() - began) / 1000 / (tokens.length * times);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-jwt-cache-'));
  try {
    const jwt = createJwtFixture(dir);
    const issuers = parseJwtIssuers(jwt.issuersEnv);
    if (!issuers.ok) throw new Error(issuers.problem);
    const keys = await importJwks(fs.readFileSync(path.join(dir, 'jwks.json'), 'utf8'), () => undefined);
    const v = createJwtVerifier({ issuers: issuers.value, keys: () => keys });
    const cached = [jwt.mint('RS256')];
    const fill = Array.from({ length: CACHE_ENTRIES }, () => jwt.mint('ES256'));
    const firstSeen = Array.from({ length: CACHE_ENTRIES + 8_000 }, () => jwt.mint('RS256'));

    // Warm-up, so both paths run optimised code; then an empty cache again.
    timeVerify(v, firstSeen.slice(0, 3_000));
    timeVerify(v, cached, HITS);
    v.clearCache();
    const rows: [string, number][] = [];
    const hits = () => median(Array.from({ length: ROUNDS }, () => timeVerify(v, cached, HITS)));
    rows.push(['cache hit, 1 entry cached', hits()]);
    rows.push(['first-seen RS256, cache filling', timeVerify(v, firstSeen.slice(3_000, 8_000))]);
    v.clearCache();
    timeVerify(v, fill);
    timeVerify(v, cached);
    rows.push([`cache hit, ${CACHE_ENTRIES.toLocaleString('en-US')} entries cached`, hits()]);
    rows.push(['first-seen RS256, cache full (each evicts one)', timeVerify(v, firstSeen.slice(8_000))]);

    const lines = ['| verify() of | µs each |', '|---|---:|', ...rows.map(([what, us]) => `| ${what} | ${us.toFixed(2)} |`)];
    process.stdout.write(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'}\n\n${lines.join('\n')}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
