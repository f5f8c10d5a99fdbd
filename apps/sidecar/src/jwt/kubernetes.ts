/**
 * Service-account tokens: the cluster's own issuer, whose keys the API server publishes
 * (ServiceAccountIssuerDiscovery). Each fetch reads the discovery document for the issuer's `iss`
 * and then the key set, both from the API server itself with the sidecar's own projected token:
 * the document's jwks_uri may name an address only reachable from outside the cluster, and the API
 * server serves the same keys at KUBERNETES_DISCOVERY_PATHS.jwks. Refresh, rate limits, outages and
 * "keep the last good set" are JwksUrlStore's.
 */
import * as fsp from 'fs/promises';
import { KUBERNETES_DISCOVERY_PATHS, KUBERNETES_ISSUER_NAME, KUBERNETES_JWT_ALGORITHMS, KUBERNETES_JWT_TOKEN_TYPES, TOKEN_PATTERN } from '../../../../lib/src/contract';
import type { JwtIssuer, KubernetesAuth } from '../../../../lib/src/contract';
import type { Logger } from '../log';
import { JwksUrlStore, get } from './jwks-url';
import type { Fetched } from './jwks-url';
import { JwksError } from './keys';

/** A projected token is about 1 KB; a bigger file is a wrong mount. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;
const MAX_ISSUER_CHARS = 1024;

export interface KubernetesKeysStoreOptions {
  readonly auth: KubernetesAuth;
  /** The API server's https: base URL, resolved (config.ts). */
  readonly apiServer: string;
  readonly logger: Logger;
  readonly onReload?: (result: 'success' | 'failure', count: number) => void;
  readonly onChange?: () => void;
  /** The issuer the discovery document names, each time it changes. */
  readonly onDiscovered?: (iss: string) => void;
  readonly now?: () => number;
}

/** The issuer as the verifier sees it, but for `iss`, which discovery fills in. */
export function kubernetesIssuer(auth: KubernetesAuth, apiServer: string, iss: string): JwtIssuer {
  return {
    name: KUBERNETES_ISSUER_NAME,
    issuer: iss,
    audiences: auth.audiences,
    jwksFile: undefined,
    jwksUrl: new URL(KUBERNETES_DISCOVERY_PATHS.jwks, apiServer).href,
    hmacSecretFile: undefined,
    caFile: auth.caFile,
    refreshSeconds: auth.refreshSeconds,
    algorithms: KUBERNETES_JWT_ALGORITHMS,
    clockSkewSeconds: auth.clockSkewSeconds,
    maxLifetimeSeconds: auth.maxLifetimeSeconds,
    subjectClaim: 'sub',
    forwardClaims: [],
    // The API server types no token: typing tells nothing apart here, as every token its key signs is a service account's.
    tokenTypes: KUBERNETES_JWT_TOKEN_TYPES,
  };
}

export class KubernetesKeysStore extends JwksUrlStore {
  private discovered: JwtIssuer | undefined;

  constructor(private readonly k8s: KubernetesKeysStoreOptions) {
    super({ issuer: kubernetesIssuer(k8s.auth, k8s.apiServer, ''), logger: k8s.logger, onReload: k8s.onReload, onChange: k8s.onChange, now: k8s.now });
  }

  /** The issuer once its discovery document has been read: tokens of no other `iss` are the cluster's. */
  get issuer(): JwtIssuer | undefined {
    return this.discovered;
  }

  protected override async download(ca: string | undefined): Promise<Fetched> {
    const token = await this.ownToken();
    const discoveryUrl = new URL(KUBERNETES_DISCOVERY_PATHS.openidConfiguration, this.k8s.apiServer).href;
    const discovery = await get(discoveryUrl, ca, token, this.opts.fetchTimeoutMs);
    let iss: unknown;
    try {
      iss = (JSON.parse(discovery.text) as { issuer?: unknown } | null)?.issuer;
    } catch {
      throw new JwksError(`${KUBERNETES_DISCOVERY_PATHS.openidConfiguration} is not JSON`);
    }
    if (typeof iss !== 'string' || iss === '' || iss.length > MAX_ISSUER_CHARS || !/^[\x21-\x7e]+$/.test(iss)) {
      throw new JwksError(`${KUBERNETES_DISCOVERY_PATHS.openidConfiguration} names no usable issuer`);
    }
    const keys = await get(this.opts.issuer.jwksUrl!, ca, token, this.opts.fetchTimeoutMs);
    if (this.discovered?.issuer !== iss) {
      this.k8s.logger.info({ issuer: KUBERNETES_ISSUER_NAME, iss }, 'service-account issuer discovered');
      this.discovered = kubernetesIssuer(this.k8s.auth, this.k8s.apiServer, iss);
      this.k8s.onDiscovered?.(iss);
    }
    return keys;
  }

  /** The sidecar's own token, read each time: the kubelet rotates it in place. */
  private async ownToken(): Promise<string> {
    const file = this.k8s.auth.tokenFile;
    let text: string;
    try {
      const handle = await fsp.open(file, 'r');
      try {
        if ((await handle.stat()).size > MAX_TOKEN_FILE_BYTES) throw new JwksError(`tokenFile ${file} is larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
        text = (await handle.readFile('utf8')).trim();
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (err instanceof JwksError) throw err;
      throw new JwksError(`cannot read tokenFile ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!TOKEN_PATTERN.test(text)) throw new JwksError(`tokenFile ${file} does not hold a bearer token`);
    return text;
  }
}
