import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Chart, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parseAllDocuments } from 'yaml';
import { CONTAINER_NAMES, DEFAULT_PORTS, HEALTH_PATHS, JWKS_MOUNT_ROOT, MAIN_ENV, RUN_AS, SIDECAR_ENV, TOKENS_MOUNT_PATH, parseJwtIssuers } from '../lib/src/contract';
import { JwtIssuerOptions, LogLevel, SidecarApp, SidecarAppProps, SidecarMode } from '../lib/src';
import { buildApp, CHART_NAME, IMAGE_CONTEXT, IMAGE_ENV, SidecarAppChart } from '../main';

// Synthesized manifests are plain JSON; `any` keeps the assertions readable.
/* eslint-disable @typescript-eslint/no-explicit-any */
type Manifest = any;

function synthMain(env: NodeJS.ProcessEnv = {}): Manifest[] {
  return Testing.synth(new SidecarAppChart(Testing.app(), CHART_NAME, { env }));
}

function synthApp(props: SidecarAppProps = {}, id = 'api'): Manifest[] {
  const chart = Testing.chart();
  new SidecarApp(chart, id, props);
  return Testing.synth(chart);
}

/** The two NetworkPolicies: the guard (named like the app) and the open-ports one. */
function policies(manifests: Manifest[]): { guard: Manifest; open: Manifest } {
  const found = manifests.filter((m) => m.kind === 'NetworkPolicy');
  expect(found).toHaveLength(2);
  const open = found.find((p) => p.metadata.name.endsWith('-open-ports'));
  const guard = found.find((p) => !p.metadata.name.endsWith('-open-ports'));
  return { guard, open };
}

/** Every ingress rule of every NetworkPolicy: NetworkPolicies add up. */
function ingressRules(manifests: Manifest[]): Manifest[] {
  return manifests.filter((m) => m.kind === 'NetworkPolicy').flatMap((p) => p.spec.ingress ?? []);
}

function only(manifests: Manifest[], kind: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found).toHaveLength(1);
  return found[0];
}

function podSpec(manifests: Manifest[]): Manifest {
  return only(manifests, 'Deployment').spec.template.spec;
}

function container(manifests: Manifest[], name: string): Manifest {
  const found = podSpec(manifests).containers.filter((c: Manifest) => c.name === name);
  expect(found).toHaveLength(1);
  return found[0];
}

function envOf(c: Manifest): Record<string, string> {
  return Object.fromEntries((c.env ?? []).map((e: Manifest) => [e.name, e.value]));
}

/** The container port a probe or targetPort refers to, by number or by name; undefined if not declared. */
function declaredPort(c: Manifest, ref: number | string): Manifest | undefined {
  return (c.ports ?? []).find((p: Manifest) => (typeof ref === 'number' ? p.containerPort === ref : p.name === ref));
}

/** Does a label selector (matchLabels only) select these labels? */
function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

const MODELS: Record<string, { new (data: any): { validate(): void } }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
};

function validateAgainstSchema(manifest: Manifest): void {
  const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
  if (!Model) throw new Error(`no schema model for ${manifest.apiVersion} ${manifest.kind}`);
  new Model(manifest).validate();
}

