/**
 * `npm run test:images`: build both images and run them the way the synthesized manifest runs them.
 *
 * Needs a Docker daemon on this machine (`docker info` must answer; DOCKER_HOST is honoured). Not part
 * of `npm test`. Steps (the runner is tools/images/):
 *   1. synthesize the default chart in memory (main.ts buildApp → synthYaml), take the Deployment;
 *   2. build apps/main and apps/sidecar with the legacy builder (DOCKER_BUILDKIT=0, --network host),
 *      tagged as the manifest's images (sidecar-app-<app>:<lib version>);
 *   3. run both with --read-only --user <runAsUser>:<runAsGroup> --cap-drop ALL
 *      --security-opt no-new-privileges --network host and each container's env from the manifest;
 *      the tokens Secret is a temp dir in the kubelet layout, bind-mounted read-only, and
 *      SIDECAR_TOKENS_DIR is rewritten to it;
 *   4. check 401 without a token, 200 + WELCOME_TEXT with one, /readyz 200 on the admin port;
 *   5. stop as the kubelet does: each preStop hook, then SIGTERM; every container must exit 0 within
 *      the manifest's terminationGracePeriodSeconds.
 * Prints every step and a PASS/FAIL summary; exits 1 on any failure. Removes its containers and temp dir.
 *
 * Environment:
 *   BASE_IMAGE            passed as --build-arg BASE_IMAGE (default: the Dockerfiles' node:24-bookworm-slim)
 *   TEST_IMAGES_VERBOSE=1 stream the whole docker build output
 *   SIDECAR_APP_SIDECAR_MODE synthesize with that sidecar mode (e.g. native) instead of the default
 * See docs/images.md.
 */
import { randomBytes } from 'crypto';
import { parseAllDocuments } from 'yaml';
import { WELCOME_TEXT } from '../apps/main/src/app';
import { MODE_ENV, buildApp } from '../main';
import { Plan, PodRun, Steps, buildImages, checkDaemon, checkPorts, checkRequests, describePlan, libVersion, log, planOf, stopPod } from '../tools/images';
import { REPO_ROOT } from '../tools/repo-root';

/** The default chart, whatever SIDECAR_APP_*_IMAGE this shell has set; only the sidecar mode is taken from it. */
function synthesize(steps: Steps): Promise<Plan> {
  return steps.run('synthesize the default chart (main.ts buildApp → synthYaml)', async () => {
    const mode = process.env[MODE_ENV];
    const docs = parseAllDocuments(buildApp({ outdir: undefined, env: mode ? { [MODE_ENV]: mode } : {} }).synthYaml()).map((d) => d.toJS() as unknown);
    const plan = planOf(docs, libVersion());
    return { value: plan, detail: `${mode ? `${MODE_ENV}=${mode}: ` : ''}${describePlan(plan)}` };
  });
}

/** Start the pod, check it, stop it; a failed step ends the run there. */
async function run(steps: Steps, plan: Plan, pod: PodRun): Promise<void> {
  await checkDaemon(steps);
  // Before the builds, so a busy port fails in a second, not after a minute of npm ci.
  await checkPorts(steps, plan);
  await buildImages(steps, plan, { baseImage: process.env.BASE_IMAGE, verbose: process.env.TEST_IMAGES_VERBOSE === '1' });
  const token = randomBytes(24).toString('base64url');
  await pod.start(token);
  try {
    await pod.waitReady();
    await checkRequests(steps, plan, token, WELCOME_TEXT);
  } finally {
    // Stop it even when a check failed, so the logs show the whole life of the containers.
    if (pod.started.length === plan.containers.length) await stopPod(steps, plan, pod.started).catch(() => undefined);
  }
}

async function main(): Promise<number> {
  log(`test:images: build the images and run them as the synthesized manifest runs them (repo ${REPO_ROOT})`);
  const steps = new Steps();
  let pod: PodRun | undefined;
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`\n${sig}: cleaning up`);
    void (pod?.cleanup() ?? Promise.resolve()).then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const plan = await synthesize(steps);
    pod = new PodRun(steps, plan, `${process.pid}-${randomBytes(3).toString('hex')}`);
    await run(steps, plan, pod);
  } catch (err) {
    steps.unexpected(err);
  } finally {
    await pod?.printLogs();
    await pod?.cleanup();
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
