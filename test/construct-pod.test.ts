/**
 * The synthesized pod, run with the real compiled apps: the env, probe paths and ports
 * SidecarApp writes must be what the apps accept and serve. Only what a pod gives for
 * free is replaced: ephemeral ports instead of fixed ones, a temp dir instead of the
 * Secret volume.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { Testing } from 'cdk8s';
import { CONTAINER_NAMES, MAIN_ENV, SIDECAR_ENV, TOKENS_MOUNT_PATH } from '../lib/src/contract';
import { SidecarApp, SidecarAppProps } from '../lib/src';
import { RunningApp, startApp, localSidecarEnv } from './support/apps';
import { EVENT_TIMEOUT_MS } from '../tools/waits';

/* eslint-disable @typescript-eslint/no-explicit-any */

const TOKEN = 'pod-test-token-0123456789abcdef';

function synthPod(props: SidecarAppProps = {}): { main: any; sidecar: any } {
  const chart = Testing.chart();
  new SidecarApp(chart, 'api', props);
  const deployment = Testing.synth(chart).find((m) => m.kind === 'Deployment');
  const byName = (name: string) => deployment.spec.template.spec.containers.find((c: any) => c.name === name);
  return { main: byName(CONTAINER_NAMES.main), sidecar: byName(CONTAINER_NAMES.sidecar) };
}

function envOf(container: any): Record<string, string> {
  return Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
}

function get(port: number, urlPath: string, headers: http.OutgoingHttpHeaders = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(EVENT_TIMEOUT_MS, () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

/** Poll like a readiness probe until it passes. */
async function eventually(check: () => Promise<number>, expected: number, timeoutMs = EVENT_TIMEOUT_MS): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = await check();
  while (last !== expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    last = await check();
  }
  return last;
}

describe('the synthesized pod runs with the real apps', () => {
  const { main, sidecar } = synthPod({ publicPaths: ['/version'] });
  let tokensDir: string;
  let mainApp: RunningApp | undefined;
  let sidecarApp: RunningApp | undefined;

  beforeAll(async () => {
    tokensDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-app-pod-'));
    fs.writeFileSync(path.join(tokensDir, 'ci'), TOKEN);
    mainApp = await startApp('main', { env: { ...envOf(main), [MAIN_ENV.port]: '0', [MAIN_ENV.host]: '127.0.0.1' } });
    const sidecarEnv = envOf(sidecar);
    expect(sidecarEnv[SIDECAR_ENV.tokensDir]).toBe(TOKENS_MOUNT_PATH);
    expect(sidecarEnv[SIDECAR_ENV.upstream]).toBe(`http://127.0.0.1:${main.ports[0].containerPort}`);
    sidecarApp = await startApp('sidecar', {
      env: {
        ...sidecarEnv,
        ...localSidecarEnv(`http://127.0.0.1:${mainApp.port}`, tokensDir),
      },
    });
  });

  afterAll(async () => {
    await sidecarApp?.stop('SIGKILL');
    await mainApp?.stop('SIGKILL');
    fs.rmSync(tokensDir, { recursive: true, force: true });
  });

  test('the main container answers its liveness and readiness paths', async () => {
    expect(await get(mainApp!.port, main.livenessProbe.httpGet.path)).toBe(200);
    expect(await get(mainApp!.port, main.readinessProbe.httpGet.path)).toBe(200);
  });

  test('the sidecar answers its liveness and readiness paths on the admin port', async () => {
    expect(await get(sidecarApp!.adminPort!, sidecar.livenessProbe.httpGet.path)).toBe(200);
    expect(await eventually(() => get(sidecarApp!.adminPort!, sidecar.readinessProbe.httpGet.path), 200)).toBe(200);
  });

  test('the sidecar port refuses a request without a token and forwards one with a token', async () => {
    expect(await get(sidecarApp!.port, '/')).toBe(401);
    expect(await get(sidecarApp!.port, '/', { authorization: `Bearer ${TOKEN}` })).toBe(200);
    expect(await get(sidecarApp!.port, '/', { authorization: 'Bearer wrong-token' })).toBe(401);
  });

  test('the configured public path needs no token', async () => {
    // The main service has no /version route: a 404 from it proves the sidecar let the request through.
    expect(await get(sidecarApp!.port, '/version')).toBe(404);
  });
});
