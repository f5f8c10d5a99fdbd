/**
 * The static tokens: the Secret they are read from, mounted into the sidecar as a directory.
 */
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { TOKENS_MOUNT_PATH } from './contract';
import * as check from './validate';

/**
 * The credential props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its
 * members into SidecarAppProps.
 * @jsii ignore
 */
export interface TokensProps {
  /**
   * Name of an existing Secret holding the tokens, one key per token (key = token name).
   * Created outside the manifests, so no token is ever in them.
   * @default "<name>-tokens"
   */
  readonly tokenSecretName?: string;
}

export interface ResolvedTokens {
  readonly tokenSecretName: string;
}

const TOKENS_VOLUME = 'tokens';

export function resolveTokens(props: TokensProps, appName: string): ResolvedTokens {
  return {
    tokenSecretName: check.dnsSubdomain('tokenSecretName', props.tokenSecretName ?? `${appName}-tokens`),
  };
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
