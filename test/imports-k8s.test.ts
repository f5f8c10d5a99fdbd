/** imports/k8s.ts stands in for `cdk8s import k8s@1.28.0`, through cdk8s-plus-28's public entry only. */
import * as fs from 'fs';
import * as path from 'path';
import { Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import * as imported from '../imports/k8s';
import { KubeConfigMap } from '../imports/k8s';

test('it is cdk8s-plus-28\'s own k8s namespace, read from its public entry', () => {
  expect(imported.KubeDeployment).toBe(k8s.KubeDeployment);
  expect(imported.IntOrString).toBe(k8s.IntOrString);
  const source = fs.readFileSync(path.join(__dirname, '..', 'imports', 'k8s.ts'), 'utf8');
  expect(source).not.toMatch(/cdk8s-plus-28\/lib/);
});

test('its constructs synthesize as generated imports do', () => {
  const chart = Testing.chart();
  new KubeConfigMap(chart, 'cm', { metadata: { name: 'settings' }, data: { a: 'b' } });
  expect(Testing.synth(chart)).toEqual([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { a: 'b' } }]);
});
