/** The ClusterIP Service in front of both containers: its port props, and the main port and the sidecar port. */
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ResolvedContainers } from './container';
import type { ResolvedNaming } from './naming';
import * as check from './validate';

/**
 * The Service props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its
 * members into SidecarAppProps.
 * @jsii ignore
 */
export interface ServicePortsProps {
  /**
   * Name of the Service port in front of the main container.
   * @default "main-container-port"
   */
  readonly mainServicePortName?: string;
  /**
   * Number of the Service port in front of the main container.
   * @default - the main container port
   */
  readonly mainServicePort?: number;
  /**
   * Name of the Service port in front of the sidecar.
   * @default "sidecar-container-port"
   */
  readonly sidecarServicePortName?: string;
  /**
   * Number of the Service port in front of the sidecar.
   * @default - the sidecar container port
   */
  readonly sidecarServicePort?: number;
}

export interface ResolvedServicePorts {
  readonly mainServicePortName: string;
  readonly mainServicePort: number;
  readonly sidecarServicePortName: string;
  readonly sidecarServicePort: number;
}

/** The Service ports, by default numbered like the container ports they lead to; names and numbers distinct. */
export function resolveServicePorts(props: ServicePortsProps, containers: Pick<ResolvedContainers, 'main' | 'sidecar'>): ResolvedServicePorts {
  const mainServicePortName = check.servicePortName('mainServicePortName', props.mainServicePortName ?? 'main-container-port');
  const sidecarServicePortName = check.servicePortName('sidecarServicePortName', props.sidecarServicePortName ?? 'sidecar-container-port');
  const mainServicePort = check.port('mainServicePort', props.mainServicePort ?? containers.main.port);
  const sidecarServicePort = check.port('sidecarServicePort', props.sidecarServicePort ?? containers.sidecar.port);
  check.distinct(
    [
      ['mainServicePortName', mainServicePortName, props.mainServicePortName !== undefined],
      ['sidecarServicePortName', sidecarServicePortName, props.sidecarServicePortName !== undefined],
    ],
    'Service port names',
  );
  check.distinct(
    [
      ['mainServicePort', mainServicePort, props.mainServicePort !== undefined],
      ['sidecarServicePort', sidecarServicePort, props.sidecarServicePort !== undefined],
    ],
    'Service ports',
  );
  return { mainServicePortName, mainServicePort, sidecarServicePortName, sidecarServicePort };
}

/** `pods` selects by the app's own labels (cdk8s-plus would select by a generated address label). */
export function createService(scope: Construct, config: ResolvedNaming & ResolvedServicePorts & Pick<ResolvedContainers, 'main' | 'sidecar'>, pods: kplus.IPodSelector): kplus.Service {
  return new kplus.Service(scope, 'service', {
    metadata: { name: config.name, labels: { ...config.labels } },
    type: kplus.ServiceType.CLUSTER_IP,
    selector: pods,
    ports: [
      { name: config.mainServicePortName, port: config.mainServicePort, targetPort: config.main.port, protocol: kplus.Protocol.TCP },
      { name: config.sidecarServicePortName, port: config.sidecarServicePort, targetPort: config.sidecar.port, protocol: kplus.Protocol.TCP },
    ],
  });
}
