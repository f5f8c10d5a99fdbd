/**
 * `cdk8s-sidecar-app/validation`: a cdk8s validation plugin that checks a whole synthesized app
 * (every object, not only SidecarApp's) for routes around the sidecar, weakened SidecarApp pods,
 * missing NetworkPolicies and credentials in the manifests. Not part of the jsii API (it is plain
 * TypeScript for the cdk8s CLI, which runs on Node). Enable it in cdk8s.yaml:
 *
 *   validations:
 *     - package: ./node_modules/cdk8s-sidecar-app/build/validation
 *       class: SidecarAppValidation
 *       version: 0.1.0
 *
 * `cdk8s synth` then validates (`--no-validate` skips it) and exits non-zero on a violation;
 * each violation names the construct path. The rules are described in rules.ts.
 */
export { SidecarAppValidation } from './plugin';
export type { SidecarAppValidationProperties, ValidationContextLike, ValidationReportLike, ValidationViolation, ValidationViolatingResource } from './plugin';
export { RULES, RULE_IDS, WAIVE_ANNOTATION, check, isWaived } from './rules';
export type { CheckResult, Finding, RuleId, RuleText } from './rules';
export { ConstructPaths, SIDECAR_APP_LAYOUT } from './paths';
export type { ConstructMetadata } from './paths';
export { findToken } from './tokens';
export type { TokenKind, TokenMatch } from './tokens';
export { toKubeObject } from './manifest';
export type { KubeObject } from './manifest';
export { sidecarAppOf } from './apps';
export type { ContainerRef, SidecarAppPods } from './apps';
