/**
 * Service-account tokens through the real compiled sidecar, against a stand-in API server
 * (tools/pod/kube-api.ts): real HTTPS under its own CA, the two discovery documents, only to a
 * caller holding one of its tokens. The sidecar reads them with its own projected token; a token
 * with the right audience is admitted as system:serviceaccount:<ns>:<name>, every other kind refused.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SignJWT, base64url, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { FORWARDED_HEADERS, HEALTH_PATHS, IN_CLUSTER_ENV, KUBERNETES_DISCOVERY_PATHS, SIDECAR_ENV, encodeJwtIssuers, encodeKubernetesAuth } from '../lib/src/contract';
import type { KubernetesAuthSpec } from '../lib/src/contract';
import { STAND_IN_ISSUER, StandInApiServer, startStandInApiServer } from '../tools/pod/kube-api';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { eventually, request, tempDir } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';
import { EVENT_TIMEOUT_MS } from '../tools/waits';

const AUDIENCE = 'orders';
const nowS = () => Math.floor(Date.now() / 1000);

let api: StandInApiServer;
let upstream: TestUpstream;
let dir: { dir: string; cleanup: () => void };
let tokensDir: string;
let ownTokenFile: string;
let sidecar: RunningApp;

function authSpec(over: Partial<KubernetesAuthSpec> = {}): KubernetesAuthSpec {
  return { audiences: [AUDIENCE], tokenFile: ownTokenFile, caFile: api.caFile, ...over };
}

async function startSidecar(auth: KubernetesAuthSpec, extraEnv: Record<string, string> = {}): Promise<RunningApp> {
  return startApp('sidecar', {
    env: { ...localSidecarEnv(upstream.url, tokensDir), [SIDECAR_ENV.kubernetesAuth]: encodeKubernetesAuth(auth)!, [SIDECAR_ENV.drainDelayMs]: '0', ...extraEnv },
  });
}

beforeAll(async () => {
  api = await startStandInApiServer();
  upstream = await startUpstream();
  dir = tempDir('k8s-auth-');
  tokensDir = path.join(dir.dir, 'tokens');
  fs.mkdirSync(tokensDir);
  fs.writeFileSync(path.join(tokensDir, 'ci'), 'static-token-0123456789abcdef');
  ownTokenFile = path.join(dir.dir, 'own-token');
  // The sidecar's own projected token: audience the API server (no audience asked for).
  fs.writeFileSync(ownTokenFile, await api.mintToken({ namespace: 'shop', serviceAccount: 'orders' }));
  // No apiServer: found the in-cluster way, from the variables the kubelet sets.
  sidecar = await startSidecar(authSpec(), { [IN_CLUSTER_ENV.host]: api.host, [IN_CLUSTER_ENV.port]: String(api.port) });
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
  await api?.close();
  dir?.cleanup();
});

const get = (app: RunningApp, token: string) => request(app.port, { path: '/orders', headers: { authorization: `Bearer ${token}` } });
const lastSubject = () => upstream.received[upstream.received.length - 1].headers[FORWARDED_HEADERS.subject];
const frontendToken = (over: Partial<Parameters<StandInApiServer['mintToken']>[0]> = {}) =>
  api.mintToken({ namespace: 'shop', serviceAccount: 'frontend', audiences: [AUDIENCE], ...over });

describe('a projected service-account token', () => {
  it('with the callee audience is admitted, as system:serviceaccount:<namespace>:<name>', async () => {
    const res = await get(sidecar, await frontendToken());
    expect(res.status).toBe(200);
    expect(lastSubject()).toBe('system:serviceaccount:shop:frontend');
  });

  it('read the discovery documents from the API server with the sidecar\'s own token', () => {
    expect(api.count(KUBERNETES_DISCOVERY_PATHS.openidConfiguration)).toBeGreaterThanOrEqual(1);
    expect(api.count(KUBERNETES_DISCOVERY_PATHS.jwks)).toBeGreaterThanOrEqual(1);
    expect(api.refused()).toBe(0);
  });

  it('counts under the issuer name "kubernetes", not one label per account', async () => {
    const text = await (await request(sidecar.adminPort!, { path: HEALTH_PATHS.metrics })).text();
    expect(text).toMatch(/sidecar_http_requests_total\{code="200",subject="kubernetes"\} [1-9]/);
    expect(text).not.toMatch(/subject="system/);
    expect(text).toMatch(/sidecar_jwks_keys_loaded\{issuer="kubernetes"\} 1/);
  });

  it('static tokens still work beside it', async () => {
    expect((await get(sidecar, 'static-token-0123456789abcdef')).status).toBe(200);
    expect(lastSubject()).toBe('ci');
  });
});

describe('every other kind is refused with 401', () => {
  const refusals: [string, () => Promise<string>][] = [
    ['the API server audience (a token the pod got without asking for ours)', () => frontendToken({ audiences: ['https://kubernetes.default.svc.cluster.local'] })],
    ['another app\'s audience', () => frontendToken({ audiences: ['payments'] })],
    ['expired (beyond the 30 s skew)', () => frontendToken({ nowSeconds: nowS() - 7200, expirationSeconds: 3600 })],
    ['not yet valid', () => frontendToken({ claims: { nbf: nowS() + 600, iat: nowS() + 600 } })],
    ['another issuer', () => frontendToken({ claims: { iss: 'https://evil.example' } })],
    ['a subject that is no service account', () => frontendToken({ claims: { sub: 'admin' } })],
    ['kubernetes.io naming another namespace than sub', () => frontendToken({ claims: { 'kubernetes.io': { namespace: 'kube-system', serviceaccount: { name: 'frontend' } } } })],
    [
      'a truncated signature',
      async () => {
        const t = await frontendToken();
        return t.slice(0, t.length - 10);
      },
    ],
    [
      'alg none',
      async () => {
        const [h, p] = (await frontendToken()).split('.');
        void h;
        return `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${p}.`;
      },
    ],
    [
      'signed by a stranger under the cluster key\'s kid',
      async () => {
        const real = await frontendToken();
        const header = JSON.parse(Buffer.from(real.split('.')[0], 'base64url').toString()) as { kid: string };
        const payload = JSON.parse(Buffer.from(real.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
        const stranger = await generateKeyPair('RS256');
        return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: header.kid }).sign(stranger.privateKey);
      },
    ],
    [
      'HS256 "signed" with the cluster\'s public key (algorithm confusion)',
      async () => {
        const real = await frontendToken();
        const payload = JSON.parse(Buffer.from(real.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
        const jwks = (await (await fetchJwks()).json()) as { keys: { kid: string; n: string; e: string }[] };
        const { createPublicKey } = await import('crypto');
        const pub = createPublicKey({ key: { kty: 'RSA', n: jwks.keys[0].n, e: jwks.keys[0].e }, format: 'jwk' });
        const pem = await exportSPKI(pub as never);
        return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: jwks.keys[0].kid }).sign(Buffer.from(pem));
      },
    ],
  ];

  it.each(refusals)('%s', async (_what, make) => {
    const before = upstream.count();
    const res = await get(sidecar, await make());
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="sidecar", error="invalid_token"');
    expect(upstream.count()).toBe(before);
  });
});

/** The JWKS as the stand-in serves it, to a caller with a valid API-server token. */
async function fetchJwks(): Promise<{ json(): Promise<unknown> }> {
  const https = await import('https');
  const token = fs.readFileSync(ownTokenFile, 'utf8');
  return new Promise((resolve, reject) => {
    https
      .get(`${api.url}${KUBERNETES_DISCOVERY_PATHS.jwks}`, { ca: fs.readFileSync(api.caFile), headers: { authorization: `Bearer ${token}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ json: async () => JSON.parse(Buffer.concat(chunks).toString()) }));
      })
      .on('error', reject);
  });
}

describe('key rotation', () => {
  it('a token signed with a new cluster key is admitted once the unknown kid has been refetched, without a restart', async () => {
    await api.rotateKey();
    const token = await frontendToken();
    const fetchesBefore = api.count(KUBERNETES_DISCOVERY_PATHS.jwks);
    // The first sight of the new kid is refused and triggers one refetch; it is admitted after it.
    expect(await eventually(async () => (await get(sidecar, token)).status === 200, undefined, 100)).toBe(true);
    expect(api.count(KUBERNETES_DISCOVERY_PATHS.jwks)).toBeGreaterThan(fetchesBefore);
  });
});

describe('the discovery documents unavailable', () => {
  it('a sidecar whose own token the API server refuses is not ready, naming the issuer; it never fails open', async () => {
    const badOwn = path.join(dir.dir, 'bad-own-token');
    fs.writeFileSync(badOwn, 'not-a-token-the-api-server-knows');
    const app = await startSidecar(authSpec({ tokenFile: badOwn, apiServer: api.url }));
    try {
      const ready = await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
      expect(ready.status).toBe(503);
      expect(ready.text()).toContain('kubernetes');
      expect((await get(app, await frontendToken())).status).toBe(401);
      // The fix (a valid own token) is picked up at the next attempt, no restart.
      fs.writeFileSync(badOwn, fs.readFileSync(ownTokenFile));
      // The retries back off: the longer a busy machine took to get here, the longer the next one waits.
      expect(await eventually(async () => (await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness })).status === 200, 2 * EVENT_TIMEOUT_MS, 200)).toBe(true);
      expect((await get(app, await frontendToken())).status).toBe(200);
    } finally {
      await app.stop();
    }
  });

  it('a discovery document without an issuer: not ready, tokens refused', async () => {
    api.override(KUBERNETES_DISCOVERY_PATHS.openidConfiguration, { status: 200, body: '{"jwks_uri":"x"}' });
    const app = await startSidecar(authSpec({ apiServer: api.url }));
    try {
      const ready = await request(app.adminPort!, { path: HEALTH_PATHS.sidecarReadiness });
      expect(ready.status).toBe(503);
      expect(ready.text()).toMatch(/names no usable issuer/);
      expect((await get(app, await frontendToken())).status).toBe(401);
    } finally {
      api.override(KUBERNETES_DISCOVERY_PATHS.openidConfiguration, undefined);
      await app.stop();
    }
  });

});

describe('a JWT issuer configured with the cluster\'s iss', () => {
  it('does not take the cluster\'s tokens over: they stay service-account tokens, and a warning says so', async () => {
    const jwks = path.join(dir.dir, 'ext.json');
    const { publicKey } = await generateKeyPair('ES256');
    fs.writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'ext' }] }));
    const app = await startSidecar(authSpec({ apiServer: api.url }), {
      [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers([{ name: 'ext', issuer: STAND_IN_ISSUER, audiences: [AUDIENCE], jwksFile: jwks }])!,
    });
    try {
      expect((await get(app, await frontendToken())).status).toBe(200);
      expect(lastSubject()).toBe('system:serviceaccount:shop:frontend');
      expect(await eventually(() => app.lines.some((l) => l.includes("a JWT issuer has the cluster's iss")))).toBe(true);
    } finally {
      await app.stop();
    }
  });
});
