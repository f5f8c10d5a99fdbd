/**
 * The second pod of `npm run test:images`: SidecarApp in front of a main that is not ours, in an
 * image with no shell, no `sleep` and no Node (test/fixtures/static-main: one static C binary FROM
 * scratch, started by its own command, its own readiness path, no contract env). The binary is
 * compiled on this machine (`cc -static`, CC is honoured) into a temp build context.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { parseAllDocuments } from 'yaml';
import { SidecarApp, SidecarMode } from '../../lib/src';
import { ImageSource } from './plan';
import { TOKEN_NAME } from './pod-run';
import { Steps } from './steps';
import { REPO_ROOT } from '../repo-root';

export const STATIC_MAIN_IMAGE = 'sidecar-app-test-static-main:local';
const FIXTURE_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'static-main');
const PORT = 8080;
const READY_PATH = '/status';

/** What main answers through the sidecar to the run's token: the subject the sidecar vouched for. */
export const STATIC_MAIN_WELCOME = `Hello from a static binary, ${TOKEN_NAME}\n`;

/** The manifest: SidecarApp's defaults, but for main's image, command, port and readiness probe. */
export function staticMainManifest(version: string, mode: SidecarMode | undefined): unknown[] {
  const app = new App();
  const chart = new Chart(app, 'static-main');
  new SidecarApp(chart, 'static-main', {
    main: { image: STATIC_MAIN_IMAGE, command: ['/static-main'], args: [String(PORT)], port: PORT, readiness: kplus.Probe.fromHttpGet(READY_PATH, { port: PORT }) },
    sidecar: { image: `sidecar-app-sidecar:${version}` },
    ...(mode ? { sidecarMode: mode } : {}),
  });
  return parseAllDocuments(app.synthYaml()).map((d) => d.toJS() as unknown);
}

/** Compile main.c statically into `dir` beside its Dockerfile: the image's build context. */
export function compileStaticMain(steps: Steps, dir: string): Promise<ImageSource> {
  const cc = process.env.CC ?? 'cc';
  const out = path.join(dir, 'static-main');
  const args = ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', out, path.join(FIXTURE_DIR, 'main.c')];
  return steps.run(`compile test/fixtures/static-main/main.c (${cc} ${args.slice(0, 5).join(' ')})`, async () => {
    await new Promise<void>((resolve, reject) =>
      execFile(cc, args, (err, _stdout, stderr) => (err ? reject(new Error(`${cc} failed: ${stderr.trim() || err.message} (a C compiler with a static libc is needed: apt-get install gcc libc6-dev)`)) : resolve())),
    );
    fs.copyFileSync(path.join(FIXTURE_DIR, 'Dockerfile'), path.join(dir, 'Dockerfile'));
    const source: ImageSource = { dockerfile: path.join(dir, 'Dockerfile'), context: dir, takesBaseImage: false };
    return { value: source, detail: `${out}, ${(fs.statSync(out).size / 1e3).toFixed(0)} kB` };
  });
}

/** A temp dir for the build context; the caller removes it. */
export const staticMainContextDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'test-images-static-main-'));
