/**
 * The plan `npm run test:images` takes from a manifest (tools/images/plan.ts), for both of its pods:
 * the default chart, built from our Dockerfiles, and SidecarApp in front of the static C main
 * (tools/images/static-main.ts), whose image no Dockerfile of ours builds. No Docker here: only what
 * the run would build and start, read from the synthesized manifests.
 */
import { parseAllDocuments } from 'yaml';
import { CONTAINER_NAMES } from '../lib/src/contract';
import { SidecarMode } from '../lib/src';
import { buildApp } from '../main';
import { STATIC_MAIN_IMAGE, libVersion, ourImages, planOf, sourceOf, staticMainManifest } from '../tools/images';

const version = libVersion();
const defaultDocs = () => parseAllDocuments(buildApp({ outdir: undefined, env: {} }).synthYaml()).map((d) => d.toJS() as unknown);
const staticSources = { ...ourImages(version), [STATIC_MAIN_IMAGE]: { dockerfile: '/ctx/Dockerfile', context: '/ctx', takesBaseImage: false } };

describe('the test:images plan', () => {
  test('the default chart builds both containers from our Dockerfiles, with BASE_IMAGE', () => {
    const plan = planOf(defaultDocs(), ourImages(version));
    expect(plan.containers.map((c) => [c.name, sourceOf(plan, c)])).toEqual(
      expect.arrayContaining([
        [CONTAINER_NAMES.main, { dockerfile: 'apps/main/Dockerfile', context: '.', takesBaseImage: true }],
        [CONTAINER_NAMES.sidecar, { dockerfile: 'apps/sidecar/Dockerfile', context: '.', takesBaseImage: true }],
      ]),
    );
  });

  test.each([undefined, SidecarMode.NATIVE])('the static main (sidecar mode %s): its own command, probe path and no contract env; preStop is an httpGet', (mode) => {
    const plan = planOf(staticMainManifest(version, mode), staticSources);
    const main = plan.containers.find((c) => c.name === CONTAINER_NAMES.main)!;
    expect(main.image).toBe(STATIC_MAIN_IMAGE);
    expect(main.command).toEqual(['/static-main']);
    expect(main.args).toEqual(['8080']);
    expect(main.readinessProbe?.httpGet?.path).toBe('/status');
    expect((main.env ?? []).map((e) => e.name).filter((n) => n.startsWith('MAIN_'))).toEqual([]);
    // The image has no shell and no `sleep`: no container's hook may exec one.
    for (const c of plan.containers) expect((c as { lifecycle?: { preStop?: { exec?: unknown } } }).lifecycle?.preStop?.exec).toBeUndefined();
    expect(plan.nativeSidecars.has(CONTAINER_NAMES.sidecar)).toBe(mode === SidecarMode.NATIVE);
  });

  test('an image the run cannot build is refused, naming the container and the images it can build', () => {
    expect(() => planOf(staticMainManifest(version, undefined), ourImages(version))).toThrow(
      `container ${CONTAINER_NAMES.main} runs image ${STATIC_MAIN_IMAGE}, which this run cannot build; it builds sidecar-app-`,
    );
  });
});
