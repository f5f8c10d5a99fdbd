export { SidecarApp } from './sidecar-app';
export { LogLevel, SidecarMode } from './props';
export type { AutoscalingOptions, ContainerOptions, JwtIssuerOptions, SidecarAppProps } from './props';
