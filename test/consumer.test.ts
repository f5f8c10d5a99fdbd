/**
 * The consumer test: what a user does. The library is packed with `npm pack` (as `npm publish`
 * would pack it), the tarball is installed with the peers into a fresh cdk8s project outside the
 * repo, a TypeScript chart that imports only the package's public entry is compiled and run, and
 * the manifests it synthesizes are checked. Real npm, tar, tsc and node; no mocks.
 *
 * The chart is TypeScript compiled by the repo's own tsc (by absolute path, so the project installs
 * only what a user's chart needs), with the tsconfig `cdk8s init typescript-app` writes: that
 * type-checks the published .d.ts the way a user's build does, in about 3 s, where tsx would only
 * strip the types. A second, no-emit pass with `moduleResolution: node16` checks the `types`
 * condition of the package's `exports` map, which the template's resolution ignores.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, assertLibBuilt, packLibrary, readFromTarball, repoBin, run } from './support/package-tarball';
import { TOOL_TEST_TIMEOUT_MS } from '../tools/waits';

/** pack + install + two tsc passes + synth: about 8 s with a warm npm cache, several times that on a busy machine. */
const SETUP_TIMEOUT_MS = 2 * TOOL_TEST_TIMEOUT_MS;

const PEERS = ['cdk8s', 'cdk8s-plus-28', 'constructs'] as const;
/** What the repo's own charts run against: the versions installed at the root. */
const rootVersion = (name: string): string => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;

/** The ports the chart gives `orders`, so the checks below know them without asking the construct. */
const ORDERS = { mainPort: 3000, sidecarPort: 8080, adminPort: 9100, sidecarServicePort: 80 } as const;
const PROMETHEUS_LABELS = { app: 'prometheus' } as const;

const CHART = `import { App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { SidecarApp } from 'cdk8s-sidecar-app';

const app = new App();
const chart = new Chart(app, 'shop');

const orders = new SidecarApp(chart, 'orders', {
  main: { image: 'registry.example.com/shop/orders:1.4.2', port: ${ORDERS.mainPort} },
  sidecar: { image: 'registry.example.com/shop/sidecar-app-sidecar:0.1.0', port: ${ORDERS.sidecarPort} },
  adminPort: ${ORDERS.adminPort},
  sidecarServicePort: ${ORDERS.sidecarServicePort},
});
new SidecarApp(chart, 'billing', { replicas: 2 });

// Route an Ingress to the sidecar port, never to the main port.
const toOrders = kplus.IngressBackend.fromService(orders.service, { port: orders.sidecarServicePort });
new kplus.Ingress(chart, 'ingress', { defaultBackend: toOrders, rules: [{ path: '/orders', backend: toOrders }] });

// Let Prometheus scrape /metrics on the admin port.
const prometheus = kplus.Pods.select(chart, 'prometheus', { labels: ${JSON.stringify(PROMETHEUS_LABELS)} });
orders.allowAdminFrom(prometheus);

app.synth();
`;

/** Run by node in the project: what resolves where, and what a deep import does. */
const PROBE = `const fs = require('fs');
const path = require('path');
const out = {};
try {
  require('cdk8s-sidecar-app/build/props');
  out.deepImport = 'loaded';
} catch (e) {
  out.deepImport = e.code;
}
const entry = require.resolve('cdk8s-sidecar-app');
out.entry = fs.realpathSync(entry);
out.exports = Object.keys(require('cdk8s-sidecar-app')).sort();
out.assembly = fs.realpathSync(require.resolve('cdk8s-sidecar-app/.jsii'));
// The peers as the library resolves them, and as the chart does: one copy each.
out.peers = {};
for (const peer of ${JSON.stringify(PEERS)}) {
  out.peers[peer] = { fromLibrary: fs.realpathSync(require.resolve(peer, { paths: [path.dirname(entry)] })), fromChart: fs.realpathSync(require.resolve(peer)) };
}
process.stdout.write(JSON.stringify(out));
`;

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  // A manifest's spec, as the checks below read it.
  spec?: any;
}

let work: string;
let tarball: string;
let tarballFiles: string[];

