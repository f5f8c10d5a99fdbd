/**
 * Plain requests on the proxy port: admit → forward, or admit → refuse. Also the order of answers
 * on a pipelined connection (connections.ts) and the 100-continue invitation, which Node would
 * otherwise send before the token is looked at.
 *
 * Listeners are shared, created once per server: `this` is the response, the exchange's state
 * lives on its request (context.ts). No closures per request.
 */
import type * as http from 'http';
import type { Admit, Refusal } from './admission';
import { answeredWithClose, markAnsweredWithClose, responseDone, responseOwed } from './connections';
import { contextOf } from './context';
import type { RequestContext } from './context';
import type { Forwarder } from './forward';
import { hasPendingBody } from './framing';
import type { Logger } from './log';
import { errorFields } from './log';
import { refuse } from './refusals';
import type { OutcomeRecorder } from './request-outcome';
import { cutResponse, headReachedSocket } from './response-cut';

export interface WebRequestOptions {
  readonly admit: Admit;
  readonly forwarder: Forwarder;
  readonly recorder: OutcomeRecorder;
  readonly logger: Logger;
  /** Whether every response should close its connection (shutting down). */
  readonly closing: () => boolean;
}

export interface WebRequests {
  /** Node's 'request' listener. */
  onRequest(req: http.IncomingMessage, res: http.ServerResponse): void;
  /** Node's 'checkContinue' listener: the request, inviting its body only if it is forwarded. */
  onCheckContinue(req: http.IncomingMessage, res: http.ServerResponse): void;
  /** Requests being answered now. */
  inFlight(): number;
}

const ABORTED = Object.freeze({ aborted: true });

export function createWebRequests(opts: WebRequestOptions): WebRequests {
  const { admit, forwarder, recorder, logger, closing } = opts;
  let inFlight = 0;

  function onResponseClose(this: http.ServerResponse): void {
    const req = this.req;
    const ctx = contextOf(req);
    inFlight--;
    responseDone(req.socket);
    // A cut response may still be end()ed by its pipe, which makes it look finished.
    const finished = this.writableFinished && !ctx.responseCut;
    if (!finished) {
      ctx.clientGone = true;
      // Free the upstream request at once; http-proxy alone misses a client leaving a fully-read GET.
      if (ctx.proxyReq !== undefined && !ctx.proxyReq.destroyed) ctx.proxyReq.destroy();
    }
    // 499: the client closed the connection before any of our answer reached it (nginx's convention).
    // Not headersSent: a head Node still holds back never reached the client.
    const status = !finished && !headReachedSocket(this) ? 499 : this.statusCode;
    recorder.answered(req.method, req.url, status, ctx, finished ? undefined : ABORTED);
  }

  function refuseRequest(req: http.IncomingMessage, res: http.ServerResponse, refusal: Refusal, ctx: RequestContext): void {
    const extras = recorder.refused(refusal, ctx);
    // An auth refusal (400 malformed credential, 401, 403) keeps the connection unless there is an
    // unread body (a refused client does not get to stream one at us) or the pod is draining; every
    // other refusal closes it.
    const close = refusal.keepAlive !== true || hasPendingBody(req) || closing();
    if (close) markAnsweredWithClose(res.socket ?? res);
    refuse(res, refusal.status, ctx.requestId, close, extras);
  }

  /** A bug of ours, not the client's: a 500 if nothing has gone out yet, else a cut. */
  function handlingFailed(res: http.ServerResponse, ctx: RequestContext, err: unknown): void {
    logger.error({ err: errorFields(err), requestId: ctx.requestId }, 'request handling failed');
    if (!res.headersSent && !res.destroyed) {
      markAnsweredWithClose(res.socket ?? res);
      refuse(res, 500, ctx.requestId, true);
    } else {
      cutResponse(res, ctx);
    }
  }

  function onRequest(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue = false): void {
    const ctx = contextOf(req);
    inFlight++;
    responseOwed(req.socket);
    res.once('close', onResponseClose);
    try {
      if (answeredWithClose(req.socket)) {
        // Left unanswered: Node closes the connection once the earlier response is out.
        ctx.reason = 'after_close';
        return;
      }
      const admission = admit(req, ctx, 'request');
      if (!admission.admitted) {
        refuseRequest(req, res, admission, ctx);
        return;
      }
      // Invite the body only once we know we will forward it.
      if (expectsContinue) res.writeContinue();
      if (closing()) markAnsweredWithClose(req.socket);
      forwarder.forward(req, res);
    } catch (err) {
      handlingFailed(res, ctx, err);
    }
  }

  return {
    onRequest,
    onCheckContinue: (req, res) => onRequest(req, res, true),
    inFlight: () => inFlight,
  };
}
