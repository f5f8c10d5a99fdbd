/**
 * The names both sides of the env boundary use: env variables, containers, ports, paths, headers.
 * The rules of the values are in settings.ts and timing.ts.
 */

/** Environment variables read by apps/main. */
export const MAIN_ENV = {
  /** TCP port the main service listens on. */
  port: 'MAIN_PORT',
  /** Address the main service binds. */
  host: 'MAIN_HOST',
  /** How long to keep serving after SIGTERM before closing the listener (ms). */
  drainDelayMs: 'MAIN_DRAIN_DELAY_MS',
  /** Keep-alive timeout of idle connections (ms). Longer than the sidecar's upstream idle timeout. */
  keepAliveTimeoutMs: 'MAIN_KEEPALIVE_TIMEOUT_MS',
  /** pino log level. */
  logLevel: 'MAIN_LOG_LEVEL',
} as const;

/** Environment variables read by apps/sidecar. */
export const SIDECAR_ENV = {
  /** TCP port of the authenticating proxy. */
  port: 'SIDECAR_PORT',
  /** Address the proxy and admin listeners bind. */
  host: 'SIDECAR_HOST',
  /** Base URL of the main service (http only, normally loopback). */
  upstream: 'SIDECAR_UPSTREAM',
  /** Directory with one file per token: file name = token name, content = token. */
  tokensDir: 'SIDECAR_TOKENS_DIR',
  /** TCP port of the admin listener (/healthz, /readyz, /metrics). */
  adminPort: 'SIDECAR_ADMIN_PORT',
  /** Comma-separated exact paths that need no token. */
  publicPaths: 'SIDECAR_PUBLIC_PATHS',
  /** Path on the upstream that /readyz asks; 200–399 means "the main service answers". */
  upstreamHealthPath: 'SIDECAR_UPSTREAM_HEALTH_PATH',
  /**
   * How /readyz checks the main service: `http` (GET the health path above), `tcp` (a connect to the
   * upstream's port) or `none` (not at all: main's own readiness probe gates the pod). See UPSTREAM_CHECKS.
   */
  upstreamCheck: 'SIDECAR_UPSTREAM_CHECK',
  /** Upstream inactivity timeout (ms); a timeout gives 504. */
  upstreamTimeoutMs: 'SIDECAR_UPSTREAM_TIMEOUT_MS',
  /** Idle timeout of pooled upstream connections (ms). Shorter than the main service's keep-alive timeout. */
  upstreamIdleTimeoutMs: 'SIDECAR_UPSTREAM_IDLE_TIMEOUT_MS',
  /** Time a client has to send its request headers (ms); slowloris protection. */
  headersTimeoutMs: 'SIDECAR_HEADERS_TIMEOUT_MS',
  /** How long to keep serving after SIGTERM (readiness already 503) before closing the listener (ms). */
  drainDelayMs: 'SIDECAR_DRAIN_DELAY_MS',
  /** Upper bound on the whole shutdown (ms); in-flight requests still open then are cut. */
  shutdownTimeoutMs: 'SIDECAR_SHUTDOWN_TIMEOUT_MS',
  /** "true" to forward the client's Authorization header upstream. */
  forwardAuthorization: 'SIDECAR_FORWARD_AUTHORIZATION',
  /**
   * How many proxies in front of the sidecar (an Ingress, a load balancer) to believe: the rightmost
   * that many entries of the client's X-Forwarded-For, and its X-Forwarded-Proto. 0: none.
   */
  trustedProxyHops: 'SIDECAR_TRUSTED_PROXY_HOPS',
  /** Realm in WWW-Authenticate. */
  realm: 'SIDECAR_REALM',
  /** How often the tokens directory is re-read even without a change event (ms). */
  tokensPollIntervalMs: 'SIDECAR_TOKENS_POLL_INTERVAL_MS',
  /** pino log level. */
  logLevel: 'SIDECAR_LOG_LEVEL',
  /** "true" to serve the drain hook (HEALTH_PATHS.drain) on the admin port; SidecarApp sets it in native-sidecar mode only. */
  drainHook: 'SIDECAR_DRAIN_HOOK',
  /**
   * Trusted JWT issuers, a JSON list (see parseJwtIssuers): a bearer value shaped like a JWT is
   * verified against them; unset, only the static tokens count.
   */
  jwtIssuers: 'SIDECAR_JWT_ISSUERS',
  /**
   * The route table, JSON (see parseRoutes in routes.ts): ordered rules, first match wins, and the
   * default for a request no rule matches. Unset: SIDECAR_PUBLIC_PATHS as public rules, then any authenticated caller.
   */
  routes: 'SIDECAR_ROUTES',
  /** Service-account token auth, a JSON object (see parseKubernetesAuth); unset: off. */
  kubernetesAuth: 'SIDECAR_KUBERNETES_AUTH',
  /**
   * Bytes the cache of verified JWTs may hold (an estimate per entry, see jwtCacheEntryBytes in
   * apps/sidecar); 0: no cache. SidecarApp derives it from the sidecar's memory limit (jwtCacheBytesFor).
   */
  jwtCacheBytes: 'SIDECAR_JWT_CACHE_BYTES',
} as const;

