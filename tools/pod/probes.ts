/**
 * Probes and hooks as the kubelet runs them, against the pod's processes on the loopback.
 */
import * as http from 'http';
import * as net from 'net';
import { ADDRESSES } from '../../lib/src/contract';
import { EVENT_TIMEOUT_MS } from '../waits';
import { Container, ContainerPort, Probe, PodSpecError } from './manifest';

/** A probe's or targetPort's port: a number, or a port name the container declares. */
export function resolvePort(port: number | string, ports: readonly ContainerPort[], field: string): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const named = ports.find((p) => p.name === port);
  if (!named) throw new PodSpecError(field, `port name ${JSON.stringify(port)} is not declared by the container`);
  return named.containerPort;
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP GET on the loopback, no connection reuse. @default timeoutMs EVENT_TIMEOUT_MS (a busy machine answers late) */
export function httpGet(port: number, urlPath: string, headers: Record<string, string> = {}, timeoutMs = EVENT_TIMEOUT_MS): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: ADDRESSES.loopback, port, path: urlPath, headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} on port ${port} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Run a probe once. Resolves with the HTTP status (200 for a tcpSocket that connects), or rejects. */
export async function runProbe(probe: Probe, container: Container, field: string): Promise<number> {
  const ports = container.ports ?? [];
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) {
    const get = probe.httpGet;
    if ((get.scheme ?? 'HTTP').toUpperCase() !== 'HTTP') throw new PodSpecError(`${field}.httpGet.scheme`, 'only HTTP probes are supported locally');
    const headers = Object.fromEntries((get.httpHeaders ?? []).map((h) => [h.name, h.value]));
    const res = await httpGet(resolvePort(get.port, ports, `${field}.httpGet.port`), get.path ?? '/', headers, timeoutMs);
    return res.status;
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, ports, `${field}.tcpSocket.port`);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, ADDRESSES.loopback, () => (socket.destroy(), resolve()));
      socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timeout')));
      socket.on('error', reject);
    });
    return 200;
  }
  throw new PodSpecError(field, 'only httpGet and tcpSocket probes are supported locally');
}

/**
 * Run a probe as the kubelet judges it: a probe that cannot be asked (timeout, refused, reset) fails
 * only after `failureThreshold` tries in a row (default 3, as the kubelet's), so one slow answer on a
 * busy machine is not a failure; an HTTP status is an answer, and the first one counts.
 */
export async function runProbeWithRetries(probe: Probe, container: Container, field: string): Promise<number> {
  const tries = Math.max(1, probe.failureThreshold ?? 3);
  for (let attempt = 1; ; attempt++) {
    try {
      return await runProbe(probe, container, field);
    } catch (err) {
      if (err instanceof PodSpecError || attempt >= tries) throw err;
    }
  }
}

/** The kubelet counts 200-399 as a passing HTTP probe. */
export const probePasses = (status: number): boolean => status >= 200 && status < 400;

/** How a probe is described in messages. */
export const probeTarget = (probe: Probe): string => (probe.httpGet ? `GET ${probe.httpGet.path ?? '/'} on port ${probe.httpGet.port}` : 'tcpSocket');