beforeAll(async () => {
  assertLibBuilt();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-app-consumer-'));
  ({ tarball, files: tarballFiles } = await packLibrary(path.join(work, 'pack')));
}, SETUP_TIMEOUT_MS);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the npm tarball of lib/', () => {
  test('holds the compiled entry, the jsii assembly, API.md, README.md, LICENSE and package.json, and no sources or tests', () => {
    for (const file of ['build/index.js', 'build/index.d.ts', '.jsii', 'API.md', 'README.md', 'LICENSE', 'package.json']) expect(tarballFiles).toContain(file);
    const unexpected = tarballFiles.filter(
      (f) => !(/^build\/.+(\.js|\.d\.ts)$/.test(f) || ['.jsii', 'API.md', 'README.md', 'LICENSE', 'package.json'].includes(f)),
    );
    expect(unexpected).toEqual([]);
    expect(tarballFiles.filter((f) => f.startsWith('src/') || /(^|\/)(test|tests|__tests__)\//.test(f) || /\.(test|spec)\./.test(f))).toEqual([]);
    expect(tarballFiles.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  test('its package.json takes cdk8s, cdk8s-plus-28 and constructs as peers and depends on none of the apps\u2019 packages', async () => {
    const manifest = JSON.parse(await readFromTarball(tarball, 'package.json'));
    expect(Object.keys(manifest.peerDependencies ?? {}).sort()).toEqual([...PEERS]);
    const runtime = { ...manifest.dependencies, ...manifest.optionalDependencies, ...manifest.bundleDependencies };
    for (const app of ['express', 'pino', 'prom-client', 'http-proxy-middleware', 'ws']) expect(Object.keys(runtime)).not.toContain(app);
    // The peers are the user's; the library must not bring a second copy.
    for (const peer of PEERS) expect(Object.keys(runtime)).not.toContain(peer);
    expect(manifest.exports['.']).toEqual({ types: './build/index.d.ts', default: './build/index.js' });
  });
});

describe('a fresh cdk8s project that installs the tarball', () => {
  let project: string;
  let probe: { deepImport: string; entry: string; exports: string[]; assembly: string; peers: Record<string, { fromLibrary: string; fromChart: string }> };
  let manifests: Manifest[];
  const ofKind = (kind: string) => manifests.filter((m) => m.kind === kind);
  const named = (kind: string, name: string): Manifest => {
    const found = ofKind(kind).filter((m) => m.metadata.name === name);
    expect(found.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual([`${kind}/${name}`]);
    return found[0];
  };

  beforeAll(async () => {
    project = path.join(work, 'shop-chart');
    // Outside the repo, or node would find the repo's node_modules (and the library itself) above it.
    expect(path.relative(REPO_ROOT, project).startsWith('..')).toBe(true);
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'shop-chart', version: '1.0.0', private: true, main: 'main.js' }, null, 2));
    fs.copyFileSync(path.join(REPO_ROOT, 'node_modules', 'cdk8s-cli', 'templates', 'typescript-app', 'tsconfig.json'), path.join(project, 'tsconfig.json'));
    fs.writeFileSync(path.join(project, 'main.ts'), CHART);
    fs.writeFileSync(path.join(project, 'probe.js'), PROBE);

    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, ...PEERS.map((p) => `${p}@${rootVersion(p)}`)], { cwd: project });
    await run(repoBin('tsc'), ['-p', '.'], { cwd: project });
    await run(repoBin('tsc'), ['-p', '.', '--noEmit', '--module', 'node16', '--moduleResolution', 'node16'], { cwd: project });
    await run(process.execPath, ['main.js'], { cwd: project });
    probe = JSON.parse((await run(process.execPath, ['probe.js'], { cwd: project })).stdout);

    const dist = path.join(project, 'dist');
    expect(fs.readdirSync(dist)).toEqual(['shop.k8s.yaml']);
    manifests = parseAllDocuments(fs.readFileSync(path.join(dist, 'shop.k8s.yaml'), 'utf8')).map((d) => d.toJSON() as Manifest);
  }, SETUP_TIMEOUT_MS);

  test('the package is installed from the tarball (a copy, not a link into the repo), and its peers are the project\u2019s', () => {
    const installed = fs.realpathSync(path.join(project, 'node_modules', 'cdk8s-sidecar-app'));
    expect(probe.entry).toBe(path.join(installed, 'build', 'index.js'));
    expect(path.relative(fs.realpathSync(project), installed).startsWith('..')).toBe(false);
    for (const peer of PEERS) {
      expect(probe.peers[peer].fromLibrary).toBe(probe.peers[peer].fromChart);
      expect(probe.peers[peer].fromChart.startsWith(fs.realpathSync(path.join(project, 'node_modules', peer)) + path.sep)).toBe(true);
    }
  });

  test('the exports map is the public entry: a deep import fails with ERR_PACKAGE_PATH_NOT_EXPORTED', () => {
    expect(probe.deepImport).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  test('the entry exports exactly the classes and enums of the jsii assembly', () => {
    const assembly = JSON.parse(fs.readFileSync(probe.assembly, 'utf8')) as { types: Record<string, { kind: string; name: string }> };
    const runtimeTypes = Object.values(assembly.types)
      .filter((t) => t.kind === 'class' || t.kind === 'enum')
      .map((t) => t.name)
      .sort();
    expect(probe.exports).toEqual(runtimeTypes);
    expect(probe.exports).toEqual(expect.arrayContaining(['LogLevel', 'SidecarApp']));
  });

  test('the Ingress routes to the Service\u2019s sidecar port, never to the main port', () => {
    const service = named('Service', 'orders');
    const ports = service.spec.ports as Array<{ name: string; port: number; targetPort: number }>;
    const sidecarPort = ports.filter((p) => p.targetPort === ORDERS.sidecarPort);
    const mainPort = ports.filter((p) => p.targetPort === ORDERS.mainPort);
    expect(sidecarPort.map((p) => p.port)).toEqual([ORDERS.sidecarServicePort]);
    expect(mainPort).toHaveLength(1);

    const [ingress] = ofKind('Ingress');
    expect(ofKind('Ingress')).toHaveLength(1);
    type Backend = { service: { name: string; port: { number: number } } };
    const rules = (ingress.spec.rules ?? []) as Array<{ http: { paths: Array<{ backend: Backend }> } }>;
    const backends: Backend[] = [ingress.spec.defaultBackend, ...rules.flatMap((r) => r.http.paths.map((p) => p.backend))];
    expect(backends).toHaveLength(2);
    for (const backend of backends) {
      expect(backend).toEqual({ service: { name: 'orders', port: { number: ORDERS.sidecarServicePort } } });
      expect(backend.service.port.number).not.toBe(mainPort[0].port);
    }
  });

  test('the Prometheus peer appears only in one rule of orders\u2019 NetworkPolicy, for the admin port', () => {
    const mentions = (value: unknown): number => JSON.stringify(value).split(JSON.stringify(PROMETHEUS_LABELS)).length - 1;
    const policies = ofKind('NetworkPolicy');
    const rules = policies.flatMap((policy) =>
      [...(policy.spec.ingress ?? []), ...(policy.spec.egress ?? [])].map((rule: unknown) => ({ policy: policy.metadata.name, rule })),
    );
    const withPrometheus = rules.filter(({ rule }) => mentions(rule) > 0);
    expect(withPrometheus).toEqual([
      {
        policy: 'orders',
        rule: { from: [{ podSelector: { matchLabels: PROMETHEUS_LABELS } }], ports: [{ port: ORDERS.adminPort, protocol: 'TCP' }] },
      },
    ]);
    // Nowhere else: not in a podSelector, not in another object.
    expect(manifests.reduce((sum, m) => sum + mentions(m), 0)).toBe(1);
    // And the admin port is admitted to no one else.
    const adminRules = rules.filter(({ rule }) => ((rule as { ports?: Array<{ port: number }> }).ports ?? []).some((p) => p.port === ORDERS.adminPort));
    expect(adminRules.map(({ policy }) => policy)).toEqual(['orders']);
  });

  test('the two apps do not collide: names unique per kind, Deployment and Service named after the ids', () => {
    const kinds = [...new Set(manifests.map((m) => m.kind))];
    for (const kind of kinds) {
      const names = ofKind(kind).map((m) => m.metadata.name);
      expect({ kind, names: [...new Set(names)] }).toEqual({ kind, names });
    }
    expect(ofKind('Deployment').map((m) => m.metadata.name).sort()).toEqual(['billing', 'orders']);
    expect(ofKind('Service').map((m) => m.metadata.name).sort()).toEqual(['billing', 'orders']);
    expect(ofKind('NetworkPolicy').map((m) => m.metadata.name).sort()).toEqual(['billing', 'billing-open-ports', 'orders', 'orders-open-ports']);
  });

  test('each Service selects its own Deployment\u2019s pods and not the other app\u2019s', () => {
    const selectors: Record<string, Record<string, string>> = {};
    for (const name of ['orders', 'billing']) {
      const deployment = named('Deployment', name);
      const matchLabels = deployment.spec.selector.matchLabels as Record<string, string>;
      expect(Object.keys(matchLabels).length).toBeGreaterThan(0);
      expect(deployment.spec.selector.matchExpressions).toBeUndefined();
      expect(named('Service', name).spec.selector).toEqual(matchLabels);
      expect(deployment.spec.template.metadata.labels).toMatchObject(matchLabels);
      selectors[name] = matchLabels;
    }
    expect(selectors.orders).not.toEqual(selectors.billing);
    const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    expect(matches(selectors.orders, named('Deployment', 'billing').spec.template.metadata.labels)).toBe(false);
    expect(matches(selectors.billing, named('Deployment', 'orders').spec.template.metadata.labels)).toBe(false);
  });
});

/**
 * Issue 19 §3, as a user's project meets it: a chart that closes the sidecar port to strangers
 * (and passes the validation plugin through the real cdk8s CLI), a chart with the bypasses the
 * plugin reports (kplus's connections.allowFrom, a policy opening the admin port to every pod, a
 * Deployment named like the app, an app connected to itself), and the construct errors a user reads.
 */
describe('a user\u2019s chart: a restricted sidecar port, the bypasses the plugin reports, the construct errors', () => {
  const RESTRICTED = `import { App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { SidecarApp } from 'cdk8s-sidecar-app';

const app = new App();
const chart = new Chart(app, 'shop', { namespace: 'shop' });
const web = new SidecarApp(chart, 'web', { main: { port: 3000 }, sidecar: { port: 3001 }, adminPort: 3002 });
// Only the Ingress controller's namespace, and the callers connected below, reach the sidecar port.
const orders = new SidecarApp(chart, 'orders', {
  sidecarPortAllowedFrom: [kplus.Namespaces.select(chart, 'ingress-nginx', { names: ['ingress-nginx'] })],
});
orders.allowCallsFrom(web);
orders.allowAdminFrom(kplus.Pods.select(chart, 'prometheus', { labels: { app: 'prometheus' } }));
new kplus.Ingress(chart, 'ingress', { defaultBackend: kplus.IngressBackend.fromService(orders.service, { port: orders.sidecarServicePort }) });
app.synth();
`;

  const BYPASSES = `import { ApiObject, App, Chart, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { SidecarApp } from 'cdk8s-sidecar-app';

const app = new App();
const chart = new Chart(app, 'shop', { namespace: 'shop' });
const orders = new SidecarApp(chart, 'orders');
// The cdk8s-plus idiom: admits the web pods to every container port, main and admin included.
orders.deployment.connections.allowFrom(kplus.Pods.select(chart, 'web', { labels: { app: 'web' } }), { isolation: kplus.PodConnectionsIsolation.POD });
// Every pod of the namespace on the admin port.
new kplus.NetworkPolicy(chart, 'scrape-all', { selector: orders.deployment, ingress: { rules: [{ peer: kplus.Pods.all(chart, 'all'), ports: [kplus.NetworkPolicyPort.tcp(9091)] }] } });
// A Deployment of its own, named like the app: kubectl apply would keep one of the two.
new kplus.Deployment(chart, 'legacy', { metadata: { name: 'orders' }, containers: [{ image: 'registry.example.com/shop/legacy:1.0' }] });
// An app that holds a token for its own sidecar (what allowCallsFrom(itself) would do).
const billing = new SidecarApp(chart, 'billing', { main: { port: 4000 }, sidecar: { port: 4001 }, adminPort: 4002, serviceAccountAuth: {} });
ApiObject.of(billing.deployment).addJsonPatch(
  JsonPatch.add('/spec/template/spec/volumes/-', { name: 'calls-billing', projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'billing' } }] } }),
  JsonPatch.add('/spec/template/spec/containers/0/volumeMounts', [{ name: 'calls-billing', mountPath: '/var/run/secrets/sidecar-app/calls/billing', readOnly: true }]),
  // Main as root, patched in rather than asked for with main.allowRoot: not waived.
  JsonPatch.replace('/spec/template/spec/containers/0/securityContext/runAsUser', 0),
);
app.synth();
`;

  const ERRORS = `import { App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { SidecarApp } from 'cdk8s-sidecar-app';

// The project installs no @types/node: what of Node this script uses.
declare const process: { stdout: { write(text: string): void } };

const shop = () => new Chart(new App(), 'shop', { namespace: 'shop' });
const attempts: Array<[string, () => unknown]> = [
  ['stringPort', () => new SidecarApp(shop(), 'backend', { main: { port: '3000' as unknown as number } })],
  ['portOnDefault', () => new SidecarApp(shop(), 'backend', { main: { port: 8081 } })],
  ['duplicateName', () => {
    const app = new App();
    new SidecarApp(new Chart(app, 'shop', { namespace: 'shop' }), 'api');
    new SidecarApp(new Chart(app, 'shop-v2', { namespace: 'shop' }), 'api');
  }],
  ['selfCall', () => {
    const backend = new SidecarApp(shop(), 'backend');
    backend.allowCallsFrom(backend);
  }],
  ['openSidecarPort', () => {
    const chart = shop();
    new SidecarApp(chart, 'backend').allowSidecarFrom(kplus.Pods.all(chart, 'all'));
  }],
  ['lateRoute', () => new SidecarApp(shop(), 'backend').addRoute({ path: 'no-slash', effect: 'public' as never })],
  ['rootUser', () => new SidecarApp(shop(), 'backend', { main: { image: 'nginx:1.27.3', user: 0 } })],
  ['writablePath', () => new SidecarApp(shop(), 'backend', { main: { image: 'nginx:1.27.3', writablePaths: ['var/cache'] } })],
];
const out: { [name: string]: string } = {};
for (const [name, attempt] of attempts) {
  try {
    attempt();
    out[name] = 'no error';
  } catch (e) {
    out[name] = (e as Error).message;
  }
}
process.stdout.write(JSON.stringify(out));
`;

  const CDK8S_YAML = `language: typescript
app: node restricted.js
validations:
  - package: ./plugin.js
    class: SidecarAppValidation
    version: 0.1.0
`;

  let project: string;
  let errors: Record<string, string>;

  /** `cdk8s synth --validate` of one chart of the project: exit code, output, manifests. */
  async function synth(chart: string): Promise<{ ok: boolean; output: string; manifests: Manifest[] }> {
    const out = path.join(work, `net-${chart}`);
    const args = ['synth', '--no-check-upgrade', '--validate', '--app', `node ${chart}.js`, '--output', path.join(out, 'dist'), '--plugins-dir', path.join(out, 'plugins')];
    let ok = true;
    let output: string;
    try {
      const result = await run(repoBin('cdk8s'), args, { cwd: project });
      output = result.stdout + result.stderr;
    } catch (e) {
      ok = false;
      output = (e as Error).message;
    }
    const file = path.join(out, 'dist', 'shop.k8s.yaml');
    const manifests = fs.existsSync(file) ? parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJSON() as Manifest) : [];
    return { ok, output, manifests };
  }

  beforeAll(async () => {
    project = path.join(work, 'net-chart');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'net-chart', version: '1.0.0', private: true }, null, 2));
    fs.copyFileSync(path.join(REPO_ROOT, 'node_modules', 'cdk8s-cli', 'templates', 'typescript-app', 'tsconfig.json'), path.join(project, 'tsconfig.json'));
    fs.writeFileSync(path.join(project, 'restricted.ts'), RESTRICTED);
    fs.writeFileSync(path.join(project, 'bypasses.ts'), BYPASSES);
    fs.writeFileSync(path.join(project, 'errors.ts'), ERRORS);
    fs.writeFileSync(path.join(project, 'cdk8s.yaml'), CDK8S_YAML);
    // The plugin as a user's cdk8s.yaml reaches it: through the package's ./validation export.
    fs.writeFileSync(path.join(project, 'plugin.js'), "module.exports = require('cdk8s-sidecar-app/validation');\n");
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, ...PEERS.map((p) => `${p}@${rootVersion(p)}`)], { cwd: project });
    await run(repoBin('tsc'), ['-p', '.'], { cwd: project });
    errors = JSON.parse((await run(process.execPath, ['errors.js'], { cwd: project })).stdout);
  }, SETUP_TIMEOUT_MS);

  test(
    'sidecarPortAllowedFrom: no open-ports policy for orders, its sidecar port admitted only from the Ingress namespace and web, and the plugin passes',
    async () => {
      const { ok, output, manifests } = await synth('restricted');
      expect({ ok, validated: output.includes('Validations ended succesfully') }).toEqual({ ok: true, validated: true });
      const policies = manifests.filter((m) => m.kind === 'NetworkPolicy');
      expect(policies.map((p) => p.metadata.name).sort()).toEqual(['orders', 'web', 'web-open-ports']);
      const ordersPolicies = policies.filter((p) => p.spec.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'orders');
      type Rule = { from?: unknown[]; ports?: Array<{ port: number }> };
      const ordersRules: Rule[] = ordersPolicies.flatMap((p) => p.spec.ingress ?? []);
      const toSidecar = ordersRules.filter((r) => (r.ports ?? []).some((x) => x.port === 8081));
      expect(toSidecar).toHaveLength(2);
      // Each names its sources: never a rule without from.
      for (const rule of toSidecar) expect(rule.from?.length).toBeGreaterThan(0);
      expect(JSON.stringify(toSidecar)).toContain('"ingress-nginx"');
      expect(ordersRules.filter((r) => r.from === undefined)).toEqual([]);
    },
    SETUP_TIMEOUT_MS,
  );

  test(
    'the plugin fails the bypasses: undeclared-ingress (allowFrom, every pod on the admin port), duplicate-name, self-call, each with its construct path',
    async () => {
      const { ok, output } = await synth('bypasses');
      expect(ok).toBe(false);
      expect(output).toContain('Validation failed');
      expect(output).toMatch(/undeclared-ingress \(\d+ occurrences\)/);
      expect(output).toMatch(/\[shop\/orders\/deployment\/AllowIngress[^\]]*\] spec\.ingress\[0\]\.from\[0\]: admits [^\n]* to main port 8080 of SidecarApp Deployment shop\/orders/);
      expect(output).toMatch(/\[shop\/scrape-all\/Resource\] spec\.ingress\[0\]\.from\[0\]: admits every pod of the namespace \(podSelector: \{\}\) to admin port 9091 of SidecarApp Deployment shop\/orders/);
      expect(output).toMatch(/duplicate-name \(\d+ occurrences\)/);
      expect(output).toContain('metadata.name: Deployment shop/orders is written 2 times (in shop.k8s.yaml), like an object of SidecarApp Deployment shop/orders: kubectl apply keeps only the last');
      expect(output).toMatch(/self-call \(1 occurrences\)/);
      expect(output).toContain('holds a token for "billing", an audience its own sidecar accepts: the app is connected to itself');
      expect(output).toMatch(/main-root \(1 occurrences\)/);
      expect(output).toContain('spec.template.spec.containers[0].securityContext.runAsUser: is 0 (root), must be a non-root id');
    },
    SETUP_TIMEOUT_MS,
  );

  test('the construct errors name the construct path and the prop the user set, in one line', () => {
    for (const message of Object.values(errors)) expect(message).not.toContain('\n');
    expect(errors).toEqual({
      stringPort: 'SidecarApp shop/backend: main.port must be an integer in 1..65535, got "3000" (a string)',
      portOnDefault: 'SidecarApp shop/backend: main.port (8081) must differ from sidecar.port (its default): two container ports in one pod cannot be the same',
      duplicateName: expect.stringMatching(/^SidecarApp shop-v2\/api: name \(derived from the construct id\) \("api"\) is also the name of SidecarApp shop\/api in namespace "shop": /),
      selfCall: expect.stringMatching(/^SidecarApp shop\/backend: allowCallsFrom names this SidecarApp itself: /),
      openSidecarPort: expect.stringMatching(/^SidecarApp shop\/backend: allowSidecarFrom would restrict nothing: the sidecar port is open to every source; set sidecarPortAllowedFrom/),
      lateRoute: expect.stringMatching(/^SidecarApp shop\/backend: addRoute\[0\] /),
      rootUser: expect.stringMatching(/^SidecarApp shop\/backend: main\.user is 0 \(root\): set main\.allowRoot/),
      writablePath: 'SidecarApp shop/backend: main.writablePaths[0] must be an absolute path, got "var/cache"',
    });
  });
});

