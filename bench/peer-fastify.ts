/**
 * A Node peer: what a Node user might pick instead of the sidecar from the Fastify ecosystem,
 * Fastify 5 with @fastify/http-proxy (which forwards through @fastify/reply-from's undici agent,
 * keep-alive to the upstream). The same plain Authorization check as the floor
 * (bench/floor-proxy.ts), as an onRequest hook; Fastify's logger off (its default), no metrics.
 * It exists only to put the sidecar's cost beside a common choice in the same run.
 *
 * Env: PEER_PORT (0 = ephemeral), PEER_UPSTREAM (http://host:port), PEER_TOKEN.
 * Prints the "listening" line the process helpers wait for, as floor-proxy does.
 */
import httpProxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const upstream = new URL(process.env.PEER_UPSTREAM ?? 'http://127.0.0.1:8080');
const expected = `Bearer ${process.env.PEER_TOKEN ?? ''}`;

const app = Fastify({ logger: false });

app.addHook('onRequest', (req, reply, done) => {
  if (req.headers.authorization !== expected) {
    reply.code(401).header('content-type', 'text/plain').send('Unauthorized\n');
    return;
  }
  done();
});

app.register(httpProxy, {
  upstream: upstream.origin,
  replyOptions: {
    rewriteRequestHeaders: (_req, headers) => {
      const forwarded = { ...headers };
      delete forwarded.authorization;
      return forwarded;
    },
  },
});

app.listen({ port: Number(process.env.PEER_PORT ?? 0), host: '127.0.0.1' }).then(
  () => {
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.stdout.write(JSON.stringify({ msg: 'listening', port }) + '\n');
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
process.on('SIGTERM', () => process.exit(0));
