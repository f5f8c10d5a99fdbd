/**
 * SidecarAppValidation, the cdk8s validation plugin shipped as `cdk8s-sidecar-app/validation`:
 * in-process with cdk8s-cli's own ValidationContext (and the construct metadata cdk8s records, as
 * under `cdk8s synth`), then twice through the real CLI (a bypass fails, the default chart passes).
 */
import { execFile } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { ApiObject, App, AppProps, Chart, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
// Types from the file, the runtime through the package's exports map (which TypeScript's "node" resolution ignores).
import type * as CliPlugins from 'cdk8s-cli/lib/plugins';
import type { ValidationReportJson } from 'cdk8s-cli/lib/plugins/validation';
import { DEFAULT_PORTS } from '../lib/src/contract';
import { SidecarApp, SidecarAppProps, SidecarMode } from '../lib/src';
import { ConstructMetadata, ConstructPaths, RULE_IDS, SidecarAppValidation, WAIVE_ANNOTATION, check, findToken, toKubeObject } from '../lib/src/validation';
import type { KubeObject } from '../lib/src/validation';
import { CHART_NAME, MODE_CONTEXT, SidecarAppChart, buildApp } from '../main';
import { TOOL_TEST_TIMEOUT_MS, TOOL_TIMEOUT_MS } from '../tools/waits';

const { ValidationContext } = require('cdk8s-cli/plugins') as typeof CliPlugins;

const REPO_ROOT = path.resolve(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'validation');
const CDK8S = path.join(REPO_ROOT, 'node_modules', '.bin', 'cdk8s');
const exec = promisify(execFile);

// Compile-time: the plugin is a cdk8s-cli Validation.
const asCliPlugin: CliPlugins.Validation = new SidecarAppValidation();
void asCliPlugin;

/** Whatever the test runs in, the charts use the default images and mode, and cdk8s records paths only when asked. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('SIDECAR_APP_') || key === 'CDK8S_RECORD_CONSTRUCT_METADATA' || key === 'CDK8S_OUTDIR') delete env[key];
  return env;
}

interface Synthesized {
  readonly objects: KubeObject[];
  readonly metadata: ConstructMetadata;
  readonly manifests: string[];
  /** `Kind namespace/name` -> the ApiObject's real construct path. */
  readonly truth: Map<string, string>;
}

const key = (kind: string, namespace: string, name: string) => `${kind} ${namespace}/${name}`;

/** Synthesize as `cdk8s synth` does with validations: manifests plus construct-metadata.json. */
function synthesize(make: (props: AppProps) => App): Synthesized {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'validation-'));
  const app = make({ outdir, recordConstructMetadata: true });
  app.synth();
  const truth = new Map<string, string>();
  for (const c of app.node.findAll()) {
    if (!ApiObject.isApiObject(c)) continue;
    const json = c.toJson();
    truth.set(key(json.kind, json.metadata?.namespace ?? '', json.metadata?.name ?? ''), c.node.path);
  }
  const manifests = fs.readdirSync(outdir).filter((f) => f.endsWith('.k8s.yaml')).sort().map((f) => path.join(outdir, f));
  const recorded = JSON.parse(fs.readFileSync(path.join(outdir, 'construct-metadata.json'), 'utf8'));
  const metadata: Record<string, { path: string }> = {};
  for (const [name, entry] of Object.entries<{ path: string }>(recorded.resources)) metadata[name] = { path: entry.path };
  const context = new ValidationContext(manifests, 'cdk8s-sidecar-app', '0.1.0', metadata);
  const objects = manifests.flatMap((m) => context.parseManifest(m).map((d, i) => toKubeObject(m, i, d)).filter((o): o is KubeObject => o !== undefined));
  return { objects, metadata, manifests, truth };
}

interface Outcome {
  readonly report: ValidationReportJson;
  readonly text: string;
  readonly synthesized: Synthesized;
}

async function validate(make: (props: AppProps) => App, properties = {}): Promise<Outcome> {
  const synthesized = synthesize(make);
  const context = new ValidationContext(synthesized.manifests, 'cdk8s-sidecar-app', '0.1.0', synthesized.metadata);
  await new SidecarAppValidation(properties).validate(context);
  return { report: context.report.toJson(), text: context.report.toString(), synthesized };
}