describe('default chart (main.ts)', () => {
  const manifests = synthMain();
  const deployment = only(manifests, 'Deployment');
  const service = only(manifests, 'Service');
  const { guard, open } = policies(manifests);
  const main = container(manifests, CONTAINER_NAMES.main);
  const sidecar = container(manifests, CONTAINER_NAMES.sidecar);

  test('matches the snapshot', () => {
    expect(manifests).toMatchSnapshot();
  });

  test('synthesizes exactly a ServiceAccount, a Deployment, a Service and the two NetworkPolicies', () => {
    expect(manifests.map((m) => m.kind).sort()).toEqual(['Deployment', 'NetworkPolicy', 'NetworkPolicy', 'Service', 'ServiceAccount']);
  });

  test('the Deployment has exactly two containers: main on 8080 and sidecar on 8081', () => {
    const containers = deployment.spec.template.spec.containers;
    expect(containers.map((c: Manifest) => c.name)).toEqual(['main', 'sidecar']);
    expect(main.ports.map((p: Manifest) => p.containerPort)).toEqual([8080]);
    expect(declaredPort(sidecar, 8081)).toBeDefined();
  });

  test('the sidecar forwards to the main container over loopback', () => {
    expect(envOf(sidecar)[SIDECAR_ENV.upstream]).toBe('http://127.0.0.1:8080');
    expect(envOf(sidecar)[SIDECAR_ENV.upstreamHealthPath]).toBe(HEALTH_PATHS.main);
    expect(envOf(main)[MAIN_ENV.port]).toBe('8080');
    expect(envOf(sidecar)[SIDECAR_ENV.port]).toBe('8081');
    expect(envOf(sidecar)[SIDECAR_ENV.adminPort]).toBe(String(DEFAULT_PORTS.admin));
  });

  test('names are readable and stable, without hash suffixes', () => {
    for (const m of manifests) expect(m.metadata.name).toBe(m === open ? 'sidecar-app-open-ports' : 'sidecar-app');
  });

  test('the Service has two ports, 8080 and 8081, whose targets are declared container ports', () => {
    expect(service.spec.type).toBe('ClusterIP');
    expect(service.spec.ports.map((p: Manifest) => [p.name, p.port, p.targetPort])).toEqual([
      ['main-container-port', 8080, 8080],
      ['sidecar-container-port', 8081, 8081],
    ]);
    const [mainPort, sidecarPort] = service.spec.ports;
    expect(declaredPort(main, mainPort.targetPort)).toBeDefined();
    expect(declaredPort(sidecar, sidecarPort.targetPort)).toBeDefined();
  });

  test('the admin port is not in the Service', () => {
    const ports = service.spec.ports.flatMap((p: Manifest) => [p.port, p.targetPort]);
    expect(ports).not.toContain(DEFAULT_PORTS.admin);
    expect(ports).not.toContain('sidecar-admin');
  });

  test('the selectors match the pod labels, which follow the recommended labels', () => {
    const podLabels = deployment.spec.template.metadata.labels;
    expect(Object.keys(podLabels)).toEqual(
      expect.arrayContaining([
        'app.kubernetes.io/name',
        'app.kubernetes.io/instance',
        'app.kubernetes.io/component',
        'app.kubernetes.io/part-of',
        'app.kubernetes.io/managed-by',
      ]),
    );
    expect(selects(service.spec.selector, podLabels)).toBe(true);
    expect(selects(deployment.spec.selector.matchLabels, podLabels)).toBe(true);
    for (const policy of [guard, open]) expect(selects(policy.spec.podSelector.matchLabels, podLabels)).toBe(true);
    expect(service.spec.selector['app.kubernetes.io/instance']).toBe('sidecar-app');
  });

  test('every probe hits a port its container declares', () => {
    let probes = 0;
    for (const c of [main, sidecar]) {
      for (const kind of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
        const probe = c[kind];
        if (!probe) continue;
        probes++;
        expect({ container: c.name, kind, port: declaredPort(c, probe.httpGet.port)?.containerPort }).toEqual({
          container: c.name,
          kind,
          port: expect.any(Number),
        });
      }
    }
    expect(probes).toBeGreaterThanOrEqual(4);
  });

  test('the sidecar probes liveness and readiness on the admin port, on different paths', () => {
    expect(sidecar.livenessProbe.httpGet).toMatchObject({ path: HEALTH_PATHS.sidecarLiveness, port: DEFAULT_PORTS.admin });
    expect(sidecar.readinessProbe.httpGet).toMatchObject({ path: HEALTH_PATHS.sidecarReadiness, port: DEFAULT_PORTS.admin });
    expect(sidecar.readinessProbe.httpGet.path).not.toBe(sidecar.livenessProbe.httpGet.path);
  });

  test('the main container probes its own health path', () => {
    expect(main.livenessProbe.httpGet).toMatchObject({ path: HEALTH_PATHS.main, port: 8080 });
    expect(main.readinessProbe.httpGet).toMatchObject({ path: HEALTH_PATHS.main, port: 8080 });
  });

  test('the pod and both containers are hardened', () => {
    const spec = deployment.spec.template.spec;
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: RUN_AS.user,
      runAsGroup: RUN_AS.group,
      fsGroup: RUN_AS.group,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    for (const c of [main, sidecar]) {
      expect(c.securityContext).toEqual({
        runAsNonRoot: true,
        runAsUser: RUN_AS.user,
        runAsGroup: RUN_AS.group,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(c.securityContext.runAsUser).toBeGreaterThanOrEqual(10000);
      expect(c.securityContext.runAsGroup).toBeGreaterThanOrEqual(10000);
    }
  });

  test('both containers have small, explicit requests and limits; the sidecar stays below one CPU', () => {
    for (const c of [main, sidecar]) {
      expect(c.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
      expect(c.resources.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    }
    expect(sidecar.resources.limits.cpu).toMatch(/^[0-9]{1,3}m$/);
    expect(sidecar.resources).toEqual({ requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '128Mi' } });
    expect(main.resources).toEqual({ requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } });
  });

  test('images are pinned to the package version and pulled IfNotPresent', () => {
    expect(main.image).toBe('sidecar-app-main:0.1.0');
    expect(sidecar.image).toBe('sidecar-app-sidecar:0.1.0');
    for (const c of [main, sidecar]) {
      expect(c.image).not.toMatch(/:latest$/);
      expect(c.imagePullPolicy).toBe('IfNotPresent');
    }
  });

  test('the token Secret is mounted read-only as a directory and no token is in the manifests', () => {
    const volume = deployment.spec.template.spec.volumes.find((v: Manifest) => v.secret);
    expect(volume.secret).toEqual({ secretName: 'sidecar-app-tokens', defaultMode: 0o440, optional: false });
    expect(sidecar.volumeMounts).toEqual([{ name: volume.name, mountPath: TOKENS_MOUNT_PATH, readOnly: true }]);
    expect(sidecar.volumeMounts[0].subPath).toBeUndefined();
    expect(main.volumeMounts).toBeUndefined();
    expect(envOf(sidecar)[SIDECAR_ENV.tokensDir]).toBe(TOKENS_MOUNT_PATH);
    // No Secret object, no data anywhere: tokens only exist in the cluster.
    expect(manifests.filter((m) => m.kind === 'Secret')).toEqual([]);
    const json = JSON.stringify(manifests);
    expect(json).not.toMatch(/"(data|stringData)":/);
    expect(json).not.toMatch(/[A-Fa-f0-9]{32}|Bearer /);
  });

  test('the NetworkPolicies admit the sidecar port from anywhere and the main and admin ports from no one', () => {
    for (const policy of [guard, open]) {
      expect(policy.spec.policyTypes).toEqual(['Ingress']);
      expect(policy.spec.podSelector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    }
    // The guard isolates the pods and admits no one by default.
    expect(guard.spec.ingress).toBeUndefined();
    const rules: Manifest[] = ingressRules(manifests);
    const admitted = (port: number) => rules.filter((r) => r.ports.some((p: Manifest) => p.port === port));
    expect(admitted(8081)).toEqual([{ ports: [{ port: 8081, protocol: 'TCP' }] }]);
    expect(admitted(8080)).toEqual([]);
    expect(admitted(DEFAULT_PORTS.admin)).toEqual([]);
    // Every rule names its ports: no rule opens all ports.
    for (const rule of rules) expect(rule.ports.length).toBeGreaterThan(0);
  });

  test("graceful rollouts: both containers' preStop waits on the sidecar's admin port (no sleep in any image), grace period covering drain and shutdown", () => {
    const spec = deployment.spec.template.spec;
    expect(spec.terminationGracePeriodSeconds).toBe(40);
    for (const c of [main, sidecar]) expect(c.lifecycle.preStop).toEqual({ httpGet: { path: '/prestop?ms=5000', port: DEFAULT_PORTS.admin, scheme: 'HTTP' } });
    const shutdownMs = Number(envOf(sidecar)[SIDECAR_ENV.shutdownTimeoutMs]);
    expect(shutdownMs).toBeLessThan((40 - 5) * 1000);
    expect(Number(envOf(main)[MAIN_ENV.drainDelayMs])).toBeGreaterThan(Number(envOf(sidecar)[SIDECAR_ENV.drainDelayMs]));
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
  });

  test('one replica: no PodDisruptionBudget, no spread, no autoscaler', () => {
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.template.spec.topologySpreadConstraints).toBeUndefined();
  });

  test('every object validates against the Kubernetes schema', () => {
    for (const m of manifests) expect(() => validateAgainstSchema(m)).not.toThrow();
  });

  test('the schema check can fail', () => {
    const broken = structuredClone(deployment);
    broken.spec.template.spec.containers[0].ports[0].containerPort = '8080';
    delete broken.spec.template.spec.containers[1].name;
    expect(() => validateAgainstSchema(broken)).toThrow(/containerPort must be integer/);
  });
});

describe('main.ts image overrides', () => {
  test('environment variables set the image names and tags', () => {
    const manifests = synthMain({ [IMAGE_ENV.main]: 'registry.example.com/team/main:2.0.1', [IMAGE_ENV.sidecar]: 'localhost:5000/auth:0.9' });
    expect(container(manifests, 'main').image).toBe('registry.example.com/team/main:2.0.1');
    expect(container(manifests, 'sidecar').image).toBe('localhost:5000/auth:0.9');
  });

  test('cdk8s context wins over the environment', () => {
    const app = buildApp({
      context: { [IMAGE_CONTEXT.main]: 'ctx/main:1.1.1', [IMAGE_CONTEXT.sidecar]: 'ctx/sidecar:2.2.2' },
      env: { [IMAGE_ENV.main]: 'env/main:9.9.9' },
    });
    const manifests = Testing.synth(app.charts[0]);
    expect(container(manifests, 'main').image).toBe('ctx/main:1.1.1');
    expect(container(manifests, 'sidecar').image).toBe('ctx/sidecar:2.2.2');
  });

  test('an empty or unpinned override fails naming the setting', () => {
    expect(() => synthMain({ [IMAGE_ENV.main]: '' })).toThrow(/SIDECAR_APP_MAIN_IMAGE is set but empty/);
    expect(() => synthMain({ [IMAGE_ENV.sidecar]: 'auth:latest' })).toThrow(/sidecar\.image .*latest/);
  });

  test('synth writes dist-style YAML with the ServiceAccount, the Deployment, the Service and the NetworkPolicies', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-app-synth-'));
    try {
      buildApp({ outdir, env: {} }).synth();
      const file = path.join(outdir, `${CHART_NAME}.k8s.yaml`);
      const kinds = parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS().kind);
      expect(kinds).toEqual(['ServiceAccount', 'Deployment', 'Service', 'NetworkPolicy', 'NetworkPolicy']);
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe('SidecarApp props', () => {
  test('the name is derived from the construct id and can be set', () => {
    expect(only(synthApp({}, 'orders'), 'Deployment').metadata.name).toBe('orders');
    expect(only(synthApp({}, 'OrdersApi'), 'Service').metadata.name).toBe('ordersapi');
    expect(only(synthApp({ name: 'billing' }), 'Service').metadata.name).toBe('billing');
  });

  test('exposes the objects and names other charts need', () => {
    const chart = Testing.chart();
    const app = new SidecarApp(chart, 'api', { replicas: 2 });
    expect(app.name).toBe('api');
    expect(app.deployment.name).toBe('api');
    expect(app.service.name).toBe('api');
    expect(app.networkPolicy?.name).toBe('api');
    expect(app.podDisruptionBudget?.name).toBe('api');
    expect(app.mainPortName).toBe('main-container-port');
    expect(app.sidecarPortName).toBe('sidecar-container-port');
    expect(app.sidecarServicePort).toBe(8081);
    expect(app.tokenSecretName).toBe('api-tokens');
    expect(app.selectorLabels).toEqual({ 'app.kubernetes.io/name': 'api', 'app.kubernetes.io/instance': 'api' });
  });

  test('ports, port names and Service ports follow the props everywhere', () => {
    const manifests = synthApp({
      main: { port: 3000, portName: 'web' },
      sidecar: { port: 4000, portName: 'auth' },
      adminPort: 9100,
      mainServicePortName: 'direct',
      mainServicePort: 80,
      sidecarServicePortName: 'https-ish',
      sidecarServicePort: 443,
    });
    const main = container(manifests, 'main');
    const sidecar = container(manifests, 'sidecar');
    expect(only(manifests, 'Service').spec.ports.map((p: Manifest) => [p.name, p.port, p.targetPort])).toEqual([
      ['direct', 80, 3000],
      ['https-ish', 443, 4000],
    ]);
    expect(main.ports).toEqual([{ name: 'web', containerPort: 3000, protocol: 'TCP' }]);
    expect(declaredPort(sidecar, 'auth')?.containerPort).toBe(4000);
    expect(envOf(sidecar)[SIDECAR_ENV.upstream]).toBe('http://127.0.0.1:3000');
    expect(envOf(sidecar)[SIDECAR_ENV.adminPort]).toBe('9100');
    expect(sidecar.readinessProbe.httpGet.port).toBe(9100);
    expect(main.livenessProbe.httpGet.port).toBe(3000);
    expect(ingressRules(manifests)).toEqual([{ ports: [{ port: 4000, protocol: 'TCP' }] }]);
  });

  test('per-container image, env, resources and args; sidecar behaviour props reach its env', () => {
    const manifests = synthApp({
      imagePullPolicy: kplus.ImagePullPolicy.ALWAYS,
      main: { image: 'acme/orders@sha256:' + 'a'.repeat(64), contractEnv: true, env: { FEATURE_X: 'on' }, args: ['--verbose'], resources: { memory: { limit: Size.mebibytes(512) } } },
      sidecar: { image: 'acme/auth:3.1.4', env: { SIDECAR_REALM: 'orders' }, resources: { cpu: { request: kplus.Cpu.millis(25) } } },
      publicPaths: ['/healthz', '/version'],
      forwardAuthorization: true,
      tokenSecretName: 'orders-api-tokens',
      logLevel: LogLevel.DEBUG,
      labels: { team: 'payments', 'app.kubernetes.io/part-of': 'shop' },
    });
    const main = container(manifests, 'main');
    const sidecar = container(manifests, 'sidecar');
    expect(main.image).toBe('acme/orders@sha256:' + 'a'.repeat(64));
    expect(main.imagePullPolicy).toBe('Always');
    expect(main.args).toEqual(['--verbose']);
    expect(envOf(main).FEATURE_X).toBe('on');
    expect(main.resources.limits).toEqual({ cpu: '500m', memory: '512Mi' });
    expect(sidecar.resources.requests).toEqual({ cpu: '25m', memory: '64Mi' });
    expect(sidecar.args).toBeUndefined();
    expect(envOf(sidecar)).toMatchObject({
      SIDECAR_REALM: 'orders',
      [SIDECAR_ENV.routes]: '{"rules":[{"path":"/healthz","effect":"public"},{"path":"/version","effect":"public"}]}',
      [SIDECAR_ENV.forwardAuthorization]: 'true',
      [SIDECAR_ENV.logLevel]: 'debug',
    });
    expect(envOf(main)[MAIN_ENV.logLevel]).toBe('debug');
    expect(podSpec(manifests).volumes[0].secret.secretName).toBe('orders-api-tokens');
    const labels = only(manifests, 'Deployment').spec.template.metadata.labels;
    expect(labels).toMatchObject({ team: 'payments', 'app.kubernetes.io/part-of': 'shop', 'app.kubernetes.io/instance': 'api' });
  });

  test('optional sidecar env is left out by default', () => {
    const env = envOf(container(synthApp(), 'sidecar'));
    expect(env).not.toHaveProperty(SIDECAR_ENV.publicPaths);
    expect(env).not.toHaveProperty(SIDECAR_ENV.routes);
    expect(env).not.toHaveProperty(SIDECAR_ENV.forwardAuthorization);
  });

  test('the NetworkPolicies admit the main and admin ports from the named cdk8s-plus peers only', () => {
    const chart = Testing.chart();
    const gateway = kplus.Pods.select(chart, 'gateway', { labels: { app: 'gateway' } });
    const monitoring = kplus.Namespaces.select(chart, 'monitoring', { names: ['monitoring'] });
    const app = new SidecarApp(chart, 'api', { mainPortAllowedFrom: [gateway], adminPortAllowedFrom: [monitoring] });
    // Later additions go to the same policy.
    app.allowAdminFrom(kplus.NetworkPolicyIpBlock.ipv4(chart, 'office', '10.0.0.0/8'));
    const manifests = Testing.synth(chart);
    expect(ingressRules(manifests)).toEqual([
      { from: [{ podSelector: { matchLabels: { app: 'gateway' } } }], ports: [{ port: 8080, protocol: 'TCP' }] },
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: {} }], ports: [{ port: DEFAULT_PORTS.admin, protocol: 'TCP' }] },
      { from: [{ ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ port: DEFAULT_PORTS.admin, protocol: 'TCP' }] },
      { ports: [{ port: 8081, protocol: 'TCP' }] },
    ]);
  });

  test('allowAdminFrom and allowMainFrom need the NetworkPolicy', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const chart = Testing.chart();
      const app = new SidecarApp(chart, 'api', { networkPolicy: false, allowUnauthenticatedMainPort: true });
      expect(() => app.allowAdminFrom(kplus.Pods.all(chart, 'all'))).toThrow(/^SidecarApp test\/api: allowAdminFrom needs the NetworkPolicy that networkPolicy: false turns off$/);
    } finally {
      warn.mockRestore();
    }
  });

  test('turning the NetworkPolicy off needs allowUnauthenticatedMainPort, and then warns', () => {
    expect(() => synthApp({ networkPolicy: false })).toThrow(/networkPolicy .*allowUnauthenticatedMainPort: true/);
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const manifests = synthApp({ networkPolicy: false, allowUnauthenticatedMainPort: true });
      expect(manifests.map((m) => m.kind)).not.toContain('NetworkPolicy');
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(/allowUnauthenticatedMainPort.*bypass authentication/);
    } finally {
      warn.mockRestore();
    }
  });

  test('allowUnauthenticatedMainPort with the NetworkPolicy opens the main port to all, with a warning', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const rules = ingressRules(synthApp({ allowUnauthenticatedMainPort: true }));
      expect(rules).toContainEqual({ ports: [{ port: 8080, protocol: 'TCP' }] });
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }
  });

  test('grace period and preStop follow the props; the sidecar shutdown ends before SIGKILL', () => {
    const manifests = synthApp({ preStopDelaySeconds: 10, terminationGracePeriodSeconds: 60, drainDelayMs: 8000, upstreamTimeoutMs: 30000 });
    const spec = podSpec(manifests);
    const sidecar = container(manifests, 'sidecar');
    expect(spec.terminationGracePeriodSeconds).toBe(60);
    for (const c of spec.containers) expect(c.lifecycle.preStop.httpGet).toMatchObject({ path: '/prestop?ms=10000', port: DEFAULT_PORTS.admin });
    expect(envOf(sidecar)).toMatchObject({ [SIDECAR_ENV.drainDelayMs]: '8000', [SIDECAR_ENV.upstreamTimeoutMs]: '30000', [SIDECAR_ENV.shutdownTimeoutMs]: '48000' });
    expect(envOf(container(manifests, 'main'))[MAIN_ENV.drainDelayMs]).toBe('13000');
    // No wait asked for: no hook at all.
    for (const c of podSpec(synthApp({ preStopDelaySeconds: 0 })).containers) expect(c.lifecycle).toBeUndefined();
  });

  test('more than one replica adds a PodDisruptionBudget and spreads pods across nodes', () => {
    const manifests = synthApp({ replicas: 3 });
    const deployment = only(manifests, 'Deployment');
    const podLabels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.replicas).toBe(3);
    const pdb = only(manifests, 'PodDisruptionBudget');
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(selects(pdb.spec.selector.matchLabels, podLabels)).toBe(true);
    const [spread] = deployment.spec.template.spec.topologySpreadConstraints;
    expect(spread).toMatchObject({ topologyKey: 'kubernetes.io/hostname', maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway' });
    expect(selects(spread.labelSelector.matchLabels, podLabels)).toBe(true);
    expect(manifests.map((m) => m.kind)).not.toContain('HorizontalPodAutoscaler');
  });

  test('autoscaling adds a CPU HorizontalPodAutoscaler and leaves replicas to it', () => {
    const manifests = synthApp({ autoscaling: { minReplicas: 2, maxReplicas: 6, targetCpuUtilization: 70 } });
    const deployment = only(manifests, 'Deployment');
    expect(deployment.spec.replicas).toBeUndefined();
    const hpa = only(manifests, 'HorizontalPodAutoscaler');
    expect(hpa.spec).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name },
      minReplicas: 2,
      maxReplicas: 6,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
      // Kubernetes's own defaults, spelled out, instead of the slower ones cdk8s-plus would add.
      behavior: {
        scaleUp: {
          stabilizationWindowSeconds: 0,
          selectPolicy: 'Max',
          policies: [
            { type: 'Percent', value: 100, periodSeconds: 15 },
            { type: 'Pods', value: 4, periodSeconds: 15 },
          ],
        },
        scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
      },
    });
    expect(only(manifests, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
  });

  test('every object of a fully featured app validates against the Kubernetes schema', () => {
    const chart = Testing.chart();
    new SidecarApp(chart, 'api', {
      replicas: 3,
      mainPortAllowedFrom: [kplus.NetworkPolicyIpBlock.ipv4(chart, 'net', '10.0.0.0/8')],
      adminPortAllowedFrom: [kplus.Pods.all(chart, 'all')],
    });
    const manifests = [...Testing.synth(chart), ...synthApp({ autoscaling: { minReplicas: 1, maxReplicas: 4 }, publicPaths: ['/ping'], forwardAuthorization: true })];
    expect(new Set(manifests.map((m) => m.kind))).toEqual(new Set(['ServiceAccount', 'Deployment', 'Service', 'NetworkPolicy', 'PodDisruptionBudget', 'HorizontalPodAutoscaler']));
    for (const m of manifests) expect(() => validateAgainstSchema(m)).not.toThrow();
  });
});

