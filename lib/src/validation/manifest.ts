/**
 * The synthesized objects as the validation sees them: plain parsed YAML, read defensively (an
 * escape hatch can put anything anywhere), plus the Kubernetes matching rules the checks need
 * (label selectors, pod templates, Service ports).
 */

export interface JsonObject {
  readonly [key: string]: unknown;
}

export function asObject(value: unknown): JsonObject | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : undefined;
}

export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The string entries of a map (labels, annotations, selectors); other values are dropped. */
export function asStringMap(value: unknown): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(asObject(value) ?? {})) if (typeof v === 'string') out[key] = v;
  return out;
}

/** One object of one manifest file. */
export interface KubeObject {
  /** The manifest file it was read from. */
  readonly manifestPath: string;
  /** Its position among the documents of that file. */
  readonly index: number;
  readonly apiVersion: string;
  /** API group: "" for the core group (apiVersion "v1"). */
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  /** "" when unset (the namespace `kubectl apply` picks). */
  readonly namespace: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly raw: JsonObject;
}

export function toKubeObject(manifestPath: string, index: number, document: unknown): KubeObject | undefined {
  const raw = asObject(document);
  if (raw === undefined) return undefined;
  const apiVersion = asString(raw.apiVersion) ?? '';
  const metadata = asObject(raw.metadata) ?? {};
  const slash = apiVersion.indexOf('/');
  return {
    manifestPath,
    index,
    apiVersion,
    group: slash < 0 ? '' : apiVersion.slice(0, slash),
    kind: asString(raw.kind) ?? '',
    name: asString(metadata.name) ?? '',
    namespace: asString(metadata.namespace) ?? '',
    annotations: asStringMap(metadata.annotations),
    raw,
  };
}

/** `Kind namespace/name` (`Kind name` without a namespace), for messages. */
export function describe(o: KubeObject): string {
  return `${o.kind} ${o.namespace === '' ? '' : `${o.namespace}/`}${o.name}`;
}

/**
 * Does a `metav1.LabelSelector` (matchLabels and matchExpressions) select these labels?
 * An empty selector selects everything; an absent one (undefined) nothing.
 */
export function labelSelectorMatches(selector: unknown, labels: Readonly<Record<string, string>>): boolean {
  const s = asObject(selector);
  if (s === undefined) return false;
  for (const [key, value] of Object.entries(asStringMap(s.matchLabels))) if (labels[key] !== value) return false;
  for (const expression of asArray(s.matchExpressions)) {
    const e = asObject(expression) ?? {};
    const key = asString(e.key) ?? '';
    const values = asArray(e.values).filter((v): v is string => typeof v === 'string');
    const has = Object.prototype.hasOwnProperty.call(labels, key);
    switch (e.operator) {
      case 'In':
        if (!has || !values.includes(labels[key])) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        // An operator the API server would refuse: select nothing rather than guess.
        return false;
    }
  }
  return true;
}

/** Does a Service's `spec.selector` (a plain map) select these labels? An empty one selects no pods. */
export function mapSelectorMatches(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([key, value]) => labels[key] === value);
}

/** The pod a workload runs: its labels and its spec, and where the spec is in the object. */
export interface PodTemplate {
  /** Dotted path of the pod spec in the object, e.g. `spec.template.spec`. */
  readonly path: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly spec: JsonObject;
}

/** The pod of a Pod, of any workload with `spec.template` (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, ...) or of a CronJob. */
export function podTemplateOf(o: KubeObject): PodTemplate | undefined {
  const spec = asObject(o.raw.spec);
  if (spec === undefined) return undefined;
  if (o.kind === 'Pod' && o.group === '') {
    return { path: 'spec', labels: asStringMap(asObject(o.raw.metadata)?.labels), spec };
  }
  const template = asObject(spec.template) ?? asObject(asObject(asObject(spec.jobTemplate)?.spec)?.template);
  const templateSpec = asObject(template?.spec);
  if (template === undefined || templateSpec === undefined) return undefined;
  const path = asObject(spec.template) !== undefined ? 'spec.template.spec' : 'spec.jobTemplate.spec.template.spec';
  return { path, labels: asStringMap(asObject(template.metadata)?.labels), spec: templateSpec };
}

/** A port reference: a number, or a name (an IntOrString given as a numeric string is a number). */
export function portRef(value: unknown): number | string | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return /^[0-9]+$/.test(value) ? Number(value) : value;
  return undefined;
}

/** A Service port, with the container port it sends to (`targetPort`, defaulting to `port`). */
export interface ServicePort {
  readonly index: number;
  readonly name?: string;
  readonly port?: number;
  readonly target?: number | string;
  readonly protocol: string;
}

export function servicePorts(service: KubeObject): readonly ServicePort[] {
  const spec = asObject(service.raw.spec) ?? {};
  return asArray(spec.ports).map((entry, index) => {
    const p = asObject(entry) ?? {};
    const port = typeof p.port === 'number' ? p.port : undefined;
    return { index, name: asString(p.name), port, target: portRef(p.targetPort) ?? port, protocol: asString(p.protocol) ?? 'TCP' };
  });
}

export function isService(o: KubeObject): boolean {
  return o.kind === 'Service' && o.group === '';
}

/** `a.b[0].c` notation for messages: `key` is appended as `.key`, or as `["key"]` when it is not an identifier. */
export function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}
