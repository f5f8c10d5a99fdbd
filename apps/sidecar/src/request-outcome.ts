/**
 * What the proxy port records of every request once it is over: the request counter, under the
 * status the client got, and one access line; for a refusal, also the counter that says why.
 * The one place a status becomes a metric and a log line, so the two always agree.
 */
import type { Refusal } from './admission';
import { logPath } from './context';
import type { RequestContext } from './context';
import type { Logger } from './log';
import { createAccessLog } from './log';
import type { SidecarMetrics } from './metrics';
import type { RefusalExtras } from './refusals';

/** Access-line fields that only some answers have. */
export interface OutcomeExtras {
  /** The response did not complete. */
  readonly aborted?: boolean;
  readonly upgrade?: boolean;
  /** Instead of the context's reason. */
  readonly reason?: string;
}

export interface OutcomeRecorder {
  /** The request is over: count it and write its access line. */
  answered(method: string | undefined, url: string | undefined, status: number, ctx: RequestContext, extras?: OutcomeExtras): void;
  /** Count a refusal and note its reason for the access line; the extras its answer needs. */
  refused(refusal: Refusal, ctx: RequestContext): RefusalExtras | undefined;
}

export function createOutcomeRecorder(logger: Logger, metrics: SidecarMetrics): OutcomeRecorder {
  const writeAccessLine = createAccessLog(logger);
  return {
    answered(method, url, status, ctx, extras) {
      metrics.request(status, ctx.subject ?? '');
      writeAccessLine({
        method,
        path: logPath(url),
        status,
        durationMs: Math.round((performance.now() - ctx.start) * 100) / 100,
        requestId: ctx.requestId,
        subject: ctx.subject,
        reason: extras?.reason ?? ctx.reason,
        rule: ctx.rule,
        upstreamError: ctx.upstreamError,
        aborted: extras?.aborted,
        upgrade: extras?.upgrade,
      });
    },
    refused(refusal, ctx) {
      ctx.reason = refusal.reason;
      if (refusal.clientError !== undefined) metrics.clientError(refusal.clientError);
      if (refusal.forbiddenRule !== undefined) metrics.forbidden(refusal.forbiddenRule);
      if (refusal.auth === undefined) return undefined;
      metrics.authFailure(refusal.auth.reason);
      // The refusal carries its challenge: no object per 401.
      return refusal;
    },
  };
}
