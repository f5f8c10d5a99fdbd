/**
 * Any main image (issue 19 §1), in the manifest: main's command, probes, env values, identity,
 * writable paths, mounts, the pod's pull secret and annotations; what follows from the image being
 * ours or not (the contract's MAIN_* env, the default probes, the sidecar's upstream check, main's
 * preStop); and the errors of these props. The pods run in test/pod-foreign-main.test.ts and
 * test/consumer.test.ts; the plugin's view of the weakenings in test/validation.test.ts.
 */
import { Chart, Duration, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import {
  CONTAINER_NAMES,
  DEFAULT_TIMING_BUDGET,
  DEFAULT_TIMING_INPUTS,
  HEALTH_PATHS,
  MAIN_ENV,
  RUN_AS,
  SHUTDOWN_MARGIN_SECONDS,
  SIDECAR_ENV,
  UPSTREAM_CHECKS,
  encodePreStopWait,
  mainClosedWaitMs,
} from '../lib/src/contract';
import { MainProbeKind, SidecarApp } from '../lib/src';
import type { MainContainerOptions, SidecarAppProps } from '../lib/src';
import { WAIVE_ANNOTATION } from '../lib/src/validation';
import { SidecarAppPropError } from '../lib/src/validate';

/* eslint-disable @typescript-eslint/no-explicit-any */

const NGINX = 'nginxinc/nginx-unprivileged:1.27.3';
const DISTROLESS = 'gcr.io/acme/orders:2.4.1';

function synth(props: SidecarAppProps, extend: (chart: Chart, app: SidecarApp) => void = () => undefined) {
  const chart = new Chart(Testing.app(), 'shop', { namespace: 'shop' });
  const app = new SidecarApp(chart, 'orders', props);
  extend(chart, app);
  const manifests = Testing.synth(chart);
  const deployment = manifests.find((m: any) => m.kind === 'Deployment');
  const pod = deployment.spec.template;
  const all = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])];
  const main = all.find((c: any) => c.name === CONTAINER_NAMES.main);
  const sidecar = all.find((c: any) => c.name === CONTAINER_NAMES.sidecar);
  const envOf = (c: any): Record<string, any> => Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value ?? e.valueFrom]));
  return { manifests, deployment, pod, main, sidecar, mainEnv: envOf(main), sidecarEnv: envOf(sidecar) };
}

function refusal(make: () => unknown): string {
  try {
    make();
  } catch (err) {
    if (err instanceof SidecarAppPropError) return err.message.split('\n')[0];
    throw err;
  }
  throw new Error('expected a SidecarAppPropError');
}

const main = (options: MainContainerOptions): SidecarAppProps => ({ main: options });

describe('our image keeps what it had', () => {
  it('gets the MAIN_* env, HTTP probes of the health path, an http upstream check and a plain preStop wait', () => {
    const { main: c, mainEnv, sidecarEnv } = synth({});
    expect(Object.keys(mainEnv).filter((n) => n.startsWith('MAIN_')).sort()).toEqual(Object.values(MAIN_ENV).filter((n) => n in mainEnv).sort());
    expect(mainEnv[MAIN_ENV.port]).toBe('8080');
    expect(c.readinessProbe.httpGet).toMatchObject({ path: HEALTH_PATHS.main, port: 8080 });
    expect(c.livenessProbe.httpGet).toMatchObject({ path: HEALTH_PATHS.main, port: 8080 });
    expect(sidecarEnv[SIDECAR_ENV.upstreamHealthPath]).toBe(HEALTH_PATHS.main);
    expect(sidecarEnv[SIDECAR_ENV.upstreamCheck]).toBeUndefined();
    expect(c.lifecycle.preStop.httpGet.path).toBe(encodePreStopWait(DEFAULT_TIMING_INPUTS.preStopDelaySeconds * 1000));
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: RUN_AS.user, runAsGroup: RUN_AS.group, readOnlyRootFilesystem: true });
  });

  it('is recognised under any registry and tag', () => {
    const { mainEnv } = synth(main({ image: 'registry.acme.test:5000/team/sidecar-app-main:9.9.9' }));
    expect(mainEnv[MAIN_ENV.port]).toBe('8080');
  });
});