/** The default chart of main.ts, changed by `change`. */
function mainChart(change: (chart: SidecarAppChart) => void = () => undefined, context: Record<string, unknown> = {}) {
  return (props: AppProps) => {
    const app = buildApp({ ...props, env: {}, context });
    change(app.node.findChild(CHART_NAME) as SidecarAppChart);
    return app;
  };
}

/** A chart "shop" with a SidecarApp "api" (built from lib/src), changed by `change`. */
function shop(props: SidecarAppProps = {}, change: (chart: Chart, app: SidecarApp) => void = () => undefined) {
  return (appProps: AppProps) => {
    const app = new App(appProps);
    const chart = new Chart(app, 'shop');
    change(chart, new SidecarApp(chart, 'api', props));
    return app;
  };
}

/** Every location of every violation, as `rule: location`. */
function locations(outcome: Outcome): string[] {
  return outcome.report.violations.flatMap((v) => v.violatingConstructs.flatMap((c) => c.locations.map((l) => `${v.ruleName}: ${l}`)));
}

function rules(outcome: Outcome): string[] {
  return outcome.report.violations.map((v) => v.ruleName);
}

function expectPass(outcome: Outcome): void {
  expect(locations(outcome)).toEqual([]);
  expect(outcome.report.summary.status).toBe('success');
}

const patch = (o: kplus.Deployment | kplus.Service, ...patches: JsonPatch[]) => ApiObject.of(o).addJsonPatch(...patches);
const POD = '/spec/template/spec';
/** A literal that looks like what `openssl rand -base64 32` prints. */
const TOKEN = 'q3Jk8ZxV2mLp9TnR4sWc7YbH1uEo6GdAfKi0NjMtBvQ=';

describe('the default chart', () => {
  test('passes, in both sidecar modes', async () => {
    for (const mode of [SidecarMode.CONTAINER, SidecarMode.NATIVE]) {
      const outcome = await validate(mainChart(undefined, { [MODE_CONTEXT]: mode }));
      expectPass(outcome);
      expect(outcome.report.summary.metadata).toMatchObject({ SidecarApps: 'sidecar-app/sidecar-app', 'Construct paths': 'recorded by cdk8s' });
    }
  });

  test('with every prop set passes: no contract value looks like a token', async () => {
    const outcome = await validate(
      shop({
        replicas: 3,
        publicPaths: ['/healthz', '/v1/public/status'],
        forwardAuthorization: true,
        labels: { team: 'payments' },
        main: { image: `registry.example.com/shop/api@sha256:${'0123456789abcdef'.repeat(4)}`, env: { SPRING_PROFILES_ACTIVE: 'production', CONFIG_SHA: 'a'.repeat(8) + '0123456789abcdef0123456789abcdef' } },
        sidecar: { image: 'registry.example.com/shop/sidecar:1.2.3', args: ['--no-warnings'] },
      }),
    );
    expectPass(outcome);
  });
});

