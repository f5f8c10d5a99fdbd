export * from './sidecar-app';
export { SidecarAppPropError } from './validate';
