import { App, AppProps, Chart, ChartProps } from 'cdk8s';
import { Construct } from 'constructs';
import { SidecarApp, SidecarMode } from 'cdk8s-sidecar-app';

/** Environment variables that override the image references without editing code. */
export const IMAGE_ENV = {
  main: 'SIDECAR_APP_MAIN_IMAGE',
  sidecar: 'SIDECAR_APP_SIDECAR_IMAGE',
} as const;

/** cdk8s context keys with the same meaning; they win over the environment. */
export const IMAGE_CONTEXT = {
  main: 'mainImage',
  sidecar: 'sidecarImage',
} as const;

/** How the sidecar runs (SidecarMode): context key, then environment variable; `container` when neither is set. */
export const MODE_CONTEXT = 'sidecarMode';
export const MODE_ENV = 'SIDECAR_APP_SIDECAR_MODE';

export const CHART_NAME = 'sidecar-app';

export interface SidecarAppChartProps extends ChartProps {
  /**
   * Where the image overrides are read from.
   * @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
}

/** The original example: one Deployment with main + sidecar, the two-port Service, the NetworkPolicies. */
export class SidecarAppChart extends Chart {
  readonly app: SidecarApp;

  constructor(scope: Construct, id: string = CHART_NAME, props: SidecarAppChartProps = {}) {
    super(scope, id, props);
    const env = props.env ?? process.env;
    this.app = new SidecarApp(this, CHART_NAME, {
      // apps/main, under whatever name an override gives it: it reads the contract's MAIN_* env.
      main: { image: imageOverride(this, 'main', env), contractEnv: true },
      sidecar: { image: imageOverride(this, 'sidecar', env) },
      sidecarMode: sidecarMode(this, env),
    });
  }
}

function imageOverride(scope: Construct, which: 'main' | 'sidecar', env: NodeJS.ProcessEnv): string | undefined {
  const fromContext: unknown = scope.node.tryGetContext(IMAGE_CONTEXT[which]);
  if (fromContext !== undefined) {
    if (typeof fromContext !== 'string' || fromContext === '') throw new Error(`context ${IMAGE_CONTEXT[which]} must be a non-empty image reference`);
    return fromContext;
  }
  const fromEnv = env[IMAGE_ENV[which]];
  if (fromEnv === '') throw new Error(`${IMAGE_ENV[which]} is set but empty; unset it or give an image reference`);
  return fromEnv;
}

function sidecarMode(scope: Construct, env: NodeJS.ProcessEnv): SidecarMode | undefined {
  return parseSidecarMode(scope.node.tryGetContext(MODE_CONTEXT) ?? env[MODE_ENV]);
}

/** A mode as the context key or MODE_ENV gives it: unset or empty is the default, else one of SidecarMode's values or a one-line error. */
export function parseSidecarMode(chosen: unknown): SidecarMode | undefined {
  if (chosen === undefined || chosen === '') return undefined;
  const modes: readonly unknown[] = Object.values(SidecarMode);
  if (!modes.includes(chosen)) throw new Error(`${MODE_CONTEXT} (context) or ${MODE_ENV} must be one of ${modes.join(', ')}, got ${JSON.stringify(chosen)}`);
  return chosen as SidecarMode;
}

export interface BuildAppOptions extends AppProps {
  /**
   * cdk8s context, e.g. `{ mainImage: 'registry.example/main:1.2.3' }`.
   * @default {}
   */
  readonly context?: Readonly<Record<string, unknown>>;
  /**
   * Where the image overrides are read from.
   * @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
}

/** Build the app in memory; `synth()` writes dist/sidecar-app.k8s.yaml. */
export function buildApp(options: BuildAppOptions = {}): App {
  const { context = {}, env, ...appProps } = options;
  const app = new App(appProps);
  for (const [key, value] of Object.entries(context)) app.node.setContext(key, value);
  new SidecarAppChart(app, CHART_NAME, { env });
  return app;
}

if (require.main === module) {
  buildApp().synth();
}
