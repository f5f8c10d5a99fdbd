/**
 * The lightest upstream node:http allows: 200 with a 5-byte body, nothing else. Benchmarks put it
 * behind the proxy under test so that the proxy, not the upstream, is what saturates.
 * Env: TINY_PORT (0 = ephemeral). Prints the "listening" line the process helpers wait for.
 */
import * as http from 'http';

const body = Buffer.from('hello');
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end(body));
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.TINY_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(JSON.stringify({ msg: 'listening', port: typeof address === 'object' && address ? address.port : 0 }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