describe('routes around the sidecar', () => {
  test('a raw Service to the main port fails, naming its construct path', async () => {
    const outcome = await validate(
      mainChart((chart) => {
        new k8s.KubeService(chart, 'bypass', {
          metadata: { name: 'bypass' },
          spec: { selector: { ...chart.app.selectorLabels }, ports: [{ port: 80, targetPort: k8s.IntOrString.fromNumber(DEFAULT_PORTS.main) }] },
        });
      }),
    );
    expect(outcome.report.summary.status).toBe('failure');
    expect(locations(outcome)).toEqual([
      'service-to-main-port: [sidecar-app/bypass] spec.ports[0]: targetPort 8080 is the main container port of SidecarApp Deployment sidecar-app (main ports 8080 ("main-http")): port 80 skips the sidecar',
    ]);
    // The CLI's own "Construct Path" (looked up by name) is right too: the name is unique.
    expect(outcome.report.violations[0].violatingConstructs[0]).toMatchObject({ resourceName: 'bypass', constructPath: 'sidecar-app/bypass' });
    expect(outcome.text).toContain('Construct Path: sidecar-app/bypass');
  });

  test('by port name, or with targetPort defaulting to port, too; a Service to the sidecar port passes', async () => {
    const outcome = await validate(
      shop({}, (chart, app) => {
        const selector = { ...app.selectorLabels };
        new k8s.KubeService(chart, 'by-name', { metadata: { name: 'by-name' }, spec: { selector, ports: [{ port: 80, targetPort: k8s.IntOrString.fromString('main-http') }] } });
        new k8s.KubeService(chart, 'implicit', { metadata: { name: 'implicit' }, spec: { selector, ports: [{ port: DEFAULT_PORTS.main }] } });
        new k8s.KubeService(chart, 'fine', { metadata: { name: 'fine' }, spec: { selector, ports: [{ port: 80, targetPort: k8s.IntOrString.fromNumber(DEFAULT_PORTS.sidecar) }] } });
      }),
    );
    expect(locations(outcome)).toEqual([
      expect.stringMatching(/^service-to-main-port: \[shop\/by-name\] spec\.ports\[0\]: targetPort "main-http" is the main container port/),
      expect.stringMatching(/^service-to-main-port: \[shop\/implicit\] spec\.ports\[0\]: targetPort 8080 is the main container port/),
    ]);
  });

  test("the SidecarApp's own Service may keep its main port only as a ClusterIP Service", async () => {
    const outcome = await validate(shop({}, (_chart, app) => patch(app.service, JsonPatch.replace('/spec/type', 'NodePort'))));
    expect(locations(outcome)).toEqual([
      'service-to-main-port: [shop/api/service/Resource] spec.ports[0] ("main-container-port"): the own Service of SidecarApp Deployment api publishes its main port outside the cluster (type NodePort); it must stay ClusterIP',
    ]);
    // Shared name (Deployment, Service and NetworkPolicy are all "api"): Kind/name, so the CLI shows no other object's path.
    expect(outcome.report.violations[0].violatingConstructs[0]).toMatchObject({ resourceName: 'Service/api', constructPath: undefined });
  });

  test('an Ingress to the main port of app.service fails; one to its sidecar port passes', async () => {
    const outcome = await validate(
      shop({}, (chart, app) => {
        new kplus.Ingress(chart, 'ingress', { defaultBackend: kplus.IngressBackend.fromService(app.service, { port: app.mainServicePort }) });
        new kplus.Ingress(chart, 'good', { defaultBackend: kplus.IngressBackend.fromService(app.service, { port: app.sidecarServicePort }) });
      }),
    );
    expect(locations(outcome)).toEqual([
      'route-to-main-port: [shop/ingress/Resource] spec.defaultBackend.service: routes to port 8080 of Service api, which targets the main container port 8080 of SidecarApp Deployment api: requests skip the sidecar',
    ]);
  });

  test('an Ingress rule by port name, and a Gateway API HTTPRoute (backend and mirror), fail too', async () => {
    const outcome = await validate(
      shop({}, (chart, app) => {
        new k8s.KubeIngress(chart, 'named', {
          metadata: { name: 'named' },
          spec: { rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: app.service.name, port: { name: app.mainPortName } } } }] } }] },
        });
        new ApiObject(chart, 'route', {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'HTTPRoute',
          metadata: { name: 'route' },
          spec: {
            parentRefs: [{ name: 'gateway' }],
            rules: [
              { backendRefs: [{ name: app.service.name, port: app.mainServicePort }] },
              { backendRefs: [{ name: app.service.name, port: app.sidecarServicePort }], filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: app.service.name, port: app.mainServicePort } } }] },
            ],
          },
        });
      }),
    );
    expect(locations(outcome)).toEqual([
      expect.stringMatching(/^route-to-main-port: \[shop\/named\] spec\.rules\[0\]\.http\.paths\[0\]\.backend\.service: routes to port "main-container-port" of Service api/),
      expect.stringMatching(/^route-to-main-port: \[shop\/route\] spec\.rules\[0\]\.backendRefs\[0\]: routes to port 8080 of Service api/),
      expect.stringMatching(/^route-to-main-port: \[shop\/route\] spec\.rules\[1\]\.filters\[0\]\.requestMirror\.backendRef: routes to port 8080/),
    ]);
  });
});

