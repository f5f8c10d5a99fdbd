/**
 * The header blocks the sidecar writes: the request head sent to the main service, and the
 * response head sent back to the client. Pure functions of Node's parsed view, built fresh each
 * time (never by mutating req.headers), so what we judged is exactly what we send.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'http';
import { CLAIM_HEADER_PREFIX, FORWARDED_HEADERS } from '../../../lib/src/contract';
import type { BodyFraming } from './framing';

/**
 * A header name reduced to its letters and digits, lowercased. CGI-style backends fold `-`, `_`
 * and `.` alike, so `X.Auth.Subject` and `X_Auth_Subject` read as our identity header there.
 */
export function normalizedHeaderName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

const X_FORWARDED_FOR = 'x-forwarded-for';
const X_FORWARDED_PROTO = 'x-forwarded-proto';
const X_REAL_IP = 'x-real-ip';

/**
 * Headers the sidecar itself sets upstream: every client spelling of them is dropped. So is every
 * spelling of the x-forwarded-* and x-auth-claim-* families (DROPPED_PREFIXES).
 */
const OWN_HEADERS = [FORWARDED_HEADERS.subject, FORWARDED_HEADERS.requestId, X_REAL_IP];

/**
 * Headers only a proxy writes, about the client's connection or the request as it first arrived.
 * Frameworks believe them when the peer is a trusted proxy, and many trust a loopback peer (the
 * sidecar) by default: Express `trust proxy` loopback, gunicorn, Tomcat's RemoteIpValve, ASP.NET's
 * KnownProxies. The sidecar is the pod's only proxy hop, so a client's copy is a forgery: dropped,
 * not replaced.
 * - Client address (Rails, nginx realip, CDNs): a forged IP beats allow-lists, rate limits, audit logs.
 * - Scheme (Rack, IIS): a forged https changes absolute redirects and Secure cookies.
 * - What a rewriting proxy saw (X-Original-*, ASP.NET's and ingress-nginx's), and path and method
 *   overrides (X-Original-URL and X-Rewrite-URL of IIS, Symfony and Zend; Envoy's original path;
 *   Express method-override): main would serve a path or a method the route rules never judged.
 * - Client certificates (nginx and haproxy conventions; Envoy's XFCC is an x-forwarded-*): the
 *   sidecar terminates no TLS.
 * - RFC 7239 `Forwarded`: not emitted either; the X-Forwarded-* we set say the same.
 */
const PROXY_ONLY_HEADERS = [
  'forwarded',
  'forwarded-for',
  'x-client-ip',
  'client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'cf-connecting-ipv6',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-envoy-external-address',
  'x-envoy-internal',
  'x-scheme',
  'x-url-scheme',
  'front-end-https',
  'x-original-url',
  'x-original-uri',
  'x-original-path',
  'x-original-method',
  'x-original-host',
  'x-original-for',
  'x-original-proto',
  'x-original-prefix',
  'x-original-forwarded-for',
  'x-rewrite-url',
  'x-envoy-original-path',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-ssl-client-cert',
  'x-ssl-client-verify',
  'x-ssl-client-s-dn',
  'x-ssl-client-dn',
  'ssl-client-cert',
  'x-client-cert',
];

/**
 * Normalised prefixes of whole families that are ours, dropped in every spelling: x-forwarded-*
 * (-for, -proto and -host, which we set, and -port, -scheme, -ssl, -prefix, -server, -uri,
 * -client-cert, -user, …: by convention every one is a proxy's), and the claim headers, whichever
 * claims this sidecar forwards.
 */
const DROPPED_PREFIXES = [normalizedHeaderName('x-forwarded-'), normalizedHeaderName(CLAIM_HEADER_PREFIX)];

/**
 * Hop-by-hop request headers (RFC 9110 §7.6.1), the framing and routing headers (we write our
 * own), Expect (Node answered it) and Proxy-Authorization (meant for us, not for main).
 * Matched by normalised name too: `Transfer_Encoding` next to our `content-length` would let a
 * folding backend frame the body differently from Node.
 */
const DROPPED_REQUEST = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'transfer-encoding',
  'content-length',
  'host',
];

/**
 * 0: forwarded as sent; OWN: a spelling of a header we set or a proxy-only header; DROPPED: of a
 * hop-by-hop, framing or routing header. Both are dropped; the names keep the reasons apart.
 */
