/**
 * A main that is not ours, run by the local pod runner (issue 19 §1): Python's http.server
 * (test/fixtures/foreign-main.py), started by its own command, with no contract env, TCP probes,
 * and Python's default SIGTERM handling (it exits at once). Through the sidecar: 401 without a
 * token, 200 with one, the subject forwarded. On a kubelet-style stop, main's preStop waits until
 * the sidecar has drained and closed, so a request the sidecar accepted before the stop still gets
 * its answer from main; the order of events is the one docs/main-contract.md describes.
 */
import * as net from 'net';
import * as path from 'path';
import { Chart, Testing } from 'cdk8s';
import { ADDRESSES, CONTAINER_NAMES, SIDECAR_ENV, UPSTREAM_CHECKS } from '../lib/src/contract';
import { SidecarApp } from '../lib/src';
import { Deployment, Service, findDeployment, findService, httpGet, runSidecarAppPod, verifySidecarAppPod } from '../tools/pod';
import type { PodEvent, RunningPod } from '../tools/pod';
import { START_TIMEOUT_MS } from '../tools/waits';

/** Start-up, one probe round and a stop, each bounded by the runner's own deadlines. */
const POD_TEST_TIMEOUT_MS = START_TIMEOUT_MS * 3;

/* eslint-disable @typescript-eslint/no-explicit-any */

const IMAGE = 'acme/python-main:1.0.0';
const FIXTURE = path.join(__dirname, 'fixtures', 'foreign-main.py');
const TOKEN = 'foreign-main-test-token-0123456789abcdef';
const DRAIN_MS = 1500;

/** Ports free now, for the manifest (the runner binds what the manifest says). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Server>((resolve) => { const s = net.createServer(); s.listen(0, ADDRESSES.loopback, () => resolve(s)); })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function manifest(ports: number[]): unknown[] {
  const [mainPort, sidecarPort, adminPort] = ports;
  const chart = new Chart(Testing.app(), 'shop', { namespace: 'shop' });
  new SidecarApp(chart, 'orders', {
    // The image's own env, which no app of ours reads.
    main: { image: IMAGE, port: mainPort, command: ['python3', FIXTURE], args: ['--port', String(mainPort)], env: { PYTHONUNBUFFERED: '1' } },
    sidecar: { port: sidecarPort },
    adminPort,
    preStopDelaySeconds: 1,
    drainDelayMs: DRAIN_MS,
    upstreamTimeoutMs: 5000,
  });
  return Testing.synth(chart);
}

const at = (events: readonly PodEvent[], container: string, event: PodEvent['event']) => events.find((e) => e.container === container && e.event === event);

describe('a Python main behind the sidecar, on the local pod runner', () => {
  let pod: RunningPod | undefined;
  let ports: number[];
  let deployment: Deployment;
  let service: Service;

  beforeAll(async () => {
    ports = await freePorts(3);
    const docs = manifest(ports);
    deployment = findDeployment(docs);
    service = findService(docs);
    pod = await runSidecarAppPod(deployment, { images: { [IMAGE]: {} }, secrets: { 'orders-tokens': { ci: TOKEN } } });
  }, POD_TEST_TIMEOUT_MS);
  afterAll(async () => {
    await pod?.stop('kill');
  }, POD_TEST_TIMEOUT_MS);

  test('the manifest gives main no MAIN_* env and the sidecar a tcp upstream check', () => {
    const containers = deployment.spec.template.spec.containers;
    const main = containers.find((c) => c.name === CONTAINER_NAMES.main)!;
    const sidecar = containers.find((c) => c.name === CONTAINER_NAMES.sidecar)!;
    expect((main.env ?? []).filter((e) => e.name.startsWith('MAIN_'))).toEqual([]);
    expect((sidecar.env ?? []).find((e) => e.name === SIDECAR_ENV.upstreamCheck)?.value).toBe(UPSTREAM_CHECKS.tcp);
    expect(pod!.containers.main.argv).toEqual(['python3', FIXTURE, '--port', String(ports[0])]);
  });

  test('through the sidecar: 401 without a token, 200 from Python with one, the subject forwarded', async () => {
    const sidecarPort = ports[1];
    const denied = await httpGet(sidecarPort, '/');
    expect(denied.status).toBe(401);
    const ok = await httpGet(sidecarPort, '/', { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('Hello from python, ci\n');
  });

  test('the pod matches its manifest: ports, probes, Service, requests; the env of a main that is not ours is not held to our contract', async () => {
    const report = await verifySidecarAppPod(deployment, service, pod!, { token: TOKEN, expectedBody: 'Hello from python, ci\n' });
    expect(report.failures).toEqual([]);
    expect(report.checks.find((c) => c.what === `container ${CONTAINER_NAMES.main} env`)?.detail).toBe(
      `container ${CONTAINER_NAMES.main}: image ${IMAGE} is not ours; its env is not checked against the contract`,
    );
  }, POD_TEST_TIMEOUT_MS);

  test('a kubelet stop: main gets SIGTERM only after the sidecar has drained, so an accepted request still gets its answer', async () => {
    const sidecarPort = ports[1];
    // Longer than the preStop wait, shorter than preStop + drain: it is in flight when the sidecar stops accepting.
    const slow = httpGet(sidecarPort, '/slow?ms=2000', { authorization: `Bearer ${TOKEN}` });
    // The sidecar has it before the stop begins (Python logs the request when it answers, so wait on the sidecar's side instead).
    await new Promise((r) => setTimeout(r, 200));
    const stopped = pod!.stop('kubelet');
    const answer = await slow;
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('Hello from python, ci\n');
    await stopped;
    const events = pod!.events;
    const sidecarTerm = at(events, 'sidecar', 'SIGTERM')!;
    const mainHookEnd = at(events, 'main', 'preStop end')!;
    const mainTerm = at(events, 'main', 'SIGTERM')!;
    expect(mainHookEnd.detail).toBe('HTTP 200');
    // Main's wait outlasts the sidecar's drain (a timer: at least DRAIN_MS after the sidecar's SIGTERM, however busy the machine).
    expect(mainHookEnd.at - sidecarTerm.at).toBeGreaterThanOrEqual(DRAIN_MS);
    expect(mainTerm.at).toBeGreaterThanOrEqual(mainHookEnd.at);
    pod = undefined;
  }, POD_TEST_TIMEOUT_MS);
});
