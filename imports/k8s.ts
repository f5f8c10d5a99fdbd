// The k8s 1.28 L1 constructs, as `cdk8s import k8s@1.28.0` would write them (that command needs the
// internet). cdk8s-plus-28 exports the same generated types as `k8s` from its public entry, so
// this module is that namespace: `import * as k8s from './imports/k8s'` or
// `import { KubeConfigMap } from './imports/k8s'`, as with a generated import.
import { k8s } from 'cdk8s-plus-28';

export = k8s;