describe('an image that is not ours', () => {
  it('gets no MAIN_* env, TCP probes of its port, a tcp upstream check, and a preStop that waits until the sidecar has closed', () => {
    const { main: c, mainEnv, sidecarEnv } = synth(main({ image: NGINX, port: 8090 }));
    expect(Object.keys(mainEnv).filter((n) => n.startsWith('MAIN_'))).toEqual([]);
    expect(c.readinessProbe).toMatchObject({ tcpSocket: { port: 8090 }, periodSeconds: 5, failureThreshold: 2 });
    expect(c.livenessProbe).toMatchObject({ tcpSocket: { port: 8090 }, periodSeconds: 10, failureThreshold: 3 });
    expect(sidecarEnv[SIDECAR_ENV.upstreamCheck]).toBe(UPSTREAM_CHECKS.tcp);
    expect(sidecarEnv[SIDECAR_ENV.upstreamHealthPath]).toBeUndefined();
    // Up to the sidecar's own shutdown bound (the grace period less its margin), so the close answers first even with a long stream.
    const waitMs = mainClosedWaitMs(DEFAULT_TIMING_INPUTS.preStopDelaySeconds, DEFAULT_TIMING_BUDGET);
    expect(waitMs).toBe((DEFAULT_TIMING_INPUTS.terminationGracePeriodSeconds - SHUTDOWN_MARGIN_SECONDS) * 1000);
    expect(c.lifecycle.preStop.httpGet.path).toBe(encodePreStopWait(waitMs, { untilSidecarClosed: true }));
  });

  it('contractEnv decides, not the image name: true gives any image the MAIN_* env, the health-path probes and our plain preStop; false takes them from ours', () => {
    // Our apps/main retagged under another name (as main.ts's image override does) keeps what it reads.
    const opted = synth(main({ image: 'registry.example.com/team/main:2.0.1', contractEnv: true }));
    expect(opted.mainEnv[MAIN_ENV.drainDelayMs]).toBeDefined();
    expect(opted.main.readinessProbe.httpGet).toMatchObject({ path: HEALTH_PATHS.main, port: 8080 });
    expect(opted.sidecarEnv[SIDECAR_ENV.upstreamHealthPath]).toBe(HEALTH_PATHS.main);
    expect(opted.main.lifecycle.preStop.httpGet.path).toBe(encodePreStopWait(DEFAULT_TIMING_INPUTS.preStopDelaySeconds * 1000));
    const ours = synth(main({ contractEnv: false }));
    expect(ours.mainEnv[MAIN_ENV.port]).toBeUndefined();
    expect(ours.main.readinessProbe.tcpSocket).toEqual({ port: 8080 });
    expect(ours.main.lifecycle.preStop.httpGet.path).toContain('until=');
  });

  it('an HTTP readiness probe of the main port is what the sidecar asks too; one on another port or an exec makes it tcp; none, no check', () => {
    const http = synth(main({ image: NGINX, readiness: kplus.Probe.fromHttpGet('/nginx-health', { port: 8080 }) }));
    expect(http.main.readinessProbe.httpGet).toMatchObject({ path: '/nginx-health', port: 8080 });
    expect(http.sidecarEnv[SIDECAR_ENV.upstreamHealthPath]).toBe('/nginx-health');
    expect(http.sidecarEnv[SIDECAR_ENV.upstreamCheck]).toBeUndefined();
    // The liveness default stays TCP: only readiness was given.
    expect(http.main.livenessProbe.tcpSocket).toEqual({ port: 8080 });

    const elsewhere = synth(main({ image: NGINX, readiness: kplus.Probe.fromHttpGet('/status', { port: 9000 }) }));
    expect(elsewhere.sidecarEnv[SIDECAR_ENV.upstreamCheck]).toBe(UPSTREAM_CHECKS.tcp);
    const exec = synth(main({ image: DISTROLESS, readiness: kplus.Probe.fromCommand(['/healthcheck']) }));
    expect(exec.main.readinessProbe.exec).toEqual({ command: ['/healthcheck'] });
    expect(exec.sidecarEnv[SIDECAR_ENV.upstreamCheck]).toBe(UPSTREAM_CHECKS.tcp);

    const none = synth(main({ image: DISTROLESS, withoutProbes: [MainProbeKind.READINESS, MainProbeKind.LIVENESS] }));
    expect(none.main.readinessProbe).toBeUndefined();
    expect(none.main.livenessProbe).toBeUndefined();
    expect(none.sidecarEnv[SIDECAR_ENV.upstreamCheck]).toBe(UPSTREAM_CHECKS.none);
  });

  it('takes command, args, env values of any source, a startup probe, user and group, writable paths and mounts', () => {
    const { main: c, pod, manifests } = synth(
      main({
        image: DISTROLESS,
        command: ['/app/server'],
        args: ['--listen', ':8080'],
        envVariables: { DB_PASSWORD: kplus.EnvValue.fromSecretValue({ secret: kplus.Secret.fromSecretName(new Chart(Testing.app(), 'x'), 's', 'db'), key: 'password' }) },
        env: { MODE: 'prod' },
        startup: kplus.Probe.fromTcpSocket({ port: 8080, periodSeconds: Duration.seconds(2), failureThreshold: 30 }),
        user: 65532,
        group: 65532,
        writablePaths: ['/tmp', '/var/cache/app'],
      }),
      (chart, app) => {
        const config = new kplus.ConfigMap(chart, 'settings', { data: { 'app.yaml': 'a: 1' } });
        app.mainContainer.mount('/etc/app', kplus.Volume.fromConfigMap(chart, 'settings-volume', config));
      },
    );
    expect(c.command).toEqual(['/app/server']);
    expect(c.args).toEqual(['--listen', ':8080']);
    expect(c.env).toEqual(expect.arrayContaining([{ name: 'MODE', value: 'prod' }, { name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }]));
    expect(c.startupProbe).toMatchObject({ tcpSocket: { port: 8080 }, periodSeconds: 2, failureThreshold: 30 });
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, readOnlyRootFilesystem: true });
    const mounts = Object.fromEntries(c.volumeMounts.map((m: any) => [m.mountPath, m.name]));
    expect(mounts).toMatchObject({ '/tmp': 'main-writable-0', '/var/cache/app': 'main-writable-1' });
    expect(pod.spec.volumes.filter((v: any) => v.emptyDir !== undefined).map((v: any) => v.name)).toEqual(['main-writable-0', 'main-writable-1']);
    expect(pod.spec.volumes.find((v: any) => v.name === 'main-writable-0').emptyDir.sizeLimit).toBe('256Mi');
    expect(mounts['/etc/app']).toBeDefined();
    new Deployment(manifests.find((m: any) => m.kind === 'Deployment')).validate();
  });

  it('volumeMounts mounts the volumes it names, and the pod gets them', () => {
    const scope = new Chart(Testing.app(), 'volumes');
    const secret = kplus.Volume.fromSecret(scope, 'tls', kplus.Secret.fromSecretName(scope, 'tls-secret', 'orders-tls'));
    const { main: c, pod } = synth(main({ image: NGINX, volumeMounts: [{ volume: secret, path: '/etc/tls', readOnly: true }] }));
    expect(c.volumeMounts).toEqual(expect.arrayContaining([expect.objectContaining({ mountPath: '/etc/tls', readOnly: true })]));
    expect(pod.spec.volumes.some((v: any) => v.secret?.secretName === 'orders-tls')).toBe(true);
  });
});

