/**
 * The cdk8s validation plugin: `cdk8s synth` loads it from cdk8s.yaml and calls `validate` with
 * the synthesized manifests. The types below are the part of cdk8s-cli's plugin contract
 * (`cdk8s-cli/plugins`: Validation, ValidationContext, ValidationViolation) this plugin uses,
 * restated so that the package needs no cdk8s-cli at run time; test/validation.test.ts checks
 * that cdk8s-cli's own types fit them.
 */
import { KubeObject, toKubeObject } from './manifest';
import { ConstructMetadata, ConstructPaths } from './paths';
import { Finding, RULES, RULE_IDS, RuleId, check, isWaived } from './rules';

export interface ValidationViolatingResource {
  readonly resourceName: string;
  readonly locations: readonly string[];
  readonly manifestPath: string;
}

export interface ValidationViolation {
  readonly ruleName: string;
  readonly recommendation: string;
  readonly fix: string;
  readonly violatingResources: readonly ValidationViolatingResource[];
}

export interface ValidationReportLike {
  addViolation(violation: ValidationViolation): void;
  submit(status: 'success' | 'failure', metadata?: { readonly [key: string]: string }): void;
}

/** What the plugin reads from cdk8s-cli's ValidationContext. */
export interface ValidationContextLike {
  readonly manifests: readonly string[];
  readonly metadata: ConstructMetadata;
  readonly report: ValidationReportLike;
  parseManifest(manifestPath: string): unknown[];
}

/** The `properties:` of the plugin's entry in cdk8s.yaml. */
export interface SidecarAppValidationProperties {
  /** Rule ids not to check at all (see RULE_IDS). Prefer waiving one object with WAIVE_ANNOTATION. */
  readonly disabledRules?: readonly string[];
}

export class SidecarAppValidation {
  private readonly disabled: ReadonlySet<RuleId>;

  constructor(properties: SidecarAppValidationProperties = {}) {
    for (const key of Object.keys(properties)) {
      if (key !== 'disabledRules') throw new Error(`SidecarAppValidation: unknown property "${key}" (known: disabledRules)`);
    }
    const disabled = properties.disabledRules ?? [];
    if (!Array.isArray(disabled)) throw new Error('SidecarAppValidation: disabledRules must be a list of rule ids');
    for (const rule of disabled) {
      if (!(RULE_IDS as readonly string[]).includes(rule)) throw new Error(`SidecarAppValidation: unknown rule "${rule}" in disabledRules (known: ${RULE_IDS.join(', ')})`);
    }
    this.disabled = new Set(disabled as RuleId[]);
  }

  async validate(context: ValidationContextLike): Promise<void> {
    const objects: KubeObject[] = [];
    for (const manifestPath of context.manifests) {
      context.parseManifest(manifestPath).forEach((document, index) => {
        const o = toKubeObject(manifestPath, index, document);
        if (o !== undefined) objects.push(o);
      });
    }
    const { apps, findings } = check(objects);
    const paths = new ConstructPaths(objects, apps, context.metadata ?? {});
    const active = findings.filter((f) => !this.disabled.has(f.rule));
    const failing = active.filter((f) => !isWaived(f));

    for (const rule of RULE_IDS) {
      const resources = violatingResources(failing.filter((f) => f.rule === rule), paths);
      if (resources.length > 0) context.report.addViolation({ ruleName: rule, ...RULES[rule], violatingResources: resources });
    }
    const summary: Record<string, string> = {
      Objects: String(objects.length),
      SidecarApps: apps.length === 0 ? 'none' : apps.map((a) => paths.appPath(a) ?? a.workload.name).join(', '),
      'Construct paths': paths.recorded ? 'recorded by cdk8s' : 'not recorded (set CDK8S_RECORD_CONSTRUCT_METADATA=true)',
    };
    if (active.length > failing.length) summary.Waived = String(active.length - failing.length);
    if (this.disabled.size > 0) summary['Disabled rules'] = [...this.disabled].join(', ');
    context.report.submit(failing.length === 0 ? 'success' : 'failure', summary);
  }
}

/**
 * One resource per object. The resource name is `metadata.name` when it is unique, so that the
 * CLI's "Construct Path" (looked up by that name) is right; `Kind/name` otherwise, so that it
 * shows N/A rather than another object's path. Each location starts with the construct path.
 */
function violatingResources(findings: readonly Finding[], paths: ConstructPaths): ValidationViolatingResource[] {
  const byObject = new Map<KubeObject, Finding[]>();
  for (const f of findings) byObject.set(f.object, [...(byObject.get(f.object) ?? []), f]);
  return [...byObject.entries()].map(([o, list]) => ({
    resourceName: paths.uniqueName(o) ? o.name : `${o.kind}/${o.name}`,
    manifestPath: o.manifestPath,
    locations: list.map((f) => `[${paths.describe(o)}] ${f.location}: ${f.message}`),
  }));
}
