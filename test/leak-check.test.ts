/**
 * The suite's jest environment (test/support/no-leaked-handles-environment.js) fails a test file that
 * leaves a handle open, the kind that kept a jest worker alive until it was killed; and passes one
 * that closes what it opened. jest runs the two fixtures in test/fixtures/leaks/ in two workers, with
 * a fresh cache (jest runs files in band when it knows them to be fast, and the check is the workers').
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { REPO_ROOT } from '../tools/repo-root';

const JEST = path.join(REPO_ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'leaks');

test('a file that leaves its server open fails, naming it; a file that closes it passes', async () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'leak-check-cache-'));
  try {
    const output = await new Promise<string>((resolve) => {
      execFile(
        process.execPath,
        [JEST, '--ci', '--config', path.join(FIXTURES, 'jest.config.js'), '--cacheDirectory', cache],
        { cwd: FIXTURES, env: { ...process.env, JEST_LEAK_DEADLINE_MS: '2000' }, timeout: 150_000 },
        (_err, stdout, stderr) => resolve(stdout + stderr),
      );
    });
    expect(output).toMatch(/FAIL .*leaks-a-server\.test\.js/);
    expect(output).toMatch(/leaks-a-server\.test\.js left handles open 2 s after its last hook: TCPServerWrap ×1/);
    expect(output).toMatch(/PASS .*closes-its-server\.test\.js/);
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}, 180_000);
