/**
 * How a request's body is delimited, decided once from Node's parse and never from the client's
 * header text again. The upstream gets exactly this framing and nothing else: Content-Length in
 * canonical form, `Transfer-Encoding: chunked`, or no body at all. Anything else is refused here,
 * before authentication, so no ambiguous message ever reaches the main service.
 */
import type { IncomingMessage } from 'http';

export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: string }
  | { readonly kind: 'chunked' };

export type FramingVerdict =
  | { readonly ok: true; readonly framing: BodyFraming }
  | { readonly ok: false; readonly status: 400 | 501; readonly reason: FramingRefusal };

export type FramingRefusal = 'duplicate_host' | 'invalid_host' | 'transfer_coding' | 'upgrade_with_body';

const NONE: FramingVerdict = Object.freeze({ ok: true, framing: Object.freeze({ kind: 'none' }) });
const CHUNKED: FramingVerdict = Object.freeze({ ok: true, framing: Object.freeze({ kind: 'chunked' }) });
const ZERO: FramingVerdict = Object.freeze({ ok: true, framing: Object.freeze({ kind: 'length', length: '0' }) });
const refuse = (status: 400 | 501, reason: FramingRefusal): FramingVerdict => Object.freeze({ ok: false, status, reason });
const DUPLICATE_HOST = refuse(400, 'duplicate_host');
const INVALID_HOST = refuse(400, 'invalid_host');
const TRANSFER_CODING = refuse(501, 'transfer_coding');
const UPGRADE_WITH_BODY = refuse(400, 'upgrade_with_body');

/**
 * RFC 9112 §3.2: a Host that is not a valid authority (RFC 3986 §3.2.2 host, optional port) is a 400.
 * Node forwards any bytes; a backend building URLs from Host must not get `a/admin?` or spaces.
 */
const VALID_HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/;

/** RFC 9112 §3.2: more than one Host is a 400. Node silently keeps the first. */
function hostCount(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 && name.toLowerCase() === 'host') n++;
  }
  return n;
}

/**
 * The body framing to forward, or why the request is refused.
 * Node has already rejected Content-Length with Transfer-Encoding, duplicate or malformed
 * Content-Length, and a Transfer-Encoding whose last coding is not chunked.
 * We further refuse every transfer coding but a lone `chunked` (RFC 9112 §6.1: 501), because an
 * upstream that reads `identity, chunked` or `gzip, chunked` differently from Node is how
 * smuggling starts, and because we would otherwise have to forward codings we cannot vouch for.
 */
export function requestFraming(req: IncomingMessage, upgrade: boolean): FramingVerdict {
  if (hostCount(req.rawHeaders) > 1) return DUPLICATE_HOST;
  const host = req.headers.host;
  if (host !== undefined && !VALID_HOST.test(host)) return INVALID_HOST;
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  if (te !== undefined) {
    if (te.length !== 7 || te.toLowerCase() !== 'chunked') return TRANSFER_CODING;
    return upgrade ? UPGRADE_WITH_BODY : CHUNKED;
  }
  if (cl === undefined) return NONE;
  const length = canonicalLength(cl);
  // An upgrade's bytes after the head belong to the new protocol: it goes upstream with no framing at all.
  if (length === '0') return upgrade ? NONE : ZERO;
  return upgrade ? UPGRADE_WITH_BODY : { ok: true, framing: { kind: 'length', length } };
}

/** Node accepts leading zeros ("003"); a backend might read them as octal. Forward the plain number. */
function canonicalLength(cl: string): string {
  if (cl.length === 1 || cl.charCodeAt(0) !== 48 /* 0 */) return cl;
  const stripped = cl.replace(/^0+/, '');
  return stripped === '' ? '0' : stripped;
}

/** True when the request still has a body to read: a refusal written before reading it must close the connection. */
export function hasPendingBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}