describe('a weakened pod', () => {
  test('readOnlyRootFilesystem patched to false fails, naming the Deployment construct path (main-writable-root for main, pod-hardening for the sidecar)', async () => {
    const outcome = await validate(
      mainChart((chart) =>
        ApiObject.of(chart.app.deployment).addJsonPatch(
          JsonPatch.replace('/spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem', false),
          JsonPatch.replace('/spec/template/spec/containers/1/securityContext/readOnlyRootFilesystem', false),
        ),
      ),
    );
    expect(locations(outcome)).toEqual([
      'pod-hardening: [sidecar-app/sidecar-app/deployment/Resource] spec.template.spec.containers[1].securityContext.readOnlyRootFilesystem: is false, must be true',
      'main-writable-root: [sidecar-app/sidecar-app/deployment/Resource] spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem: is false, must be true',
    ]);
    // cdk8s recorded "sidecar-app" as the NetworkPolicy's path; the plugin rebuilds the Deployment's.
    expect(outcome.synthesized.metadata['sidecar-app'].path).toBe('sidecar-app/sidecar-app/network-policy/Resource');
  });

  const c = (i: number, field: string) => `${POD}/containers/${i}/securityContext/${field}`;
  test.each<[string, JsonPatch[], string[]]>([
    ['hostNetwork', [JsonPatch.replace(`${POD}/hostNetwork`, true)], ['spec.template.spec.hostNetwork: is true, must not be']],
    // The L1 Deployment renders patched JSON through its typed props: a patch must use their names (hostPid, not hostPID).
    ['hostPID and hostIPC', [JsonPatch.add(`${POD}/hostPid`, true), JsonPatch.add(`${POD}/hostIpc`, true)], ['spec.template.spec.hostPID: is true', 'spec.template.spec.hostIPC: is true']],
    ['the service account token', [JsonPatch.replace(`${POD}/automountServiceAccountToken`, true)], ['spec.template.spec.automountServiceAccountToken: is true, must be false']],
    ['root', [JsonPatch.replace(c(1, 'runAsUser'), 0), JsonPatch.replace(c(1, 'runAsNonRoot'), false)], ['containers[1].securityContext.runAsNonRoot: is false, must be true', 'containers[1].securityContext.runAsUser: is 0, must be 10001']],
    ['another group for the sidecar', [JsonPatch.replace(c(1, 'runAsGroup'), 4242)], ['containers[1].securityContext.runAsGroup: is 4242, must be 10001']],
    ['privileged', [JsonPatch.replace(c(1, 'privileged'), true)], ['containers[1].securityContext.privileged: is true, must be false']],
    ['privilege escalation', [JsonPatch.remove(c(0, 'allowPrivilegeEscalation'))], ['containers[0].securityContext.allowPrivilegeEscalation: is unset, must be false']],
    ['capabilities', [JsonPatch.replace(c(0, 'capabilities/drop'), []), JsonPatch.add(c(1, 'capabilities/add'), ['NET_ADMIN'])], ['containers[0].securityContext.capabilities.drop: is [], must include "ALL"', 'containers[1].securityContext.capabilities.add: is ["NET_ADMIN"], must be empty']],
    ['seccomp', [JsonPatch.replace(c(1, 'seccompProfile/type'), 'Unconfined')], ['containers[1].securityContext.seccompProfile.type: is "Unconfined", must be "RuntimeDefault"']],
    ['seccomp and non-root removed at both levels', [JsonPatch.remove(c(1, 'seccompProfile')), JsonPatch.remove(`${POD}/securityContext/seccompProfile`), JsonPatch.remove(c(1, 'runAsNonRoot')), JsonPatch.remove(`${POD}/securityContext/runAsNonRoot`)], ['containers[1].securityContext.runAsNonRoot: is unset, must be true', 'containers[1].securityContext.seccompProfile: is unset, must be "RuntimeDefault"']],
    ['a hostPort on the main port', [JsonPatch.add(`${POD}/containers/0/ports/0/hostPort`, 8080)], ['containers[0].ports[0].hostPort: is 8080: the node publishes the main port']],
  ])('%s fails', async (_name, patches, expected) => {
    const outcome = await validate(shop({}, (_chart, app) => patch(app.deployment, ...patches)));
    const found = locations(outcome);
    expect(found).toHaveLength(expected.length);
    expected.forEach((fragment, i) => {
      expect(found[i].startsWith('pod-hardening: [shop/api/deployment/Resource] ')).toBe(true);
      expect(found[i]).toContain(fragment);
    });
  });

  test.each<[string, JsonPatch[], string[]]>([
    ['main as root', [JsonPatch.replace(c(0, 'runAsUser'), 0), JsonPatch.replace(c(0, 'runAsNonRoot'), false)], ['containers[0].securityContext.runAsNonRoot: is false, must be true', 'containers[0].securityContext.runAsUser: is 0 (root)']],
    ['main in the root group', [JsonPatch.replace(c(0, 'runAsGroup'), 0)], ['containers[0].securityContext.runAsGroup: is 0 (root)']],
    ['non-root removed from main and the pod', [JsonPatch.remove(c(0, 'runAsNonRoot')), JsonPatch.remove(`${POD}/securityContext/runAsNonRoot`)], ['containers[0].securityContext.runAsNonRoot: is unset, must be true']],
    ['root at pod level, main setting none of its own', [JsonPatch.remove(c(0, 'runAsUser')), JsonPatch.replace(`${POD}/securityContext/runAsUser`, 0)], ['spec.template.spec.securityContext.runAsUser: is 0 (root)']],
  ])('%s fails main-root, and only that rule', async (_name, patches, expected) => {
    const found = locations(await validate(shop({}, (_chart, app) => patch(app.deployment, ...patches))));
    // Removing the pod-level runAsNonRoot leaves the sidecar's own: only main's effective value is gone.
    expect(found).toHaveLength(expected.length);
    expected.forEach((fragment, i) => {
      expect(found[i].startsWith('main-root: [shop/api/deployment/Resource] ')).toBe(true);
      expect(found[i]).toContain(fragment);
    });
  });

  test('main may run as any non-root user and group (an image\u2019s own), the sidecar only as the contract\u2019s', async () => {
    expectPass(await validate(shop({ main: { image: 'nginxinc/nginx-unprivileged:1.27.3', user: 101, group: 101 } })));
  });

  test('the weakenings asked for by prop are waived, each by its own rule; the rest of the hardening still holds', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const props: SidecarAppProps = { main: { image: 'nginx:1.27.3', allowRoot: true, writableRootFilesystem: true } };
      const waived = await validate(shop(props));
      expectPass(waived);
      expect(waived.report.summary.metadata).toMatchObject({ Waived: '4' });
      // The waiver covers main's root and writable root, not a privileged sidecar.
      const escalated = await validate(shop(props, (_chart, app) => patch(app.deployment, JsonPatch.replace(c(1, 'privileged'), true))));
      expect(rules(escalated)).toEqual(['pod-hardening']);
    } finally {
      warn.mockRestore();
    }
  });

  test('a value removed at container level but kept at pod level passes: the effective value counts', async () => {
    expectPass(await validate(shop({}, (_chart, app) => patch(app.deployment, JsonPatch.remove(c(0, 'runAsNonRoot')), JsonPatch.remove(c(1, 'seccompProfile'))))));
  });

  test('native sidecar mode: the sidecar is an init container, checked as such', async () => {
    const outcome = await validate(
      shop({ sidecarMode: SidecarMode.NATIVE }, (_chart, app) => patch(app.deployment, JsonPatch.replace(`${POD}/initContainers/0/securityContext/readOnlyRootFilesystem`, false))),
    );
    expect(locations(outcome)).toEqual(['pod-hardening: [shop/api/deployment/Resource] spec.template.spec.initContainers[0].securityContext.readOnlyRootFilesystem: is false, must be true']);
  });

  test('a container added to the pod is the user\u2019s to harden', async () => {
    expectPass(await validate(shop({}, (_chart, app) => app.deployment.addContainer({ name: 'log-shipper', image: 'acme/shipper:2.0', securityContext: { user: 10001, group: 10001 } }))));
  });
});

