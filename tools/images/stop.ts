/**
 * Stopping the pod as the kubelet does: each container's preStop hook, then SIGTERM, all within the
 * grace period, counted from the first hook; SIGKILL for what still runs then. Regular containers
 * stop in parallel, native sidecars after them, last started first.
 */
import { HttpGetAction } from '../pod';
import { containerState, docker, dockerOk } from './docker';
import { get, sleep } from './http';
import type { Started } from './pod-run';
import { Plan, portOf } from './plan';
import { Steps, log } from './steps';

interface HookOutcome {
  readonly done: string;
  readonly error?: string;
}

async function httpGetHook(s: Started, action: HttpGetAction, timeoutMs: number): Promise<HookOutcome> {
  const port = portOf(s.container, action.port);
  const what = `preStop GET :${port}${action.path ?? '/'}`;
  try {
    const r = await get(port, action.path ?? '/', {}, timeoutMs);
    const ok = r.status >= 200 && r.status < 400;
    return ok ? { done: `${what} → ${r.status} ${r.body.trim().slice(0, 60)}` } : { done: what, error: `${s.container.name} ${what} answered ${r.status} ${r.body.slice(0, 200)}` };
  } catch (err) {
    return { done: what, error: `${s.container.name} ${what}: ${(err as Error).message}` };
  }
}

/**
 * Run a preStop hook as the kubelet would: exec in the container, GET against the pod, or sleep; bounded
 * by what is left of the grace period. Never throws: the kubelet sends SIGTERM after a failed hook too.
 */
async function runPreStop(s: Started, deadline: number): Promise<HookOutcome> {
  const hook = s.container.lifecycle?.preStop;
  const left = () => Math.max(1, deadline - Date.now());
  if (!hook) return { done: 'no preStop' };
  if (hook.exec?.command?.length) {
    const what = `preStop exec ${hook.exec.command.join(' ')}`;
    const r = await docker(['exec', s.name, ...hook.exec.command], { timeoutMs: left() });
    return r.code === 0 ? { done: what } : { done: what, error: `${s.container.name} ${what} exited ${r.code}: ${(r.stderr || r.stdout).trim()}` };
  }
  if (hook.httpGet) return httpGetHook(s, hook.httpGet, left());
  if (hook.sleep) {
    await sleep(Math.min(hook.sleep.seconds * 1000, left()));
    return { done: `preStop sleep ${hook.sleep.seconds}s` };
  }
  return { done: 'preStop of an unknown kind skipped' };
}

/** Wait until the container exits or the deadline passes; SIGKILL it then, as the kubelet does. */
async function waitExit(s: Started, deadline: number): Promise<{ exitCode: number; killed: boolean }> {
  while (Date.now() < deadline) {
    const st = await containerState(s.name);
    if (!st.running) return { exitCode: st.exitCode, killed: false };
    await sleep(100);
  }
  await docker(['kill', s.name]);
  const st = await containerState(s.name);
  return { exitCode: st.exitCode, killed: true };
}

/** One container: hook, SIGTERM, exit; fails unless the hook worked and it exited 0 in time. */
async function stopOne(s: Started, plan: Plan, began: number): Promise<string> {
  const deadline = began + plan.grace * 1000;
  const at = () => `${((Date.now() - began) / 1000).toFixed(1)}s`;
  const hook = await runPreStop(s, deadline);
  log(`    ${at()}  ${s.container.name}: ${hook.done}${hook.error ? ` FAILED (${hook.error})` : ' done'}; docker kill --signal TERM`);
  await dockerOk(['kill', '--signal', 'TERM', s.name], `SIGTERM ${s.container.name}`);
  const { exitCode, killed } = await waitExit(s, deadline);
  log(`    ${at()}  ${s.container.name}: exited ${exitCode}${killed ? ' (SIGKILLed at the end of the grace period)' : ''}`);
  if (hook.error) throw new Error(hook.error);
  if (killed) throw new Error(`${s.container.name} did not exit within ${plan.grace} s of the preStop hook; SIGKILLed (exit ${exitCode})`);
  if (exitCode !== 0) throw new Error(`${s.container.name} exited ${exitCode}, not 0`);
  return `${s.container.name} 0 at ${at()}`;
}

export async function stopPod(steps: Steps, plan: Plan, started: readonly Started[]): Promise<void> {
  await steps.run(`stop the pod as the kubelet does: preStop hooks, then SIGTERM; all must exit 0 within ${plan.grace} s (terminationGracePeriodSeconds)`, async () => {
    const began = Date.now();
    // Regular containers first, in parallel; native sidecars once they have all exited (reverse start order).
    const regular = started.filter((s) => !plan.nativeSidecars.has(s.container.name));
    const sidecars = started.filter((s) => plan.nativeSidecars.has(s.container.name)).reverse();
    const settled = await Promise.allSettled(regular.map((s) => stopOne(s, plan, began)));
    for (const s of sidecars) settled.push(...(await Promise.allSettled([stopOne(s, plan, began)])));
    const failures = settled.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    if (failures.length) throw new Error(failures.join('; '));
    return { value: undefined, detail: `exit codes: ${settled.map((r) => (r as PromiseFulfilledResult<string>).value).join(', ')}` };
  });
}
