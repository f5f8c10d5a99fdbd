import { STATUS_CODES } from 'http';
import express, { ErrorRequestHandler, Express, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { FORWARDED_HEADERS, HEALTH_PATHS } from '../../../lib/src/contract';

export const WELCOME_TEXT = 'Welcome to the Main Service!';

/** Shared with the server: once closing, responses ask clients to drop their keep-alive connection. */
export interface Lifecycle {
  closing: boolean;
}

const MAX_LOGGED_PATH = 1_024;

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** One access log line per request, written when the response finishes or the client goes away. */
function accessLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const path = req.originalUrl.split('?', 1)[0].slice(0, MAX_LOGGED_PATH);
    let logged = false;
    const done = () => {
      if (logged) return;
      logged = true;
      logger.info(
        {
          method: req.method,
          path,
          status: res.statusCode,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
          requestId: headerValue(req.headers[FORWARDED_HEADERS.requestId]),
          subject: headerValue(req.headers[FORWARDED_HEADERS.subject]),
          // 'close' before 'finish': the client left before the whole response was sent.
          ...(res.writableFinished ? {} : { aborted: true }),
        },
        'request',
      );
    };
    res.once('finish', done);
    res.once('close', done);
    next();
  };
}

export function createApp(logger: Logger, lifecycle: Lifecycle): Express {
  const app = express();
  app.disable('x-powered-by');
  // A fixed text needs no conditional GETs; skip hashing every response.
  app.disable('etag');

  app.use(accessLog(logger));
  app.use((_req, res, next) => {
    if (lifecycle.closing) res.setHeader('Connection', 'close');
    next();
  });

  app.get('/', (_req, res) => {
    res.type('text/plain').send(WELCOME_TEXT);
  });
  app.get(HEALTH_PATHS.main, (_req, res) => {
    res.type('text/plain').send('ok');
  });

  app.use((_req, res) => {
    res.status(404).type('text/plain').send('Not Found');
  });

  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) logger.error({ err }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(status).type('text/plain').send(STATUS_CODES[status] ?? 'Error');
  };
  app.use(onError);
  return app;
}