describe('main images that are not ours: an nginx-like and a distroless-like app, and every example of the docs', () => {
  const FOREIGN = `import { App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { MainProbeKind, SidecarApp } from 'cdk8s-sidecar-app';

const app = new App();
const chart = new Chart(app, 'images', { namespace: 'shop' });

// nginx-like: port 80, its own probe path, writable cache and run directories.
new SidecarApp(chart, 'site', {
  main: {
    image: 'nginx:1.27.3',
    port: 80,
    user: 101,
    group: 101,
    readiness: kplus.Probe.fromHttpGet('/nginx-health', { port: 80 }),
    liveness: kplus.Probe.fromHttpGet('/nginx-health', { port: 80 }),
    writablePaths: ['/var/cache/nginx', '/var/run', '/tmp'],
  },
});

// distroless-like: no shell, its own entry point, no probe it could answer but its port.
new SidecarApp(chart, 'ledger', {
  main: { image: 'gcr.io/acme/ledger:2.4.1', port: 8080, command: ['/ledger'], args: ['--listen', ':8080'], user: 65532, group: 65532, withoutProbes: [MainProbeKind.LIVENESS] },
  sidecar: { port: 8090 },
  adminPort: 8091,
});

app.synth();
`;
  let manifests: Manifest[];
  let project: string;
  const deployment = (name: string) => manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === name)!;
  const containerOf = (name: string, container: string) => deployment(name).spec.template.spec.containers.find((c: { name: string }) => c.name === container);
  const envOf = (c: { env?: Array<{ name: string; value?: string }> }) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

  /** The TypeScript blocks of a doc that import the package: what a user would paste. */
  function examplesOf(doc: string): string[] {
    const text = fs.readFileSync(path.join(REPO_ROOT, doc), 'utf8');
    return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]).filter((code) => code.includes("from 'cdk8s-sidecar-app'"));
  }
  const EXAMPLE_DOCS = ['README.md', 'lib/README.md', 'docs/main-contract.md', 'docs/construct.md'];

  beforeAll(async () => {
    project = path.join(work, 'images-chart');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'images-chart', version: '1.0.0', private: true, main: 'main.js' }, null, 2));
    fs.copyFileSync(path.join(REPO_ROOT, 'node_modules', 'cdk8s-cli', 'templates', 'typescript-app', 'tsconfig.json'), path.join(project, 'tsconfig.json'));
    fs.writeFileSync(path.join(project, 'main.ts'), FOREIGN);
    EXAMPLE_DOCS.forEach((doc, d) => examplesOf(doc).forEach((code, i) => fs.writeFileSync(path.join(project, `example-${d}-${i}.ts`), code)));
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, ...PEERS.map((p) => `${p}@${rootVersion(p)}`)], { cwd: project });
    await run(repoBin('tsc'), ['-p', '.'], { cwd: project });
    await run(process.execPath, ['main.js'], { cwd: project });
    manifests = parseAllDocuments(fs.readFileSync(path.join(project, 'dist', 'images.k8s.yaml'), 'utf8')).map((d) => d.toJSON() as Manifest);
  }, SETUP_TIMEOUT_MS);

  test('every TypeScript example of the README, lib/README.md, main-contract.md and construct.md compiles against the package', () => {
    const compiled = fs.readdirSync(project).filter((f) => /^example-\d+-\d+\.js$/.test(f));
    // At least the README's and main-contract.md's two.
    expect(compiled.length).toBeGreaterThanOrEqual(3);
    expect(examplesOf('docs/main-contract.md')).toHaveLength(2);
  });

  test('the manifests pass the strict 1.28 schema', () => {
    const { Deployment } = require('kubernetes-models/apps/v1/Deployment') as typeof import('kubernetes-models/apps/v1/Deployment');
    for (const name of ['site', 'ledger']) expect(() => new Deployment(deployment(name) as never).validate()).not.toThrow();
  });

  test('nothing in either pod runs a command in main: no exec probe or hook, so an image without a shell stops gracefully', () => {
    for (const name of ['site', 'ledger']) {
      const json = JSON.stringify(deployment(name).spec.template.spec);
      expect(json).not.toContain('"exec"');
      expect(containerOf(name, 'main').lifecycle.preStop.httpGet.path).toMatch(/^\/prestop\?ms=\d+&until=closed$/);
    }
  });

  test('nginx-like: port 80, its probe path asked by the sidecar too, user 101, an emptyDir per writable path, no MAIN_* env', () => {
    const main = containerOf('site', 'main');
    expect(main.ports).toEqual([expect.objectContaining({ containerPort: 80 })]);
    expect(main.readinessProbe.httpGet).toMatchObject({ path: '/nginx-health', port: 80 });
    expect(main.securityContext).toMatchObject({ runAsUser: 101, runAsGroup: 101, runAsNonRoot: true, readOnlyRootFilesystem: true });
    expect(main.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toEqual(['/var/cache/nginx', '/var/run', '/tmp']);
    expect(Object.keys(envOf(main)).filter((n) => n.startsWith('MAIN_'))).toEqual([]);
    const sidecarEnv = envOf(containerOf('site', 'sidecar'));
    expect(sidecarEnv.SIDECAR_UPSTREAM).toBe('http://127.0.0.1:80');
    expect(sidecarEnv.SIDECAR_UPSTREAM_HEALTH_PATH).toBe('/nginx-health');
  });

  test('distroless-like: its command and args, a TCP readiness, no liveness, and a tcp upstream check', () => {
    const main = containerOf('ledger', 'main');
    expect(main.command).toEqual(['/ledger']);
    expect(main.args).toEqual(['--listen', ':8080']);
    expect(main.readinessProbe.tcpSocket).toEqual({ port: 8080 });
    expect(main.livenessProbe).toBeUndefined();
    expect(envOf(containerOf('ledger', 'sidecar')).SIDECAR_UPSTREAM_CHECK).toBe('tcp');
  });
});