describe('NetworkPolicies', () => {
  test('none (networkPolicy: false): SidecarApp waives the rule for its own opt-in; without the waiver it fails on the Deployment', async () => {
    const props: SidecarAppProps = { networkPolicy: false, allowUnauthenticatedMainPort: true };
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const optedIn = await validate(shop(props));
      expectPass(optedIn);
      expect(optedIn.report.summary.metadata).toMatchObject({ Waived: '1' });
      const outcome = await validate(shop(props, (_chart, app) => ApiObject.of(app.deployment).addJsonPatch(JsonPatch.remove('/metadata/annotations'))));
      expect(locations(outcome)).toEqual([
        'network-policy: [shop/api/deployment/Resource] spec.template.metadata.labels: no NetworkPolicy isolates the pods of SidecarApp Deployment api for ingress (SidecarApp creates "api" and "api-open-ports"): every pod in the cluster reaches main port 8080 ("main-http") without the sidecar',
      ]);
      const waived = await validate(shop(props, (_chart, app) => ApiObject.of(app.deployment).metadata.addAnnotation(WAIVE_ANNOTATION, 'network-policy')));
      expectPass(waived);
    } finally {
      warn.mockRestore();
    }
  });

  test('both policies removed after construction fails; the open-ports policy alone still isolates', async () => {
    const removed = await validate(
      shop({}, (_chart, app) => {
        app.node.tryRemoveChild('network-policy');
        app.node.tryRemoveChild('open-ports');
      }),
    );
    expect(rules(removed)).toEqual(['network-policy']);
    expectPass(await validate(shop({}, (_chart, app) => app.node.tryRemoveChild('network-policy'))));
  });

  test('a policy that admits everyone to the main port fails: allowUnauthenticatedMainPort without the waiver SidecarApp adds, or one of the user\u2019s', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      expectPass(await validate(shop({ allowUnauthenticatedMainPort: true })));
      const opened = await validate(shop({ allowUnauthenticatedMainPort: true }, (_chart, app) => ApiObject.of(app.deployment).addJsonPatch(JsonPatch.remove('/metadata/annotations'))));
      expect(locations(opened)).toEqual([expect.stringMatching(/^network-policy: \[shop\/api\/open-ports\] spec\.ingress\[1\]: admits every source to main port 8080/)]);
    } finally {
      warn.mockRestore();
    }
    const userPolicy = await validate(
      shop({}, (chart, app) => {
        new k8s.KubeNetworkPolicy(chart, 'allow-all', { metadata: { name: 'allow-all' }, spec: { podSelector: { matchLabels: { ...app.selectorLabels } }, ingress: [{}] } });
        // Named peers on the main port are the point of mainPortAllowedFrom: fine.
        app.allowMainFrom(kplus.Pods.select(chart, 'batch', { labels: { role: 'batch' } }));
      }),
    );
    expect(locations(userPolicy)).toEqual([
      expect.stringMatching(/^network-policy: \[shop\/allow-all\] spec\.ingress\[0\]: admits every source to main port 8080/),
      // The same rule opens the admin port too (no ports: every port): a source nobody declared.
      expect.stringMatching(/^undeclared-ingress: \[shop\/allow-all\] spec\.ingress\[0\]: admits every source \(the rule has no from\) to admin port 9091 /),
    ]);
  });
});

