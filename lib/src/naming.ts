/**
 * What the app's objects are called and labelled: the `name` and `labels` props, the well-known
 * labels every object and pod carries, and the selector labels that pick the pods.
 */
import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import * as check from './validate';

/**
 * The naming props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its
 * members into SidecarAppProps.
 * @jsii ignore
 */
export interface NamingProps {
  /**
   * Base name of every object (Deployment, Service, NetworkPolicy, ...) and the
   * `app.kubernetes.io/instance` label. A DNS label starting with a letter.
   * @default - derived from the construct path inside its chart: id "api" gives "api"
   */
  readonly name?: string;
  /**
   * Extra labels on every object and on the pods. They may override `component`, `part-of` and
   * `managed-by`, never the selector labels.
   * @default - none
   */
  readonly labels?: { [key: string]: string };
}

/** The well-known labels, as the Kubernetes docs recommend them. */
export const LABEL = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

/** The name and the labels, checked. */
export interface ResolvedNaming {
  readonly name: string;
  /** The SidecarApp's construct path: errors raised at synth (by Lazy values) name it. */
  readonly constructPath: string;
  /** Labels that select the pods. */
  readonly selectorLabels: Readonly<Record<string, string>>;
  /** Every label of every object and of the pods. */
  readonly labels: Readonly<Record<string, string>>;
}

/** The construct path below its chart, as a DNS label: id "api" gives "api". */
function defaultName(app: Construct): string {
  const chart = Chart.of(app);
  const below = app.node.scopes.slice(app.node.scopes.indexOf(chart) + 1);
  return below
    .map((c) => c.node.id)
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
}

export function resolveNaming(app: Construct, props: NamingProps): ResolvedNaming {
  const name = check.resourceName(props.name === undefined ? 'name (derived from the construct id)' : 'name', props.name ?? defaultName(app));
  const userLabels = props.labels ?? {};
  for (const [key, value] of Object.entries(userLabels)) {
    check.label('labels', key, value);
    if (key === LABEL.name || key === LABEL.instance) check.fail('labels', `must not set "${key}": it selects the pods, use the name prop`);
  }
  const selectorLabels = { [LABEL.name]: name, [LABEL.instance]: name };
  return {
    name,
    constructPath: app.node.path,
    selectorLabels,
    labels: { ...selectorLabels, [LABEL.component]: 'server', [LABEL.partOf]: name, [LABEL.managedBy]: 'cdk8s', ...userLabels },
  };
}