describe('weakenings are asked for by name, waived on the Deployment and warned about', () => {
  let warnings: string[];
  let spy: jest.SpyInstance;
  beforeEach(() => {
    warnings = [];
    spy = jest.spyOn(console, 'warn').mockImplementation((line: string) => void warnings.push(line));
  });
  afterEach(() => spy.mockRestore());

  it('allowRoot runs main as root: runAsNonRoot false, user and group 0, main-root waived', () => {
    const { main: c, sidecar, deployment } = synth(main({ image: 'nginx:1.27.3', allowRoot: true }));
    expect(c.securityContext).toMatchObject({ runAsNonRoot: false, runAsUser: 0, runAsGroup: 0 });
    // The sidecar keeps the contract's user.
    expect(sidecar.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: RUN_AS.user });
    expect(deployment.metadata.annotations[WAIVE_ANNOTATION]).toBe('main-root');
    expect(warnings).toEqual(['SidecarApp shop/orders: main.allowRoot is set; the main container runs with user 0 (root).']);
  });

  it('writableRootFilesystem makes the root writable and waives main-writable-root; with allowUnauthenticatedMainPort both are listed', () => {
    const { main: c, deployment } = synth({ main: { image: NGINX, writableRootFilesystem: true }, allowUnauthenticatedMainPort: true });
    expect(c.securityContext.readOnlyRootFilesystem).toBe(false);
    expect(deployment.metadata.annotations[WAIVE_ANNOTATION]).toBe('network-policy,main-writable-root');
    expect(warnings).toHaveLength(2);
  });

  it('the hardened default waives nothing', () => {
    const { deployment } = synth(main({ image: NGINX, user: 101, group: 101 }));
    expect(deployment.metadata.annotations?.[WAIVE_ANNOTATION]).toBeUndefined();
    expect(warnings).toEqual([]);
  });
});