describe('token-like literals', () => {
  test('in an env value of the SidecarApp fails without printing the token', async () => {
    const outcome = await validate(shop({ main: { env: { UPSTREAM_API_KEY: TOKEN } } }));
    expect(locations(outcome)).toEqual([
      expect.stringMatching(/^token-literal: \[shop\/api\/deployment\/Resource\] spec\.template\.spec\.containers\[0\]\.env\[\d+\]\.value: env UPSTREAM_API_KEY holds a random-looking string "q3Jk…" \(44 characters\)$/),
    ]);
    expect(outcome.text).not.toContain(TOKEN.slice(0, 12));
  });

  test('in annotations and env of any object, not only SidecarApp\u2019s', async () => {
    const jwt = ['eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9', 'eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0', 'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'].join('.');
    const outcome = await validate(
      shop({}, (chart) => {
        const worker = new kplus.Deployment(chart, 'worker', {
          metadata: { annotations: { 'example.com/webhook': `Bearer ${TOKEN}` } },
          containers: [{ image: 'acme/worker:1.0', envVariables: { SESSION: kplus.EnvValue.fromValue(jwt), DB_URL: kplus.EnvValue.fromValue('postgres://app:s3cr3t-Pa55@db:5432/app') } }],
        });
        void worker;
        new k8s.KubeConfigMap(chart, 'config', {
          metadata: { name: 'config', annotations: { 'example.com/image': `acme/app@sha256:${'ab12'.repeat(16)}`, 'example.com/commit': '9fceb02d0ae598e95dc970b74767f19372d61af8' } },
        });
      }),
    );
    const found = locations(outcome);
    expect(found).toHaveLength(3);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^token-literal: \[shop\/worker\/Resource\] metadata\.annotations\["example\.com\/webhook"\]: annotation example\.com\/webhook holds a bearer credential "Bear…"/),
        expect.stringMatching(/^token-literal: \[shop\/worker\/Resource\] spec\.template\.spec\.containers\[0\]\.env\[\d\]\.value: env SESSION holds a JWT "eyJh…"/),
        expect.stringMatching(/^token-literal: \[shop\/worker\/Resource\] spec\.template\.spec\.containers\[0\]\.env\[\d\]\.value: env DB_URL holds a password in a URL/),
      ]),
    );
  });

  const random = (bytes: number, encoding: BufferEncoding) => () => crypto.randomBytes(bytes).toString(encoding);
  const alnum = (length: number) => () => Array.from(crypto.randomBytes(length), (b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[b % 62]).join('');
  test.each<[string, number, () => string]>([
    ['base64, 24 characters', 0.98, random(18, 'base64')],
    ['base64url, 24 characters', 0.98, random(18, 'base64url')],
    ['base64, 44 characters', 0.995, random(32, 'base64')],
    ['hex, 24 characters', 0.995, random(12, 'hex')],
    ['hex, 64 characters', 0.999, random(32, 'hex')],
    ['alphanumeric, 32 characters', 0.98, alnum(32)],
  ])('random %s are found (in at least a share %d of 2000)', (_name, rate, generate) => {
    const n = 2000;
    let found = 0;
    for (let i = 0; i < n; i++) if (findToken(generate()) !== undefined) found++;
    expect(found / n).toBeGreaterThanOrEqual(rate);
  });

  test.each([
    ['an image digest', `registry.example.com/shop/api@sha256:${'0f'.repeat(32)}`, ''],
    ['a commit under a commit key', '9fceb02d0ae598e95dc970b74767f19372d61af8', 'example.com/git-commit'],
    ['a path', '/var/run/secrets/sidecar/tokens', ''],
    ['node flags', '--max-semi-space-size=8 --enable-source-maps', ''],
    ['a loopback URL', 'http://127.0.0.1:8080', ''],
    ['a camelCase name', 'ConfigurationPropertiesBindingPostProcessor', ''],
    ['a SCREAMING_CASE name', 'MAX_CONNECTIONS_PER_HOST_DEFAULT_Value', ''],
    ['a Java class', 'org.apache.kafka.common.serialization.StringSerializer', ''],
    ['a UUID', '550e8400-e29b-41d4-a716-446655440000', ''],
    ['a password reference', 'postgres://app:$(DB_PASSWORD)@db:5432/app', ''],
    ['a cdk8s address label', 'sidecar-app-deployment-c8efc971', ''],
    ['a realm', 'Bearer realm="api"', ''],
  ])('%s is no token', (_name, value, annotation) => {
    expect(findToken(value, annotation)).toBeUndefined();
  });
});

