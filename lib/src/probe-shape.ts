/**
 * What a cdk8s-plus Probe renders to, read before the container exists: the k8s form needs only
 * the container's `portNumber` (for a probe that names no port). SidecarApp declares main's port in
 * `ports`, so cdk8s-plus would give a port-less probe port 80: main-options.ts refuses such a probe,
 * and upstream-check.ts reads the one that remains.
 */
import * as kplus from 'cdk8s-plus-28';

export interface ProbeShape {
  readonly httpGet?: { readonly path?: string; readonly port: { readonly value: unknown }; readonly scheme?: string; readonly host?: string };
  readonly tcpSocket?: { readonly port: { readonly value: unknown } };
  readonly exec?: unknown;
}

export function probeShape(probe: kplus.Probe, portNumber: number | undefined): ProbeShape {
  const internal = probe as unknown as { _toKube(container: Pick<kplus.Container, 'portNumber'>): ProbeShape };
  return internal._toKube({ portNumber });
}

/** Does the probe leave its port to the container (cdk8s-plus's `container.port`, else 80)? */
export function probeNamesNoPort(probe: kplus.Probe): boolean {
  const port = (portNumber: number) => {
    const shape = probeShape(probe, portNumber);
    return (shape.httpGet ?? shape.tcpSocket)?.port.value;
  };
  return port(1) !== port(2);
}
