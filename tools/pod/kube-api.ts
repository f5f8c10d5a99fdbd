/**
 * A stand-in for the two parts of the Kubernetes API server a pod with service-account auth
 * touches: the TokenRequest side (it mints projected service-account tokens, with the claims a
 * real one carries) and service-account issuer discovery (it serves
 * KUBERNETES_DISCOVERY_PATHS over HTTPS under its own CA, to callers with one of its tokens for
 * the API server's audience, as the default RBAC of `system:service-account-issuer-discovery` does).
 * For the tests and the local pod runner; there is no cluster here.
 */
import { randomUUID } from 'crypto';
import * as https from 'https';
import type { AddressInfo } from 'net';
import { SignJWT, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import type { JWK, KeyLike } from 'jose';
import { KUBERNETES_DISCOVERY_PATHS, serviceAccountSubject } from '../../lib/src/contract';
import { makeTestCa } from '../test-ca';
import type { TestCa } from '../test-ca';

/** A kubeadm cluster's issuer, and the audience of a token requested without one. */
export const STAND_IN_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const API_SERVER_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';

export interface ServiceAccountTokenRequest {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** @default "<serviceAccount>-pod" */
  readonly podName?: string;
  /** @default [API_SERVER_AUDIENCE] */
  readonly audiences?: readonly string[];
  /** @default 3600 */
  readonly expirationSeconds?: number;
  /** Issue as of this time (seconds). @default now */
  readonly nowSeconds?: number;
  /** Override claims, for hostile tokens. */
  readonly claims?: Record<string, unknown>;
}

export interface StandInApiServer {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The CA of its certificate, as the kube-root-ca.crt ConfigMap holds it. */
  readonly caPem: string;
  readonly caFile: string;
  /** A projected service-account token, signed with the current key. */
  mintToken(req: ServiceAccountTokenRequest): Promise<string>;
  /** A new signing key; the JWKS then holds the new and (unless dropOld) the old one. */
  rotateKey(dropOld?: boolean): Promise<void>;
  /** Requests per path, and how many of them were refused for their credential. */
  count(path: string): number;
  refused(): number;
  /** Make `path` answer this instead (e.g. garbage), or undefined to restore. */
  override(path: string, answer: { status: number; body: string } | undefined): void;
  close(): Promise<void>;
}

interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyLike;
  readonly jwk: JWK;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const kid = randomUUID().replace(/-/g, '').slice(0, 16);
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' } };
}

export async function startStandInApiServer(opts: { ca?: TestCa } = {}): Promise<StandInApiServer> {
  const ca = opts.ca ?? makeTestCa();
  const ownsCa = opts.ca === undefined;
  let keys: SigningKey[] = [await newKey()];
  const counts = new Map<string, number>();
  const overrides = new Map<string, { status: number; body: string }>();
  let refused = 0;

  async function mintToken(req: ServiceAccountTokenRequest): Promise<string> {
    const now = req.nowSeconds ?? Math.floor(Date.now() / 1000);
    const key = keys[keys.length - 1];
    const podName = req.podName ?? `${req.serviceAccount}-pod`;
    return new SignJWT({
      aud: [...(req.audiences ?? [API_SERVER_AUDIENCE])],
      iss: STAND_IN_ISSUER,
      sub: serviceAccountSubject(req.namespace, req.serviceAccount),
      iat: now,
      nbf: now,
      exp: now + (req.expirationSeconds ?? 3600),
      jti: randomUUID(),
      'kubernetes.io': {
        namespace: req.namespace,
        node: { name: 'local', uid: randomUUID() },
        pod: { name: podName, uid: randomUUID() },
        serviceaccount: { name: req.serviceAccount, uid: randomUUID() },
        warnafter: now + 3000,
      },
      ...req.claims,
    })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid })
      .sign(key.privateKey);
  }

  /** The caller's credential: a token of ours for the API server's audience. */
  async function authorized(header: string | undefined): Promise<boolean> {
    const m = /^Bearer (\S+)$/.exec(header ?? '');
    if (m === null) return false;
    for (const key of keys) {
      try {
        await jwtVerify(m[1], key.privateKey, { issuer: STAND_IN_ISSUER, audience: API_SERVER_AUDIENCE });
        return true;
      } catch {
        // the next key
      }
    }
    return false;
  }

  const server = https.createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    counts.set(path, (counts.get(path) ?? 0) + 1);
    void (async () => {
      if (!(await authorized(req.headers.authorization))) {
        refused++;
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"kind":"Status","status":"Failure","reason":"Unauthorized","code":401}');
        return;
      }
      const override = overrides.get(path);
      if (override !== undefined) {
        res.writeHead(override.status, { 'content-type': 'application/json' });
        res.end(override.body);
      } else if (path === KUBERNETES_DISCOVERY_PATHS.openidConfiguration) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            issuer: STAND_IN_ISSUER,
            // As on a real cluster: the issuer's own address, which the sidecar does not use.
            jwks_uri: `https://kubernetes.default.svc.cluster.local${KUBERNETES_DISCOVERY_PATHS.jwks}`,
            response_types_supported: ['id_token'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: ['RS256'],
          }),
        );
      } else if (path === KUBERNETES_DISCOVERY_PATHS.jwks) {
        res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
        res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"kind":"Status","code":404}');
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `https://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    caPem: ca.caPem,
    caFile: ca.caFile,
    mintToken,
    rotateKey: async (dropOld = false) => {
      const next = await newKey();
      keys = dropOld ? [next] : [...keys, next];
    },
    count: (p) => counts.get(p) ?? 0,
    refused: () => refused,
    override: (p, answer) => void (answer === undefined ? overrides.delete(p) : overrides.set(p, answer)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          if (ownsCa) ca.cleanup();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