/** Set by the kubelet in every container: where in-cluster clients find the API server. */
export const IN_CLUSTER_ENV = { host: 'KUBERNETES_SERVICE_HOST', port: 'KUBERNETES_SERVICE_PORT' } as const;

/** The API server's service-account issuer discovery documents (Kubernetes ServiceAccountIssuerDiscovery). */
export const KUBERNETES_DISCOVERY_PATHS = {
  openidConfiguration: '/.well-known/openid-configuration',
  jwks: '/openid/v1/jwks',
} as const;

/** Read by node itself, not by the app: the sidecar container gets SIDECAR_NODE_OPTIONS in it. */
export const NODE_OPTIONS_ENV = 'NODE_OPTIONS';

/** Container names in the pod; each is the app of the same name under apps/ (tools/apps.ts maps them to their entries). */
export const CONTAINER_NAMES = { main: 'main', sidecar: 'sidecar' } as const;
export type ContainerName = (typeof CONTAINER_NAMES)[keyof typeof CONTAINER_NAMES];

/** Every env name the manifest may set on each container: what its process reads. */
export const CONTAINER_ENV: Readonly<Record<ContainerName, readonly string[]>> = {
  main: Object.values(MAIN_ENV),
  sidecar: [...Object.values(SIDECAR_ENV), NODE_OPTIONS_ENV],
};

/**
 * The caller-token variable `allowCallsFrom` sets in a caller's containers: `<CALLEE>_TOKEN_FILE`
 * (ORDERS_TOKEN_FILE for an app named "orders"), naming the file of its token for that callee.
 */
export const CALLER_TOKEN_ENV_SUFFIX = '_TOKEN_FILE';

/** The caller-token variable for calls to `callee`: the name upper-cased, other characters '_'. */
export function callerTokenEnvName(callee: string): string {
  return `${callee.toUpperCase().replace(/[^A-Z0-9]/g, '_')}${CALLER_TOKEN_ENV_SUFFIX}`;
}

/**
 * The prefix of the variables the chart itself reads at synth (main.ts: SIDECAR_APP_MAIN_IMAGE,
 * SIDECAR_APP_SIDECAR_MODE, ...); a shell that synthesizes may start an app too, so the sidecar
 * leaves them alone.
 */
export const CHART_ENV_PREFIX = 'SIDECAR_APP_';

/** Listen addresses. In a pod both apps bind every interface: the Service and the kubelet's probes come from outside it. */
export const ADDRESSES = {
  /** Every IPv4 interface. */
  all: '0.0.0.0',
  /** The pod's loopback: how the sidecar reaches the main container. */
  loopback: '127.0.0.1',
} as const;

/** Default ports. The Service exposes main and sidecar; the admin port stays inside the pod. */
export const DEFAULT_PORTS = {
  main: 8080,
  sidecar: 8081,
  admin: 9091,
} as const;

/** HTTP paths served by the apps and probed by the kubelet. */
export const HEALTH_PATHS = {
  /** apps/main liveness and readiness. */
  main: '/healthz',
  /** apps/sidecar liveness (admin port): the process serves. */
  sidecarLiveness: '/healthz',
  /** apps/sidecar readiness (admin port): tokens loaded and the main service answers. */
  sidecarReadiness: '/readyz',
  /** apps/sidecar Prometheus metrics (admin port). */
  metrics: '/metrics',
  /**
   * apps/sidecar drain hook (admin port): drain for `?ms=`, close the proxy listener, answer once
   * every proxy connection is closed. Main's preStop in native-sidecar mode, so the sidecar is done
   * before main gets SIGTERM. See encodeDrainHook.
   */
  drain: '/drain',
  /**
   * apps/sidecar preStop wait (admin port): answers 200 once `?ms=` have passed, and does nothing
   * else (no drain, no close). Both containers' preStop in container mode, so neither image needs a
   * shell or `sleep`. With `?until=closed` (PRE_STOP_WAIT_UNTIL) it answers sooner, once the sidecar's
   * own shutdown has closed its proxy: main's preStop then, so main gets SIGTERM only after the
   * sidecar has drained. See encodePreStopWait and PRE_STOP_WAIT_MS.
   */
  preStopWait: '/prestop',
} as const;

