/**
 * The hardening a SidecarApp's props give up on purpose (`allowUnauthenticatedMainPort`,
 * `main.allowRoot` with a root id, `main.writableRootFilesystem`). Each one waives its validation
 * rule on the Deployment, so the synth-time validation reports it as waived instead of failing, and
 * synth warns with the construct path.
 */
import type { ResolvedProps } from './props';
import type { RuleId } from './validation/rules';

export interface Weakening {
  /** The rule the Deployment waives. */
  readonly rule: RuleId;
  /** What synth prints, after `SidecarApp <path>: `. */
  readonly warning: string;
}

export function weakeningsOf(config: ResolvedProps): Weakening[] {
  const out: Weakening[] = [];
  if (config.allowUnauthenticatedMainPort) {
    out.push({ rule: 'network-policy', warning: `allowUnauthenticatedMainPort is set; port ${config.main.port} of the main container accepts requests that bypass authentication.` });
  }
  const { user, group, writableRootFilesystem } = config.mainOptions;
  if (user === 0 || group === 0) {
    out.push({ rule: 'main-root', warning: `main.allowRoot is set; the main container runs with ${user === 0 ? 'user' : 'group'} 0 (root).` });
  }
  if (writableRootFilesystem) {
    out.push({ rule: 'main-writable-root', warning: 'main.writableRootFilesystem is set; the main container can write its root filesystem.' });
  }
  return out;
}
