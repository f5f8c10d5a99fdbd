/** What an images run checks besides readiness and shutdown: the pod's ports are free, and requests through the sidecar. */
import { CONTAINER_NAMES, SIDECAR_ENV } from '../../lib/src/contract';
import { get, portFree } from './http';
import { Plan } from './plan';
import { Steps } from './steps';

/** Every containerPort of the pod must be free: the containers use --network host. Run it before the builds, so a busy port fails in a second. */
export async function checkPorts(steps: Steps, plan: Plan): Promise<void> {
  const ports = plan.containers.flatMap((c) => (c.ports ?? []).map((p) => ({ port: p.containerPort, container: c.name })));
  await steps.run(`ports ${ports.map((p) => p.port).join(', ')} are free (the containers use --network host)`, async () => {
    const busy: string[] = [];
    for (const { port, container } of ports) if (!(await portFree(port))) busy.push(`${port} (${container})`);
    if (busy.length) {
      throw new Error(
        `port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} already in use on this machine. The containers share the host's network ` +
          '(--network host: there is no bridge here), so they need these ports; stop what listens there (an `npm start`? `ss -ltnp`) and run again.',
      );
    }
    return { value: undefined, detail: 'none in use' };
  });
}

/** Through the sidecar port: 401 without a token, main's answer `welcome` with `token`; the admin port's /readyz 200. */
export async function checkRequests(steps: Steps, plan: Plan, token: string, welcome: string): Promise<void> {
  const sidecar = plan.containers.find((c) => c.name === CONTAINER_NAMES.sidecar)!;
  const envOf = (n: string) => (sidecar.env ?? []).find((e) => e.name === n)?.value;
  const port = Number(envOf(SIDECAR_ENV.port));
  const adminPort = Number(envOf(SIDECAR_ENV.adminPort));
  if (!port || !adminPort) throw new Error(`the sidecar's env sets no ${SIDECAR_ENV.port}/${SIDECAR_ENV.adminPort}`);

  await steps.run(`GET :${port}/ without a token → 401`, async () => {
    const r = await get(port, '/');
    if (r.status !== 401) throw new Error(`got ${r.status} ${r.body.slice(0, 200)}`);
    return { value: undefined, detail: `401 ${r.body.trim().slice(0, 60)}` };
  });
  await steps.run(`GET :${port}/ with a token → 200 ${JSON.stringify(welcome)} (forwarded to main at ${envOf(SIDECAR_ENV.upstream) ?? '?'})`, async () => {
    const r = await get(port, '/', { authorization: `Bearer ${token}` });
    if (r.status !== 200 || r.body !== welcome) throw new Error(`got ${r.status} ${JSON.stringify(r.body.slice(0, 200))}`);
    return { value: undefined, detail: `200 ${JSON.stringify(r.body)}` };
  });
  await steps.run(`GET :${adminPort}/readyz on the admin port → 200`, async () => {
    const r = await get(adminPort, '/readyz');
    if (r.status !== 200) throw new Error(`got ${r.status} ${r.body.slice(0, 200)}`);
    return { value: undefined, detail: `200 ${r.body.trim().slice(0, 60)}` };
  });
}
