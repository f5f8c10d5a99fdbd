/**
 * The sidecar, composed: config → tokens → authenticate → admit → forward on the proxy port, and the
 * admin port apart. The proxy port is plain node:http rather than Express: Express's per-request
 * machinery costs more than the proxying itself (docs/performance.md).
 */
import * as http from 'http';
import { KUBERNETES_ISSUER_NAME, SIDECAR_ENV, STATIC_TOKENS_SOURCE } from '../../../lib/src/contract';
import { createAdminApp } from './admin';
import { ProxyClosedWaits } from './closed-waits';
import { createAdmission } from './admission';
import { createAuthenticator } from './authenticate';
import type { SidecarConfig } from './config';
import { createForwarder } from './forward';
import { JwksUrlStore } from './jwt/jwks-url';
import { JwksFileStore } from './jwt/keys';
import { KubernetesKeysStore, kubernetesIssuer } from './jwt/kubernetes';
import { createJwtVerifier } from './jwt/verify';
import type { JwtVerifier } from './jwt/verify';
import { listen } from './listen';
import type { Logger } from './log';
import { createMetrics } from './metrics';
import { compileRoutes, routeClaimNames } from './routes';
import type { SidecarMetrics } from './metrics';
import { CLIENT_KEEPALIVE_TIMEOUT_MS, createProxyServer } from './proxy-server';
import type { Lifecycle } from './proxy-server';
import { createShutdown } from './shutdown';
import { TokenStore } from './tokens';

export interface Sidecar {
  readonly proxyServer: http.Server;
  readonly adminServer: http.Server;
  /** undefined: static tokens are no source. */
  readonly tokens: TokenStore | undefined;
  readonly metrics: SidecarMetrics;
  /** Load tokens, bind both ports; resolves with the bound ports. */
  start(): Promise<{ port: number; adminPort: number }>;
  /** The graceful shutdown sequence; resolves with the exit code (0 clean, 1 deadline hit). */
  shutdown(signal: string): Promise<number>;
}

type KeySource = JwksFileStore | JwksUrlStore | KubernetesKeysStore;

/** The key sources, one per JWT issuer (by name), and the cluster's when service-account auth is on. */
interface KeySources {
  readonly byName: Map<string, KeySource>;
  readonly kubernetes: KubernetesKeysStore | undefined;
}

function createTokenStore(config: SidecarConfig, logger: Logger, metrics: SidecarMetrics): TokenStore | undefined {
  if (config.tokensDir === undefined) return undefined;
  return new TokenStore({
    dir: config.tokensDir,
    otherSources: config.credentialSources.length > 1,
    pollIntervalMs: config.tokensPollIntervalMs,
    logger,
    onReload: (result, count) => {
      metrics.tokenReload(result);
      metrics.tokensLoaded(count);
    },
  });
}

/** `onChange`: a key set changed, so every verdict cached under the old one must go. */
function createKeySources(config: SidecarConfig, logger: Logger, metrics: SidecarMetrics, onChange: () => void): KeySources {
  const reloadCounter = (name: string) => (result: 'success' | 'failure', count: number): void => {
    metrics.jwksReload(name, result);
    metrics.jwksKeysLoaded(name, count);
  };
  const byName = new Map<string, KeySource>(
    config.jwtIssuers.map((issuer): [string, KeySource] => {
      const onReload = reloadCounter(issuer.name);
      const store =
        issuer.jwksUrl !== undefined
          ? new JwksUrlStore({ issuer, logger, onReload, onChange })
          : new JwksFileStore({ issuer, pollIntervalMs: config.tokensPollIntervalMs, logger, onReload, onChange });
      return [issuer.name, store];
    }),
  );
  // Service-account tokens: one more key source, whose issuer (iss) the API server names.
  const auth = config.kubernetesAuth;
  const kubernetes =
    auth === undefined
      ? undefined
      : new KubernetesKeysStore({
          auth,
          apiServer: auth.apiServer,
          logger,
          onReload: reloadCounter(KUBERNETES_ISSUER_NAME),
          onChange,
          onDiscovered: (iss) => {
            const shadowed = config.jwtIssuers.find((i) => i.issuer === iss);
            if (shadowed !== undefined) {
              logger.warn({ issuer: shadowed.name, iss }, 'a JWT issuer has the cluster\'s iss; its tokens are verified as service-account tokens, with the cluster\'s keys');
            }
          },
        });
  if (kubernetes !== undefined) byName.set(KUBERNETES_ISSUER_NAME, kubernetes);
  return { byName, kubernetes };
}

