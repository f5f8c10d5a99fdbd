/**
 * `npm run test:images`: build the images and run pods of them the way the synthesized manifests run them.
 *
 * Needs a Docker daemon on this machine (`docker info` must answer; DOCKER_HOST is honoured), and for the
 * static-main pod a C compiler with a static libc (`cc`; CC is honoured). Not part of `npm test`. Two pods,
 * one after the other:
 *   default      the default chart (main.ts buildApp): apps/main and apps/sidecar;
 *   static-main  SidecarApp in front of a main that is not ours: one static C binary in an image FROM
 *                scratch (no shell, no `sleep`, no Node), its own command, readiness path and no
 *                contract env (tools/images/static-main.ts, test/fixtures/static-main/).
 * For each pod (the runner is tools/images/):
 *   1. synthesize the chart in memory, take the Deployment;
 *   2. build its images with the legacy builder (DOCKER_BUILDKIT=0, --network host), tagged as the
 *      manifest's images (an image an earlier pod built is not built again);
 *   3. run the containers with --read-only --user <runAsUser>:<runAsGroup> --cap-drop ALL
 *      --security-opt no-new-privileges --network host and each container's env from the manifest;
 *      the tokens Secret is a temp dir in the kubelet layout, bind-mounted read-only, and
 *      SIDECAR_TOKENS_DIR is rewritten to it;
 *   4. check 401 without a token, 200 and main's answer with one, /readyz 200 on the admin port;
 *   5. stop as the kubelet does: each preStop hook, then SIGTERM; every container must exit 0 within
 *      the manifest's terminationGracePeriodSeconds.
 * Prints every step and a PASS/FAIL summary; exits 1 on any failure (the first ends the run). Removes its
 * containers and temp dirs.
 *
 * Environment:
 *   TEST_IMAGES_PODS      which pods, comma-separated (default: default,static-main)
 *   BASE_IMAGE            passed as --build-arg BASE_IMAGE to our Dockerfiles (default: their node:24-bookworm-slim)
 *   TEST_IMAGES_VERBOSE=1 stream the whole docker build output
 *   SIDECAR_APP_SIDECAR_MODE synthesize with that sidecar mode (e.g. native) instead of the default
 * See docs/images.md.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import { parseAllDocuments } from 'yaml';
import { WELCOME_TEXT } from '../apps/main/src/app';
import { SidecarMode } from '../lib/src';
import { MODE_ENV, buildApp, parseSidecarMode } from '../main';
import {
  Plan,
  PodRun,
  STATIC_MAIN_IMAGE,
  STATIC_MAIN_WELCOME,
  Steps,
  buildImages,
  checkDaemon,
  checkPorts,
  checkRequests,
  compileStaticMain,
  describePlan,
  libVersion,
  log,
  ourImages,
  planOf,
  staticMainContextDir,
  staticMainManifest,
  stopPod,
} from '../tools/images';
import { REPO_ROOT } from '../tools/repo-root';

const PODS_ENV = 'TEST_IMAGES_PODS';
const POD_NAMES = ['default', 'static-main'] as const;
type PodName = (typeof POD_NAMES)[number];

/** What one pod needs: its plan, and what main answers through the sidecar to the run's token. */
interface PodCase {
  readonly plan: Plan;
  readonly welcome: string;
}

/** The pods TEST_IMAGES_PODS names; an unknown name is a one-line error. */
function chosenPods(): PodName[] {
  const raw = process.env[PODS_ENV]?.trim();
  if (!raw) return [...POD_NAMES];
  const names = raw.split(',').map((n) => n.trim());
  for (const n of names) if (!(POD_NAMES as readonly string[]).includes(n)) throw new Error(`${PODS_ENV}: unknown pod "${n}"; the pods are ${POD_NAMES.join(', ')}`);
  return names as PodName[];
}

/** Synthesize a pod's chart and plan it; the static main is compiled into `contextDir` first. */
async function podCase(steps: Steps, name: PodName, mode: SidecarMode | undefined, contextDir: () => string): Promise<PodCase> {
  const version = libVersion();
  const modeNote = mode ? `${MODE_ENV}=${mode}: ` : '';
  if (name === 'default') {
    return steps.run('synthesize the default chart (main.ts buildApp → synthYaml)', async () => {
      const docs = parseAllDocuments(buildApp({ outdir: undefined, env: mode ? { [MODE_ENV]: mode } : {} }).synthYaml()).map((d) => d.toJS() as unknown);
      const plan = planOf(docs, ourImages(version));
      return { value: { plan, welcome: WELCOME_TEXT }, detail: `${modeNote}${describePlan(plan)}` };
    });
  }
  const staticSource = await compileStaticMain(steps, contextDir());
  return steps.run('synthesize SidecarApp in front of the static main (tools/images/static-main.ts)', async () => {
    const sources = { ...ourImages(version), [STATIC_MAIN_IMAGE]: staticSource };
    const plan = planOf(staticMainManifest(version, mode), sources);
    return { value: { plan, welcome: STATIC_MAIN_WELCOME }, detail: `${modeNote}${describePlan(plan)}` };
  });
}

/** Build, start, check and stop one pod; a failed step ends the run there. */
async function run(steps: Steps, { plan, welcome }: PodCase, pod: PodRun, built: Set<string>): Promise<void> {
  // Before the builds, so a busy port fails in a second, not after a minute of npm ci.
  await checkPorts(steps, plan);
  await buildImages(steps, plan, { baseImage: process.env.BASE_IMAGE, verbose: process.env.TEST_IMAGES_VERBOSE === '1' }, built);
  const token = randomBytes(24).toString('base64url');
  await pod.start(token);
  try {
    await pod.waitReady();
    await checkRequests(steps, plan, token, welcome);
  } finally {
    // Stop it even when a check failed, so the logs show the whole life of the containers.
    if (pod.started.length === plan.containers.length) await stopPod(steps, plan, pod.started).catch(() => undefined);
  }
}

async function main(): Promise<number> {
  let pods: PodName[];
  let mode: SidecarMode | undefined;
  try {
    pods = chosenPods();
    mode = parseSidecarMode(process.env[MODE_ENV]);
  } catch (err) {
    console.error(`test:images: ${(err as Error).message}`);
    return 2;
  }
  log(`test:images: build the images and run them as the synthesized manifests run them (repo ${REPO_ROOT})`);
  const steps = new Steps();
  const built = new Set<string>();
  const tempDirs: string[] = [];
  let pod: PodRun | undefined;
  const cleanup = async () => {
    await pod?.cleanup();
    for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  };
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`\n${sig}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await checkDaemon(steps);
    for (const name of pods) {
      log(`\n==== pod ${name} ====`);
      const podCaseOf = await podCase(steps, name, mode, () => {
        const dir = staticMainContextDir();
        tempDirs.push(dir);
        return dir;
      });
      pod = new PodRun(steps, podCaseOf.plan, `${name}-${process.pid}-${randomBytes(3).toString('hex')}`);
      try {
        await run(steps, podCaseOf, pod, built);
      } finally {
        await pod.printLogs();
        await pod.cleanup();
      }
    }
  } catch (err) {
    steps.unexpected(err);
  } finally {
    await cleanup();
  }
  return steps.summary('test:images');
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
