/**
 * The bench's Node peers (bench/peer-undici.ts, bench/peer-fastify.ts), started as the bench starts
 * them, in front of a node:http upstream that records what reaches it: the floor's plain header check
 * (401 without the token, the token not forwarded), the upstream's answer passed back, a request body
 * forwarded, and keep-alive to the upstream (two client connections, one upstream connection). A peer
 * that stopped doing any of that would put a wrong yardstick beside the sidecar.
 */
import * as http from 'http';
import * as path from 'path';
import { REPO_ROOT, RunningApp, startApp } from './support/apps';
import { request } from './support/http';

const TOKEN = 'peer-token-0123456789abcdef';
const PEERS = ['peer-undici', 'peer-fastify'] as const;

interface Seen {
  readonly authorization: string | undefined;
  readonly body: string;
  readonly remotePort: number;
}

describe.each(PEERS)('bench/%s.ts', (peer) => {
  const seen: Seen[] = [];
  let upstream: http.Server;
  let proxy: RunningApp;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        seen.push({ authorization: req.headers.authorization, body, remotePort: req.socket.remotePort ?? 0 });
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5', 'x-upstream': 'yes' }).end('hello');
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as { port: number }).port;
    proxy = await startApp(peer, {
      entry: path.join(REPO_ROOT, 'build', 'bench', `${peer}.js`),
      env: { PEER_PORT: '0', PEER_UPSTREAM: `http://127.0.0.1:${port}`, PEER_TOKEN: TOKEN },
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  beforeEach(() => {
    seen.length = 0;
  });

  test('without the token: 401, and nothing reaches the upstream', async () => {
    expect((await request(proxy.port)).status).toBe(401);
    expect((await request(proxy.port, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect(seen).toEqual([]);
  });

  test('with the token: the upstream answer, the token not forwarded, one upstream connection for two client ones', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const first = await request(proxy.port, { path: '/a?b=1', headers: auth });
    const second = await request(proxy.port, { path: '/c', headers: auth });
    for (const r of [first, second]) {
      expect({ status: r.status, body: r.text(), upstream: r.headers['x-upstream'] }).toEqual({ status: 200, body: 'hello', upstream: 'yes' });
    }
    expect(seen.map((s) => s.authorization)).toEqual([undefined, undefined]);
    expect(seen[1].remotePort).toBe(seen[0].remotePort);
  });

  test('a request body is forwarded', async () => {
    const r = await request(proxy.port, { method: 'POST', path: '/p', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' }, body: 'payload' });
    expect(r.status).toBe(200);
    expect(seen.map((s) => s.body)).toEqual(['payload']);
  });
});