describe('construct paths', () => {
  // [name, app, names whose objects must get an exact path]
  const configurations: Array<[string, (props: AppProps) => App, string[]]> = [
    ['the default chart', mainChart(), ['sidecar-app', 'sidecar-app-open-ports']],
    ['autoscaling, native mode', shop({ autoscaling: { minReplicas: 2, maxReplicas: 5 }, sidecarMode: SidecarMode.NATIVE }), ['api', 'api-open-ports']],
    ['no NetworkPolicies', shop({ networkPolicy: false, allowUnauthenticatedMainPort: true, replicas: 2 }), ['api']],
    [
      'two SidecarApps in one chart, one named like them in a namespaced chart, an Ingress named like one',
      (props) => {
        const app = new App(props);
        const chart = new Chart(app, 'shop');
        const api = new SidecarApp(chart, 'api', { replicas: 2 });
        new SidecarApp(chart, 'web', { name: 'storefront' });
        new kplus.Ingress(chart, 'ingress', { metadata: { name: 'api' }, defaultBackend: kplus.IngressBackend.fromService(api.service, { port: api.sidecarServicePort }) });
        new SidecarApp(new Chart(app, 'ops', { namespace: 'ops' }), 'api');
        return app;
      },
      ['storefront', 'storefront-open-ports'],
    ],
  ];

  test.each(configurations)('every object of %s gets its real path, or is marked ambiguous', (_name, make, exactNames) => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    let s: Synthesized;
    try {
      s = synthesize(make);
    } finally {
      warn.mockRestore();
    }
    const { apps } = check(s.objects);
    const paths = new ConstructPaths(s.objects, apps, s.metadata);
    for (const o of s.objects) {
      const truth = s.truth.get(key(o.kind, o.namespace, o.name));
      expect(truth).toBeDefined();
      const exact = paths.exact(o);
      // Never another object's path.
      if (exact !== undefined) expect(`${describeObject(o)} at ${exact}`).toBe(`${describeObject(o)} at ${truth}`);
      else expect(paths.describe(o)).toMatch(/^one of the \d+ objects named/);
      if (exactNames.includes(o.name)) expect(`${describeObject(o)} at ${exact}`).toBe(`${describeObject(o)} at ${truth}`);
    }
  });

  test('without construct metadata the report says so', async () => {
    const s = synthesize(mainChart((chart) => patch(chart.app.deployment, JsonPatch.replace(`${POD}/hostNetwork`, true))));
    const context = new ValidationContext(s.manifests, 'cdk8s-sidecar-app', '0.1.0', {});
    await new SidecarAppValidation().validate(context);
    const report = context.report.toJson();
    expect(report.summary.metadata).toMatchObject({ 'Construct paths': 'not recorded (set CDK8S_RECORD_CONSTRUCT_METADATA=true)' });
    expect(report.violations[0].violatingConstructs[0].locations[0]).toMatch(/^\[unknown: no construct metadata/);
  });
});

