/**
 * The manifest drives a real run. The default chart is synthesized in memory, the YAML text parsed back,
 * and its pod started by the local pod runner (tools/pod/) exactly as written (env, args, ports, probes,
 * mounts; only the bind address is 127.0.0.1). Then every probe, the Service's ports and the authenticated
 * path are checked.
 * The manifest uses the fixed ports 8080/8081/9091, so the cases here run one at a time and each stops its pod.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { WELCOME_TEXT } from '../apps/main/src/app';
import { ADDRESSES, CONTAINER_NAMES, MAIN_ENV, SIDECAR_ENV, TOKENS_MOUNT_PATH } from '../lib/src/contract';
import { buildApp, MODE_CONTEXT } from '../main';
import { assertChecksPass, Deployment, findDeployment, findService, httpGet, podContainers, RunningPod, runSidecarAppPod, secretNamesOf, Service, verifySidecarAppPod } from '../tools/pod';
import { REPO_ROOT } from '../tools/repo-root';
import { EVENT_TIMEOUT_MS, START_TIMEOUT_MS } from '../tools/waits';
import { until } from './support/http';

const TOKEN_NAME = 'e2e';
const TOKEN = 'e2e-token-4f9c2a7d1b8e6035a9c1';

/** A fresh parse of the synthesized YAML: each case may mutate its own copy. */
function synthesize(context: Record<string, string> = {}): { deployment: Deployment; service: Service } {
  const yamlText = buildApp({ context }).synthYaml();
  const docs = parseAllDocuments(yamlText).map((d) => d.toJS());
  return { deployment: findDeployment(docs), service: findService(docs) };
}

const containerOf = (deployment: Deployment, name: string) => podContainers(deployment.spec.template.spec).find((c) => c.name === name)!;

let pod: RunningPod | undefined;
afterEach(async () => {
  await pod?.stop('kill');
  pod = undefined;
});

/**
 * A pod meant never to get ready waits this long for readiness: that wait is the whole case, so it is
 * short; its failure names every container that did not get ready, so the expected one is named
 * however far a busy machine got with the others.
 */
const NEVER_READY_MS = 2_500;

/** Run the pod and check it; rejects listing every mismatch, resolves with what each check found. */
async function runAndVerify(deployment: Deployment, service: Service, readyTimeoutMs?: number): Promise<string[]> {
  const secrets = Object.fromEntries(secretNamesOf(deployment).map((name) => [name, { [TOKEN_NAME]: TOKEN }]));
  pod = await runSidecarAppPod(deployment, { secrets, readyTimeoutMs });
  const report = await verifySidecarAppPod(deployment, service, pod, { token: TOKEN, expectedBody: WELCOME_TEXT });
  assertChecksPass(report.checks);
  return report.checks.map((c) => c.detail);
}