describe('reuse', () => {
  test('two SidecarApps in one chart get distinct names and selectors', () => {
    const chart = Testing.chart();
    const orders = new SidecarApp(chart, 'orders');
    const billing = new SidecarApp(chart, 'billing', { replicas: 2 });
    const manifests = Testing.synth(chart);
    const names = manifests.map((m) => `${m.kind}/${m.metadata.name}`);
    expect(new Set(names).size).toBe(names.length);
    expect(orders.tokenSecretName).not.toBe(billing.tokenSecretName);

    const deployments = manifests.filter((m) => m.kind === 'Deployment');
    const services = manifests.filter((m) => m.kind === 'Service');
    expect(deployments).toHaveLength(2);
    for (const service of services) {
      const selected = deployments.filter((d) => selects(service.spec.selector, d.spec.template.metadata.labels));
      expect(selected.map((d) => d.metadata.name)).toEqual([service.metadata.name]);
    }
    for (const policy of manifests.filter((m) => m.kind === 'NetworkPolicy')) {
      const selected = deployments.filter((d) => selects(policy.spec.podSelector.matchLabels, d.spec.template.metadata.labels));
      expect(selected.map((d) => d.metadata.name)).toEqual([policy.metadata.name.replace(/-open-ports$/, '')]);
    }
  });

  test('the same id under different parents gets a name from its path', () => {
    const chart = Testing.chart();
    new SidecarApp(new Construct(chart, 'shop'), 'api');
    new SidecarApp(new Construct(chart, 'admin'), 'api');
    const names = Testing.synth(chart)
      .filter((m) => m.kind === 'Service')
      .map((m) => m.metadata.name);
    expect(names).toEqual(['shop-api', 'admin-api']);
  });

  test('SidecarApp works in a user chart next to other objects', () => {
    class MyChart extends Chart {
      constructor(scope: Construct) {
        super(scope, 'mine');
        new SidecarApp(this, 'api', { main: { image: 'me/api:1.0.0' } });
      }
    }
    const manifests = Testing.synth(new MyChart(Testing.app()));
    expect(container(manifests, 'main').image).toBe('me/api:1.0.0');
  });
});

