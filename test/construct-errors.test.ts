/**
 * Construct errors as a user with several SidecarApps reads them: the first (and only) line names
 * the SidecarApp's construct path and the prop the user set, and shows a string as a string; the
 * same for the errors of methods called later and of checks run at synth. Also the two mistakes
 * the construct refuses on its own: two SidecarApps of one name in one namespace, and an app
 * connected to itself.
 */
import { App, Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { RouteEffect, SidecarApp, SidecarAppProps } from '../lib/src';
import { SidecarAppPropError } from '../lib/src/validate';

/** The error `body` throws; it must be a SidecarAppPropError of one line. */
function refusal(body: () => unknown): SidecarAppPropError {
  let caught: unknown;
  try {
    body();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SidecarAppPropError);
  const e = caught as SidecarAppPropError;
  expect(e.message).not.toContain('\n');
  return e;
}

/** A SidecarApp "backend" in chart "shop" (namespace shop). */
function backend(props: SidecarAppProps = {}): { app: App; chart: Chart; backend: SidecarApp } {
  const app = Testing.app();
  const chart = new Chart(app, 'shop', { namespace: 'shop' });
  return { app, chart, backend: new SidecarApp(chart, 'backend', props) };
}

describe('the first line names the construct path and the prop', () => {
  test('main.port on the sidecar\u2019s default port blames main.port (which the user set), not sidecar.port', () => {
    const e = refusal(() => backend({ main: { port: 8081 } }));
    expect(e.message).toBe('SidecarApp shop/backend: main.port (8081) must differ from sidecar.port (its default): two container ports in one pod cannot be the same');
    expect(e.prop).toBe('main.port');
    expect(e.path).toBe('shop/backend');
  });

  test('adminPort on the main default blames adminPort; two ports both set blame the later one', () => {
    expect(refusal(() => backend({ adminPort: 8080 })).message).toBe('SidecarApp shop/backend: adminPort (8080) must differ from main.port (its default): two container ports in one pod cannot be the same');
    expect(refusal(() => backend({ main: { port: 3000 }, sidecar: { port: 3000 } })).message).toBe('SidecarApp shop/backend: sidecar.port (3000) must differ from main.port: two container ports in one pod cannot be the same');
  });

  test('a Service port on the other\u2019s default blames the one set', () => {
    expect(refusal(() => backend({ mainServicePort: 8081 })).message).toBe('SidecarApp shop/backend: mainServicePort (8081) must differ from sidecarServicePort (its default): two Service ports cannot be the same');
    expect(refusal(() => backend({ sidecarServicePortName: 'main-container-port' })).message).toBe(
      'SidecarApp shop/backend: sidecarServicePortName ("main-container-port") must differ from mainServicePortName (its default): two Service port names cannot be the same',
    );
  });

  test('a number prop given a string shows the string as a string', () => {
    const e = refusal(() => backend({ main: { port: '3000' as unknown as number } }));
    expect(e.message).toBe('SidecarApp shop/backend: main.port must be an integer in 1..65535, got "3000" (a string)');
    expect(refusal(() => backend({ replicas: '2' as unknown as number })).message).toMatch(/^SidecarApp shop\/backend: replicas must be an integer in \d+\.\.\d+, got "2" \(a string\)$/);
  });

  test('two apps in one chart: each error names its own app', () => {
    const chart = Testing.chart();
    new SidecarApp(chart, 'orders');
    const nested = new Construct(chart, 'team');
    expect(refusal(() => new SidecarApp(nested, 'billing', { logLevel: 'loud' as never })).message).toMatch(/^SidecarApp test\/team\/billing: logLevel must be one of /);
  });
});

describe('errors thrown later carry the path too', () => {
  test('addRoute', () => {
    const { backend: app } = backend();
    expect(refusal(() => app.addRoute({ path: 'no-slash', effect: RouteEffect.PUBLIC })).message).toMatch(/^SidecarApp shop\/backend: addRoute\[0\] /);
  });

  test('allowAdminFrom, allowMainFrom and allowSidecarFrom without the NetworkPolicy name the method', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { chart, backend: app } = backend({ networkPolicy: false, allowUnauthenticatedMainPort: true });
      const peer = kplus.Pods.all(chart, 'all');
      for (const method of ['allowAdminFrom', 'allowMainFrom', 'allowSidecarFrom'] as const) {
        expect(refusal(() => app[method](peer)).message).toBe(`SidecarApp shop/backend: ${method} needs the NetworkPolicy that networkPolicy: false turns off`);
      }
    } finally {
      warn.mockRestore();
    }
  });

  test('allowCallsFrom', () => {
    const { chart, backend: app } = backend();
    const worker = new kplus.Deployment(chart, 'worker', { containers: [{ image: 'acme/worker:1.0' }] });
    expect(refusal(() => app.allowCallsFrom(worker)).message).toMatch(/^SidecarApp shop\/backend: allowCallsFrom \(into backend\) shop\/worker has no serviceAccount of its own/);
  });
});

describe('two SidecarApps of one name in one namespace', () => {
  test('in two charts of one namespace: refused, naming both construct paths', () => {
    const app = Testing.app();
    new SidecarApp(new Chart(app, 'shop', { namespace: 'shop' }), 'api');
    const e = refusal(() => new SidecarApp(new Chart(app, 'shop-v2', { namespace: 'shop' }), 'api'));
    expect(e.message).toBe(
      'SidecarApp shop-v2/api: name (derived from the construct id) ("api") is also the name of SidecarApp shop/api in namespace "shop": both would write the same objects and kubectl apply keeps the last; give one of them another name',
    );
  });

  test('by the name prop, in one chart, or in two charts that set no namespace', () => {
    const chart = Testing.chart();
    new SidecarApp(chart, 'api');
    expect(refusal(() => new SidecarApp(chart, 'api-v2', { name: 'api' })).message).toMatch(/^SidecarApp test\/api-v2: name \("api"\) is also the name of SidecarApp test\/api in the same namespace \(no Chart sets one\): /);
    const app = Testing.app();
    new SidecarApp(new Chart(app, 'a'), 'web');
    expect(refusal(() => new SidecarApp(new Chart(app, 'b'), 'web')).message).toMatch(/^SidecarApp b\/web: .* is also the name of SidecarApp a\/web in the same namespace \(no Chart sets one\)/);
  });

  test('in two namespaces, or with two names, both are fine', () => {
    const app = Testing.app();
    new SidecarApp(new Chart(app, 'shop', { namespace: 'shop' }), 'api');
    expect(() => new SidecarApp(new Chart(app, 'staging', { namespace: 'staging' }), 'api')).not.toThrow();
    expect(() => new SidecarApp(new Chart(app, 'more', { namespace: 'shop' }), 'api2')).not.toThrow();
  });
});

test('a.allowCallsFrom(a) is refused, naming the app', () => {
  const { backend: app } = backend();
  const e = refusal(() => app.allowCallsFrom(app));
  expect(e.message).toMatch(/^SidecarApp shop\/backend: allowCallsFrom names this SidecarApp itself: /);
  // Nothing was changed: no token, no route rule, no service-account auth.
  expect(app.mainContainer.env.variables).not.toHaveProperty('BACKEND_TOKEN_FILE');
});

test('the warning of allowUnauthenticatedMainPort names the construct path too', () => {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    backend({ allowUnauthenticatedMainPort: true });
    expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([
      'SidecarApp shop/backend: allowUnauthenticatedMainPort is set; port 8080 of the main container accepts requests that bypass authentication.',
    ]);
  } finally {
    warn.mockRestore();
  }
});
