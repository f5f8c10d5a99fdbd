/**
 * The forwarding passes the sidecar installs in http-proxy, replacing all of its own: the web pass
 * (web-pass.ts) and the upgrade pass (upgrade-pass.ts). http-proxy-middleware stays the entry point
 * (its options, plugins and events); these passes decide what goes on the wire. Why each built-in
 * pass is replaced: SECURITY.md, "Forwarding passes".
 *
 * The invariant they keep:
 *  - every forwarded request reaches the upstream as exactly one request, framed as Node parsed it;
 *  - no client byte reaches the upstream outside a request the sidecar judged;
 *  - an upstream connection is reused only after a complete, well-framed exchange.
 */
import type { PassOptions } from './pass-inputs';
import { createUpgradePass } from './upgrade-pass';
import type { WsPass } from './upgrade-pass';
import { createWebPass } from './web-pass';
import type { WebPass } from './web-pass';

export function createPasses(opts: PassOptions): { web: WebPass; ws: WsPass } {
  return { web: createWebPass(opts), ws: createUpgradePass(opts) };
}
