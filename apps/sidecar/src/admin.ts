/**
 * Admin port (Express 5): liveness, readiness and metrics. No authentication; not in the Service.
 */
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import * as http from 'http';
import * as net from 'net';
import {
  DRAIN_HOOK_QUERY,
  HEALTH_PATHS,
  PRE_STOP_WAIT_MS,
  PRE_STOP_WAIT_UNTIL,
  PRE_STOP_WAIT_UNTIL_QUERY,
  SIDECAR_INTEGERS,
  UPSTREAM_CHECKS,
  parseInteger,
} from '../../../lib/src/contract';
import type { UpstreamCheck } from '../../../lib/src/contract';
import type { ProxyClosedWaits } from './closed-waits';
import type { UpstreamAddress } from './config';
import type { Logger } from './log';
import { errorFields } from './log';
import type { SidecarMetrics } from './metrics';

const UPSTREAM_CHECK_TIMEOUT_MS = 1_000;

export interface AdminOptions {
  readonly upstream: UpstreamAddress;
  /** How /readyz checks the main service. @default UPSTREAM_CHECKS.http */
  readonly upstreamCheck?: UpstreamCheck;
  readonly upstreamHealthPath: string;
  readonly metrics: SidecarMetrics;
  readonly logger: Logger;
  /** Reason readiness must fail regardless of the upstream (shutting down, no tokens), or undefined. */
  readonly notReadyReason: () => string | undefined;
  /** One line per configured credential source, `<name>: ready` or why not: the body of /readyz after its verdict. @default none */
  readonly sources?: () => readonly string[];
  /** Drain for that long, then close the proxy; true once closed cleanly. Without it there is no drain hook. */
  readonly drain?: (drainMs: number) => Promise<boolean>;
  /** Where preStop waits `?until=closed` wait for the proxy's close. */
  readonly proxyClosedWaits: ProxyClosedWaits;
}

/** GET the main service's health path on a fresh connection (not the proxy pool); resolve a failure reason or undefined. */
export function checkUpstream(upstream: UpstreamAddress, healthPath: string, timeoutMs = UPSTREAM_CHECK_TIMEOUT_MS): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (reason: string | undefined) => {
      if (!settled) {
        settled = true;
        resolve(reason);
      }
    };
    const req = http.get(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        path: healthPath,
        agent: false,
        headers: { 'user-agent': 'sidecar-readiness', connection: 'close' },
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        // 200-399, as the kubelet counts an HTTP probe: the check SidecarApp derives from main's own probe agrees with it.
        done(code >= 200 && code < 400 ? undefined : `main service not answering: HTTP ${code}`);
      },
    );
    req.on('timeout', () => {
      done(`main service not answering: no answer within ${timeoutMs} ms`);
      req.destroy();
    });
    req.on('error', (err: NodeJS.ErrnoException) => done(`main service not answering: ${err.code ?? err.message}`));
  });
}

