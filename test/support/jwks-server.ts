/**
 * A JWKS issuer for the tests: a real HTTPS server on 127.0.0.1 with a certificate from a CA made
 * in-test (tools/test-ca.ts), answering each path with what the test last set, and counting the
 * requests per path.
 */
import * as https from 'https';
import type { AddressInfo } from 'net';
import type { TestCa } from '../../tools/test-ca';

export { makeTestCa } from '../../tools/test-ca';
export type { TestCa };

export interface JwksAnswer {
  readonly status?: number;
  readonly body: string;
  readonly headers?: Record<string, string>;
  /** Wait this long before answering at all (a hung issuer). */
  readonly stallMs?: number;
  /** Send the head and this many bytes of the body, then wait `stallMs` before the rest (a trickling one). */
  readonly partialBytes?: number;
}

export interface JwksServer {
  readonly port: number;
  url(p: string): string;
  /** What `p` answers from now on (unset paths answer 404). */
  set(p: string, answer: JwksAnswer): void;
  /** Requests `p` has had. */
  count(p: string): number;
  /** Stop listening (and drop open connections); `listen` again on the same port. */
  close(): Promise<void>;
  listen(): Promise<void>;
}

/** Listen on 127.0.0.1 at `port` (0: any). */
export async function startJwksServer(ca: TestCa, port = 0): Promise<JwksServer> {
  const answers = new Map<string, JwksAnswer>();
  const counts = new Map<string, number>();
  const server = https.createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    counts.set(p, (counts.get(p) ?? 0) + 1);
    const answer: JwksAnswer = answers.get(p) ?? { status: 404, body: 'not found' };
    const finish = () => {
      if (!res.destroyed) res.end(answer.body.slice(answer.partialBytes ?? 0));
    };
    const head = () => {
      if (res.destroyed) return;
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
      if (answer.partialBytes !== undefined) {
        res.write(answer.body.slice(0, answer.partialBytes));
        setTimeout(finish, answer.stallMs ?? 0).unref();
      } else finish();
    };
    if (answer.stallMs !== undefined && answer.partialBytes === undefined) setTimeout(head, answer.stallMs).unref();
    else head();
  });
  let bound = port;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bound, '127.0.0.1', () => {
        server.off('error', reject);
        bound = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  await listen();
  return {
    get port() {
      return bound;
    },
    url: (p) => `https://127.0.0.1:${bound}${p}`,
    set: (p, answer) => void answers.set(p, answer),
    count: (p) => counts.get(p) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    listen,
  };
}
