/**
 * What the sidecar's file sources say and do when nothing of theirs changed (issue 18 §3):
 *  - a skipped token file is warned about once, not on every poll of a directory that keeps failing;
 *  - a JWKS file is reloaded when it changes, not when a sibling in its directory does (a log
 *    written beside it made a loop);
 *  - a JWKS with more keys than the bound is refused whole, and the error says so with the figures.
 * The real sidecar runs as a child process; deadlines are the busy-machine defaults.
 */
import * as fs from 'fs';
import * as path from 'path';
import { exportJWK, generateKeyPair } from 'jose';
import { HEALTH_PATHS, SIDECAR_ENV } from '../lib/src/contract';
import { JwksFileStore, importJwks } from '../apps/sidecar/src/jwt/keys';
import type { Logger } from '../apps/sidecar/src/log';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { eventually, request, sleep, tempDir } from './support/http';

/** A JWKS poll this often races the watch for every change: the case for loading the same bytes once. */
const POLL_MS = 200;

async function metric(app: RunningApp, series: string): Promise<number> {
  const text = (await request(app.adminPort!, { path: HEALTH_PATHS.metrics })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('a skipped token file is warned about once', () => {
  let app: RunningApp;
  let tokens: { dir: string; cleanup: () => void };

  beforeAll(async () => {
    tokens = tempDir('skip-once-');
    // The only entry is a dangling link: the directory holds no valid token, so every poll reads it again.
    fs.symlinkSync(path.join(tokens.dir, 'nowhere'), path.join(tokens.dir, 'broken'));
    app = await startApp('sidecar', { env: { ...localSidecarEnv('http://127.0.0.1:1', tokens.dir), [SIDECAR_ENV.tokensPollIntervalMs]: '50' } });
  });

  afterAll(async () => {
    await app.stop('SIGKILL');
    tokens.cleanup();
  });

  it('over ten failed reloads: one warning for the entry, then one again after it changed', async () => {
    const failures = 'sidecar_token_reloads_total{result="failure"}';
    expect(await eventually(async () => (await metric(app, failures)) >= 10)).toBe(true);
    const skips = () => app.logs().filter((l) => l.msg === 'token file skipped' && l.name === 'broken');
    expect(skips().map((l) => l.reason)).toEqual(['dangling symlink']);
    // Another problem with the same entry is news: warned once more.
    fs.unlinkSync(path.join(tokens.dir, 'broken'));
    fs.mkdirSync(path.join(tokens.dir, 'broken'));
    await app.waitForLog((l) => l.msg === 'token file skipped' && l.name === 'broken' && l.reason === 'is a directory');
    const after = await metric(app, failures);
    expect(await eventually(async () => (await metric(app, failures)) >= after + 10)).toBe(true);
    expect(skips().map((l) => l.reason)).toEqual(['dangling symlink', 'is a directory']);
  });
});

describe('a JWKS file', () => {
  it('reloads when it changes, not when a sibling in its directory does', async () => {
    const tokens = tempDir('jwks-siblings-tokens-');
    const jwksDir = tempDir('jwks-siblings-');
    fs.writeFileSync(path.join(tokens.dir, 'ci'), 'jwks-siblings-static-token-0123456789');
    const jwksOf = async (kid: string) => JSON.stringify({ keys: [{ ...(await exportJWK((await generateKeyPair('ES256')).publicKey)), kid }] });
    const file = path.join(jwksDir.dir, 'jwks.json');
    fs.writeFileSync(file, await jwksOf('k1'));
    const issuers = [{ name: 'idp', issuer: 'https://idp.test', audiences: ['api'], jwksFile: file }];
    const app = await startApp('sidecar', {
      env: { ...localSidecarEnv('http://127.0.0.1:1', tokens.dir), [SIDECAR_ENV.jwtIssuers]: JSON.stringify(issuers), [SIDECAR_ENV.tokensPollIntervalMs]: String(POLL_MS) },
    });
    try {
      const loads = () => app.logs().filter((l) => l.msg === 'JWKS loaded');
      await app.waitForLog((l) => l.msg === 'JWKS loaded');
      // Five writes beside it, each well apart from the watch's debounce, as a log file or another
      // issuer's key set would be written.
      for (let i = 0; i < 5; i++) {
        fs.appendFileSync(path.join(jwksDir.dir, 'sidecar.log'), `line ${i}\n`);
        await new Promise((r) => setTimeout(r, 300));
      }
      fs.writeFileSync(file, await jwksOf('k2'));
      await app.waitForLog((l) => l.msg === 'JWKS loaded' && Array.isArray(l.kids) && l.kids.includes('k2'));
      // The start and the one real change, loaded once; the sibling's writes reloaded nothing. The
      // watch or the poll may see the change first (on a loaded machine the poll can win), but a
      // second load of the same bytes (the other one, or a rerun it asked for) is a no-op.
      await sleep(3 * POLL_MS);
      expect(loads().map((l) => l.kids)).toEqual([['k1'], ['k2']]);
      expect(loads()[0].trigger).toBe('start');
      expect(['change', 'poll']).toContain(loads()[1].trigger);
    } finally {
      await app.stop('SIGKILL');
      tokens.cleanup();
      jwksDir.cleanup();
    }
  });

  it('with more than 100 keys is refused whole, with the count, the bound and the issuer', async () => {
    const jwk = await exportJWK((await generateKeyPair('ES256')).publicKey);
    const keys = (n: number) => JSON.stringify({ keys: Array.from({ length: n }, (_, i) => ({ ...jwk, kid: `k${i}` })) });
    expect((await importJwks(keys(100), () => undefined)).length).toBe(100);
    await expect(importJwks(keys(101), () => undefined)).rejects.toThrow('the JWKS has 101 keys, more than the 100 allowed: the whole set is refused');

    const tokens = tempDir('jwks-many-tokens-');
    const jwksDir = tempDir('jwks-many-');
    fs.writeFileSync(path.join(tokens.dir, 'ci'), 'jwks-many-static-token-0123456789abc');
    const file = path.join(jwksDir.dir, 'jwks.json');
    fs.writeFileSync(file, keys(101));
    const issuers = [{ name: 'idp', issuer: 'https://idp.test', audiences: ['api'], jwksFile: file }];
    const app = await startApp('sidecar', { env: { ...localSidecarEnv('http://127.0.0.1:1', tokens.dir), [SIDECAR_ENV.jwtIssuers]: JSON.stringify(issuers) } });
    try {
      const line = await app.waitForLog((l) => l.msg === "no JWKS keys; refusing this issuer's tokens");
      expect(line).toMatchObject({ issuer: 'idp', reason: 'the JWKS has 101 keys, more than the 100 allowed: the whole set is refused' });
      const ready = await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
      expect(ready.status).toBe(503);
      expect(ready.text()).toContain('issuer "idp": no keys loaded: the JWKS has 101 keys, more than the 100 allowed');
    } finally {
      await app.stop('SIGKILL');
      tokens.cleanup();
      jwksDir.cleanup();
    }
  });
});

describe('a JWKS file store (in-process, real files)', () => {
  it('loads the same bytes once, however many reloads ask for them at once (a poll and the watch race)', async () => {
    const dir = tempDir('jwks-coalesce-');
    const file = path.join(dir.dir, 'jwks.json');
    const jwk = async (kid: string) => JSON.stringify({ keys: [{ ...(await exportJWK((await generateKeyPair('ES256')).publicKey)), kid }] });
    fs.writeFileSync(file, await jwk('k1'));
    const loaded: string[] = [];
    let changes = 0;
    const logger = { info: (o: { trigger: string }, msg: string) => loaded.push(`${msg}:${o.trigger}`), warn: () => undefined } as unknown as Logger;
    const issuer = { name: 'idp', issuer: 'https://idp.test', audiences: ['api'], jwksFile: file } as unknown as ConstructorParameters<typeof JwksFileStore>[0]['issuer'];
    const store = new JwksFileStore({ issuer, pollIntervalMs: 3_600_000, logger, onChange: () => changes++ });
    try {
      await store.start();
      fs.writeFileSync(file, await jwk('k2'));
      // The poll's reload runs; the watch's, asked meanwhile, becomes a rerun of it.
      await Promise.all([store.reload('poll'), store.reload('change'), store.reload('poll')]);
      expect(loaded).toEqual(['JWKS loaded:start', 'JWKS loaded:poll']);
      expect(changes).toBe(2);
    } finally {
      store.close();
      dir.cleanup();
    }
  });
});
