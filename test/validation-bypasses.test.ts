/**
 * The validation plugin's rules for the main-port bypasses a chart can build with ordinary cdk8s-plus
 * calls (undeclared-ingress), for objects written twice (duplicate-name) and for a SidecarApp
 * connected to itself (self-call): synthesized as `cdk8s synth` does with validations (manifests
 * plus the construct metadata), checked in process with cdk8s-cli's own ValidationContext.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ApiObject, App, AppProps, Chart, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import type * as CliPlugins from 'cdk8s-cli/lib/plugins';
import type { ValidationReportJson } from 'cdk8s-cli/lib/plugins/validation';
import { DEFAULT_PORTS } from '../lib/src/contract';
import { SidecarApp, SidecarAppProps } from '../lib/src';
import { RULE_IDS, SidecarAppValidation, WAIVE_ANNOTATION, check, toKubeObject } from '../lib/src/validation';
import type { KubeObject } from '../lib/src/validation';

const { ValidationContext } = require('cdk8s-cli/plugins') as typeof CliPlugins;

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** Synthesize every App into one outdir (as two Apps of one project writing dist/ would) and run the plugin. */
async function validate(...makers: Array<(props: AppProps) => App>): Promise<{ report: ValidationReportJson; objects: KubeObject[] }> {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'validation-bypasses-'));
  outdirs.push(outdir);
  const metadata: Record<string, { path: string }> = {};
  for (const make of makers) {
    make({ outdir, recordConstructMetadata: true }).synth();
    const recorded = JSON.parse(fs.readFileSync(path.join(outdir, 'construct-metadata.json'), 'utf8'));
    for (const [name, entry] of Object.entries<{ path: string }>(recorded.resources)) metadata[name] = { path: entry.path };
  }
  const manifests = fs.readdirSync(outdir).filter((f) => f.endsWith('.k8s.yaml')).sort().map((f) => path.join(outdir, f));
  const context = new ValidationContext(manifests, 'cdk8s-sidecar-app', '0.1.0', metadata);
  await new SidecarAppValidation().validate(context);
  const objects = manifests.flatMap((m) => context.parseManifest(m).map((d, i) => toKubeObject(m, i, d)).filter((o): o is KubeObject => o !== undefined));
  return { report: context.report.toJson(), objects };
}

/** A chart "shop" (namespace "shop") with a SidecarApp "api", changed by `change`. */
function shop(props: SidecarAppProps = {}, change: (chart: Chart, app: SidecarApp) => void = () => undefined, chartId = 'shop') {
  return (appProps: AppProps) => {
    const app = new App(appProps);
    const chart = new Chart(app, chartId, { namespace: 'shop' });
    change(chart, new SidecarApp(chart, 'api', props));
    return app;
  };
}

function locations(report: ValidationReportJson): string[] {
  return report.violations.flatMap((v) => v.violatingConstructs.flatMap((c) => c.locations.map((l) => `${v.ruleName}: ${l}`)));
}

const tcp = (port: number) => kplus.NetworkPolicyPort.tcp(port);
const { main: MAIN, sidecar: SIDECAR, admin: ADMIN } = DEFAULT_PORTS;

test('the new rules are registered: ids, and a recommendation and a fix each', async () => {
  expect(RULE_IDS).toEqual(expect.arrayContaining(['undeclared-ingress', 'duplicate-name', 'self-call']));
  const { report } = await validate(shop({}, (chart, app) => app.deployment.connections.allowFrom(kplus.Pods.all(chart, 'all'), { isolation: kplus.PodConnectionsIsolation.POD })));
  const violation = report.violations.find((v) => v.ruleName === 'undeclared-ingress');
  expect(violation?.recommendation).toMatch(/connections\.allowFrom/);
  expect(violation?.fix).toMatch(/allowMainFrom/);
});