describe('invalid props fail at synth with a message naming the prop', () => {
  const cases: Array<[string, SidecarAppProps, RegExp]> = [
    ['both containers on one port', { sidecar: { port: 8080 } }, /sidecar\.port \(8080\) must differ from main\.port/],
    ['admin port on the main port', { adminPort: 8080 }, /adminPort \(8080\) must differ from main\.port/],
    ['port out of range (high)', { main: { port: 70000 } }, /main\.port must be an integer in 1\.\.65535, got 70000/],
    ['port out of range (zero)', { sidecar: { port: 0 } }, /sidecar\.port must be an integer in 1\.\.65535/],
    ['port not an integer', { adminPort: 9091.5 }, /adminPort must be an integer/],
    ['Service port out of range', { sidecarServicePort: 65536 }, /sidecarServicePort must be an integer in 1\.\.65535/],
    ['Service ports equal', { mainServicePort: 80, sidecarServicePort: 80 }, /sidecarServicePort \(80\) must differ from mainServicePort/],
    ['name not a DNS label (uppercase)', { name: 'MyApp' }, /name must be a DNS label/],
    ['name not a DNS label (underscore)', { name: 'my_app' }, /name must be a DNS label/],
    ['name too long', { name: 'a'.repeat(64) }, /name must be a DNS label/],
    ['name starting with a digit', { name: '1app' }, /name must be a DNS label/],
    ['container port name longer than 15 characters', { main: { portName: 'main-http-port-x' } }, /main\.portName must be 1\.\.15 characters long/],
    ['container port name not an IANA name', { sidecar: { portName: 'Auth' } }, /sidecar\.portName must be an IANA service name/],
    ['container port name without a letter', { sidecar: { portName: '8081' } }, /sidecar\.portName must be an IANA service name/],
    ['container port names colliding', { main: { portName: 'http' }, sidecar: { portName: 'http' } }, /sidecar\.portName \("http"\) must differ from main\.portName/],
    ['container port name taken by the admin port', { main: { portName: 'sidecar-admin' } }, /main\.portName \("sidecar-admin"\) must differ from the admin port name/],
    ['Service port name not a DNS label', { mainServicePortName: 'Main_Port' }, /mainServicePortName must be a DNS label/],
    ['Service port names equal', { mainServicePortName: 'http', sidecarServicePortName: 'http' }, /sidecarServicePortName \("http"\) must differ/],
    ['empty image', { main: { image: '' } }, /main\.image must not be empty; image must be pinned to a tag/],
    ['blank image', { sidecar: { image: '  ' } }, /sidecar\.image must not be empty/],
    ['untagged image', { main: { image: 'acme/orders' } }, /main\.image "acme\/orders" has no tag; image must be pinned to a tag/],
    ['untagged image with a registry port', { main: { image: 'localhost:5000/orders' } }, /main\.image .*has no tag/],
    ['latest image', { sidecar: { image: 'acme/auth:latest' } }, /sidecar\.image .*"latest" tag/],
    ['uppercase repository', { main: { image: 'Acme/orders:1.0' } }, /main\.image has an invalid repository/],
    ['bad digest', { main: { image: 'acme/orders@sha256:abc' } }, /main\.image has an invalid digest/],
    ['replicas below one', { replicas: 0 }, /replicas must be an integer in 1\.\.10000, got 0/],
    ['replicas with autoscaling', { replicas: 2, autoscaling: { minReplicas: 1, maxReplicas: 3 } }, /replicas must not be set together with autoscaling/],
    ['autoscaling max below min', { autoscaling: { minReplicas: 3, maxReplicas: 2 } }, /autoscaling\.maxReplicas must be an integer in 3\.\.10000, got 2/],
    ['autoscaling min below one', { autoscaling: { minReplicas: 0, maxReplicas: 2 } }, /autoscaling\.minReplicas must be an integer in 1\.\./],
    ['autoscaling target out of range', { autoscaling: { minReplicas: 1, maxReplicas: 2, targetCpuUtilization: 0 } }, /autoscaling\.targetCpuUtilization/],
    ['public path without a slash', { publicPaths: ['healthz'] }, /publicPaths entries must start with '\/'/],
    ['public path with a query', { publicPaths: ['/a?b=1'] }, /publicPaths entries must start with '\/' and contain no '\?'/],
    ['public path with a comma', { publicPaths: ['/a,/b'] }, /publicPaths entries/],
    ['public path with whitespace', { publicPaths: ['/a b'] }, /publicPaths entries/],
    ['public path with a control character', { publicPaths: ['/a\u0001'] }, /publicPaths entries/],
    ['public path listed twice', { publicPaths: ['/ping', '/ping'] }, /publicPaths lists "\/ping" twice/],
    ['drain delay above ten minutes', { drainDelayMs: 600_001 }, /drainDelayMs must be an integer in 0\.\.600000/],
    ['grace period above an hour', { terminationGracePeriodSeconds: 3601 }, /terminationGracePeriodSeconds must be an integer in 0\.\.3600/],
    ['grace period too short', { terminationGracePeriodSeconds: 20 }, /terminationGracePeriodSeconds \(20\) must be at least 30/],
    ['grace period too short for a long upstream timeout', { upstreamTimeoutMs: 60000 }, /terminationGracePeriodSeconds \(40\) must be at least 75/],
    ['negative preStop', { preStopDelaySeconds: -1 }, /preStopDelaySeconds must be an integer in 0\.\./],
    ['zero upstream timeout', { upstreamTimeoutMs: 0 }, /upstreamTimeoutMs must be an integer in 1\.\./],
    ['NetworkPolicy off without the opt-in', { networkPolicy: false }, /networkPolicy is false.*allowUnauthenticatedMainPort/],
    ['env overriding the contract', { sidecar: { env: { SIDECAR_UPSTREAM: 'http://evil:80' } } }, /sidecar\.env must not set SIDECAR_UPSTREAM/],
    ['env bypassing a checked prop', { sidecar: { env: { SIDECAR_PUBLIC_PATHS: '/' } } }, /sidecar\.env must not set SIDECAR_PUBLIC_PATHS/],
    ['env overriding the main contract', { main: { env: { MAIN_PORT: '1' } } }, /main\.env must not set MAIN_PORT/],
    ['env with an invalid name', { main: { env: { 'MY-VAR': 'x' } } }, /main\.env has an invalid variable name "MY-VAR"/],
    ['bad quantity', { sidecar: { resources: { cpu: { limit: kplus.Cpu.millis(Number.NaN) } } } }, /sidecar\.resources\.cpu\.limit must be a Kubernetes quantity/],
    ['request above limit', { main: { resources: { memory: { request: Size.gibibytes(1) } } } }, /main\.resources\.memory\.request \(1Gi\) must not exceed main\.resources\.memory\.limit \(256Mi\)/],
    ['CPU request above limit', { main: { resources: { cpu: { request: kplus.Cpu.units(1) } } } }, /main\.resources\.cpu\.request \(1\) must not exceed main\.resources\.cpu\.limit \(500m\)/],
    ['token Secret name invalid', { tokenSecretName: 'Tokens!' }, /tokenSecretName must be a DNS subdomain/],
    ['bad pull policy', { imagePullPolicy: 'Sometimes' as never }, /imagePullPolicy must be one of Always, IfNotPresent, Never/],
    ['bad log level', { logLevel: 'loud' as never }, /logLevel must be one of/],
    ['label overriding the selector', { labels: { 'app.kubernetes.io/instance': 'other' } }, /labels must not set "app\.kubernetes\.io\/instance"/],
    ['invalid label value', { labels: { team: 'a b' } }, /labels has an invalid value for label "team"/],
  ];

  test.each(cases)('%s', (_title, props, message) => {
    expect(() => synthApp(props)).toThrow(message);
  });

  test('an id that yields no valid name fails naming the prop', () => {
    expect(() => synthApp({}, '123')).toThrow(/name \(derived from the construct id\) must be a DNS label/);
  });

  test('messages are one line', () => {
    for (const [, props] of cases) {
      let message = '';
      try {
        synthApp(props);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/^SidecarApp test\/api: [^\n]+$/);
    }
  });
});

