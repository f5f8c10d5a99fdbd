/**
 * What of the client's request the sidecar passes on to the main container beyond the request
 * itself: the client's credential, and the forwarding headers of proxies in front of the pod.
 */
import { SIDECAR_INTEGERS } from './contract';
import * as check from './validate';

/**
 * The forwarding props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its
 * members into SidecarAppProps.
 * @jsii ignore
 */
export interface ForwardingProps {
  /**
   * Forward the client's Authorization header to the main container.
   * @default false
   */
  readonly forwardAuthorization?: boolean;
  /**
   * How many proxies in front of the sidecar (an Ingress controller, a load balancer) to trust:
   * the sidecar keeps that many of the last entries of the client's `X-Forwarded-For` before the
   * peer's address, and the client's `X-Forwarded-Proto`. With 0, every forwarding header a client
   * sends is dropped and the sidecar vouches only for what it saw itself.
   *
   * Set it only when every path to the sidecar port goes through those proxies: the
   * `<name>-open-ports` NetworkPolicy admits every source by default, so any pod could otherwise
   * forge that many entries and the scheme.
   * @default 0
   */
  readonly trustedProxyHops?: number;
}

export interface ResolvedForwarding {
  readonly forwardAuthorization: boolean;
  readonly trustedProxyHops: number;
}

export function resolveForwarding(props: ForwardingProps): ResolvedForwarding {
  return {
    forwardAuthorization: props.forwardAuthorization ?? false,
    trustedProxyHops: check.integer('trustedProxyHops', props.trustedProxyHops ?? SIDECAR_INTEGERS.trustedProxyHops.default, SIDECAR_INTEGERS.trustedProxyHops),
  };
}