function describeObject(o: KubeObject): string {
  return `${o.kind} ${o.namespace}/${o.name}`;
}

describe('properties', () => {
  test('disabledRules skips a rule; unknown properties and rules are refused', async () => {
    const make = shop({}, (_chart, app) => patch(app.deployment, JsonPatch.replace(`${POD}/hostNetwork`, true)));
    expect(rules(await validate(make))).toEqual(['pod-hardening']);
    const disabled = await validate(make, { disabledRules: ['pod-hardening'] });
    expectPass(disabled);
    expect(disabled.report.summary.metadata).toMatchObject({ 'Disabled rules': 'pod-hardening' });
    expect(() => new SidecarAppValidation({ disabledRule: [] } as never)).toThrow('unknown property "disabledRule"');
    expect(() => new SidecarAppValidation({ disabledRules: ['pod-hardnening'] })).toThrow(`unknown rule "pod-hardnening" in disabledRules (known: ${RULE_IDS.join(', ')})`);
  });
});

describe('cdk8s synth --validate (the real CLI, local plugin, no network)', () => {
  // About 7 s idle (the CLI compiles the app); a busy machine takes several times as long.
  const CLI_TIMEOUT_MS = TOOL_TEST_TIMEOUT_MS;

  async function synth(cwd: string): Promise<{ code: number; output: string }> {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'validation-cli-'));
    const args = ['synth', '--no-check-upgrade', '--validate', '--output', path.join(out, 'dist'), '--plugins-dir', path.join(out, 'plugins')];
    try {
      const { stdout, stderr } = await exec(CDK8S, args, { cwd, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024, timeout: TOOL_TIMEOUT_MS });
      return { code: 0, output: stdout + stderr };
    } catch (e) {
      const error = e as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof error.code === 'number' ? error.code : -1, output: `${error.stdout ?? ''}${error.stderr ?? ''}` };
    }
  }

  test(
    'the bypass fixture fails with the Service\u2019s construct path',
    async () => {
      const { code, output } = await synth(FIXTURE);
      expect(code).toBe(2);
      expect(output).toContain('service-to-main-port (1 occurrences)');
      expect(output).toContain('Construct Path: sidecar-app/bypass');
      expect(output).toContain('[sidecar-app/bypass] spec.ports[0] ("http"): targetPort 8080 is the main container port of SidecarApp Deployment sidecar-app');
      expect(output).toContain('Validation failed');
    },
    CLI_TIMEOUT_MS,
  );

  test(
    'the default chart passes with the repo\u2019s cdk8s.yaml',
    async () => {
      const { code, output } = await synth(REPO_ROOT);
      expect(output).toMatch(/Status\s+│ success/);
      expect(output).toContain('Validations ended succesfully');
      expect(code).toBe(0);
    },
    CLI_TIMEOUT_MS,
  );
});