describe('composes with cdk8s-plus', () => {
  test('an Ingress routes to the sidecar port of app.service; app.deployment takes more containers and serves as a peer', () => {
    const chart = Testing.chart();
    const app = new SidecarApp(chart, 'api');
    new kplus.Ingress(chart, 'ingress', { defaultBackend: kplus.IngressBackend.fromService(app.service, { port: app.sidecarServicePort }) });
    app.deployment.addContainer({ name: 'log-shipper', image: 'acme/shipper:2.0', securityContext: { user: 10001, group: 10001 } });
    // Another workload's policy admitting traffic from this app's pods, the cdk8s-plus way.
    const db = new kplus.Deployment(chart, 'db', { containers: [{ image: 'acme/db:1.0', securityContext: { user: 10001 } }] });
    new kplus.NetworkPolicy(chart, 'db-policy', { selector: db, ingress: { rules: [{ peer: app.deployment, ports: [kplus.NetworkPolicyPort.tcp(5432)] }] } });
    const manifests = Testing.synth(chart);

    const ingress = only(manifests, 'Ingress');
    expect(ingress.spec.defaultBackend.service).toEqual({ name: 'api', port: { number: app.sidecarServicePort } });
    const deployment = manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === 'api');
    expect(deployment.spec.template.spec.containers.map((c: Manifest) => c.name)).toEqual(['main', 'sidecar', 'log-shipper']);
    const dbPolicy = manifests.find((m) => m.kind === 'NetworkPolicy' && m.spec.ingress?.[0]?.ports?.[0]?.port === 5432);
    const peerLabels = dbPolicy.spec.ingress[0].from[0].podSelector.matchLabels;
    expect(selects(peerLabels, deployment.spec.template.metadata.labels)).toBe(true);
  });
});

