/**
 * What a rule reports, for the rule files that rules.ts registers (so that they need not import
 * rules.ts, which imports them): rules.ts's Finding is this with its own rule ids.
 */
import type { SidecarAppPods } from './apps';
import type { KubeObject } from './manifest';

export interface RuleFinding<R extends string> {
  readonly rule: R;
  /** The object the finding is about: its construct path is reported. */
  readonly object: KubeObject;
  /** Dotted path inside the object. */
  readonly location: string;
  readonly message: string;
  /** The SidecarApp concerned, when there is one: its Deployment's waivers apply too. */
  readonly app?: SidecarAppPods;
}

/** Where a rule puts its findings: rules.ts's list of every finding. */
export interface FindingSink<R extends string> {
  push(finding: RuleFinding<R>): unknown;
}
