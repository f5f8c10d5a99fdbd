/**
 * Upgrade requests (WebSockets) on the proxy port: admit → forward, or admit → refuse on the bare
 * socket. An upgrade is logged and counted once, when its socket closes, under the status it got.
 */
import type * as http from 'http';
import type { Duplex } from 'stream';
import type { Admit, Refusal } from './admission';
import { answeredWithClose, destroyOnError, hasResponsesOwed, whenSettled } from './connections';
import { contextOf } from './context';
import type { RequestContext } from './context';
import type { Forwarder } from './forward';
import type { Logger } from './log';
import { errorFields } from './log';
import { refuseSocket } from './refusals';
import type { OutcomeRecorder } from './request-outcome';

export interface UpgradeOptions {
  readonly admit: Admit;
  readonly forwarder: Forwarder;
  readonly recorder: OutcomeRecorder;
  readonly logger: Logger;
  /** From the end of the drain on: new upgrades are refused with 503. */
  readonly closingConnections: () => boolean;
}

export interface Upgrades {
  /** Node's 'upgrade' listener. */
  onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Upgraded connections open now. */
  readonly webSockets: ReadonlySet<Duplex>;
}

/** Pipelined behind responses still being written: refused after them, never overtaking them. */
const PIPELINED_UPGRADE: Refusal = Object.freeze({ admitted: false, status: 400, reason: 'pipelined_upgrade', clientError: 'bad_request' });

const UPGRADE = Object.freeze({ upgrade: true });
/** The upstream's refusal of the upgrade was cut short. */
const UPGRADE_CUT = Object.freeze({ upgrade: true, aborted: true });

const kUpgradeRequest = Symbol('sidecar.upgradeRequest');
type UpgradeSocket = Duplex & { [kUpgradeRequest]: http.IncomingMessage };

export function createUpgrades(opts: UpgradeOptions): Upgrades {
  const { admit, forwarder, recorder, logger, closingConnections } = opts;
  const webSockets = new Set<Duplex>();

  function onUpgradeSocketClose(this: UpgradeSocket): void {
    const req = this[kUpgradeRequest];
    const ctx = contextOf(req);
    webSockets.delete(this);
    const status = ctx.upgradeStatus ?? (ctx.upstreamError ? 502 : 499);
    recorder.answered(req.method, req.url, status, ctx, ctx.responseCut ? UPGRADE_CUT : UPGRADE);
  }

  function refuseUpgrade(socket: Duplex, refusal: Refusal, ctx: RequestContext): void {
    const extras = recorder.refused(refusal, ctx);
    ctx.upgradeStatus = refusal.status;
    refuseSocket(socket, refusal.status, ctx.requestId, extras);
  }

  /** An upgrade pipelined behind other requests is not served: true if this was one. */
  function settledBehindEarlierRequests(socket: Duplex, ctx: RequestContext): boolean {
    if (answeredWithClose(socket)) {
      // Pipelined behind an answer that closed the connection: not ours to serve.
      ctx.reason = 'after_close';
      whenSettled(socket, () => socket.end());
      return true;
    }
    if (!hasResponsesOwed(socket)) return false;
    recorder.refused(PIPELINED_UPGRADE, ctx);
    ctx.upgradeStatus = PIPELINED_UPGRADE.status;
    whenSettled(socket, () => refuseSocket(socket, 400, ctx.requestId));
    return true;
  }

  function onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node detaches its own error handling from upgraded sockets: an unhandled 'error' would crash us.
    socket.on('error', destroyOnError);
    const ctx = contextOf(req);
    (socket as UpgradeSocket)[kUpgradeRequest] = req;
    socket.once('close', onUpgradeSocketClose);
    try {
      if (settledBehindEarlierRequests(socket, ctx)) return;
      if (closingConnections()) {
        ctx.upgradeStatus = 503;
        refuseSocket(socket, 503, ctx.requestId);
        return;
      }
      const admission = admit(req, ctx, 'upgrade');
      if (!admission.admitted) {
        refuseUpgrade(socket, admission, ctx);
        return;
      }
      webSockets.add(socket);
      forwarder.upgrade(req, socket, head);
    } catch (err) {
      logger.error({ err: errorFields(err), requestId: ctx.requestId }, 'upgrade handling failed');
      socket.destroy();
    }
  }

  return { onUpgrade, webSockets };
}
