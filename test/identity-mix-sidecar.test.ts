/**
 * Any identity mix through the real compiled sidecar (issue 19 §2), each a child process on port 0:
 * a JWT-only sidecar (no SIDECAR_TOKENS_DIR) and a service-account-only one get Ready, /readyz names
 * each configured source, a request without a credential counts as `missing`; a sidecar with no
 * source at all refuses to start in one line; a configured source without tokens still fails closed.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { KeyLike } from 'jose';
import { ADDRESSES, HEALTH_PATHS, IN_CLUSTER_ENV, SIDECAR_ENV, encodeJwtIssuers, encodeKubernetesAuth } from '../lib/src/contract';
import { StandInApiServer, startStandInApiServer } from '../tools/pod/kube-api';
import { RunningApp, runToExit, startApp } from './support/apps';
import { request, tempDir } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';

const ISS = 'https://idp.test';
const nowS = () => Math.floor(Date.now() / 1000);

let upstream: TestUpstream;
let api: StandInApiServer;
let dir: { dir: string; cleanup: () => void };
let privateKey: KeyLike;
let jwksFile: string;
const running: RunningApp[] = [];

/** Loopback, ports 0, the upstream; no tokens directory unless the case adds one. */
const baseEnv = (): Record<string, string> => ({
  [SIDECAR_ENV.port]: '0',
  [SIDECAR_ENV.adminPort]: '0',
  [SIDECAR_ENV.host]: ADDRESSES.loopback,
  [SIDECAR_ENV.upstream]: upstream.url,
  [SIDECAR_ENV.drainDelayMs]: '0',
  [SIDECAR_ENV.tokensPollIntervalMs]: '200',
});
const jwtEnv = () => ({ [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers([{ name: 'idp', issuer: ISS, audiences: ['api'], jwksFile }])! });

async function start(env: Record<string, string>): Promise<RunningApp> {
  const app = await startApp('sidecar', { env: { ...baseEnv(), ...env } });
  running.push(app);
  return app;
}

const mint = () => new SignJWT({ iss: ISS, aud: 'api', sub: 'alice', iat: nowS(), exp: nowS() + 300 }).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' }).sign(privateKey);
const readyz = (app: RunningApp) => request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
const metrics = async (app: RunningApp) => (await request(app.adminPort!, { path: HEALTH_PATHS.metrics })).text();
const failures = (text: string, reason: string) => Number(new RegExp(`sidecar_auth_failures_total\\{reason="${reason}"\\} (\\d+)`).exec(text)?.[1] ?? 0);

beforeAll(async () => {
  upstream = await startUpstream();
  api = await startStandInApiServer();
  dir = tempDir('identity-mix-');
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  jwksFile = path.join(dir.dir, 'idp.json');
  fs.writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
});

afterAll(async () => {
  for (const app of running) await app.stop();
  await api?.close();
  await upstream?.close();
  dir?.cleanup();
});

describe('a JWT-only sidecar (no SIDECAR_TOKENS_DIR)', () => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await start(jwtEnv());
  });

  it('is Ready, and /readyz names its one source', async () => {
    const res = await readyz(app);
    expect(res.status).toBe(200);
    expect(res.text()).toBe('ready\njwt:idp: ready\n');
  });

  it('admits a valid JWT and refuses a bearer value that is no JWT as invalid_token', async () => {
    expect((await request(app.port, { path: '/', headers: { authorization: `Bearer ${await mint()}` } })).status).toBe(200);
    const before = failures(await metrics(app), 'invalid_token');
    expect((await request(app.port, { path: '/', headers: { authorization: 'Bearer not-a-jwt-0123456789' } })).status).toBe(401);
    expect(failures(await metrics(app), 'invalid_token')).toBe(before + 1);
  });

  it('counts a request without a credential as missing, not no_tokens_loaded', async () => {
    const before = failures(await metrics(app), 'missing');
    expect((await request(app.port, { path: '/' })).status).toBe(401);
    const text = await metrics(app);
    expect(failures(text, 'missing')).toBe(before + 1);
    expect(failures(text, 'no_tokens_loaded')).toBe(0);
  });

  it('logs no "no valid tokens" line and says which sources it listens with', async () => {
    const listening = await app.waitForLog((l) => l.msg === 'listening');
    expect(listening.credentialSources).toEqual(['jwt:idp']);
    expect(app.lines.some((l) => l.includes('no valid tokens'))).toBe(false);
  });
});

