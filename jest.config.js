/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  transform: {
    // isolatedModules comes from tsconfig.json (transpile only; tsc --noEmit does the type check).
    '^.+\\.ts$': 'ts-jest',
  },
  // Snapshots live at the top level, as the project layout asks: __snapshots__/sidecar-app.test.ts.snap.
  snapshotResolver: '<rootDir>/test/snapshot-resolver.js',
  testTimeout: 30000,
  // The app tests start real processes; two workers match the 2-core CI machine.
  maxWorkers: 2,
};