describe('native-sidecar mode', () => {
  const manifests = synthApp({ sidecarMode: SidecarMode.NATIVE });
  const spec = podSpec(manifests);

  test('the sidecar is an init container with restartPolicy Always and a startup probe; main stays a container', () => {
    expect(spec.containers.map((c: Manifest) => c.name)).toEqual([CONTAINER_NAMES.main]);
    expect(spec.initContainers.map((c: Manifest) => [c.name, c.restartPolicy])).toEqual([[CONTAINER_NAMES.sidecar, 'Always']]);
    const sidecar = spec.initContainers[0];
    // Main starts once the sidecar serves; readiness could not gate it, since it needs main.
    expect(sidecar.startupProbe.httpGet).toEqual({ path: HEALTH_PATHS.sidecarLiveness, port: DEFAULT_PORTS.admin, scheme: 'HTTP' });
    expect(sidecar.readinessProbe.httpGet.path).toBe(HEALTH_PATHS.sidecarReadiness);
    expect(sidecar.volumeMounts).toEqual([{ name: 'tokens', mountPath: TOKENS_MOUNT_PATH, readOnly: true }]);
    expect(sidecar.securityContext).toEqual(spec.containers[0].securityContext);
  });

  test("main's preStop is the sidecar's drain hook; the timings follow the native budget", () => {
    const main = spec.containers[0];
    const sidecar = spec.initContainers[0];
    expect(main.lifecycle.preStop).toEqual({ httpGet: { path: '/drain?ms=5000', port: DEFAULT_PORTS.admin, scheme: 'HTTP' } });
    expect(sidecar.lifecycle).toBeUndefined();
    expect(envOf(main)[MAIN_ENV.drainDelayMs]).toBe('5000');
    expect(envOf(sidecar)[SIDECAR_ENV.drainDelayMs]).toBe('5000');
    expect(envOf(sidecar)[SIDECAR_ENV.drainHook]).toBe('true');
    expect(envOf(sidecar)[SIDECAR_ENV.shutdownTimeoutMs]).toBe(String((spec.terminationGracePeriodSeconds - 2) * 1000));
  });

  test('preStopDelaySeconds is refused, and the grace period must hold the native budget', () => {
    expect(() => synthApp({ sidecarMode: SidecarMode.NATIVE, preStopDelaySeconds: 5 })).toThrow(/preStopDelaySeconds must be left unset with sidecarMode NATIVE/);
    expect(() => synthApp({ sidecarMode: SidecarMode.NATIVE, terminationGracePeriodSeconds: 29 })).toThrow(/terminationGracePeriodSeconds \(29\) must be at least 30/);
    expect(() => synthApp({ sidecarMode: SidecarMode.NATIVE, terminationGracePeriodSeconds: 30 })).not.toThrow();
  });

  test('every object validates against the Kubernetes schema', () => {
    for (const m of manifests) expect(() => validateAgainstSchema(m)).not.toThrow();
  });
});

