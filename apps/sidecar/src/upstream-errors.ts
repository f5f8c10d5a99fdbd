/**
 * The failures a forwarding pass raises on http-proxy's 'error' event, by code: forward.ts maps
 * each code to the status the client gets. Any other code is the upstream connection's own error.
 */
import type * as http from 'http';

/** The upstream went quiet for longer than the upstream timeout (mapped to 504). */
export const UPSTREAM_TIMEOUT = 'UPSTREAM_TIMEOUT';
/** Our code for a failure that is the client's request, not the upstream (mapped to 400). */
export const UNFORWARDABLE = 'UNFORWARDABLE';
/** The upstream answered something no HTTP/1.1 server may send here (mapped to 502). */
export const UPSTREAM_BAD_RESPONSE = 'UPSTREAM_BAD_RESPONSE';
/** Logged as upstreamError when the upstream ended its response early without an error of its own. */
export const UPSTREAM_ABORTED = 'UPSTREAM_ABORTED';

export function unforwardable(message: string): Error {
  return Object.assign(new Error(message), { code: UNFORWARDABLE });
}

export function badResponse(message: string): Error {
  return Object.assign(new Error(message), { code: UPSTREAM_BAD_RESPONSE });
}

/** The upstream request's inactivity-timeout listener (shared: `this` is the upstream request). */
export function onUpstreamTimeout(this: http.ClientRequest): void {
  this.destroy(Object.assign(new Error('upstream timeout'), { code: UPSTREAM_TIMEOUT }));
}
