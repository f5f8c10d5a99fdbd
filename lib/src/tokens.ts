/**
 * The static tokens: one credential source among three (with JWT issuers and service-account
 * tokens). When on, the Secret they are read from is mounted into the sidecar as a directory.
 */
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { TOKENS_MOUNT_PATH } from './contract';
import * as check from './validate';
import { VOLUME_NAMES } from './volume-names';

/**
 * The credential props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its
 * members into SidecarAppProps.
 * @jsii ignore
 */
export interface TokensProps {
  /**
   * Accept static bearer tokens, read from the Secret `tokenSecretName` (mounted into the sidecar,
   * which is not Ready until it holds a valid token). Off, no Secret is mounted and
   * `SIDECAR_TOKENS_DIR` stays unset: another source (`jwtIssuers`, `serviceAccountAuth`) must be on.
   * @default - true when `tokenSecretName` is set or neither `jwtIssuers` nor `serviceAccountAuth` is; false otherwise
   */
  readonly staticTokens?: boolean;
  /**
   * Name of an existing Secret holding the tokens, one key per token (key = token name).
   * Created outside the manifests, so no token is ever in them. Setting it turns `staticTokens` on.
   * @default "<name>-tokens" (when `staticTokens` is on)
   */
  readonly tokenSecretName?: string;
}

export interface ResolvedTokens {
  /** Static tokens are a credential source: the Secret is mounted and SIDECAR_TOKENS_DIR set. */
  readonly staticTokens: boolean;
  /** undefined: static tokens are off. */
  readonly tokenSecretName: string | undefined;
}

/** The other credential sources the props configure, for staticTokens' default and its check. */
export interface OtherCredentialSources {
  readonly jwtIssuers: boolean;
  readonly serviceAccountAuth: boolean;
}

const TOKENS_VOLUME = VOLUME_NAMES.tokens;

export function resolveTokens(props: TokensProps, appName: string, others: OtherCredentialSources): ResolvedTokens {
  const { staticTokens, tokenSecretName } = props;
  if (staticTokens !== undefined && typeof staticTokens !== 'boolean') check.fail('staticTokens', `must be a boolean, got ${JSON.stringify(staticTokens)}`);
  const otherSource = others.jwtIssuers || others.serviceAccountAuth;
  const on = staticTokens ?? (tokenSecretName !== undefined || !otherSource);
  if (!on && tokenSecretName !== undefined) check.fail('tokenSecretName', 'is set, but staticTokens is false: drop one of them');
  if (!on && !otherSource) {
    check.fail('staticTokens', 'is false, and neither jwtIssuers nor serviceAccountAuth is set: the sidecar would have no credential source (set one of them, or leave staticTokens on)');
  }
  if (!on) return { staticTokens: false, tokenSecretName: undefined };
  return { staticTokens: true, tokenSecretName: check.dnsSubdomain('tokenSecretName', tokenSecretName ?? `${appName}-tokens`) };
}

/** A directory mount (no subPath), so a rotated Secret reaches the running pod. */
export function mountTokens(scope: Construct, sidecar: kplus.Container, secretName: string): void {
  const tokens = kplus.Volume.fromSecret(scope, 'tokens', kplus.Secret.fromSecretName(scope, 'token-secret', secretName), {
    name: TOKENS_VOLUME,
    defaultMode: 0o440,
    optional: false,
  });
  sidecar.mount(TOKENS_MOUNT_PATH, tokens, { readOnly: true });
}
