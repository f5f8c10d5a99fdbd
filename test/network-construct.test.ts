/**
 * The NetworkPolicies SidecarApp writes, read as a network plugin reads them (they add up): by
 * default the sidecar port is open to every source; with `sidecarPortAllowedFrom` only the named
 * peers, the ones `allowSidecarFrom` adds and the callers `allowCallsFrom` connects reach it, and no
 * rule anywhere admits every source to it. The main and admin ports stay as closed as before.
 */
import { Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { DEFAULT_PORTS } from '../lib/src/contract';
import { SidecarApp, SidecarAppProps } from '../lib/src';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Manifest = any;

const { main: MAIN, sidecar: SIDECAR, admin: ADMIN } = DEFAULT_PORTS;
const IN_SHOP = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } };

/** Chart "shop" with SidecarApp "api"; `props` may be made from the chart (for peers). */
function shop(props: SidecarAppProps | ((chart: Chart) => SidecarAppProps) = {}, change: (chart: Chart, app: SidecarApp) => void = () => undefined): { manifests: Manifest[]; app: SidecarApp } {
  const chart = new Chart(Testing.app(), 'shop', { namespace: 'shop' });
  const app = new SidecarApp(chart, 'api', typeof props === 'function' ? props(chart) : props);
  change(chart, app);
  return { manifests: Testing.synth(chart), app };
}

/** Every ingress rule of every NetworkPolicy, with the ports it names. */
function rules(manifests: Manifest[]): Array<{ policy: string; from?: Manifest[]; ports: number[] }> {
  return manifests
    .filter((m) => m.kind === 'NetworkPolicy')
    .flatMap((p) => (p.spec.ingress ?? []).map((r: Manifest) => ({ policy: p.metadata.name, from: r.from, ports: (r.ports ?? []).map((x: Manifest) => x.port) })));
}

/** The sources admitted to `port`, per policy; `everyone` for a rule without from. */
const admittedTo = (manifests: Manifest[], port: number) =>
  rules(manifests)
    .filter((r) => r.ports.length === 0 || r.ports.includes(port))
    .map((r) => ({ policy: r.policy, from: r.from ?? 'everyone' }));

test('by default the sidecar port is open to every source, and the main and admin ports to no one', () => {
  const { manifests, app } = shop();
  expect(admittedTo(manifests, SIDECAR)).toEqual([{ policy: 'api-open-ports', from: 'everyone' }]);
  expect(admittedTo(manifests, MAIN)).toEqual([]);
  expect(admittedTo(manifests, ADMIN)).toEqual([]);
  expect(app.openPortsPolicy).toBeDefined();
});

describe('sidecarPortAllowedFrom', () => {
  const ingressPeers = (chart: Chart) => [
    kplus.Namespaces.select(chart, 'ingress-nginx', { names: ['ingress-nginx'] }),
    kplus.Pods.select(chart, 'gateway', { labels: { app: 'gateway' } }),
  ];

  test('admits only the named peers to the sidecar port: no open-ports policy, no rule without from', () => {
    const { manifests: out, app: restricted } = shop((chart) => ({ sidecarPortAllowedFrom: ingressPeers(chart) }));
    expect(restricted.openPortsPolicy).toBeUndefined();
    expect(out.filter((m: Manifest) => m.kind === 'NetworkPolicy').map((m: Manifest) => m.metadata.name)).toEqual(['api']);
    expect(admittedTo(out, SIDECAR)).toEqual([
      // kplus names namespaces by the kubernetes.io/metadata.name label, and pods in the chart's namespace.
      { policy: 'api', from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } }, podSelector: {} }] },
      { policy: 'api', from: [{ podSelector: { matchLabels: { app: 'gateway' } } }] },
    ]);
    expect(rules(out).filter((r) => r.from === undefined)).toEqual([]);
    expect(admittedTo(out, MAIN)).toEqual([]);
    expect(admittedTo(out, ADMIN)).toEqual([]);
    // The strict schema of the policy that remains.
    for (const policy of out.filter((m: Manifest) => m.kind === 'NetworkPolicy')) new NetworkPolicy(policy).validate();
  });

  test('an empty list admits no one but the callers allowCallsFrom connects and the peers allowSidecarFrom adds', () => {
    const { manifests } = shop({ sidecarPortAllowedFrom: [] }, (chart, app) => {
      const web = new SidecarApp(chart, 'web', { main: { port: 3000 }, sidecar: { port: 3001 }, adminPort: 3002 });
      app.allowCallsFrom(web);
      app.allowSidecarFrom(kplus.Namespaces.select(chart, 'ingress', { labels: { team: 'edge' } }));
    });
    const apiRules = rules(manifests).filter((r) => r.policy === 'api' || r.policy === 'api-open-ports');
    expect(apiRules.filter((r) => r.ports.includes(SIDECAR))).toEqual([
      { policy: 'api', from: [{ ...IN_SHOP, podSelector: { matchLabels: { 'cdk8s.io/metadata.addr': expect.stringMatching(/^shop-web-deployment-/) } } }], ports: [SIDECAR] },
      { policy: 'api', from: [{ namespaceSelector: { matchLabels: { team: 'edge' } }, podSelector: {} }], ports: [SIDECAR] },
    ]);
    expect(apiRules.filter((r) => r.from === undefined)).toEqual([]);
  });

  test('with allowUnauthenticatedMainPort the open-ports policy opens only the main port', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { manifests, app } = shop({ sidecarPortAllowedFrom: [], allowUnauthenticatedMainPort: true });
      expect(app.openPortsPolicy).toBeDefined();
      expect(rules(manifests).filter((r) => r.policy === 'api-open-ports')).toEqual([{ policy: 'api-open-ports', from: undefined, ports: [MAIN] }]);
    } finally {
      warn.mockRestore();
    }
  });

  test('allowSidecarFrom on an open sidecar port is refused: it would restrict nothing', () => {
    expect(() => shop({}, (chart, app) => app.allowSidecarFrom(kplus.Pods.all(chart, 'all')))).toThrow(
      'SidecarApp shop/api: allowSidecarFrom would restrict nothing: the sidecar port is open to every source; set sidecarPortAllowedFrom (e.g. to []) to admit only the peers you name',
    );
  });

  test('without the NetworkPolicy it is refused at synth', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      expect(() => shop({ networkPolicy: false, allowUnauthenticatedMainPort: true, sidecarPortAllowedFrom: [] })).toThrow(
        'SidecarApp shop/api: sidecarPortAllowedFrom needs the NetworkPolicy that networkPolicy: false turns off',
      );
    } finally {
      warn.mockRestore();
    }
  });
});

test('allowCallsFrom on an open sidecar port adds the caller, which restricts nothing (the docs say so): the open rule stays', () => {
  const { manifests } = shop({}, (chart, app) => app.allowCallsFrom(new SidecarApp(chart, 'web', { main: { port: 3000 }, sidecar: { port: 3001 }, adminPort: 3002 })));
  expect(admittedTo(manifests, SIDECAR).filter((r) => r.policy.startsWith('api'))).toEqual([
    { policy: 'api', from: [{ ...IN_SHOP, podSelector: expect.anything() }] },
    { policy: 'api-open-ports', from: 'everyone' },
  ]);
});
