/**
 * `npm start`: run the pod that main.ts synthesizes, locally, with the same runner as the e2e test.
 * Both apps run as processes on 127.0.0.1, wired exactly as the manifest wires them, with a
 * development tokens Secret holding one random token. Ctrl-C stops the pod.
 */
import { randomBytes } from 'crypto';
import { parseAllDocuments } from 'yaml';
import { WELCOME_TEXT } from '../apps/main/src/app';
import { ADDRESSES, CONTAINER_NAMES } from '../lib/src/contract';
import { buildApp } from '../main';
import { assertChecksPass, findDeployment, findService, podContainers, runSidecarAppPod, secretNamesOf, verifySidecarAppPod } from '../tools/pod';

/** Name of the token file in the development Secret; the sidecar reports it as X-Auth-Subject. */
const DEV_TOKEN_NAME = 'dev';

async function main(): Promise<void> {
  // The same YAML `cdk8s synth` writes to dist/, synthesized in memory.
  const docs = parseAllDocuments(buildApp({ outdir: undefined }).synthYaml()).map((d) => d.toJS());
  const deployment = findDeployment(docs);
  const service = findService(docs);
  const token = randomBytes(24).toString('base64url');
  const secrets = Object.fromEntries(secretNamesOf(deployment).map((name) => [name, { [DEV_TOKEN_NAME]: token }]));
  const width = Math.max(...Object.values(CONTAINER_NAMES).map((n) => n.length));

  console.log(`starting the ${deployment.metadata?.name ?? ''} pod locally: containers ${podContainers(deployment.spec.template.spec).map((c) => c.name).join(', ')}`);
  const pod = await runSidecarAppPod(deployment, { secrets, onLine: (name, line) => console.log(`[${name.padEnd(width)}] ${line}`) });
  let stopping: Promise<unknown> | undefined;
  let forced = false;
  const shutdown = (why: string, exitCode: number) => {
    if (stopping) {
      forced = true;
      console.log('killing the pod now');
      void pod.stop('kill').then(() => process.exit(130));
      return;
    }
    console.log(`${why}: stopping the pod (SIGTERM; the apps drain as configured)`);
    stopping = pod.stop('sigterm').then((codes) => {
      if (forced) return;
      console.log(`stopped: ${Object.entries(codes).map(([n, c]) => `${n} exited ${c}`).join(', ')}`);
      process.exit(exitCode);
    });
  };
  // Before the checks and the "Try it" lines: whoever reads them may press Ctrl-C at once, and a
  // signal without a handler would kill this runner and orphan the containers (own process group).
  process.on('SIGINT', () => shutdown('Ctrl-C', 0));
  process.on('SIGTERM', () => shutdown('SIGTERM', 0));

  const report = await verifySidecarAppPod(deployment, service, pod, { token, expectedBody: WELCOME_TEXT });
  assertChecksPass(report.checks);
  const sidecarUrl = `http://${ADDRESSES.loopback}:${report.sidecarPort}/`;
  const tokensDirs = Object.entries(pod.volumes).map(([name, dir]) => `  volume ${name}: ${dir}`);
  console.log(
    [
      '',
      'The pod is up; the manifest checks passed:',
      ...report.checks.map((c) => `  ok  ${c.detail}`),
      '',
      'Volumes (kubelet layout; rotate a Secret by swapping its ..data symlink):',
      ...tokensDirs,
      '',
      'Try it:',
      `  curl -H "Authorization: Bearer ${token}" ${sidecarUrl}`,
      `  curl -i ${sidecarUrl}        # 401`,
      '',
      'Ctrl-C stops both containers (SIGTERM, then the apps drain); Ctrl-C again kills them.',
      '',
    ].join('\n'),
  );

  void pod.firstExit.then(({ name, code }) => {
    if (!stopping) shutdown(`container ${name} exited with ${code}`, 1);
  });
}

main().catch((err: Error) => {
  console.error(`npm start: ${err.message}`);
  process.exit(1);
});
