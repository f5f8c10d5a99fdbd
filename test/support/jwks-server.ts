/**
 * A JWKS issuer for the tests: a real HTTPS server on 127.0.0.1 with a certificate from a CA made
 * in-test (keys by node:crypto, the X.509 by the openssl CLI), answering each path with what the
 * test last set, and counting the requests per path.
 */
import { execFileSync } from 'child_process';
import { generateKeyPairSync } from 'crypto';
import * as fs from 'fs';
import * as https from 'https';
import type { AddressInfo } from 'net';
import * as path from 'path';
import { tempDir } from './http';

export interface TestCa {
  /** The CA certificate (PEM) to pass as caFile. */
  readonly caFile: string;
  /** The server's certificate chain and key (PEM), for 127.0.0.1. */
  readonly cert: string;
  readonly key: string;
  cleanup(): void;
}

/** A throwaway CA and a server certificate for IP 127.0.0.1, valid for a day. */
export function makeTestCa(): TestCa {
  const dir = tempDir('jwks-ca-');
  const file = (name: string) => path.join(dir.dir, name);
  const pem = (kind: 'pkcs8') => generateKeyPairSync('ec', { namedCurve: 'prime256v1', privateKeyEncoding: { type: kind, format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
  fs.writeFileSync(file('ca.key'), pem('pkcs8'), { mode: 0o600 });
  fs.writeFileSync(file('server.key'), pem('pkcs8'), { mode: 0o600 });
  fs.writeFileSync(file('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  fs.writeFileSync(file('server.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-new', '-key', 'ca.key', '-subj', '/CN=sidecar test CA', '-out', 'ca.csr');
  openssl('x509', '-req', '-in', 'ca.csr', '-signkey', 'ca.key', '-days', '1', '-extfile', 'ca.ext', '-out', 'ca.pem');
  openssl('req', '-new', '-key', 'server.key', '-subj', '/CN=127.0.0.1', '-out', 'server.csr');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '2', '-days', '1', '-extfile', 'server.ext', '-out', 'server.pem');
  return { caFile: file('ca.pem'), cert: fs.readFileSync(file('server.pem'), 'utf8'), key: fs.readFileSync(file('server.key'), 'utf8'), cleanup: dir.cleanup };
}

export interface JwksAnswer {
  readonly status?: number;
  readonly body: string;
  readonly headers?: Record<string, string>;
}

export interface JwksServer {
  readonly port: number;
  url(p: string): string;
  /** What `p` answers from now on (unset paths answer 404). */
  set(p: string, answer: JwksAnswer): void;
  /** Requests `p` has had. */
  count(p: string): number;
  /** Stop listening (and drop open connections); `listen` again on the same port. */
  close(): Promise<void>;
  listen(): Promise<void>;
}

/** Listen on 127.0.0.1 at `port` (0: any). */
export async function startJwksServer(ca: TestCa, port = 0): Promise<JwksServer> {
  const answers = new Map<string, JwksAnswer>();
  const counts = new Map<string, number>();
  const server = https.createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    counts.set(p, (counts.get(p) ?? 0) + 1);
    const answer = answers.get(p) ?? { status: 404, body: 'not found' };
    res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
    res.end(answer.body);
  });
  let bound = port;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bound, '127.0.0.1', () => {
        server.off('error', reject);
        bound = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  await listen();
  return {
    get port() {
      return bound;
    },
    url: (p) => `https://127.0.0.1:${bound}${p}`,
    set: (p, answer) => void answers.set(p, answer),
    count: (p) => counts.get(p) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    listen,
  };
}
