/**
 * The slice of a Deployment and a Service that the local pod runner reads, as plain objects parsed
 * from the YAML (Kubernetes API field names; nothing of cdk8s).
 */

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
export interface ContainerPort {
  containerPort: number;
  name?: string;
  protocol?: string;
}
export interface HttpGetAction {
  path?: string;
  port: number | string;
  scheme?: string;
  httpHeaders?: { name: string; value: string }[];
}
export interface Probe {
  httpGet?: HttpGetAction;
  tcpSocket?: { port: number | string };
  exec?: unknown;
  timeoutSeconds?: number;
  failureThreshold?: number;
}
export interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: unknown[];
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  /** `Always` on an init container makes it a native sidecar (KEP-753). */
  restartPolicy?: string;
  volumeMounts?: VolumeMount[];
  lifecycle?: { preStop?: { exec?: { command?: string[] }; httpGet?: HttpGetAction; sleep?: { seconds: number } } };
}
export interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}
export interface ProjectedSource {
  serviceAccountToken?: { audience?: string; expirationSeconds?: number; path: string };
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean };
  secret?: { name: string; items?: KeyToPath[]; optional?: boolean };
}
export interface Volume {
  name: string;
  secret?: { secretName: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  configMap?: { name: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  projected?: { sources: ProjectedSource[]; defaultMode?: number };
  emptyDir?: unknown;
}
export interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  terminationGracePeriodSeconds?: number;
}
export interface Deployment {
  apiVersion?: string;
  kind: 'Deployment';
  metadata?: { name?: string; namespace?: string };
  spec: { template: { spec: PodSpec } };
}
export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
}
export interface Service {
  kind: 'Service';
  metadata?: { name?: string };
  spec: { ports: ServicePort[] };
}

/** The manifest asks for something this runner cannot reproduce. The message names the field. */
export class PodSpecError extends Error {
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'PodSpecError';
  }
}

const ofKind = (kind: string) => (doc: unknown) => (doc as { kind?: string } | null)?.kind === kind;

/** The Deployment among parsed YAML documents. */
export function findDeployment(docs: readonly unknown[]): Deployment {
  const found = docs.filter(ofKind('Deployment')) as Deployment[];
  if (found.length !== 1) throw new Error(`expected exactly one Deployment in the manifest, found ${found.length}`);
  return found[0];
}

/** The Service among parsed YAML documents. */
export function findService(docs: readonly unknown[]): Service {
  const found = docs.filter(ofKind('Service')) as Service[];
  if (found.length !== 1) throw new Error(`expected exactly one Service in the manifest, found ${found.length}`);
  return found[0];
}

/** secretName of every Secret volume of the pod. */
export function secretNamesOf(deployment: Deployment): string[] {
  return (deployment.spec.template.spec.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : []));
}