describe('e2e: the synthesized manifest, run locally', () => {
  test('every probe, every Service port and the authenticated path work as the manifest says', async () => {
    const { deployment, service } = synthesize();
    const checked = await runAndVerify(deployment, service);

    const containers = deployment.spec.template.spec.containers;
    const probes = containers.flatMap((c) => (['startupProbe', 'readinessProbe', 'livenessProbe'] as const).filter((k) => c[k]).map((k) => `container ${c.name} ${k}`));
    // The chart declares readiness and liveness on both containers; each was asked and answered 200.
    expect(probes.length).toBeGreaterThanOrEqual(4);
    for (const probe of probes) expect(checked.some((c) => c.startsWith(probe) && c.endsWith('-> 200'))).toBe(true);
    for (const sp of service.spec.ports) expect(checked.some((c) => c.startsWith(`Service port ${sp.name ?? sp.port} -> container`))).toBe(true);
    expect(checked).toContain(`GET / with the token through port ${containerOf(deployment, CONTAINER_NAMES.sidecar).ports![0].containerPort} -> 200 main page`);
    expect(checked.some((c) => /without a token .* -> 401$/.test(c))).toBe(true);

    // The Secret mount became a kubelet-style folder, and the sidecar was pointed at it.
    const sidecar = pod!.containers[CONTAINER_NAMES.sidecar];
    const tokensDir = sidecar.env[SIDECAR_ENV.tokensDir];
    expect(containerOf(deployment, CONTAINER_NAMES.sidecar).env!.find((e) => e.name === SIDECAR_ENV.tokensDir)!.value).toBe(TOKENS_MOUNT_PATH);
    expect(tokensDir).not.toBe(TOKENS_MOUNT_PATH);
    expect(fs.lstatSync(path.join(tokensDir, '..data')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(tokensDir, TOKEN_NAME), 'utf8')).toBe(TOKEN);

    // The main service saw the identity the sidecar asserted: the token's name, never the token.
    const main = pod!.containers[CONTAINER_NAMES.main];
    const served = () => main.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.path === '/');
    // Main writes its log asynchronously: its line may land after the answer did.
    await until("main's access line", () => served().length > 0);
    expect(served().map((l) => l.subject)).toEqual([TOKEN_NAME]);
    expect([...main.lines, ...sidecar.lines].join('\n')).not.toContain(TOKEN);
  });

  // Each mutation is one way the manifest and the apps can drift apart; the check must catch it.
  // The fourth field: how long to wait for readiness, short for drifts that keep the pod from getting
  // ready (in every row: jest.each would take a missing one for a done callback).
  const drifts: [string, (d: Deployment, s: Service) => void, RegExp, number | undefined][] = [
    [
      'an env var name the app does not read',
      (d) => {
        containerOf(d, CONTAINER_NAMES.sidecar).env!.find((e) => e.name === SIDECAR_ENV.upstream)!.name = 'SIDECAR_UPSTREAM_URL';
      },
      // The sidecar itself refuses an unknown SIDECAR_* name at start-up, before the runner's own env check.
      /container sidecar exited with 2 before it was ready; output:\nsidecar: SIDECAR_UPSTREAM_URL: is not a setting of the sidecar; did you mean SIDECAR_UPSTREAM\?/,
      undefined,
    ],
    [
      'a readiness probe path the app does not serve',
      (d) => {
        containerOf(d, CONTAINER_NAMES.main).readinessProbe!.httpGet!.path = '/nope';
      },
      /container main readinessProbe \(GET \/nope on port \d+\) did not pass/,
      NEVER_READY_MS,
    ],
    [
      'a liveness probe path the app does not serve',
      (d) => {
        containerOf(d, CONTAINER_NAMES.sidecar).livenessProbe!.httpGet!.path = '/nope';
      },
      /container sidecar livenessProbe: GET \/nope on port \d+ answered 404, not 200/,
      undefined,
    ],
    [
      'a container port nobody listens on',
      (d) => {
        containerOf(d, CONTAINER_NAMES.main).ports![0].containerPort = 18080;
      },
      /container main: port 18080 \(main-http\) is declared, but the process listens on \[8080\]/,
      undefined,
    ],
    [
      'a Service targetPort that reaches no container port',
      (_d, s) => {
        s.spec.ports.find((p) => Number(p.targetPort) === 8081)!.targetPort = 8082;
      },
      /Service port \S+: targetPort 8082 is not a port declared by any container/,
      undefined,
    ],
    [
      'the tokens Secret not mounted where the env says',
      (d) => {
        containerOf(d, CONTAINER_NAMES.sidecar).volumeMounts = [];
      },
      /container sidecar (readinessProbe .* did not pass|exited with)/,
      NEVER_READY_MS,
    ],
  ];

  test.each(drifts)('drift is caught: %s', async (_name, mutate, expected, readyTimeoutMs) => {
    const { deployment, service } = synthesize();
    mutate(deployment, service);
    await expect(runAndVerify(deployment, service, readyTimeoutMs)).rejects.toThrow(expected);
  });

  test('a port of the pod already taken fails before anything starts, naming the port and container', async () => {
    const { deployment } = synthesize();
    const sidecarPort = containerOf(deployment, CONTAINER_NAMES.sidecar).ports![0].containerPort;
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(sidecarPort, ADDRESSES.loopback, r));
    try {
      const secrets = Object.fromEntries(secretNamesOf(deployment).map((name) => [name, { [TOKEN_NAME]: TOKEN }]));
      await expect(runSidecarAppPod(deployment, { secrets })).rejects.toThrow(`port ${sidecarPort} of container sidecar is already in use`);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });

  test('stopping like the kubelet runs preStop, then SIGTERM, and both apps exit 0 within the grace period', async () => {
    const { deployment } = synthesize();
    // Shorter timings than the chart's (which add up to ~15 s); the sequence is what is under test.
    const setEnv = (container: string, name: string, value: string) => {
      containerOf(deployment, container).env!.find((e) => e.name === name)!.value = value;
    };
    setEnv(CONTAINER_NAMES.main, MAIN_ENV.drainDelayMs, '300');
    setEnv(CONTAINER_NAMES.sidecar, SIDECAR_ENV.drainDelayMs, '200');
    for (const c of deployment.spec.template.spec.containers) c.lifecycle = { preStop: { exec: { command: ['sleep', '0.5'] } } };
    const secrets = Object.fromEntries(secretNamesOf(deployment).map((name) => [name, { [TOKEN_NAME]: TOKEN }]));
    pod = await runSidecarAppPod(deployment, { secrets });
    const main = pod.containers[CONTAINER_NAMES.main];
    const started = Date.now();
    const codes = await pod.stop('kubelet');
    const elapsed = Date.now() - started;
    expect(codes).toEqual({ [CONTAINER_NAMES.main]: 0, [CONTAINER_NAMES.sidecar]: 0 });
    // preStop (500 ms) ran before the drain (300 ms) began.
    expect(elapsed).toBeGreaterThanOrEqual(800);
    expect(elapsed).toBeLessThan((deployment.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000);
    const draining = main.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'shutdown: draining');
    expect(Number(draining?.time)).toBeGreaterThanOrEqual(started + 450);
    pod = undefined;
  });

  test('npm start prints a curl line that works, and Ctrl-C stops the pod', async () => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'build', 'scripts', 'local-pod.js')], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const printed = await new Promise<string>((resolve, reject) => {
        // Two apps to start and get ready: twice what one start may take.
        const timer = setTimeout(() => reject(new Error(`npm start printed no curl line; output:\n${output}`)), 2 * START_TIMEOUT_MS);
        const onData = (c: Buffer) => {
          output += c;
          if (output.includes('Ctrl-C stops')) (clearTimeout(timer), resolve(output));
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        void exited.then((code) => reject(new Error(`npm start exited with ${code}; output:\n${output}`)));
      });
      const curl = /curl -H "Authorization: Bearer (\S+)" http:\/\/127\.0\.0\.1:(\d+)\//.exec(printed);
      expect(curl).not.toBeNull();
      const [, token, port] = curl!;
      expect(await httpGet(Number(port), '/', { Authorization: `Bearer ${token}` })).toMatchObject({ status: 200, body: WELCOME_TEXT });
      expect((await httpGet(Number(port), '/')).status).toBe(401);

      // Ctrl-C starts the drain; a second one kills at once (the full drain of the chart takes 10 s).
      child.kill('SIGINT');
      await new Promise<void>((resolve, reject) => {
        const giveUp = Date.now() + EVENT_TIMEOUT_MS;
        const check = () => {
          if (output.includes('stopping the pod')) resolve();
          else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`npm start died on Ctrl-C (${child.exitCode ?? child.signalCode}); output:\n${output}`));
          else if (Date.now() > giveUp) reject(new Error(`npm start did not react to Ctrl-C; output:\n${output}`));
          else setTimeout(check, 20);
        };
        check();
      });
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      // Both apps are gone: the sidecar's port can be bound again.
      const probe = net.createServer();
      await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(Number(port), ADDRESSES.loopback, resolve));
      await new Promise((r) => probe.close(r));
    } finally {
      // SIGKILL would orphan the apps (own process group); ask twice so the runner kills them itself.
      for (const delayMs of [0, 300]) {
        await new Promise((r) => setTimeout(r, delayMs));
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      }
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (bound = setTimeout(r, EVENT_TIMEOUT_MS)))]);
      clearTimeout(bound);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

