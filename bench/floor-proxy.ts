/**
 * The Node floor: the least a node:http reverse proxy can do per request.
 * A keep-alive agent, a plain string comparison of the Authorization header,
 * streaming in both directions. No logging, no metrics, no constant-time compare.
 * It exists only to give the sidecar's cost a yardstick in the same run.
 *
 * Env: FLOOR_PORT (0 = ephemeral), FLOOR_UPSTREAM (http://host:port), FLOOR_TOKEN.
 */
import * as http from 'http';

const upstream = new URL(process.env.FLOOR_UPSTREAM ?? 'http://127.0.0.1:8080');
const expected = `Bearer ${process.env.FLOOR_TOKEN ?? ''}`;
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });

const server = http.createServer((req, res) => {
  if (req.headers.authorization !== expected) {
    res.writeHead(401, { 'content-type': 'text/plain', 'content-length': '13' }).end('Unauthorized\n');
    return;
  }
  const headers = { ...req.headers };
  delete headers.authorization;
  const proxyReq = http.request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
    (proxyRes) => {
      res.writeHead(proxyRes.statusCode ?? 502, proxyRes.headers);
      proxyRes.pipe(res);
    },
  );
  proxyReq.on('error', () => {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  req.pipe(proxyReq);
});

server.listen(Number(process.env.FLOOR_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(JSON.stringify({ msg: 'listening', port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