describe('a service-account-only sidecar', () => {
  it('is Ready against the API server, and /readyz names kubernetes', async () => {
    const ownToken = path.join(dir.dir, 'own-token');
    fs.writeFileSync(ownToken, await api.mintToken({ namespace: 'shop', serviceAccount: 'orders' }));
    const app = await start({
      [SIDECAR_ENV.kubernetesAuth]: encodeKubernetesAuth({ audiences: ['orders'], tokenFile: ownToken, caFile: api.caFile })!,
      [IN_CLUSTER_ENV.host]: api.host,
      [IN_CLUSTER_ENV.port]: String(api.port),
    });
    const res = await readyz(app);
    expect(res.status).toBe(200);
    expect(res.text()).toBe('ready\nkubernetes: ready\n');
    const token = await api.mintToken({ namespace: 'shop', serviceAccount: 'frontend', audiences: ['orders'] });
    expect((await request(app.port, { path: '/', headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await request(app.port, { path: '/' })).status).toBe(401);
    expect(failures(await metrics(app), 'missing')).toBe(1);
  });
});

describe('a sidecar with no credential source', () => {
  it('refuses to start with one line naming the three settings', async () => {
    const { code, output } = await runToExit('sidecar', baseEnv());
    const lines = output.trim().split('\n');
    expect({ code, lines: lines.length }).toEqual({ code: 2, lines: 1 });
    expect(lines[0]).toBe(
      'sidecar: SIDECAR_TOKENS_DIR: is required when neither SIDECAR_JWT_ISSUERS nor SIDECAR_KUBERNETES_AUTH is set (the sidecar would have no credential source): the directory holding one file per token',
    );
  });
});

describe('a configured source with no tokens still fails closed', () => {
  it('static tokens beside a JWT issuer, with an empty directory: 503 naming tokens, JWTs admitted, a request without a credential is missing', async () => {
    const tokens = path.join(dir.dir, 'empty-tokens');
    fs.mkdirSync(tokens);
    const app = await start({ ...jwtEnv(), [SIDECAR_ENV.tokensDir]: tokens });
    const res = await readyz(app);
    expect(res.status).toBe(503);
    expect(res.text()).toBe('no tokens loaded: directory holds no valid token\ntokens: no tokens loaded: directory holds no valid token\njwt:idp: ready\n');
    const logged = await app.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('no valid tokens'));
    expect(logged.msg).toBe('no valid tokens; refusing every static token (the other credential sources still authenticate)');
    expect((await request(app.port, { path: '/', headers: { authorization: `Bearer ${await mint()}` } })).status).toBe(200);
    expect((await request(app.port, { path: '/' })).status).toBe(401);
    expect((await request(app.port, { path: '/', headers: { authorization: 'Bearer static-0123456789abcdef' } })).status).toBe(401);
    const text = await metrics(app);
    expect(failures(text, 'missing')).toBe(1);
    expect(failures(text, 'no_tokens_loaded')).toBe(1);
  });

  it('static tokens alone, with an empty directory: as before, every refusal is no_tokens_loaded and the log says every request is refused', async () => {
    const tokens = path.join(dir.dir, 'empty-alone');
    fs.mkdirSync(tokens);
    const app = await start({ [SIDECAR_ENV.tokensDir]: tokens });
    expect((await readyz(app)).text()).toBe('no tokens loaded: directory holds no valid token\ntokens: no tokens loaded: directory holds no valid token\n');
    await app.waitForLog((l) => l.msg === 'no valid tokens; refusing every request');
    expect((await request(app.port, { path: '/' })).status).toBe(401);
    expect(failures(await metrics(app), 'no_tokens_loaded')).toBe(1);
  });
});