/** Connect to the main service's port on a fresh socket and hang up; resolve a failure reason or undefined. Nothing is sent. */
export function checkUpstreamTcp(upstream: UpstreamAddress, timeoutMs = UPSTREAM_CHECK_TIMEOUT_MS): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: upstream.hostname, port: upstream.port });
    const done = (reason: string | undefined) => {
      socket.destroy();
      resolve(reason);
    };
    // A connect timer, not socket.setTimeout: that one counts idle time, and would start again at connect.
    const timer = setTimeout(() => done(`main service not accepting connections: none within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      done(undefined);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      done(`main service not accepting connections: ${err.code ?? err.message}`);
    });
  });
}

/** The upstream's part of the readiness verdict: a failure reason, or undefined when ready (or not consulted). */
function upstreamVerdict(opts: AdminOptions): Promise<string | undefined> {
  switch (opts.upstreamCheck ?? UPSTREAM_CHECKS.http) {
    case UPSTREAM_CHECKS.none:
      return Promise.resolve(undefined);
    case UPSTREAM_CHECKS.tcp:
      return checkUpstreamTcp(opts.upstream);
    default:
      return checkUpstream(opts.upstream, opts.upstreamHealthPath);
  }
}

/** Send with `send`; resolves once the answer is handed to the socket, or its caller has gone. */
function answered(res: Response, send: () => void): Promise<void> {
  return new Promise((resolve) => {
    res.once('finish', () => resolve());
    res.once('close', () => resolve());
    send();
  });
}

/**
 * The preStop wait. It only waits: in container mode each container's own SIGTERM starts its drain.
 * With ?until=closed (main's preStop) the sidecar's close ends the wait early, so main's SIGTERM
 * follows the drain.
 */
function preStopWait(opts: AdminOptions): (req: Request, res: Response) => void {
  const closedWaits = opts.proxyClosedWaits;
  return (req, res) => {
    const raw = req.query[DRAIN_HOOK_QUERY];
    const parsed = typeof raw === 'string' ? parseInteger(PRE_STOP_WAIT_MS, raw) : undefined;
    if (parsed === undefined || !parsed.ok) return text(res, 400, `${DRAIN_HOOK_QUERY} must be an integer in ${PRE_STOP_WAIT_MS.min}..${PRE_STOP_WAIT_MS.max}`);
    const until = req.query[PRE_STOP_WAIT_UNTIL_QUERY];
    const untilClosed = until === PRE_STOP_WAIT_UNTIL.sidecarClosed;
    if (until !== undefined && !untilClosed) return text(res, 400, `${PRE_STOP_WAIT_UNTIL_QUERY} must be ${PRE_STOP_WAIT_UNTIL.sidecarClosed}, or absent`);
    const waitMs = parsed.value;
    const fields = untilClosed ? { waitMs, until: PRE_STOP_WAIT_UNTIL.sidecarClosed } : { waitMs };
    opts.logger.info(fields, 'preStop wait called');
    let cancelClosedWait: () => void = () => undefined;
    const timer = setTimeout(() => {
      cancelClosedWait();
      opts.logger.info({ ...fields, answer: 'waited' }, 'preStop wait answered');
      text(res, 200, 'waited');
    }, waitMs);
    if (untilClosed) {
      cancelClosedWait = closedWaits.add((clean) => {
        clearTimeout(timer);
        const answer = clean ? 'sidecar closed' : 'sidecar closed at the shutdown bound';
        opts.logger.info({ ...fields, answer }, 'preStop wait answered');
        return answered(res, () => text(res, 200, answer));
      });
    }
    // A caller that gives up (or, for a plain wait, the shutdown's closeAllConnections) leaves no timer behind.
    res.on('close', () => {
      clearTimeout(timer);
      cancelClosedWait();
    });
  };
}

function text(res: Response, status: number, body: string): void {
  res.status(status).set('cache-control', 'no-store').type('text/plain').send(`${body}\n`);
}

export function createAdminApp(opts: AdminOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', false);

  app.get(HEALTH_PATHS.sidecarLiveness, (_req, res) => text(res, 200, 'ok'));

  const withSources = (verdict: string) => [verdict, ...(opts.sources?.() ?? [])].join('\n');
  app.get(HEALTH_PATHS.sidecarReadiness, async (_req, res) => {
    const local = opts.notReadyReason();
    if (local !== undefined) return text(res, 503, withSources(local));
    const upstream = await upstreamVerdict(opts);
    // Shutdown may have begun while we waited.
    const reason = opts.notReadyReason() ?? upstream;
    if (reason !== undefined) return text(res, 503, withSources(reason));
    return text(res, 200, withSources('ready'));
  });

  // Container mode's preStop of both containers: the kubelet waits here, so no image needs `sleep`.
  app.get(HEALTH_PATHS.preStopWait, preStopWait(opts));

  // A GET, because that is what a kubelet's preStop httpGet sends; the admin port is not in the Service.
  const drain = opts.drain;
  if (drain) app.get(HEALTH_PATHS.drain, async (req, res) => {
    const raw = req.query[DRAIN_HOOK_QUERY];
    const parsed = typeof raw === 'string' ? parseInteger(SIDECAR_INTEGERS.drainDelayMs, raw) : undefined;
    if (parsed === undefined || !parsed.ok) return text(res, 400, `${DRAIN_HOOK_QUERY} must be an integer in ${SIDECAR_INTEGERS.drainDelayMs.min}..${SIDECAR_INTEGERS.drainDelayMs.max}`);
    opts.logger.info({ drainDelayMs: parsed.value }, 'drain hook called');
    const clean = await drain(parsed.value);
    return text(res, 200, clean ? 'closed' : 'closed at the shutdown bound');
  });

  app.get(HEALTH_PATHS.metrics, async (_req, res) => {
    const body = await opts.metrics.registry.metrics();
    res.status(200).set('content-type', opts.metrics.registry.contentType).send(body);
  });

  app.use((_req: Request, res: Response) => text(res, 404, 'not found'));

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    opts.logger.error({ err: errorFields(err) }, 'admin request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = typeof (err as { status?: unknown })?.status === 'number' ? (err as { status: number }).status : 500;
    text(res, status >= 400 && status < 600 ? status : 500, status === 404 ? 'not found' : status < 500 ? 'bad request' : 'internal error');
  });

  return app;
}