type NameClass = 0 | typeof OWN | typeof DROPPED;
const OWN = 1;
const DROPPED = 2;

const RESERVED = new Map<string, NameClass>([
  ...[...OWN_HEADERS, ...PROXY_ONLY_HEADERS].map((n) => [normalizedHeaderName(n), OWN] as const),
  ...DROPPED_REQUEST.map((n) => [normalizedHeaderName(n), DROPPED] as const),
]);

/** Header names repeat from request to request: remember each one's class (bounded). */
const nameClassCache = new Map<string, NameClass>();
const NAME_CACHE_LIMIT = 4096;

function classOf(name: string): NameClass {
  let c = nameClassCache.get(name);
  if (c === undefined) {
    const folded = normalizedHeaderName(name);
    c = RESERVED.get(folded) ?? (DROPPED_PREFIXES.some((p) => folded.startsWith(p)) ? OWN : 0);
    if (nameClassCache.size >= NAME_CACHE_LIMIT) nameClassCache.clear();
    nameClassCache.set(name, c);
  }
  return c;
}

/**
 * Never dropped because Connection names them. Host and the framing headers route and frame the
 * message (and are rewritten by us anyway). Authorization, when forwarded at all
 * (SIDECAR_FORWARD_AUTHORIZATION), is the credential the sidecar judged the request by, and is
 * end to end: RFC 9110 §7.6.1 forbids a sender to name such a field as a connection option, and
 * honouring it would let the client strip from main the credential main was configured to receive,
 * beside an X-Auth-Subject saying it was authenticated. What main gets is what we judged. Our own
 * headers (X-Auth-Subject, X-Request-Id, X-Forwarded-*, X-Real-IP, claims) are not in the list
 * because they need not be: a client's copies are dropped anyway, and ours are written after the
 * client's headers, so Connection never reaches them.
 */
const NOT_NOMINATABLE = new Set(['host', 'content-length', 'transfer-encoding', 'authorization']);

/** Field names listed in a Connection header, lowercased; those headers are hop-by-hop too. */
function nominated(connection: string | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined;
  let set: Set<string> | undefined;
  for (const part of connection.split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive' && !NOT_NOMINATABLE.has(name)) (set ??= new Set()).add(name);
  }
  return set;
}

/**
 * The X-Forwarded-For to send: the rightmost `hops` entries of the client's (those the trusted
 * proxies in front appended; anything left of them is whatever the first client typed), then the
 * peer. With no trusted hop, the peer alone: a forged chain before it would fool every framework
 * that takes the leftmost entry (gorilla's ProxyHeaders, Spring, most hand-written code).
 */
function forwardedFor(prior: string, peer: string | undefined, hops: number): string[] {
  const chain: string[] = [];
  const entries = prior.split(',');
  // From the right, skipping empty entries (no proxy appends one).
  for (let i = entries.length - 1; i >= 0 && chain.length < hops; i--) {
    const e = entries[i].trim();
    if (e !== '') chain.unshift(e);
  }
  if (peer !== undefined) chain.push(peer);
  return chain;
}

/** A trusted proxy's X-Forwarded-Proto, if it is exactly one scheme we know. */
function trustedProto(value: string | undefined): 'http' | 'https' | undefined {
  const v = value?.trim().toLowerCase();
  return v === 'http' || v === 'https' ? v : undefined;
}

export interface UpstreamHeaderInput {
  /** Token name that authenticated the request; undefined = public path, no identity header. */
  readonly subject: string | undefined;
  /** Forwarded JWT claims, a flat [header, value, …] list. */
  readonly claimHeaders?: readonly string[];
  readonly requestId: string;
  readonly forwardAuthorization: boolean;
  readonly framing: BodyFraming;
  /** A WebSocket upgrade: send `Connection: Upgrade` and the client's `Upgrade`. */
  readonly upgrade: boolean;
  /** Host to send when the client sent none (HTTP/1.0). */
  readonly fallbackHost: string;
  /** Ask the upstream to close after this exchange (HEAD: a late body must not reach the next client). */
  readonly closeAfter?: boolean;
  /** Proxies in front of the sidecar whose X-Forwarded-For entries and X-Forwarded-Proto are kept (SIDECAR_TRUSTED_PROXY_HOPS). @default 0 */
  readonly trustedProxyHops?: number;
}

