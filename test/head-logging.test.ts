/**
 * The access line and sidecar_http_requests_total say what the client actually received (issue 18 §3),
 * when the upstream's answer is bodiless (HEAD, 204, 304, Content-Length: 0) or cut short.
 *
 * Node holds a response head back until the first body byte or the end. A bodiless answer followed
 * at once by stray bytes used to be cut while its head was still held back: the client got a bare
 * close, and the log and the metric said 200. The sidecar runs as a real process in front of a raw
 * upstream that answers each path with exactly the bytes given here, then closes, or stalls.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { HEALTH_PATHS } from '../lib/src/contract';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { eventually, request, tempDir } from './support/http';
import { RawConnection } from './support/raw-client';

const TOKEN = 'head-logging-token-0123456789abcdef';
const AUTH = `Authorization: Bearer ${TOKEN}\r\n`;

/** How the raw upstream answers one path: these bytes, then it closes the connection or stays silent. */
interface Answer {
  readonly bytes: string;
  readonly then: 'close' | 'stall';
}

const answers = new Map<string, Answer>();
let upstream: net.Server;
let sidecar: RunningApp;
let tokens: { dir: string; cleanup: () => void };

beforeAll(async () => {
  upstream = net.createServer((socket) => {
    let buf = '';
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      const target = buf.slice(0, buf.indexOf('\r\n')).split(' ')[1] ?? '';
      buf = '';
      const answer = answers.get(target) ?? { bytes: 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', then: 'close' };
      // One write: the head and whatever follows it reach the sidecar together.
      if (answer.then === 'close') socket.end(answer.bytes);
      else socket.write(answer.bytes);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  tokens = tempDir('head-logging-');
  fs.writeFileSync(path.join(tokens.dir, 'alice'), TOKEN);
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
  sidecar = await startApp('sidecar', { env: localSidecarEnv(upstreamUrl, tokens.dir) });
});

afterAll(async () => {
  await sidecar.stop('SIGKILL');
  await new Promise((resolve) => upstream.close(resolve));
  tokens.cleanup();
});

/** The sidecar's metrics, as name{labels} → value. */
async function metrics(): Promise<Map<string, number>> {
  const text = (await request(sidecar.adminPort!, { path: HEALTH_PATHS.metrics })).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\S+) (\S+)$/.exec(line);
    if (m !== null && !line.startsWith('#')) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** How sidecar_http_requests_total moved between two scrapes, by code (unchanged codes left out). */
function requestsByCode(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const moved: Record<string, number> = {};
  for (const [series, value] of after) {
    const m = /^sidecar_http_requests_total\{code="(\d+)"/.exec(series);
    if (m === null) continue;
    const delta = value - (before.get(series) ?? 0);
    if (delta !== 0) moved[m[1]] = (moved[m[1]] ?? 0) + delta;
  }
  return moved;
}

function accessLine(target: string) {
  return sidecar.waitForLog((l) => l.msg === 'request' && l.path === target, 10_000);
}

describe('a bodiless answer with stray bytes after it: the client gets the whole answer, and that is what is logged', () => {
  it.each([
    ['HEAD', '/head-stray', 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison', 200],
    ['GET', '/no-content-stray', 'HTTP/1.1 204 No Content\r\n\r\npoison', 204],
    ['GET', '/not-modified-stray', 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\npoison', 304],
    ['GET', '/empty-stray', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\npoison', 200],
  ])('%s %s', async (method, target, bytes, status) => {
    answers.set(target, { bytes, then: 'stall' });
    const before = await metrics();
    const c = await RawConnection.open(sidecar.port);
    c.write(`${method} ${target} HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
    const res = await c.response(10_000, method);
    c.close();
    // The client got the upstream's answer, head complete, and none of the stray bytes.
    expect(res?.status).toBe(status);
    expect(res?.body.length).toBe(0);
    // The log says the same: that status, not aborted; the upstream's misbehaviour is named.
    const line = await accessLine(target);
    expect(line).toMatchObject({ status, upstreamError: 'HPE_INVALID_CONSTANT' });
    expect(line.aborted).toBeUndefined();
    expect(requestsByCode(before, await metrics())).toEqual({ [status]: 1 });
  });
});

it('a HEAD the upstream answers with nothing at all (it closes): the client gets 502, and so say the log and the metric', async () => {
  answers.set('/head-nothing', { bytes: '', then: 'close' });
  const before = await metrics();
  const c = await RawConnection.open(sidecar.port);
  c.write(`HEAD /head-nothing HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
  const res = await c.response(10_000, 'HEAD');
  c.close();
  expect(res?.status).toBe(502);
  const line = await accessLine('/head-nothing');
  expect(line).toMatchObject({ status: 502, upstreamError: 'ECONNRESET' });
  expect(line.aborted).toBeUndefined();
  expect(requestsByCode(before, await metrics())).toEqual({ 502: 1 });
});

it('a head with its body missing (the upstream closes): the client gets that head and then the cut, as the log says', async () => {
  answers.set('/head-only', { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n', then: 'close' });
  const before = await metrics();
  const c = await RawConnection.open(sidecar.port);
  c.write(`GET /head-only HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
  const res = await c.response(10_000);
  // The status line did reach the client (it used to get a bare close); the body never came.
  expect(res?.status).toBe(200);
  expect(res?.body.length).toBe(0);
  expect(await c.waitClosed(10_000)).toBe(true);
  c.close();
  expect(await accessLine('/head-only')).toMatchObject({ status: 200, aborted: true, upstreamError: 'UPSTREAM_ABORTED' });
  expect(requestsByCode(before, await metrics())).toEqual({ 200: 1 });
});

it('a client that leaves while the upstream head is held back (no body byte yet) is logged 499: it got nothing', async () => {
  answers.set('/slow-body', { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n', then: 'stall' });
  const before = await metrics();
  const answered = () => before.get('sidecar_upstream_duration_seconds_count') ?? 0;
  const c = await RawConnection.open(sidecar.port);
  c.write(`GET /slow-body HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`);
  // The sidecar has the upstream's head (it times the upstream's answer just before writing it).
  expect(await eventually(async () => ((await metrics()).get('sidecar_upstream_duration_seconds_count') ?? 0) > answered(), 10_000)).toBe(true);
  c.close();
  expect(await accessLine('/slow-body')).toMatchObject({ status: 499, aborted: true });
  expect(requestsByCode(before, await metrics())).toEqual({ 499: 1 });
});

it("an upgrade the upstream refuses with a cut body is logged aborted, as the client saw it", async () => {
  answers.set('/ws-refused', { bytes: 'HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\nnope', then: 'close' });
  const before = await metrics();
  const c = await RawConnection.open(sidecar.port);
  c.write(
    `GET /ws-refused HTTP/1.1\r\nHost: x\r\n${AUTH}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
  );
  const res = await c.response(10_000);
  expect(res?.status).toBe(403);
  expect(res?.body.toString('latin1')).toBe('nope');
  expect(await c.waitClosed(10_000)).toBe(true);
  c.close();
  expect(await accessLine('/ws-refused')).toMatchObject({ status: 403, upgrade: true, aborted: true });
  expect(requestsByCode(before, await metrics())).toEqual({ 403: 1 });
});
