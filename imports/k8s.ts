// The k8s 1.28 L1 constructs. cdk8s-plus-28 ships the same generated code that
// `cdk8s import k8s@1.28.0` writes; that command needs the internet, so we re-export.
export * from 'cdk8s-plus-28/lib/imports/k8s';