describe('identity mix in a consumer project: a JWT-only app and a service-account-only app, both Ready on the local pod runner', () => {
  /** Ports in this suite's own range, so it never meets e2e.test.ts or calls-e2e.test.ts. */
  const PORTS = { catalog: { main: 43080, sidecar: 43081, admin: 43091 }, ledger: { main: 43180, sidecar: 43181, admin: 43191 } } as const;
  const ISS = 'https://idp.consumer.test';
  const IDENTITY_CHART = `import { App, Chart } from 'cdk8s';
import { SidecarApp } from 'cdk8s-sidecar-app';

const app = new App();
const chart = new Chart(app, 'identity', { namespace: 'shop' });

// JWT-only: no static tokens, so no tokens Secret to create.
new SidecarApp(chart, 'catalog', {
  main: { port: ${PORTS.catalog.main} },
  sidecar: { port: ${PORTS.catalog.sidecar} },
  adminPort: ${PORTS.catalog.admin},
  drainDelayMs: 0,
  jwtIssuers: [{ name: 'idp', issuer: '${ISS}', audiences: ['catalog'], jwksConfigMap: 'idp-jwks' }],
});

// Service-account-only: callers present a projected token for the audience "ledger".
new SidecarApp(chart, 'ledger', {
  main: { port: ${PORTS.ledger.main} },
  sidecar: { port: ${PORTS.ledger.sidecar} },
  adminPort: ${PORTS.ledger.admin},
  drainDelayMs: 0,
  serviceAccountAuth: {},
});

app.synth();
`;
  let manifests: Manifest[];
  let api: import('../tools/pod/kube-api').StandInApiServer | undefined;
  const pods: import('../tools/pod').RunningPod[] = [];
  const deploymentOf = (name: string) => manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === name) as unknown as import('../tools/pod').Deployment;

  beforeAll(async () => {
    const project = path.join(work, 'identity-chart');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'identity-chart', version: '1.0.0', private: true, main: 'main.js' }, null, 2));
    fs.copyFileSync(path.join(REPO_ROOT, 'node_modules', 'cdk8s-cli', 'templates', 'typescript-app', 'tsconfig.json'), path.join(project, 'tsconfig.json'));
    fs.writeFileSync(path.join(project, 'main.ts'), IDENTITY_CHART);
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, ...PEERS.map((p) => `${p}@${rootVersion(p)}`)], { cwd: project });
    await run(repoBin('tsc'), ['-p', '.'], { cwd: project });
    await run(process.execPath, ['main.js'], { cwd: project });
    manifests = parseAllDocuments(fs.readFileSync(path.join(project, 'dist', 'identity.k8s.yaml'), 'utf8')).map((d) => d.toJSON() as Manifest);
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    for (const pod of pods.splice(0)) await pod.stop('sigterm');
    await api?.close();
  }, SETUP_TIMEOUT_MS);

  test('neither pod mounts a tokens Secret or sets SIDECAR_TOKENS_DIR', () => {
    for (const name of ['catalog', 'ledger']) {
      const spec = deploymentOf(name).spec.template.spec;
      expect((spec.volumes ?? []).filter((v) => 'secret' in v)).toEqual([]);
      const sidecar = [...spec.containers, ...(spec.initContainers ?? [])].find((c) => c.name === 'sidecar')!;
      expect((sidecar.env ?? []).map((e) => e.name)).not.toContain('SIDECAR_TOKENS_DIR');
    }
  });

  test('the JWT-only pod gets Ready with only its JWKS ConfigMap: a JWT gets 200, no credential 401', async () => {
    const { generateKeyPair, exportJWK, SignJWT } = await import('jose');
    const { runSidecarAppPod, httpGet } = await import('../tools/pod');
    const pair = await generateKeyPair('ES256');
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] });
    const pod = await runSidecarAppPod(deploymentOf('catalog'), { configMaps: { 'idp-jwks': { 'jwks.json': jwks } } });
    pods.push(pod);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: ISS, aud: 'catalog', sub: 'alice', iat: now, exp: now + 300 }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(pair.privateKey);
    expect((await httpGet(PORTS.catalog.sidecar, '/', { authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await httpGet(PORTS.catalog.sidecar, '/')).status).toBe(401);
    const ready = await httpGet(PORTS.catalog.admin, '/readyz');
    expect({ status: ready.status, body: ready.body }).toEqual({ status: 200, body: 'ready\njwt:idp: ready\n' });
  }, SETUP_TIMEOUT_MS);

  test('the service-account-only pod gets Ready against the stand-in API server: a projected token gets 200, no credential 401', async () => {
    const { startStandInApiServer } = await import('../tools/pod/kube-api');
    const { runSidecarAppPod, httpGet } = await import('../tools/pod');
    const server = await startStandInApiServer();
    api = server;
    const pod = await runSidecarAppPod(deploymentOf('ledger'), {
      configMaps: { 'kube-root-ca.crt': { 'ca.crt': server.caPem } },
      mintServiceAccountToken: (req) =>
        server.mintToken({ namespace: req.namespace, serviceAccount: req.serviceAccount, podName: req.podName, audiences: req.audience === undefined ? undefined : [req.audience], expirationSeconds: req.expirationSeconds }),
      kubeletEnv: { KUBERNETES_SERVICE_HOST: server.host, KUBERNETES_SERVICE_PORT: String(server.port) },
    });
    pods.push(pod);
    const token = await server.mintToken({ namespace: 'shop', serviceAccount: 'frontend', audiences: ['ledger'] });
    expect((await httpGet(PORTS.ledger.sidecar, '/', { authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await httpGet(PORTS.ledger.sidecar, '/')).status).toBe(401);
    const ready = await httpGet(PORTS.ledger.admin, '/readyz');
    expect({ status: ready.status, body: ready.body }).toEqual({ status: 200, body: 'ready\nkubernetes: ready\n' });
  }, SETUP_TIMEOUT_MS);
});
