/**
 * Workload identity in the manifest: every app's own ServiceAccount, `serviceAccountAuth` (the
 * sidecar's projected token and CA, into the sidecar only), and two apps connected with
 * `allowCallsFrom`, every piece checked. The pods themselves run in test/calls-e2e.test.ts.
 */
import { Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import {
  CONTAINER_NAMES,
  KUBERNETES_AUTH_MOUNT_PATH,
  SIDECAR_ENV,
  parseKubernetesAuth,
  parseRoutes,
} from '../lib/src/contract';
import { RouteEffect, SidecarApp } from '../lib/src';
import type { SidecarAppProps } from '../lib/src';

/* eslint-disable @typescript-eslint/no-explicit-any */

const synth = (chart: Chart) => Testing.synth(chart);
const ofKind = (docs: any[], kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name);
const podSpec = (docs: any[], app: string) => ofKind(docs, 'Deployment', app).spec.template.spec;
const container = (docs: any[], app: string, name: string) => {
  const spec = podSpec(docs, app);
  return [...spec.containers, ...(spec.initContainers ?? [])].find((c: any) => c.name === name);
};
const envOf = (c: any): Record<string, string> => Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value]));

function shop(props: { orders?: SidecarAppProps; frontend?: SidecarAppProps } = {}) {
  const chart = new Chart(Testing.app(), 'shop', { namespace: 'shop' });
  const orders = new SidecarApp(chart, 'orders', props.orders);
  const frontend = new SidecarApp(chart, 'frontend', { main: { port: 3000 }, sidecar: { port: 3001 }, adminPort: 3002, ...props.frontend });
  return { chart, orders, frontend };
}

describe('every SidecarApp', () => {
  it('runs as its own ServiceAccount, whose token is never automounted', () => {
    const { chart } = shop();
    const docs = synth(chart);
    expect(ofKind(docs, 'ServiceAccount', 'orders')).toMatchObject({ automountServiceAccountToken: false, metadata: { namespace: 'shop' } });
    expect(podSpec(docs, 'orders')).toMatchObject({ serviceAccountName: 'orders', automountServiceAccountToken: false });
  });

  it('without serviceAccountAuth, mounts no token at all', () => {
    const docs = synth(shop().chart);
    expect(JSON.stringify(podSpec(docs, 'orders'))).not.toContain('serviceAccountToken');
    expect(envOf(container(docs, 'orders', CONTAINER_NAMES.sidecar))[SIDECAR_ENV.kubernetesAuth]).toBeUndefined();
  });
});

