/**
 * A Node peer: what a Node user might write instead of the sidecar with no proxy library, a
 * node:http server forwarding through an undici `Pool` (keep-alive to the upstream, undici's
 * default). The same plain Authorization check as the floor (bench/floor-proxy.ts); no logging, no
 * metrics. It exists only to put the sidecar's cost beside a common choice in the same run.
 *
 * Env: PEER_PORT (0 = ephemeral), PEER_UPSTREAM (http://host:port), PEER_TOKEN.
 * Prints the "listening" line the process helpers wait for, as floor-proxy does.
 */
import * as http from 'http';
import { Pool } from 'undici';

const upstream = new URL(process.env.PEER_UPSTREAM ?? 'http://127.0.0.1:8080');
const expected = `Bearer ${process.env.PEER_TOKEN ?? ''}`;
// undici's defaults: keep-alive, no pipelining, as many connections as requests in flight.
const pool = new Pool(upstream.origin);

/** undici refuses these on a request (they are the connection's, not the message's), and a proxy must not forward them. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect'];

function forwardedHeaders(req: http.IncomingMessage): http.IncomingHttpHeaders {
  const headers = { ...req.headers };
  delete headers.authorization;
  for (const name of HOP_BY_HOP) delete headers[name];
  return headers;
}

const server = http.createServer((req, res) => {
  if (req.headers.authorization !== expected) {
    res.writeHead(401, { 'content-type': 'text/plain', 'content-length': '13' }).end('Unauthorized\n');
    return;
  }
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.stream(
    { method: req.method as 'GET', path: req.url ?? '/', headers: forwardedHeaders(req), body: hasBody ? req : undefined },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, headers as http.OutgoingHttpHeaders);
      return res;
    },
    (err) => {
      if (err === null) return;
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    },
  );
});

server.listen(Number(process.env.PEER_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(JSON.stringify({ msg: 'listening', port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
