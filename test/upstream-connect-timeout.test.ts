/**
 * The upstream timeout covers the connect. Node defers a ClientRequest's setTimeout until the socket
 * connects, and until then the pool's idle timeout (the Agent's `timeout`, meant for free sockets)
 * was the socket's timer: a connect still pending after upstreamIdleTimeoutMs answered 504 at that
 * bound, not at upstreamTimeoutMs (seen under load: a 504 after 599 ms with a 1 500 ms timeout and a
 * 200 ms idle timeout). Here the connect stays pending for good: the main's accept queue is full.
 * Real processes and sockets.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { SIDECAR_ENV } from '../lib/src/contract';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { request, tempDir } from './support/http';

const TOKEN = 'connect-timeout-token-0123456789abcdef';
const UPSTREAM_TIMEOUT_MS = 1_500;
const IDLE_TIMEOUT_MS = 100;
const LISTENER = path.join(__dirname, 'fixtures', 'no-accept-listener.js');

const tokens = tempDir('connect-timeout-');
fs.writeFileSync(path.join(tokens.dir, 'ci'), TOKEN);
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  tokens.cleanup();
});

/** Open connections until one stays pending: the accept queue is then full and later SYNs are dropped. */
async function fillAcceptQueue(port: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (;;) {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    // A loopback handshake the kernel completes is done at once; 1 s without one is a dropped SYN
    // (Linux retries it only after 1 s), whatever the load.
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 1_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!connected) return sockets;
    if (sockets.length > 64) throw new Error('the listener accepted 64 connections: it was meant never to accept');
  }
}

describe('an upstream connect that never completes', () => {
  let sidecar: RunningApp;
  beforeAll(async () => {
    const listener = await startApp('no-accept-listener', { entry: LISTENER });
    cleanups.push(() => listener.stop('SIGKILL'));
    const sockets = await fillAcceptQueue(listener.port);
    cleanups.push(() => sockets.forEach((s) => s.destroy()));
    sidecar = await startApp('sidecar', {
      env: {
        ...localSidecarEnv(`http://127.0.0.1:${listener.port}`, tokens.dir),
        [SIDECAR_ENV.upstreamTimeoutMs]: String(UPSTREAM_TIMEOUT_MS),
        [SIDECAR_ENV.upstreamIdleTimeoutMs]: String(IDLE_TIMEOUT_MS),
      },
    });
    cleanups.push(() => sidecar.stop('SIGKILL'));
  });

  it('is answered 504 at the upstream timeout, not at the pool’s idle timeout', async () => {
    const began = performance.now();
    const res = await request(sidecar.port, { headers: { authorization: `Bearer ${TOKEN}` } });
    const ms = performance.now() - began;
    expect(res.status).toBe(504);
    expect(ms).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS - 50);
  });

  it('is answered 504 at the upstream timeout for an upgrade too (its connection is never pooled)', async () => {
    const began = performance.now();
    const head = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(sidecar.port, '127.0.0.1');
      let got = '';
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => {
        got += c;
        if (got.includes('\r\n')) {
          socket.destroy();
          resolve(got.slice(0, got.indexOf('\r\n')));
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(got));
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: app\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
    });
    expect(head).toBe('HTTP/1.1 504 Gateway Timeout');
    expect(performance.now() - began).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS - 50);
  });
});
