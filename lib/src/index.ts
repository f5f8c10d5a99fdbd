export { SidecarApp } from './sidecar-app';
export { LogLevel } from './props';
export type { AutoscalingOptions, ContainerOptions, SidecarAppProps } from './props';