/** No issuers: no verifier, and the static-token path is exactly what it is without JWTs. */
function createVerifier(config: SidecarConfig, sources: KeySources): JwtVerifier | undefined {
  const { byName, kubernetes } = sources;
  if (byName.size === 0) return undefined;
  const byIss = new Map(config.jwtIssuers.map((i) => [i.issuer, i]));
  const auth = config.kubernetesAuth;
  return createJwtVerifier({
    issuers: auth === undefined ? config.jwtIssuers : [...config.jwtIssuers, kubernetesIssuer(auth, auth.apiServer, '')],
    // The cluster's own tokens are the cluster's, even if a JWT issuer was given its iss too.
    issuerFor: (iss) => (kubernetes?.issuer?.issuer === iss ? kubernetes.issuer : byIss.get(iss)),
    keys: (name) => byName.get(name)!.keys,
    cacheBytes: config.jwtCacheBytes,
    routeClaims: routeClaimNames(config.routes),
    // A file is reloaded on change anyway; a URL is refetched, rate-limited, and the request does not wait.
    onUnknownKey: (name) => {
      const store = byName.get(name);
      if (store instanceof JwksUrlStore) store.unknownKey();
    },
  });
}

/** Each configured source by name (config.credentialSources) with why it cannot authenticate yet, or undefined. */
function sourceStates(config: SidecarConfig, tokens: TokenStore | undefined, keys: KeySources): Array<{ name: string; unavailable: string | undefined }> {
  return config.credentialSources.map((name) => {
    const store = name === STATIC_TOKENS_SOURCE ? tokens : keys.byName.get(name === KUBERNETES_ISSUER_NAME ? name : name.slice('jwt:'.length));
    return { name, unavailable: store?.unavailableReason };
  });
}

/**
 * Ready only once every configured source can authenticate (tokens loaded, each issuer's keys
 * read): a source without them would refuse all its callers. The first line is the verdict, then one
 * line per source.
 */
function readiness(shuttingDown: boolean, states: ReturnType<typeof sourceStates>): { reason: string | undefined; sources: string[] } {
  const reason = shuttingDown ? 'shutting down' : states.find((s) => s.unavailable !== undefined)?.unavailable;
  return { reason, sources: states.map((s) => `${s.name}: ${s.unavailable ?? 'ready'}`) };
}

export function createSidecar(config: SidecarConfig, logger: Logger): Sidecar {
  const metrics = createMetrics();
  const lifecycle: Lifecycle = { shuttingDown: false, closingConnections: false };
  const tokens = createTokenStore(config, logger, metrics);
  let jwt: JwtVerifier | undefined;
  const keySources = createKeySources(config, logger, metrics, () => jwt?.clearCache());
  jwt = createVerifier(config, keySources);
  const authenticator = createAuthenticator({ tokens: tokens === undefined ? undefined : () => tokens.tokens, realm: config.realm, jwt });
  const admit = createAdmission({ routes: compileRoutes(config.routes), authenticator });
  const forwarder = createForwarder({
    upstream: config.upstreamAddress,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    upstreamIdleTimeoutMs: config.upstreamIdleTimeoutMs,
    forwardAuthorization: config.forwardAuthorization,
    trustedProxyHops: config.trustedProxyHops,
    logger,
    onUpstreamResponse: (s) => metrics.upstreamDuration(s),
    closing: () => lifecycle.shuttingDown,
  });
  const proxy = createProxyServer({
    headersTimeoutMs: config.headersTimeoutMs,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    admit,
    forwarder,
    metrics,
    logger,
    lifecycle,
  });
  metrics.inFlight(proxy.inFlight);

  // Bound before the admin app: its drain hook runs the first half of the shutdown.
  let drainHook: (drainMs: number) => Promise<boolean> = () => Promise.resolve(false);
  const proxyClosedWaits = new ProxyClosedWaits();
  const adminServer = http.createServer(
    createAdminApp({
      drain: config.drainHook ? (drainMs) => drainHook(drainMs) : undefined,
      proxyClosedWaits,
      upstream: config.upstreamAddress,
      upstreamCheck: config.upstreamCheck,
      upstreamHealthPath: config.upstreamHealthPath,
      metrics,
      logger,
      notReadyReason: () => readiness(lifecycle.shuttingDown, sourceStates(config, tokens, keySources)).reason,
      sources: () => readiness(lifecycle.shuttingDown, sourceStates(config, tokens, keySources)).sources,
    }),
  );
  adminServer.keepAliveTimeout = CLIENT_KEEPALIVE_TIMEOUT_MS;

  async function start(): Promise<{ port: number; adminPort: number }> {
    await Promise.all([tokens?.start(), ...[...keySources.byName.values()].map((s) => s.start())]);
    const port = await listen(proxy.server, config.host, config.port, SIDECAR_ENV.port, SIDECAR_ENV.host);
    const adminPort = await listen(adminServer, config.host, config.adminPort, SIDECAR_ENV.adminPort, SIDECAR_ENV.host);
    return { port, adminPort };
  }

  const sequence = createShutdown({
    drainDelayMs: config.drainDelayMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    lifecycle,
    proxy,
    adminServer,
    tokens,
    keySources: [...keySources.byName.values()],
    forwarder,
    logger,
    afterProxyClosed: (clean) => proxyClosedWaits.proxyClosed(clean),
  });
  drainHook = (drainMs) => sequence.drainAndClose(drainMs, 'drain hook');

  return { proxyServer: proxy.server, adminServer, tokens, metrics, start, shutdown: sequence.shutdown };
}