describe('the pod', () => {
  it('takes a pull secret and annotations; scheduling is cdk8s-plus\u2019s own', () => {
    const { pod } = synth({ podAnnotations: { 'prometheus.io/scrape': 'true' }, dockerRegistryAuth: kplus.Secret.fromSecretName(new Chart(Testing.app(), 'y'), 'pull', 'registry-creds') }, (_chart, app) =>
      app.deployment.scheduling.attract(kplus.Node.labeled(kplus.NodeLabelQuery.is('pool', 'apps'))),
    );
    expect(pod.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true' });
    expect(pod.spec.imagePullSecrets).toEqual([{ name: 'registry-creds' }]);
    expect(pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions).toEqual([{ key: 'pool', operator: 'In', values: ['apps'] }]);
  });
});

describe('errors name the construct path and the prop', () => {
  it.each<[string, SidecarAppProps, RegExp]>([
    ['a root user without allowRoot', main({ image: NGINX, user: 0 }), /^SidecarApp shop\/orders: main\.user is 0 \(root\): set main\.allowRoot/],
    ['a root group without allowRoot', main({ image: NGINX, group: 0 }), /^SidecarApp shop\/orders: main\.group is 0 \(root\)/],
    ['a negative user', main({ image: NGINX, user: -1 }), /^SidecarApp shop\/orders: main\.user /],
    ['a relative writable path', main({ image: NGINX, writablePaths: ['tmp'] }), /^SidecarApp shop\/orders: main\.writablePaths\[0\] must be an absolute path, got "tmp"/],
    ['a writable path with ..', main({ image: NGINX, writablePaths: ['/var/../etc'] }), /^SidecarApp shop\/orders: main\.writablePaths\[0\] must be a normalized directory/],
    ['a writable path twice', main({ image: NGINX, writablePaths: ['/tmp', '/tmp'] }), /^SidecarApp shop\/orders: main\.writablePaths\[1\] \("\/tmp"\) is listed twice/],
    ['an empty command', main({ image: NGINX, command: [] }), /^SidecarApp shop\/orders: main\.command must not be empty/],
    ['an owned name in envVariables', main({ envVariables: { MAIN_PORT: kplus.EnvValue.fromValue('1') } }), /^SidecarApp shop\/orders: main\.envVariables must not set MAIN_PORT/],
    ['a name in both env and envVariables', main({ image: NGINX, env: { A: '1' }, envVariables: { A: kplus.EnvValue.fromValue('2') } }), /^SidecarApp shop\/orders: main\.envVariables sets A, which main\.env sets too/],
    ['a probe both set and left out', main({ image: NGINX, readiness: kplus.Probe.fromTcpSocket({ port: 8080 }), withoutProbes: [MainProbeKind.READINESS] }), /^SidecarApp shop\/orders: main\.withoutProbes leaves out the readiness probe that main\.readiness sets/],
    ['an unknown probe kind', main({ image: NGINX, withoutProbes: ['startup' as MainProbeKind] }), /^SidecarApp shop\/orders: main\.withoutProbes\[0\] must be one of readiness, liveness, got "startup"/],
    ['a bad annotation key', { podAnnotations: { 'bad key': 'x' } }, /^SidecarApp shop\/orders: podAnnotations has an invalid annotation key "bad key"/],
    // cdk8s-plus gives a port-less probe port 80 (main declares its port in `ports`): the kubelet and the sidecar would probe different ports.
    ['an HTTP probe without a port', main({ image: NGINX, readiness: kplus.Probe.fromHttpGet('/health') }), /^SidecarApp shop\/orders: main\.readiness names no port: cdk8s-plus would probe port 80/],
    ['a TCP startup probe without a port', main({ image: NGINX, startup: kplus.Probe.fromTcpSocket() }), /^SidecarApp shop\/orders: main\.startup names no port/],
    ['a readiness path with a query', main({ image: NGINX, readiness: kplus.Probe.fromHttpGet('/health?deep=1', { port: 8080 }) }), /^SidecarApp shop\/orders: main\.readiness path must start with '\/' and contain no '\?'/],
    ['a hostPath mount', { main: { image: NGINX, volumeMounts: [{ volume: kplus.Volume.fromHostPath(new Chart(Testing.app(), 'h'), 'node', 'node', { path: '/' }), path: '/host' }] } }, /^SidecarApp shop\/orders: main\.volumeMounts\[0\] mounts a hostPath volume \("node"\)/],
    ['the tokens Secret mounted into main', { main: { image: NGINX, volumeMounts: [{ volume: kplus.Volume.fromSecret(new Chart(Testing.app(), 't'), 'v', kplus.Secret.fromSecretName(new Chart(Testing.app(), 'u'), 's', 'orders-tokens'), { name: 'stolen' }), path: '/stolen' }] } }, /^SidecarApp shop\/orders: main\.volumeMounts\[0\] mounts the Secret "orders-tokens", which holds credentials/],
    ['a volume named like SidecarApp\u2019s own', { main: { image: NGINX, volumeMounts: [{ volume: kplus.Volume.fromEmptyDir(new Chart(Testing.app(), 'e'), 'v', 'tokens'), path: '/data' }] } }, /^SidecarApp shop\/orders: main\.volumeMounts\[0\] uses the volume name "tokens"/],
    ['a mount on a writable path', { main: { image: NGINX, writablePaths: ['/data'], volumeMounts: [{ volume: kplus.Volume.fromEmptyDir(new Chart(Testing.app(), 'f'), 'v', 'data'), path: '/data' }] } }, /^SidecarApp shop\/orders: main\.volumeMounts\[0\]\.path \("\/data"\) is also a writable path/],
    ['a relative mount path', { main: { image: NGINX, volumeMounts: [{ volume: kplus.Volume.fromEmptyDir(new Chart(Testing.app(), 'g'), 'v', 'data'), path: 'data' }] } }, /^SidecarApp shop\/orders: main\.volumeMounts\[0\]\.path must be an absolute path/],
    ['a string for a boolean (JavaScript)', main({ image: NGINX, contractEnv: 'false' as unknown as boolean }), /^SidecarApp shop\/orders: main\.contractEnv must be true or false, got "false" \(a string\)/],
    ['an AppArmor annotation', { podAnnotations: { 'container.apparmor.security.beta.kubernetes.io/main': 'unconfined' } }, /^SidecarApp shop\/orders: podAnnotations must not set "container\.apparmor\.security\.beta\.kubernetes\.io\/main"/],
    ['the waive annotation on the pod', { podAnnotations: { [WAIVE_ANNOTATION]: 'main-root' } }, /^SidecarApp shop\/orders: podAnnotations must not set "cdk8s-sidecar-app\/waive"/],
  ])('%s', (_name, props, expected) => {
    expect(refusal(() => synth(props))).toMatch(expected);
  });
});
