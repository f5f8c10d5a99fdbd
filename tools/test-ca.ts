/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1: keys by node:crypto,
 * the X.509 by the openssl CLI. For stand-ins of TLS servers (a JWKS issuer, the API server) in
 * tests and in the local pod runner.
 */
import { execFileSync } from 'child_process';
import { generateKeyPairSync } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface TestCa {
  /** The CA certificate (PEM) to pass as caFile. */
  readonly caFile: string;
  /** The CA certificate itself (PEM). */
  readonly caPem: string;
  /** The server's certificate and key (PEM), for IP 127.0.0.1. */
  readonly cert: string;
  readonly key: string;
  cleanup(): void;
}

/** A CA and a server certificate for IP 127.0.0.1, valid for a day. */
export function makeTestCa(): TestCa {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'test-ca-'));
  const file = (name: string) => path.join(dir, name);
  const pem = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
  fs.writeFileSync(file('ca.key'), pem(), { mode: 0o600 });
  fs.writeFileSync(file('server.key'), pem(), { mode: 0o600 });
  fs.writeFileSync(file('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  fs.writeFileSync(file('server.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-new', '-key', 'ca.key', '-subj', '/CN=sidecar test CA', '-out', 'ca.csr');
  openssl('x509', '-req', '-in', 'ca.csr', '-signkey', 'ca.key', '-days', '1', '-extfile', 'ca.ext', '-out', 'ca.pem');
  openssl('req', '-new', '-key', 'server.key', '-subj', '/CN=127.0.0.1', '-out', 'server.csr');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '2', '-days', '1', '-extfile', 'server.ext', '-out', 'server.pem');
  return {
    caFile: file('ca.pem'),
    caPem: fs.readFileSync(file('ca.pem'), 'utf8'),
    cert: fs.readFileSync(file('server.pem'), 'utf8'),
    key: fs.readFileSync(file('server.key'), 'utf8'),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