/** The query parameter of the drain hook: how long to keep forwarding before closing, in ms. */
export const DRAIN_HOOK_QUERY = 'ms';

/** How the sidecar runs in the pod. */
export const SIDECAR_MODES = {
  /** An ordinary container beside main: every Kubernetes version. */
  container: 'container',
  /** A native sidecar (init container with restartPolicy: Always): starts before main, stops after it. */
  native: 'native',
} as const;
export type SidecarModeName = (typeof SIDECAR_MODES)[keyof typeof SIDECAR_MODES];

/** The preStop wait's second query parameter: what ends the wait before `?ms=` have passed. */
export const PRE_STOP_WAIT_UNTIL_QUERY = 'until';
/** The values of PRE_STOP_WAIT_UNTIL_QUERY. Without it, only the time ends the wait. */
export const PRE_STOP_WAIT_UNTIL = {
  /** The sidecar's proxy has finished its shutdown (drain over, listener closed, last connection gone). */
  sidecarClosed: 'closed',
} as const;

export interface PreStopWaitOptions {
  /** Answer as soon as the sidecar's proxy has closed, if that comes before `waitMs`. @default false */
  readonly untilSidecarClosed?: boolean;
}

/** The preStop wait's path and query for a wait of `waitMs` (within PRE_STOP_WAIT_MS). Same query name as the drain hook. */
export function encodePreStopWait(waitMs: number, opts: PreStopWaitOptions = {}): string {
  const until = opts.untilSidecarClosed === true ? `&${PRE_STOP_WAIT_UNTIL_QUERY}=${PRE_STOP_WAIT_UNTIL.sidecarClosed}` : '';
  return `${HEALTH_PATHS.preStopWait}?${DRAIN_HOOK_QUERY}=${waitMs}${until}`;
}

/** The drain hook's path and query for a drain of `drainDelayMs`. */
export function encodeDrainHook(drainDelayMs: number): string {
  return `${HEALTH_PATHS.drain}?${DRAIN_HOOK_QUERY}=${drainDelayMs}`;
}

/** Where the token Secret is mounted in the sidecar container. */
export const TOKENS_MOUNT_PATH = '/var/run/secrets/sidecar/tokens';

/**
 * Under this directory SidecarApp mounts each JWT issuer's ConfigMap (its JWKS, or the CA of its
 * jwksUrl), one directory per issuer: `<JWKS_MOUNT_ROOT>/<issuer name>/<key>`.
 */
export const JWKS_MOUNT_ROOT = '/var/run/secrets/sidecar/jwks';

/**
 * Where SidecarApp mounts the sidecar's own service-account token (file `token`, audience: the API
 * server) and the cluster CA (file `ca.crt`) when service-account auth is on. Into the sidecar only.
 */
export const KUBERNETES_AUTH_MOUNT_PATH = '/var/run/secrets/sidecar/kubernetes';
export const KUBERNETES_AUTH_FILES = { token: 'token', ca: 'ca.crt' } as const;

/** Under this directory a caller connected with allowCallsFrom gets one token per callee: `<root>/<callee>/token`. */
export const CALLER_TOKENS_MOUNT_ROOT = '/var/run/secrets/sidecar-app/calls';

/** Headers the sidecar sets on forwarded requests. */
export const FORWARDED_HEADERS = {
  /**
   * Name of the token that authenticated the request, or `<issuer name>:<claim>` for a JWT.
   * Client-sent copies are removed.
   */
  subject: 'x-auth-subject',
  /** Passed through when the client sends one, created otherwise; echoed in the response. */
  requestId: 'x-request-id',
} as const;

/**
 * Node flags for the sidecar process, passed as NODE_OPTIONS. A smaller young generation keeps the
 * sidecar's RSS under load inside its memory limit at no measurable CPU cost: a proxy's per-request
 * garbage dies young (figures in bench/results/).
 */
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=8';

/** Numeric user and group of both images and both containers (non-root, >= 10000). */
export const RUN_AS = { user: 10001, group: 10001 } as const;