describe('undeclared-ingress: a NetworkPolicy that opens the main or the admin port to a source SidecarApp did not declare', () => {
  test('app.deployment.connections.allowFrom(peer) opens every container port: main and admin are reported, the sidecar port is not', async () => {
    const { report } = await validate(shop({}, (chart, app) => app.deployment.connections.allowFrom(kplus.Pods.select(chart, 'web', { labels: { role: 'web' } }))));
    const found = locations(report);
    expect(found).toEqual([
      expect.stringMatching(/^undeclared-ingress: \[shop\/api\/deployment\/AllowIngress[^\]]*\] spec\.ingress\[0\]\.from\[0\]: admits \{"podSelector":\{"matchLabels":\{"role":"web"\}\}\} to main port 8080 of SidecarApp Deployment shop\/api, a source mainPortAllowedFrom \/ allowMainFrom did not declare: it skips authentication$/),
      expect.stringMatching(/^undeclared-ingress: \[shop\/api\/deployment\/AllowIngress[^\]]*\] spec\.ingress\[0\]\.from\[0\]: admits .* to admin port 9091 of SidecarApp Deployment shop\/api, a source adminPortAllowedFrom \/ allowAdminFrom did not declare/),
    ]);
    expect(report.summary.status).toBe('failure');
  });

  test('another workload\u2019s connections.allowTo(app.deployment) writes an ingress policy on the app\u2019s pods for all its ports: reported', async () => {
    const { report } = await validate(
      shop({}, (chart, app) => {
        const web = new kplus.Deployment(chart, 'web', { containers: [{ image: 'acme/web:1.0', portNumber: 3000 }] });
        web.connections.allowTo(app.deployment);
      }),
    );
    expect(locations(report)).toEqual([
      expect.stringMatching(/^undeclared-ingress: \[shop\/web\/AllowIngressshop[^\]]*\] spec\.ingress\[0\]\.from\[0\]: admits .* to main port 8080 of SidecarApp Deployment shop\/api, /),
      expect.stringMatching(/^undeclared-ingress: \[shop\/web\/AllowIngressshop[^\]]*\] spec\.ingress\[0\]\.from\[0\]: admits .* to admin port 9091 of SidecarApp Deployment shop\/api, /),
    ]);
  });

  test('allowFrom a peer already admitted to the admin port (allowAdminFrom) reports only the main port; limited to the sidecar port it passes', async () => {
    const prometheus = (chart: Chart) => kplus.Pods.select(chart, 'prometheus', { labels: { app: 'prometheus' } });
    const both = await validate(
      shop({}, (chart, app) => {
        app.allowAdminFrom(prometheus(chart));
        app.deployment.connections.allowFrom(prometheus(new Chart(chart, 'peers')), { isolation: kplus.PodConnectionsIsolation.POD });
      }),
    );
    expect(locations(both.report)).toEqual([expect.stringMatching(/^undeclared-ingress: .* to main port 8080 of SidecarApp Deployment shop\/api, /)]);
    const sidecarOnly = await validate(shop({}, (chart, app) => app.deployment.connections.allowFrom(prometheus(chart), { isolation: kplus.PodConnectionsIsolation.POD, ports: [tcp(SIDECAR)] })));
    expect(locations(sidecarOnly.report)).toEqual([]);
  });

  test.each([
    ['podSelector: {} (every pod of the namespace)', { podSelector: {} }, [MAIN], 'every pod of the namespace \\(podSelector: \\{\\}\\)', 'main'],
    ['namespaceSelector: {} (every namespace) to the admin port', { namespaceSelector: {} }, [ADMIN], 'every pod of every namespace \\(namespaceSelector: \\{\\}\\)', 'admin'],
    ['0.0.0.0/0 to the admin port', { ipBlock: { cidr: '0.0.0.0/0' } }, [ADMIN], 'the IP block 0\\.0\\.0\\.0\\/0 \\(every address\\)', 'admin'],
    ['a pod selector wider than the declared one', { podSelector: { matchLabels: { team: 'batch' } } }, [MAIN], '\\{"podSelector":\\{"matchLabels":\\{"team":"batch"\\}\\}\\}', 'main'],
  ])('a hand-written policy admitting %s is reported', async (_what, peer, ports, text, kind) => {
    const { report } = await validate(
      shop({}, (chart, app) => {
        // Declared: pods labelled team=batch AND role=worker, on the main port.
        app.allowMainFrom(kplus.Pods.select(chart, 'batch', { labels: { team: 'batch', role: 'worker' } }));
        new k8s.KubeNetworkPolicy(chart, 'extra', {
          metadata: { name: 'extra' },
          spec: { podSelector: { matchLabels: { ...app.selectorLabels } }, ingress: [{ from: [peer], ports: ports.map((p) => ({ port: k8s.IntOrString.fromNumber(p) })) }] },
        });
      }),
    );
    expect(locations(report)).toEqual([new RegExp(`^undeclared-ingress: \\[shop/extra\\] spec\\.ingress\\[0\\]\\.from\\[0\\]: admits ${text} to ${kind} port ${ports[0]} of SidecarApp Deployment shop/api, `)].map((r) => expect.stringMatching(r)));
  });

  test('a rule without ports covers every port; a named port (main-http) counts; a narrower peer than the declared one passes', async () => {
    const { report } = await validate(
      shop({}, (chart, app) => {
        app.allowMainFrom(kplus.Pods.select(chart, 'batch', { labels: { team: 'batch' } }));
        const selector = { matchLabels: { ...app.selectorLabels } };
        new k8s.KubeNetworkPolicy(chart, 'no-ports', { metadata: { name: 'no-ports' }, spec: { podSelector: selector, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'x' } } }] }] } });
        new k8s.KubeNetworkPolicy(chart, 'by-name', {
          metadata: { name: 'by-name' },
          spec: { podSelector: selector, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'y' } } }], ports: [{ port: k8s.IntOrString.fromString('main-http') }] }] },
        });
        new k8s.KubeNetworkPolicy(chart, 'narrower', {
          metadata: { name: 'narrower' },
          spec: { podSelector: selector, ingress: [{ from: [{ podSelector: { matchLabels: { team: 'batch', tier: 'nightly' } } }], ports: [{ port: k8s.IntOrString.fromNumber(MAIN) }] }] },
        });
      }),
    );
    expect(locations(report)).toEqual([
      expect.stringMatching(/^undeclared-ingress: \[shop\/no-ports\] spec\.ingress\[0\]\.from\[0\]: .* to main port 8080 .*\(the rule has no ports: every port\)/),
      expect.stringMatching(/^undeclared-ingress: \[shop\/no-ports\] spec\.ingress\[0\]\.from\[0\]: .* to admin port 9091 /),
      expect.stringMatching(/^undeclared-ingress: \[shop\/by-name\] spec\.ingress\[0\]\.from\[0\]: .* to main port 8080 /),
    ]);
  });

  test('a kplus NetworkPolicy opening the admin port to all pods is reported; waived on the policy it passes', async () => {
    const open = (waive: boolean) =>
      shop({}, (chart, app) => {
        new kplus.NetworkPolicy(chart, 'scrape', {
          metadata: waive ? { annotations: { [WAIVE_ANNOTATION]: 'undeclared-ingress' } } : {},
          selector: app.deployment,
          ingress: { rules: [{ peer: kplus.Pods.all(chart, 'everyone'), ports: [tcp(ADMIN)] }] },
        });
      });
    expect(locations((await validate(open(false))).report)).toEqual([expect.stringMatching(/^undeclared-ingress: \[shop\/scrape\/Resource\] spec\.ingress\[0\]\.from\[0\]: admits every pod of the namespace \(podSelector: \{\}\) to admin port 9091 /)]);
    expect(locations((await validate(open(true))).report)).toEqual([]);
  });

  test('the restricted sidecar port, allowCallsFrom and the declared peers pass', async () => {
    const { report } = await validate(
      shop({ sidecarPortAllowedFrom: [] }, (chart, app) => {
        const ingress = kplus.Namespaces.select(chart, 'ingress-nginx', { names: ['ingress-nginx'] });
        app.allowSidecarFrom(ingress);
        app.allowAdminFrom(kplus.Pods.select(chart, 'prometheus', { labels: { app: 'prometheus' } }));
        const caller = new SidecarApp(chart, 'web', { main: { port: 3000 }, sidecar: { port: 3001 }, adminPort: 3002 });
        app.allowCallsFrom(caller);
      }),
    );
    expect(locations(report)).toEqual([]);
  });
});

