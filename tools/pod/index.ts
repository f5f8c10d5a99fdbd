/**
 * The local pod runner: a small kubelet for the synthesized manifest, used by `npm start`
 * (scripts/local-pod.ts) and the e2e test, so what users try locally is what the manifest describes.
 */
export * from './checks';
export * from './env';
export * from './listening-ports';
export * from './manifest';
export * from './probes';
export * from './run-pod';
export * from './sidecar-app';
export * from './volumes';