describe('JWT issuers', () => {
  const ISSUERS: JwtIssuerOptions[] = [
    { name: 'corp', issuer: 'https://idp.corp.test', audiences: ['api'], jwksConfigMap: 'corp-jwks' },
    { name: 'partner.v2', issuer: 'https://partner.test/', audiences: ['api', 'orders'], jwksConfigMap: 'partner-keys', jwksConfigMapKey: 'keys.json', algorithms: ['ES256'], maxLifetimeSeconds: 3600 },
    { name: 'cloud', issuer: 'https://cloud.test', audiences: ['api'], jwksUrl: 'https://cloud.test/.well-known/jwks.json', refreshSeconds: 600, clockSkewSeconds: 5, subjectClaim: 'email' },
    { name: 'private', issuer: 'https://private.test', audiences: ['api'], jwksUrl: 'https://idp.private.test/jwks', caConfigMap: 'private-ca' },
  ];
  const EXPECTED_SPECS = [
    { name: 'corp', issuer: 'https://idp.corp.test', audiences: ['api'], jwksFile: `${JWKS_MOUNT_ROOT}/corp/jwks.json` },
    { name: 'partner.v2', issuer: 'https://partner.test/', audiences: ['api', 'orders'], jwksFile: `${JWKS_MOUNT_ROOT}/partner.v2/keys.json`, algorithms: ['ES256'], maxLifetimeSeconds: 3600 },
    { name: 'cloud', issuer: 'https://cloud.test', audiences: ['api'], jwksUrl: 'https://cloud.test/.well-known/jwks.json', refreshSeconds: 600, clockSkewSeconds: 5, subjectClaim: 'email' },
    { name: 'private', issuer: 'https://private.test', audiences: ['api'], jwksUrl: 'https://idp.private.test/jwks', caFile: `${JWKS_MOUNT_ROOT}/private/ca.crt` },
  ];
  const sidecarOf = (manifests: Manifest[]): Manifest => [...podSpec(manifests).containers, ...(podSpec(manifests).initContainers ?? [])].find((c: Manifest) => c.name === CONTAINER_NAMES.sidecar);

  test('SIDECAR_JWT_ISSUERS decodes, with the contract parser, to exactly the issuers given with their mount paths', () => {
    const env = envOf(container(synthApp({ jwtIssuers: ISSUERS }), CONTAINER_NAMES.sidecar));
    const parsed = parseJwtIssuers(env[SIDECAR_ENV.jwtIssuers]);
    if (!parsed.ok) throw new Error(parsed.problem);
    const expected = parseJwtIssuers(JSON.stringify(EXPECTED_SPECS));
    if (!expected.ok) throw new Error(expected.problem);
    expect(parsed.value).toEqual(expected.value);
    expect(JSON.parse(env[SIDECAR_ENV.jwtIssuers])).toEqual(EXPECTED_SPECS);
  });

  test('unset without issuers, and with an empty list', () => {
    for (const props of [{}, { jwtIssuers: [] }]) {
      const manifests = synthApp(props);
      expect(envOf(container(manifests, CONTAINER_NAMES.sidecar))).not.toHaveProperty(SIDECAR_ENV.jwtIssuers);
      expect(podSpec(manifests).volumes.map((v: Manifest) => v.name)).toEqual(['tokens']);
    }
  });

  test("each ConfigMap is a read-only directory mount (no subPath) in the sidecar only, at its issuer's directory", () => {
    for (const mode of [SidecarMode.CONTAINER, SidecarMode.NATIVE]) {
      const manifests = synthApp({ jwtIssuers: ISSUERS, sidecarMode: mode });
      const spec = podSpec(manifests);
      const configMapVolumes = spec.volumes.filter((v: Manifest) => v.configMap !== undefined);
      expect(configMapVolumes.map((v: Manifest) => v.configMap)).toEqual([
        { name: 'corp-jwks', defaultMode: 0o444, optional: false },
        { name: 'partner-keys', defaultMode: 0o444, optional: false },
        { name: 'private-ca', defaultMode: 0o444, optional: false },
      ]);
      const byVolume = Object.fromEntries(configMapVolumes.map((v: Manifest) => [v.name, v.configMap.name]));
      const sidecar = sidecarOf(manifests);
      const jwksMounts = sidecar.volumeMounts.filter((m: Manifest) => m.name in byVolume);
      expect(jwksMounts.map((m: Manifest) => [byVolume[m.name], m.mountPath])).toEqual([
        ['corp-jwks', `${JWKS_MOUNT_ROOT}/corp`],
        ['partner-keys', `${JWKS_MOUNT_ROOT}/partner.v2`],
        ['private-ca', `${JWKS_MOUNT_ROOT}/private`],
      ]);
      for (const m of jwksMounts) {
        expect(m.readOnly).toBe(true);
        expect(m).not.toHaveProperty('subPath');
      }
      // Every file the env names lies in a mounted directory.
      for (const spec of JSON.parse(envOf(sidecar)[SIDECAR_ENV.jwtIssuers])) {
        for (const file of [spec.jwksFile, spec.caFile].filter((f) => f !== undefined)) {
          expect(jwksMounts.some((m: Manifest) => path.posix.dirname(file) === m.mountPath)).toBe(true);
        }
      }
      const main = container(manifests, CONTAINER_NAMES.main);
      expect((main.volumeMounts ?? []).filter((m: Manifest) => m.name in byVolume)).toEqual([]);
    }
  });

  const ok: JwtIssuerOptions = { name: 'idp', issuer: 'https://idp.test', audiences: ['api'], jwksConfigMap: 'idp-jwks' };
  const { jwksConfigMap: _omit, ...noKeys } = ok;
  const refused: Array<[string, JwtIssuerOptions[], RegExp]> = [
    ['an http: jwksUrl', [{ ...noKeys, jwksUrl: 'http://idp.test/jwks' }], /^SidecarApp test\/api: jwtIssuers\[0\] jwksUrl must be an https: URL/],
    ['both key sources', [{ ...ok, jwksUrl: 'https://idp.test/jwks' }], /^SidecarApp test\/api: jwtIssuers\[0\] must have exactly one of jwksConfigMap, jwksUrl and hmacSecret/],
    ['a key set and an HMAC secret', [{ ...ok, hmacSecret: 'shared' }], /^SidecarApp test\/api: jwtIssuers\[0\] must have exactly one of jwksConfigMap, jwksUrl and hmacSecret/],
    ['neither key source', [noKeys], /^SidecarApp test\/api: jwtIssuers\[0\] must have exactly one of jwksConfigMap, jwksUrl and hmacSecret/],
    ['an asymmetric alg with hmacSecret', [{ ...noKeys, hmacSecret: 'shared', algorithms: ['RS256'] }], /^SidecarApp test\/api: jwtIssuers\[0\] algorithms must not list "RS256": an issuer with hmacSecretFile/],
    ['an hmacSecretKey without hmacSecret', [{ ...ok, hmacSecretKey: 'k' }], /^SidecarApp test\/api: jwtIssuers\[0\]\.hmacSecretKey goes with hmacSecret/],
    ['a reserved issuer name', [{ ...ok, name: 'kubernetes' }], /^SidecarApp test\/api: jwtIssuers\[0\] name "kubernetes" is reserved/],
    ['forwardClaims sharing a header', [{ ...ok, forwardClaims: ['org_unit', 'org-unit'] }], /^SidecarApp test\/api: jwtIssuers\[0\] forwardClaims "org_unit" and "org-unit" would share one header/],
    ['a tokenTypes entry that is no media type', [{ ...ok, tokenTypes: ['at jwt'] }], /^SidecarApp test\/api: jwtIssuers\[0\] tokenTypes entries must be "" \(no typ\) or a media type/],
    ['tokenTypes naming one type twice', [{ ...ok, tokenTypes: ['at+jwt', 'application/AT+JWT'] }], /^SidecarApp test\/api: jwtIssuers\[0\] tokenTypes "at\+jwt" and "application\/AT\+JWT" are the same type/],
    ['a name used twice', [ok, { ...ok, issuer: 'https://other.test' }], /^SidecarApp test\/api: jwtIssuers\[1\] name "idp" is used twice/],
    ['an issuer listed twice', [ok, { ...ok, name: 'other' }], /^SidecarApp test\/api: jwtIssuers\[1\] issuer "https:\/\/idp.test" is listed twice/],
    ['alg none', [{ ...ok, algorithms: ['none'] }], /^SidecarApp test\/api: jwtIssuers\[0\] algorithms must not list "none"/],
    ['alg HS256', [{ ...ok, algorithms: ['HS256'] }], /^SidecarApp test\/api: jwtIssuers\[0\] algorithms must not list "HS256"/],
    ['a bad name', [{ ...ok, name: '../etc' }], /^SidecarApp test\/api: jwtIssuers\[0\] name must be 1-63 characters/],
    ['a name with a slash', [{ ...ok, name: 'a/b' }], /^SidecarApp test\/api: jwtIssuers\[0\] name must be/],
    ['no audience', [{ ...ok, audiences: [] }], /^SidecarApp test\/api: jwtIssuers\[0\] audiences must be a list/],
    ['a ConfigMap name that is no DNS subdomain', [{ ...ok, jwksConfigMap: 'Keys_1' }], /^SidecarApp test\/api: jwtIssuers\[0\]\.jwksConfigMap must be a DNS subdomain/],
    ['a bad ConfigMap key', [{ ...ok, jwksConfigMapKey: 'a/b' }], /^SidecarApp test\/api: jwtIssuers\[0\]\.jwksConfigMapKey must be a ConfigMap key/],
    ['a key without a ConfigMap', [{ ...noKeys, jwksUrl: 'https://idp.test/jwks', jwksConfigMapKey: 'k' }], /^SidecarApp test\/api: jwtIssuers\[0\]\.jwksConfigMapKey goes with jwksConfigMap/],
    ['a CA ConfigMap without jwksUrl', [{ ...ok, caConfigMap: 'ca' }], /^SidecarApp test\/api: jwtIssuers\[0\]\.caConfigMap goes with jwksUrl/],
    ['refreshSeconds without jwksUrl', [{ ...ok, refreshSeconds: 60 }], /^SidecarApp test\/api: jwtIssuers\[0\] refreshSeconds goes with jwksUrl/],
    ['refreshSeconds below 30', [{ ...noKeys, jwksUrl: 'https://idp.test/jwks', refreshSeconds: 29 }], /^SidecarApp test\/api: jwtIssuers\[0\] refreshSeconds must be an integer in 30\.\./],
    ['too many issuers', Array.from({ length: 17 }, (_, i) => ({ ...ok, name: `idp${i}`, issuer: `https://idp${i}.test` })), /^SidecarApp test\/api: jwtIssuers lists 17 issuers; at most 16/],
  ];
  test.each(refused)('refused at synth, naming the prop: %s', (_what, jwtIssuers, message) => {
    expect(() => synthApp({ jwtIssuers })).toThrow(message);
  });

  test('an HMAC issuer: its Secret mounted read-only into the sidecar only (mode 0440), HS256 by default, forwardClaims in the env', () => {
    const manifests = synthApp({ jwtIssuers: [{ ...noKeys, name: 'internal', hmacSecret: 'internal-hs256', forwardClaims: ['groups'] }] });
    const volume = podSpec(manifests).volumes.find((v: Manifest) => v.secret?.secretName === 'internal-hs256');
    expect(volume.secret).toEqual({ secretName: 'internal-hs256', defaultMode: 0o440, optional: false });
    const sidecar = sidecarOf(manifests);
    expect(sidecar.volumeMounts).toContainEqual({ name: volume.name, mountPath: `${JWKS_MOUNT_ROOT}/internal`, readOnly: true });
    expect((container(manifests, CONTAINER_NAMES.main).volumeMounts ?? []).map((m: Manifest) => m.name)).not.toContain(volume.name);
    expect(JSON.parse(envOf(sidecar)[SIDECAR_ENV.jwtIssuers])).toEqual([
      { name: 'internal', issuer: 'https://idp.test', audiences: ['api'], hmacSecretFile: `${JWKS_MOUNT_ROOT}/internal/secret`, forwardClaims: ['groups'] },
    ]);
  });

  test('tokenTypes goes into SIDECAR_JWT_ISSUERS as given; left out, the sidecar applies its default', () => {
    const strict = JSON.parse(envOf(sidecarOf(synthApp({ jwtIssuers: [{ ...ok, tokenTypes: ['at+jwt'] }] })))[SIDECAR_ENV.jwtIssuers]);
    expect(strict[0].tokenTypes).toEqual(['at+jwt']);
    const plain = JSON.parse(envOf(sidecarOf(synthApp({ jwtIssuers: [ok] })))[SIDECAR_ENV.jwtIssuers]);
    expect(plain[0]).not.toHaveProperty('tokenTypes');
  });

  test('SIDECAR_JWT_ISSUERS cannot be set through sidecar.env', () => {
    expect(() => synthApp({ sidecar: { env: { [SIDECAR_ENV.jwtIssuers]: '[]' } } })).toThrow(/sidecar\.env must not set SIDECAR_JWT_ISSUERS/);
  });

  test('every object validates against the Kubernetes schema, in both sidecar modes', () => {
    const manifests = [...synthApp({ jwtIssuers: ISSUERS }), ...synthApp({ jwtIssuers: ISSUERS, sidecarMode: SidecarMode.NATIVE })];
    for (const m of manifests) expect(() => validateAgainstSchema(m)).not.toThrow();
  });
});