/** The request head for the main service, as a flat [name, value, …] list. */
export function upstreamRequestHeaders(req: IncomingMessage, input: UpstreamHeaderInput): string[] {
  const h = req.headers;
  const out: string[] = ['host', h.host ?? input.fallbackHost];
  const extraHop = nominated(h.connection);
  const hops = input.trustedProxyHops ?? 0;
  let priorForwardedFor: string | undefined;
  let priorProto: string | undefined;
  for (const name in h) {
    const value = h[name];
    if (value === undefined) continue;
    const c = classOf(name);
    if (c === DROPPED) continue;
    if (c === OWN) {
      // Only the exact names, and only from trusted proxies: every other spelling is just dropped.
      if (hops > 0 && name === X_FORWARDED_FOR) priorForwardedFor = value as string;
      else if (hops > 0 && name === X_FORWARDED_PROTO) priorProto = value as string;
      continue;
    }
    if (name === 'authorization' && !input.forwardAuthorization) continue;
    if (extraHop !== undefined && extraHop.has(name)) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  const framing = input.framing;
  if (framing.kind === 'length') out.push('content-length', framing.length);
  else if (framing.kind === 'chunked') out.push('transfer-encoding', 'chunked');
  if (input.upgrade) out.push('connection', 'Upgrade', 'upgrade', h.upgrade ?? 'websocket');
  else if (input.closeAfter === true) out.push('connection', 'close');
  if (input.subject !== undefined) out.push(FORWARDED_HEADERS.subject, input.subject);
  if (input.claimHeaders !== undefined) for (const v of input.claimHeaders) out.push(v);
  // X-Real-IP: the client as far as the sidecar can vouch, the leftmost X-Forwarded-For entry.
  const peer = req.socket.remoteAddress;
  if (priorForwardedFor === undefined) {
    if (peer !== undefined) out.push(X_FORWARDED_FOR, peer, X_REAL_IP, peer);
  } else {
    const chain = forwardedFor(priorForwardedFor, peer, hops);
    if (chain.length > 0) out.push(X_FORWARDED_FOR, chain.join(', '), X_REAL_IP, chain[0]);
  }
  // The sidecar terminates plain HTTP; a trusted proxy in front may have ended TLS and says so.
  out.push(X_FORWARDED_PROTO, trustedProto(priorProto) ?? 'http');
  // The client's Host, port included: the sidecar cannot know the port the client dialled (a
  // Service port is not the container's), so it sends no X-Forwarded-Port.
  if (h.host !== undefined) out.push('x-forwarded-host', h.host);
  out.push(FORWARDED_HEADERS.requestId, input.requestId);
  return out;
}

/** Hop-by-hop response headers: the client connection is ours, and Node frames the body itself. */
const DROPPED_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', FORWARDED_HEADERS.requestId]);

/**
 * The response head for the client, from the upstream's parsed headers.
 * `connection` is ours to decide: "keep-alive", "close", or "upgrade" for a 101.
 */
export function clientResponseHeaders(headers: IncomingHttpHeaders, requestId: string, connection: 'keep-alive' | 'close'): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const extraHop = nominated(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || DROPPED_RESPONSE.has(name)) continue;
    if (extraHop !== undefined && extraHop.has(name)) continue;
    out[name] = value;
  }
  out[FORWARDED_HEADERS.requestId] = requestId;
  out.connection = connection;
  return out;
}

/** A raw response head (for upgrade sockets, where there is no ServerResponse). */
export function rawResponseHead(status: number, reason: string, headers: Record<string, string | string[]>): string {
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (typeof value === 'string') head += `${name}: ${value}\r\n`;
    else for (const v of value) head += `${name}: ${v}\r\n`;
  }
  return `${head}\r\n`;
}

const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/**
 * The request target exactly as the client sent it (origin-form; absolute-form reduced to it).
 * Never url.parse'd: collapsing "//" or resolving dots would forward a resource we did not judge.
 */
export function upstreamTarget(url: string | undefined): string {
  if (url === undefined || url === '') return '/';
  if (url.charCodeAt(0) === 47 /* / */ || url === '*') return url;
  const m = ABSOLUTE_FORM.exec(url);
  if (m === null) return url;
  const rest = url.slice(m[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}
