/**
 * `orders.allowCallsFrom(frontend)` end to end: both apps synthesized in one chart, both pods run
 * by the local pod runner exactly as the manifest says, with a stand-in API server
 * (tools/pod/kube-api.ts) minting the projected tokens and serving the issuer's keys, and
 * kube-root-ca.crt holding its CA. The caller's side reads the token file its env names and calls
 * the callee's sidecar: 200. A service account that was not connected, with a token for the same
 * audience, gets 403; no token, 401.
 *
 * Ports are fixed per pod (the manifest's), and unlike e2e.test.ts's, so both suites may run at once.
 */
import * as fs from 'fs';
import { Chart, Testing } from 'cdk8s';
import { WELCOME_TEXT } from '../apps/main/src/app';
import { CONTAINER_NAMES, IN_CLUSTER_ENV } from '../lib/src/contract';
import { SidecarApp } from '../lib/src';
import { Deployment, RunningPod, httpGet, runSidecarAppPod } from '../tools/pod';
import { StandInApiServer, startStandInApiServer } from '../tools/pod/kube-api';

// Two pods of two apps each: about 10 s idle; the bound is for a hang, a busy machine takes several times as long.
jest.setTimeout(240_000);

const PORTS = {
  orders: { main: 28180, sidecar: 28181, admin: 28191 },
  frontend: { main: 28280, sidecar: 28281, admin: 28291 },
};
const STATIC_TOKEN = 'calls-e2e-static-token-0123456789';

let api: StandInApiServer;
let docs: any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
const pods: RunningPod[] = [];

function synthShop(): any[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const chart = new Chart(Testing.app(), 'shop', { namespace: 'shop' });
  const app = (name: 'orders' | 'frontend') =>
    new SidecarApp(chart, name, { main: { port: PORTS[name].main }, sidecar: { port: PORTS[name].sidecar }, adminPort: PORTS[name].admin, drainDelayMs: 0 });
  const orders = app('orders');
  const frontend = app('frontend');
  orders.allowCallsFrom(frontend);
  return Testing.synth(chart);
}

const deploymentOf = (name: string): Deployment => docs.find((d) => d.kind === 'Deployment' && d.metadata.name === name);

async function run(name: string): Promise<RunningPod> {
  const pod = await runSidecarAppPod(deploymentOf(name), {
    secrets: { [`${name}-tokens`]: { ci: STATIC_TOKEN } },
    configMaps: { 'kube-root-ca.crt': { 'ca.crt': api.caPem } },
    mintServiceAccountToken: (req) =>
      api.mintToken({ namespace: req.namespace, serviceAccount: req.serviceAccount, podName: req.podName, audiences: req.audience === undefined ? undefined : [req.audience], expirationSeconds: req.expirationSeconds }),
    kubeletEnv: { [IN_CLUSTER_ENV.host]: api.host, [IN_CLUSTER_ENV.port]: String(api.port) },
  });
  pods.push(pod);
  return pod;
}

beforeAll(async () => {
  api = await startStandInApiServer();
  docs = synthShop();
});

afterAll(async () => {
  for (const pod of pods) await pod.stop('sigterm');
  await api?.close();
});

const call = (token: string | undefined, path = '/') =>
  httpGet(PORTS.orders.sidecar, path, token === undefined ? {} : { authorization: `Bearer ${token}` });

test('the caller reads the token file its env names, calls the callee\'s sidecar, and gets 200; others get 403 or 401', async () => {
  const orders = await run('orders');
  const frontend = await run('frontend');

  // The caller's side: the env var names the file; the pod runner mapped it onto the volume's folder.
  const tokenFile = frontend.containers[CONTAINER_NAMES.main].env.ORDERS_TOKEN_FILE;
  expect(tokenFile).toMatch(/\/token$/);
  const token = fs.readFileSync(tokenFile, 'utf8');
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { aud: string[]; sub: string };
  expect(claims).toMatchObject({ aud: ['orders'], sub: 'system:serviceaccount:shop:frontend' });

  const ok = await call(token);
  expect(ok.status).toBe(200);
  expect(ok.body).toContain(WELCOME_TEXT);

  // Another service account, with a token for the very same audience: authenticated, not allowed.
  const intruder = await api.mintToken({ namespace: 'shop', serviceAccount: 'intruder', audiences: ['orders'] });
  expect((await call(intruder)).status).toBe(403);
  // The connected account from another namespace is another account.
  const elsewhere = await api.mintToken({ namespace: 'staging', serviceAccount: 'frontend', audiences: ['orders'] });
  expect((await call(elsewhere)).status).toBe(403);
  // The caller's token is for orders only: frontend's own sidecar does not take it.
  expect((await httpGet(PORTS.frontend.sidecar, '/', { authorization: `Bearer ${token}` })).status).toBe(401);
  expect((await call(undefined)).status).toBe(401);

  // The access log of the callee's sidecar (flushed by its exit) names who called and the rule that decided.
  await orders.stop('sigterm');
  pods.splice(pods.indexOf(orders), 1);
  const access = orders.containers[CONTAINER_NAMES.sidecar].lines.filter((l) => l.includes('"msg":"request"'));
  expect(access.some((l) => l.includes('"status":200') && l.includes('"subject":"system:serviceaccount:shop:frontend"') && l.includes('"rule":1'))).toBe(true);
  expect(access.some((l) => l.includes('"status":403') && l.includes('"subject":"system:serviceaccount:shop:intruder"') && l.includes('"rule":1'))).toBe(true);
});
