/**
 * A raw HTTP/1.1 client connection for framing tests: writes exactly the bytes given and reads
 * responses one at a time, parsed by Content-Length, chunked or close-delimited framing.
 */
import * as net from 'net';
import { EVENT_TIMEOUT_MS } from '../../tools/waits';

export interface RawResponse {
  readonly status: number;
  /** Lowercased names; the first value of each. */
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export class RawConnection {
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;
  readonly socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake?.();
    });
    const end = () => {
      this.ended = true;
      this.wake?.();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.ended && this.buf.length === 0;
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }

  private async until(pred: () => boolean, deadline: number): Promise<boolean> {
    while (!pred()) {
      if (this.ended) return pred();
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return true;
  }

  /** The next response, or undefined when the connection closes (or `timeoutMs` passes) first. */
  async response(timeoutMs = EVENT_TIMEOUT_MS, requestMethod = 'GET'): Promise<RawResponse | undefined> {
    const deadline = Date.now() + timeoutMs;
    if (!(await this.until(() => this.buf.indexOf('\r\n\r\n') !== -1, deadline))) return undefined;
    const headEnd = this.buf.indexOf('\r\n\r\n');
    const lines = this.buf.toString('latin1', 0, headEnd).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      const name = line.slice(0, i).trim().toLowerCase();
      if (i > 0 && headers[name] === undefined) headers[name] = line.slice(i + 1).trim();
    }
    let pos = headEnd + 4;
    const noBody = requestMethod === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    let body = Buffer.alloc(0);
    if (noBody) {
      // nothing
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      await this.until(() => this.buf.length >= pos + n, deadline);
      body = this.buf.subarray(pos, pos + n);
      pos += body.length;
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      for (;;) {
        if (!(await this.until(() => this.buf.indexOf('\r\n', pos) !== -1, deadline))) break;
        const e = this.buf.indexOf('\r\n', pos);
        const size = parseInt(this.buf.toString('latin1', pos, e), 16);
        pos = e + 2;
        if (!(size > 0)) {
          await this.until(() => this.buf.indexOf('\r\n', pos) !== -1, deadline);
          pos = this.buf.indexOf('\r\n', pos) + 2;
          break;
        }
        await this.until(() => this.buf.length >= pos + size + 2, deadline);
        parts.push(this.buf.subarray(pos, pos + size));
        pos += size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      await this.until(() => false, deadline);
      body = this.buf.subarray(pos);
      pos = this.buf.length;
    }
    this.buf = this.buf.subarray(Math.min(pos, this.buf.length));
    return { status, headers, body };
  }

  /** Resolves true once the peer has closed the connection (within `timeoutMs`). */
  async waitClosed(timeoutMs = EVENT_TIMEOUT_MS): Promise<boolean> {
    return this.until(() => this.ended, Date.now() + timeoutMs);
  }
}

/** A chunked body of the given chunks, with the last-chunk and no trailers. */
export function chunked(...chunks: string[]): string {
  return chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n';
}
