/** The ClusterIP Service in front of both containers: the main port and the sidecar port. */
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ResolvedProps } from './props';

/** `pods` selects by the app's own labels (cdk8s-plus would select by a generated address label). */
export function createService(scope: Construct, config: ResolvedProps, pods: kplus.IPodSelector): kplus.Service {
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