/** JSON log lines of a container. */
const logsOf = (pod: RunningPod, name: string) =>
  pod.containers[name].lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });

describe('e2e: native-sidecar mode, run locally in KEP-753 order', () => {
  const native = { [MODE_CONTEXT]: 'native' };

  test('the sidecar starts first, main once its startup probe passes; every check passes', async () => {
    const { deployment, service } = synthesize(native);
    const spec = deployment.spec.template.spec;
    expect(spec.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([[CONTAINER_NAMES.sidecar, 'Always']]);
    expect(spec.containers.map((c) => c.name)).toEqual([CONTAINER_NAMES.main]);
    const checked = await runAndVerify(deployment, service);
    expect(checked.some((c) => c.startsWith(`container ${CONTAINER_NAMES.sidecar} startupProbe`) && c.endsWith('-> 200'))).toBe(true);
    expect(checked.some((c) => /without a token .* -> 401$/.test(c))).toBe(true);
    // Main was started only after the sidecar served: its first line comes after the sidecar's "listening".
    const sidecarListening = Number(logsOf(pod!, CONTAINER_NAMES.sidecar).find((l) => l.msg === 'listening')?.time);
    const mainFirst = Number(logsOf(pod!, CONTAINER_NAMES.main)[0]?.time);
    expect(sidecarListening).toBeLessThan(mainFirst);
  });

  test("stopping like the kubelet: main's preStop drains and closes the sidecar, then main stops, then the sidecar; both exit 0", async () => {
    const { deployment } = synthesize(native);
    // Shorter timings than the chart's; the order is what is under test.
    const main = containerOf(deployment, CONTAINER_NAMES.main);
    expect(main.lifecycle?.preStop?.httpGet?.path).toBe('/drain?ms=5000');
    main.lifecycle!.preStop!.httpGet!.path = '/drain?ms=300';
    main.env!.find((e) => e.name === MAIN_ENV.drainDelayMs)!.value = '300';
    const secrets = Object.fromEntries(secretNamesOf(deployment).map((name) => [name, { [TOKEN_NAME]: TOKEN }]));
    pod = await runSidecarAppPod(deployment, { secrets });
    const running = pod;
    const started = Date.now();
    const codes = await running.stop('kubelet');
    expect(codes).toEqual({ [CONTAINER_NAMES.main]: 0, [CONTAINER_NAMES.sidecar]: 0 });
    expect(Date.now() - started).toBeLessThan((deployment.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000);

    const sidecarLogs = logsOf(running, CONTAINER_NAMES.sidecar);
    const at = (logs: Record<string, unknown>[], pred: (l: Record<string, unknown>) => boolean) => Number(logs.find(pred)?.time);
    const proxyClosed = at(sidecarLogs, (l) => l.phase === 'closed');
    const sidecarExit = at(sidecarLogs, (l) => l.phase === 'exit');
    const mainDraining = at(logsOf(running, CONTAINER_NAMES.main), (l) => l.msg === 'shutdown: draining');
    // The drain hook ran its drain (300 ms) and closed the proxy before main got SIGTERM ...
    expect(proxyClosed).toBeGreaterThanOrEqual(started + 250);
    expect(mainDraining).toBeGreaterThanOrEqual(proxyClosed);
    // ... and the sidecar got its SIGTERM only after main's drain (300 ms) was over.
    expect(sidecarExit).toBeGreaterThanOrEqual(mainDraining + 250);
    pod = undefined;
  });
});
