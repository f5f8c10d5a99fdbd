/**
 * One writer for every refusal: a refusal on a response and the same refusal on a raw socket (an
 * upgrade) carry the same headers; and every refused upgrade says why in its access line, as plain
 * requests do. The sidecar runs as a real process; the requests are raw bytes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { FORWARDED_HEADERS } from '../lib/src/contract';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { rawRequest, tempDir } from './support/http';
import { RecordingUpstream, startRecordingUpstream } from './support/recording-upstream';

const TOKEN = 'refusals-token-0123456789abcdef';
const AUTH = `Authorization: Bearer ${TOKEN}\r\n`;
const WS = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

const tokens = tempDir('refusals-');
let upstream: RecordingUpstream;
let sidecar: RunningApp;

beforeAll(async () => {
  fs.writeFileSync(path.join(tokens.dir, 'alice'), TOKEN);
  upstream = await startRecordingUpstream();
  // Output kept: the cases read the access lines.
  sidecar = await startApp('sidecar', { env: localSidecarEnv(upstream.url, tokens.dir) });
});

afterAll(async () => {
  await sidecar?.stop('SIGKILL');
  await upstream?.close();
  tokens.cleanup();
});

/** Status, and header names (lowercased) with their values, of the one response on the connection. */
function parse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const [head, body] = [raw.slice(0, raw.indexOf('\r\n\r\n')), raw.slice(raw.indexOf('\r\n\r\n') + 4)];
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

const withoutRequestId = (headers: Record<string, string>) => {
  const { [FORWARDED_HEADERS.requestId]: id, date: _date, ...rest } = headers;
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  return rest;
};

const manyHeaders = Array.from({ length: 101 }, (_, i) => `X-H${i}: v\r\n`).join('');

describe('a refusal has the same headers on a response and on a raw socket', () => {
  it.each([
    ['431 (too many header fields)', manyHeaders, AUTH],
    ['401 (no credential)', '', ''],
    ['401 (unknown token)', '', 'Authorization: Bearer not-a-known-token\r\n'],
  ])('%s', async (_what, extra, auth) => {
    const plain = parse(await rawRequest(sidecar.port, `GET /x HTTP/1.1\r\nHost: x\r\n${auth}${extra}Connection: close\r\n\r\n`));
    const upgrade = parse(await rawRequest(sidecar.port, `GET /x HTTP/1.1\r\nHost: x\r\n${auth}${extra}${WS}\r\n`));
    expect(upgrade.status).toBe(plain.status);
    expect(upgrade.body).toBe(plain.body);
    expect(withoutRequestId(upgrade.headers)).toEqual(withoutRequestId(plain.headers));
    expect(plain.headers['cache-control']).toBe('no-store');
    expect(plain.headers.connection).toBe('close');
  });
});

describe('a refused upgrade says why in its access line', () => {
  it.each([
    ['an upgrade to something other than WebSocket', `GET /h2c HTTP/1.1\r\nHost: x\r\n${AUTH}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`, 400, 'not_websocket'],
    ['a WebSocket upgrade over HTTP/1.0', `GET /old HTTP/1.0\r\nHost: x\r\n${AUTH}${WS}\r\n`, 400, 'bad_version'],
    ['a WebSocket upgrade with 101 header fields', `GET /many HTTP/1.1\r\nHost: x\r\n${AUTH}${manyHeaders}${WS}\r\n`, 431, 'too_many_headers'],
    ['a WebSocket upgrade without a credential', `GET /anon HTTP/1.1\r\nHost: x\r\n${WS}\r\n`, 401, 'missing'],
  ])('%s', async (_what, raw, status, reason) => {
    upstream.reset();
    const response = parse(await rawRequest(sidecar.port, raw));
    expect(response.status).toBe(status);
    const target = raw.slice(4, raw.indexOf(' HTTP/'));
    const line = await sidecar.waitForLog((l) => l.path === target && l.upgrade === true);
    expect({ status: line.status, reason: line.reason }).toEqual({ status, reason });
    expect(upstream.connections).toHaveLength(0);
  });
});