describe('duplicate-name', () => {
  test('two SidecarApps named "api" in namespace shop, from two Apps writing one dist/, are reported for each object written twice', async () => {
    const { report, objects } = await validate(shop({}, undefined, 'one'), shop({}, undefined, 'two'));
    expect(objects.filter((o) => o.kind === 'Deployment' && o.name === 'api')).toHaveLength(2);
    const found = locations(report).filter((l) => l.startsWith('duplicate-name'));
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^duplicate-name: \[.*\] metadata\.name: Deployment shop\/api is written 2 times \(in one\.k8s\.yaml, two\.k8s\.yaml\), like an object of SidecarApp Deployment shop\/api: kubectl apply keeps only the last$/),
        expect.stringMatching(/^duplicate-name: \[.*\] metadata\.name: NetworkPolicy shop\/api-open-ports is written 2 times /),
      ]),
    );
    // Deployment, Service, ServiceAccount, NetworkPolicy and <name>-open-ports: each once.
    expect(found).toHaveLength(5);
  });

  test('a plain kplus Deployment named like a SidecarApp in its namespace is reported; in another namespace it is not', async () => {
    const legacy = (namespace?: string) =>
      shop({}, (chart) => {
        new kplus.Deployment(chart, 'legacy', { metadata: { name: 'api', namespace }, containers: [{ image: 'acme/legacy:1.0', securityContext: { ensureNonRoot: false } }] });
      });
    expect(locations((await validate(legacy())).report).filter((l) => l.startsWith('duplicate-name'))).toEqual([
      expect.stringMatching(/^duplicate-name: .* metadata\.name: Deployment shop\/api is written 2 times \(in shop\.k8s\.yaml\)/),
    ]);
    expect(locations((await validate(legacy('other'))).report).filter((l) => l.startsWith('duplicate-name'))).toEqual([]);
  });
});