describe('serviceAccountAuth', () => {
  const docsWith = (props: SidecarAppProps) => synth(shop({ orders: props }).chart);

  it('mounts the sidecar\'s own API-server token and the cluster CA into the sidecar only, and names them in SIDECAR_KUBERNETES_AUTH', () => {
    const docs = docsWith({ serviceAccountAuth: {} });
    const spec = podSpec(docs, 'orders');
    const volume = spec.volumes.find((v: any) => v.projected);
    expect(volume.projected.sources).toEqual([
      { serviceAccountToken: { path: 'token', expirationSeconds: 3600 } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
    ]);
    const sidecar = container(docs, 'orders', CONTAINER_NAMES.sidecar);
    expect(sidecar.volumeMounts).toContainEqual({ name: volume.name, mountPath: KUBERNETES_AUTH_MOUNT_PATH, readOnly: true });
    const main = container(docs, 'orders', CONTAINER_NAMES.main);
    expect((main.volumeMounts ?? []).map((m: any) => m.name)).not.toContain(volume.name);
    const auth = parseKubernetesAuth(envOf(sidecar)[SIDECAR_ENV.kubernetesAuth]);
    expect(auth.ok && auth.value).toMatchObject({
      audiences: ['orders'],
      tokenFile: `${KUBERNETES_AUTH_MOUNT_PATH}/token`,
      caFile: `${KUBERNETES_AUTH_MOUNT_PATH}/ca.crt`,
      apiServer: undefined,
    });
  });

  it('takes its own audiences and API server', () => {
    const docs = docsWith({ serviceAccountAuth: { audiences: ['orders.shop', 'orders'], apiServer: 'https://10.96.0.1:443', maxLifetimeSeconds: 3600 } });
    const auth = parseKubernetesAuth(envOf(container(docs, 'orders', CONTAINER_NAMES.sidecar))[SIDECAR_ENV.kubernetesAuth]);
    expect(auth.ok && auth.value).toMatchObject({ audiences: ['orders.shop', 'orders'], apiServer: 'https://10.96.0.1:443', maxLifetimeSeconds: 3600 });
  });

  it.each([
    ['no audiences', { audiences: [] }, /^SidecarApp shop\/orders: serviceAccountAuth\.audiences must be a list of 1-16 strings/],
    ['an http: API server', { apiServer: 'http://10.96.0.1' }, /^SidecarApp shop\/orders: serviceAccountAuth\.apiServer must be an https: URL/],
    ['a refresh under 30 s', { refreshSeconds: 1 }, /^SidecarApp shop\/orders: serviceAccountAuth\.refreshSeconds must be an integer in 30\.\.86400/],
  ])('refuses %s at synth, naming the prop', (_what, options, message) => {
    expect(() => shop({ orders: { serviceAccountAuth: options } })).toThrow(message);
  });
});

describe('orders.allowCallsFrom(frontend)', () => {
  const connected = () => {
    const s = shop();
    s.orders.allowCallsFrom(s.frontend);
    return { ...s, docs: synth(s.chart) };
  };

  it('gives the caller\'s main container a projected token with the callee\'s audience, read-only, and ORDERS_TOKEN_FILE naming it', () => {
    const { docs } = connected();
    const spec = podSpec(docs, 'frontend');
    const volume = spec.volumes.find((v: any) => v.name === 'calls-orders');
    expect(volume.projected.sources).toEqual([{ serviceAccountToken: { path: 'token', audience: 'orders', expirationSeconds: 3600 } }]);
    const main = container(docs, 'frontend', CONTAINER_NAMES.main);
    expect(main.volumeMounts).toContainEqual({ name: 'calls-orders', mountPath: '/var/run/secrets/sidecar-app/calls/orders', readOnly: true });
    expect(envOf(main).ORDERS_TOKEN_FILE).toBe('/var/run/secrets/sidecar-app/calls/orders/token');
    // Not the caller's sidecar: it makes no calls.
    expect(JSON.stringify(container(docs, 'frontend', CONTAINER_NAMES.sidecar))).not.toContain('calls-orders');
    expect(spec.serviceAccountName).toBe('frontend');
  });

  it('turns on service-account auth in the callee, with a last rule admitting exactly the caller\'s service account', () => {
    const { docs } = connected();
    const env = envOf(container(docs, 'orders', CONTAINER_NAMES.sidecar));
    expect(parseKubernetesAuth(env[SIDECAR_ENV.kubernetesAuth])).toMatchObject({ ok: true, value: { audiences: ['orders'] } });
    const routes = parseRoutes(env[SIDECAR_ENV.routes]);
    expect(routes.ok && routes.value.rules).toEqual([expect.objectContaining({ path: '/*', effect: 'subjects', subjects: ['system:serviceaccount:shop:frontend'] })]);
  });

  it('admits the caller\'s pods to the callee\'s sidecar port, never its main port', () => {
    const { docs } = connected();
    const guard = ofKind(docs, 'NetworkPolicy', 'orders');
    const frontendPods = { podSelector: { matchLabels: expect.any(Object) }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } };
    const sidecarPort = container(docs, 'orders', CONTAINER_NAMES.sidecar).ports[0].containerPort;
    expect(guard.spec.ingress).toEqual([{ from: [frontendPods], ports: [{ port: sidecarPort, protocol: 'TCP' }] }]);
    const frontendLabels = ofKind(docs, 'Deployment', 'frontend').spec.template.metadata.labels;
    expect(frontendLabels).toMatchObject(guard.spec.ingress[0].from[0].podSelector.matchLabels);
    const mainPort = container(docs, 'orders', CONTAINER_NAMES.main).ports[0].containerPort;
    for (const policy of docs.filter((d: any) => d.kind === 'NetworkPolicy' && d.metadata.name.startsWith('orders'))) {
      for (const rule of policy.spec.ingress ?? []) expect(rule.ports.map((p: any) => p.port)).not.toContain(mainPort);
    }
  });

  it('a second caller joins the same rule; connecting one twice changes nothing', () => {
    const { chart, orders, frontend } = shop();
    const batch = new kplus.Deployment(chart, 'batch', {
      serviceAccount: kplus.ServiceAccount.fromServiceAccountName(chart, 'batch-sa', 'batch'),
      containers: [{ image: 'registry.example.com/batch:1.0', securityContext: { user: 1000 } }],
    });
    orders.allowCallsFrom(frontend);
    orders.allowCallsFrom(batch);
    orders.allowCallsFrom(frontend);
    const docs = synth(chart);
    const routes = parseRoutes(envOf(container(docs, 'orders', CONTAINER_NAMES.sidecar))[SIDECAR_ENV.routes]);
    expect(routes.ok && routes.value.rules.map((r) => r.subjects)).toEqual([['system:serviceaccount:shop:frontend', 'system:serviceaccount:shop:batch']]);
    const batchContainer = docs.find((d: any) => d.kind === 'Deployment' && d.metadata.name !== 'orders' && d.metadata.name !== 'frontend').spec.template.spec.containers[0];
    expect(envOf(batchContainer).ORDERS_TOKEN_FILE).toBe('/var/run/secrets/sidecar-app/calls/orders/token');
  });

  it('keeps the callee\'s own rules first, and its public paths', () => {
    const { orders, frontend, chart } = shop({ orders: { publicPaths: ['/healthz'], routes: [{ path: '/admin/*', effect: RouteEffect.SUBJECTS, subjects: ['ops'] }] } });
    orders.allowCallsFrom(frontend);
    const routes = parseRoutes(envOf(container(synth(chart), 'orders', CONTAINER_NAMES.sidecar))[SIDECAR_ENV.routes]);
    expect(routes.ok && routes.value.rules.map((r) => [r.path, r.effect])).toEqual([
      ['/healthz', 'public'],
      ['/admin/*', 'subjects'],
      ['/*', 'subjects'],
    ]);
  });

  it.each([
    [
      'a workload without its own ServiceAccount',
      (chart: Chart) => new kplus.Deployment(chart, 'nosa', { containers: [{ image: 'registry.example.com/x:1', securityContext: { user: 1000 } }] }),
      /^SidecarApp shop\/orders: allowCallsFrom \(into orders\) shop\/nosa has no serviceAccount of its own/,
    ],
    [
      'a workload running as the namespace\'s "default" account',
      (chart: Chart) =>
        new kplus.Deployment(chart, 'dflt', {
          serviceAccount: kplus.ServiceAccount.fromServiceAccountName(chart, 'dflt-sa', 'default'),
          containers: [{ image: 'registry.example.com/x:1', securityContext: { user: 1000 } }],
        }),
      /^SidecarApp shop\/orders: allowCallsFrom \(into orders\) shop\/dflt has no serviceAccount of its own: give it one \(the namespace's "default" account/,
    ],
  ])('refuses %s', (_what, make, message) => {
    const { chart, orders } = shop();
    expect(() => orders.allowCallsFrom(make(chart))).toThrow(message);
  });

  it('refuses an earlier authenticated rule, which service-account auth would open to every pod, unless serviceAccountAuth is set on purpose', () => {
    const open = { routes: [{ path: '/api/*', effect: RouteEffect.AUTHENTICATED }] };
    const refused = shop({ orders: open });
    expect(() => refused.orders.allowCallsFrom(refused.frontend)).toThrow(
      /^SidecarApp shop\/orders: allowCallsFrom \(into orders\) routes\[0\] \(\/api\/\*\) admits any authenticated caller, .* every pod of the cluster/,
    );
    const chosen = shop({ orders: { ...open, serviceAccountAuth: {} } });
    expect(() => chosen.orders.allowCallsFrom(chosen.frontend)).not.toThrow();
  });

  it('refuses a caller whose namespace is unknown', () => {
    const chart = Testing.chart();
    const orders = new SidecarApp(chart, 'orders');
    const frontend = new SidecarApp(chart, 'frontend', { main: { port: 3000 }, sidecar: { port: 3001 }, adminPort: 3002 });
    expect(() => orders.allowCallsFrom(frontend)).toThrow(/^SidecarApp test\/orders: allowCallsFrom \(into orders\) SidecarApp frontend has no namespace/);
  });
});
