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

/** Headers the sidecar itself sets upstream: every client spelling of them is dropped. */
const OWN_HEADERS = [FORWARDED_HEADERS.subject, FORWARDED_HEADERS.requestId, X_FORWARDED_FOR, 'x-forwarded-proto', 'x-forwarded-host'];

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

/** 0: forwarded as sent; OWN: a spelling of a header we set; DROPPED: of a hop-by-hop, framing or routing header. */
type NameClass = 0 | typeof OWN | typeof DROPPED;
const OWN = 1;
const DROPPED = 2;

const RESERVED = new Map<string, NameClass>([
  ...OWN_HEADERS.map((n) => [normalizedHeaderName(n), OWN] as const),
  ...DROPPED_REQUEST.map((n) => [normalizedHeaderName(n), DROPPED] as const),
]);

/** Header names repeat from request to request: remember each one's class (bounded). */
const nameClassCache = new Map<string, NameClass>();
const NAME_CACHE_LIMIT = 4096;

/** Every spelling of a claim header is ours, whichever claims this sidecar forwards. */
const CLAIM_HEADER_FOLDED = normalizedHeaderName(CLAIM_HEADER_PREFIX);

function classOf(name: string): NameClass {
  let c = nameClassCache.get(name);
  if (c === undefined) {
    const folded = normalizedHeaderName(name);
    c = RESERVED.get(folded) ?? (folded.startsWith(CLAIM_HEADER_FOLDED) ? OWN : 0);
    if (nameClassCache.size >= NAME_CACHE_LIMIT) nameClassCache.clear();
    nameClassCache.set(name, c);
  }
  return c;
}

/** Never dropped because Connection names them: they route the message or are rewritten by us anyway. */
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
}

/** The request head for the main service, as a flat [name, value, …] list. */
export function upstreamRequestHeaders(req: IncomingMessage, input: UpstreamHeaderInput): string[] {
  const h = req.headers;
  const out: string[] = ['host', h.host ?? input.fallbackHost];
  const extraHop = nominated(h.connection);
  let priorForwardedFor: string | undefined;
  for (const name in h) {
    const value = h[name];
    if (value === undefined) continue;
    const c = classOf(name);
    if (c === DROPPED) continue;
    if (c === OWN) {
      if (name === X_FORWARDED_FOR) priorForwardedFor = value as string;
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
  const ip = req.socket.remoteAddress;
  if (ip !== undefined) out.push(X_FORWARDED_FOR, priorForwardedFor ? `${priorForwardedFor}, ${ip}` : ip);
  else if (priorForwardedFor !== undefined) out.push(X_FORWARDED_FOR, priorForwardedFor);
  // The sidecar terminates plain HTTP (TLS, if any, ended before it).
  out.push('x-forwarded-proto', 'http');
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
