/**
 * `npm run start:main` / `start:sidecar`: one app in the foreground, on the Node the images ship
 * (tools/app-node.ts), with this terminal's env and stdio. Ctrl-C and SIGTERM reach the app, which
 * drains as in a pod; this process exits with the app's status.
 */
import { spawn } from 'child_process';
import * as os from 'os';
import { appsNode } from './app-node';
import { APP_NAMES, entryOf, isAppName } from './apps';

const name = process.argv[2] ?? '';
if (!isAppName(name)) {
  console.error(`usage: run-app <${APP_NAMES.join('|')}>, got ${JSON.stringify(name)}`);
  process.exit(2);
}
const child = spawn(appsNode(), [entryOf(name), ...process.argv.slice(3)], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  process.exitCode = code ?? 128 + (signal === null ? 0 : os.constants.signals[signal]);
});
