/**
 * Building the pod's images with the legacy builder (DOCKER_BUILDKIT=0, --network host: it works
 * with a daemon that has no bridge), tagged as the manifest's images.
 */
import { docker, dockerOk } from './docker';
import { ImageSource, Plan, sourceOf } from './plan';
import { Steps, indent, log } from './steps';

/** The Dockerfiles' `ARG BASE_IMAGE` default. */
const DEFAULT_BASE_IMAGE = 'node:24-bookworm-slim';

export interface BuildOptions {
  /** Passed as --build-arg BASE_IMAGE; unset: the Dockerfiles' default. */
  readonly baseImage?: string;
  /** Print the whole build output, not only the Dockerfile steps. */
  readonly verbose?: boolean;
}

/** Reports whether the base image is here already (if not, the build pulls it). */
async function reportBaseImage(steps: Steps, base: string | undefined): Promise<void> {
  await steps.run(`base image ${base ?? `${DEFAULT_BASE_IMAGE} (the Dockerfiles' default)`} is present`, async () => {
    const ref = base ?? DEFAULT_BASE_IMAGE;
    const r = await docker(['image', 'inspect', '--format', '{{.Id}} {{.Comment}}', ref]);
    if (r.code === 0) {
      const [id, ...comment] = r.stdout.trim().split(' ');
      return { value: undefined, detail: `${ref} ${id.slice(0, 19)}${comment.length ? ` (${comment.join(' ')})` : ''}` };
    }
    return { value: undefined, detail: `${ref} is not here yet: docker build will pull it (offline: scripts/images/stand-in-base.sh builds a stand-in)` };
  });
}

async function buildImage(steps: Steps, source: ImageSource, image: string, opts: BuildOptions): Promise<void> {
  const baseArg = opts.baseImage && source.takesBaseImage ? ['--build-arg', `BASE_IMAGE=${opts.baseImage}`] : [];
  const args = ['build', '--network', 'host', '-f', source.dockerfile, '-t', image, ...baseArg, source.context];
  await steps.run(`build ${image} (DOCKER_BUILDKIT=0 docker ${args.join(' ')})`, async () => {
    const r = await docker(args, {
      env: { DOCKER_BUILDKIT: '0' },
      // The Dockerfile's steps are the progress report; everything else only when verbose.
      onLine: (line) => {
        if (opts.verbose || /^Step \d+\/\d+ :/.test(line)) log(`    | ${line}`);
      },
    });
    if (r.code !== 0) {
      const lines = `${r.stdout}\n${r.stderr}`.trim().split('\n');
      const firstError = lines.find((l) => /\berror\b|ERR!/i.test(l))?.trim();
      throw new Error(`docker build exited ${r.code}${firstError ? `: ${firstError}` : ''}; last lines:\n${indent(lines.slice(-40).join('\n'), '    | ')}`);
    }
    const info = await dockerOk(['image', 'inspect', '--format', '{{.Id}} {{.Size}} {{.Config.User}}', image], 'inspect the image');
    const [id, size, user] = info.split(' ');
    return { value: undefined, detail: `${image} ${id.slice(0, 19)}, ${(Number(size) / 1e6).toFixed(0)} MB, USER ${user || '(none)'}` };
  });
}

/**
 * The base image's presence (if a Dockerfile takes it), then each container's image from its source;
 * an image in `built` (one an earlier pod of this run built) is not built again.
 */
export async function buildImages(steps: Steps, plan: Plan, opts: BuildOptions = {}, built: Set<string> = new Set()): Promise<void> {
  const todo = plan.containers.filter((c) => !built.has(c.image!));
  if (todo.some((c) => sourceOf(plan, c).takesBaseImage)) await reportBaseImage(steps, opts.baseImage);
  for (const c of todo) {
    await buildImage(steps, sourceOf(plan, c), c.image!, opts);
    built.add(c.image!);
  }
}
