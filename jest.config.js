/** @type {import('jest').Config} */
module.exports = {
  // node, plus a check that each file leaves no handle open that would keep a worker alive.
  testEnvironment: '<rootDir>/test/support/no-leaked-handles-environment.js',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  transform: {
    // isolatedModules comes from tsconfig.json (transpile only; tsc --noEmit does the type check).
    '^.+\\.ts$': 'ts-jest',
  },
  // Snapshots live at the top level, as the project layout asks: __snapshots__/sidecar-app.test.ts.snap.
  snapshotResolver: '<rootDir>/test/snapshot-resolver.js',
  // A safety net for a hang, not a speed limit: the suite must pass on a busy machine (load 10+ on
  // 2 cores), where one test can take many times its idle time. The tests' own deadlines
  // (tools/waits.ts) are shorter, so a failure shows what did not happen rather than this timeout.
  testTimeout: 120000,
  // The app tests start real processes; two workers match the 2-core CI machine.
  maxWorkers: 2,
};
