// Keep snapshots in the top-level __snapshots__/ folder (test/sidecar-app.test.ts -> __snapshots__/sidecar-app.test.ts.snap).
const path = require('path');
const root = path.resolve(__dirname, '..');
module.exports = {
  resolveSnapshotPath: (testPath, ext) => path.join(root, '__snapshots__', path.basename(testPath) + ext),
  resolveTestPath: (snapshotPath, ext) => path.join(root, 'test', path.basename(snapshotPath, ext)),
  testPathForConsistencyCheck: path.join(root, 'test', 'sidecar-app.test.ts'),
};
