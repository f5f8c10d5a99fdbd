/**
 * The main container's own hardening, in rules of their own so that a SidecarApp can waive one
 * weakening it asked for (`main.allowRoot`, `main.writableRootFilesystem`) and keep the rest of
 * pod-hardening. Main may run as any non-root user and group (an image's own, e.g. nginx's 101);
 * the sidecar keeps the contract's RUN_AS, checked by pod-hardening.
 *
 * - main-root: the main container may run as root: runAsNonRoot not true (its own or the pod's),
 *   or runAsUser or runAsGroup 0.
 * - main-writable-root: the main container's root filesystem is writable (readOnlyRootFilesystem
 *   not true); writable directories belong in volumes (`main.writablePaths`).
 */
import type { SidecarAppPods } from './apps';
import { containerPath } from './apps';
import type { FindingSink } from './finding';
import { asObject } from './manifest';

export const HARDENING_RULE_IDS = ['main-root', 'main-writable-root'] as const;
export type HardeningRuleId = (typeof HARDENING_RULE_IDS)[number];

export const HARDENING_RULES = {
  'main-root': {
    recommendation: 'The main container runs as a non-root user and group: a process that escapes the application starts without root in the container.',
    fix: 'Run the image as a non-root user (main.user / main.group, e.g. the image\u2019s own non-root id). If it really needs root, set main.allowRoot, which waives this rule for the Deployment.',
  },
  'main-writable-root': {
    recommendation: "The main container's root filesystem is read-only: an attacker cannot replace the application's files, and every write goes to a declared volume.",
    fix: 'Declare the directories the image writes as main.writablePaths (an emptyDir each). If it really needs a writable root, set main.writableRootFilesystem, which waives this rule for the Deployment.',
  },
} as const;

function show(value: unknown): string {
  return value === undefined ? 'unset' : JSON.stringify(value);
}

export function checkMainHardening(app: SidecarAppPods, out: FindingSink<HardeningRuleId>): void {
  if (app.main === undefined) return;
  const { workload, pod } = app;
  const base = containerPath(pod, app.main);
  const context = asObject(app.main.container.securityContext) ?? {};
  const podContext = asObject(pod.spec.securityContext) ?? {};
  /** The effective value: the container's, else the pod's; and where it is set. */
  const effective = (field: string): [unknown, string] =>
    context[field] !== undefined
      ? [context[field], `${base}.securityContext.${field}`]
      : podContext[field] !== undefined
        ? [podContext[field], `${pod.path}.securityContext.${field}`]
        : [undefined, `${base}.securityContext.${field}`];
  const root = (location: string, message: string) => out.push({ rule: 'main-root', object: workload, location, message, app });

  const [nonRoot, nonRootAt] = effective('runAsNonRoot');
  if (nonRoot !== true) root(nonRootAt, `is ${show(nonRoot)}, must be true`);
  for (const field of ['runAsUser', 'runAsGroup']) {
    const [id, at] = effective(field);
    if (id === 0) root(at, 'is 0 (root), must be a non-root id');
  }
  if (context.readOnlyRootFilesystem !== true) {
    out.push({ rule: 'main-writable-root', object: workload, location: `${base}.securityContext.readOnlyRootFilesystem`, message: `is ${show(context.readOnlyRootFilesystem)}, must be true`, app });
  }
}