describe('self-call', () => {
  test('a main container holding a token for its own sidecar\u2019s audience is reported', async () => {
    const selfToken = shop({ serviceAccountAuth: {} }, (_chart, app) => {
      ApiObject.of(app.deployment).addJsonPatch(
        JsonPatch.add('/spec/template/spec/volumes/-', { name: 'calls-api', projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'api' } }] } }),
        JsonPatch.add('/spec/template/spec/containers/0/volumeMounts', [{ name: 'calls-api', mountPath: '/var/run/secrets/sidecar-app/calls/api', readOnly: true }]),
      );
    });
    const { report, objects } = await validate(selfToken);
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const volumes = (deployment.raw as any).spec.template.spec.volumes as Array<{ name: string }>;
    const index = volumes.findIndex((v) => v.name === 'calls-api');
    expect(locations(report)).toEqual([
      `self-call: [shop/api/deployment/Resource] spec.template.spec.volumes[${index}].projected.sources[0].serviceAccountToken.audience: the main container of SidecarApp Deployment shop/api holds a token for "api", an audience its own sidecar accepts: the app is connected to itself`,
    ]);
  });

  test('a caller\u2019s token for another app is no self-call', async () => {
    const { report } = await validate(
      shop({}, (chart, app) => {
        const caller = new SidecarApp(chart, 'web', { main: { port: 3000 }, sidecar: { port: 3001 }, adminPort: 3002, serviceAccountAuth: {} });
        app.allowCallsFrom(caller);
      }),
    );
    expect(locations(report)).toEqual([]);
  });
});

test('check() works on the objects alone (no metadata) for the new rules', async () => {
  const { objects } = await validate(shop({}, (chart, app) => app.deployment.connections.allowFrom(kplus.Pods.all(chart, 'all'), { isolation: kplus.PodConnectionsIsolation.POD })));
  expect(check(objects).findings.map((f) => f.rule)).toEqual(['undeclared-ingress', 'undeclared-ingress']);
});
