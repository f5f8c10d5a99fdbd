/**
 * What the local pod runner knows of SidecarApp's pod: which env names each container's app reads
 * (the contract), that the apps bind the loopback here, and that a request through the Service's
 * sidecar port needs the token.
 */
import { ADDRESSES, CONTAINER_ENV, CONTAINER_NAMES, MAIN_ENV, SIDECAR_ENV } from '../../lib/src/contract';
import { isAppName } from '../apps';
import { checkPod, PodCheck } from './checks';
import { Deployment, Service } from './manifest';
import { httpGet } from './probes';
import { podContainers, runPod, RunningPod, RunPodOptions } from './run-pod';

/**
 * The one deliberate difference from the cluster: every app binds the loopback, because the pod's
 * network namespace here is the developer's machine.
 */
export const LOCAL_BIND_ENV: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  [CONTAINER_NAMES.main]: { [MAIN_ENV.host]: ADDRESSES.loopback },
  [CONTAINER_NAMES.sidecar]: { [SIDECAR_ENV.host]: ADDRESSES.loopback },
};

/** runPod with the apps bound to the loopback. */
export function runSidecarAppPod(deployment: Deployment, opts: RunPodOptions = {}): Promise<RunningPod> {
  return runPod(deployment, { ...opts, localEnv: { ...LOCAL_BIND_ENV, ...opts.localEnv } });
}

export interface VerifyOptions {
  /** A token in the tokens Secret, sent as `Authorization: Bearer <token>`. */
  readonly token: string;
  /** Body the main service answers at `/`. */
  readonly expectedBody: string;
}

export interface SidecarAppPodReport {
  /** Every check in order: env names, ports, probes, Service ports, requests through the sidecar. */
  readonly checks: readonly PodCheck[];
  /** The checks that failed; empty when the pod matches its manifest. */
  readonly failures: readonly PodCheck[];
  /** Local port of the sidecar that the Service reaches. @default undefined when no Service port reaches it */
  readonly sidecarPort?: number;
}

/**
 * Every env var the manifest sets in one of our apps is one that app reads: one check per container,
 * one failure per stray name. A foreign main's env is its image's own, so it is not held to our contract.
 */
function envChecks(deployment: Deployment, pod: RunningPod): PodCheck[] {
  return podContainers(deployment.spec.template.spec).flatMap((c): PodCheck[] => {
    const what = `container ${c.name} env`;
    if (pod.containers[c.name]?.foreign) return [{ what, ok: true, detail: `container ${c.name}: image ${c.image} is not ours; its env is not checked against the contract` }];
    const known: readonly string[] = isAppName(c.name) ? CONTAINER_ENV[c.name] : [];
    const stray = (c.env ?? []).filter((e) => !known.includes(e.name));
    if (stray.length === 0) return [{ what, ok: true, detail: `container ${c.name}: every env var is one apps/${c.name} reads` }];
    return stray.map((e) => ({ what, ok: false, detail: `container ${c.name}: env ${e.name} is not read by apps/${c.name} (not in the contract)` }));
  });
}

/** Through the Service's sidecar port: the token gets the main page, no token gets 401. */
async function requestChecks(sidecarPort: number | undefined, opts: VerifyOptions): Promise<PodCheck[]> {
  if (sidecarPort === undefined) return [{ what: 'Service sidecar port', ok: false, detail: 'Service: no port reaches the sidecar container' }];
  const withToken = 'request with the token';
  const withoutToken = 'request without a token';
  const through = `through port ${sidecarPort}`;
  const checks: PodCheck[] = [];
  try {
    const ok = await httpGet(sidecarPort, '/', { Authorization: `Bearer ${opts.token}` });
    if (ok.status === 200 && ok.body === opts.expectedBody) checks.push({ what: withToken, ok: true, detail: `GET / with the token ${through} -> 200 main page` });
    else checks.push({ what: withToken, ok: false, detail: `GET / with the token ${through} answered ${ok.status} ${JSON.stringify(ok.body.slice(0, 80))}` });
    const denied = await httpGet(sidecarPort, '/');
    if (denied.status === 401 && /^Bearer\b/i.test(String(denied.headers['www-authenticate'] ?? ''))) {
      checks.push({ what: withoutToken, ok: true, detail: `GET / without a token ${through} -> 401` });
    } else {
      checks.push({ what: withoutToken, ok: false, detail: `GET / without a token ${through} answered ${denied.status}, expected 401 with WWW-Authenticate: Bearer` });
    }
  } catch (err) {
    checks.push({ what: 'requests through the sidecar', ok: false, detail: `request through the sidecar port ${sidecarPort} failed: ${(err as Error).message}` });
  }
  return checks;
}

/** Check a running SidecarApp pod against its manifest. Every failure is in the report; nothing is thrown for one. */
export async function verifySidecarAppPod(deployment: Deployment, service: Service, pod: RunningPod, opts: VerifyOptions): Promise<SidecarAppPodReport> {
  const env = envChecks(deployment, pod);
  const { checks: podChecks, routes } = await checkPod(deployment, service, pod);
  const sidecarPort = routes.find((r) => r.container === CONTAINER_NAMES.sidecar)?.containerPort;
  const checks = [...env, ...podChecks, ...(await requestChecks(sidecarPort, opts))];
  return { checks, failures: checks.filter((c) => !c.ok), sidecarPort };
}
