export { SidecarApp } from './sidecar-app';
export { LogLevel, SidecarMode } from './props';
export type { ServiceAccountAuthOptions } from './identity';
export type { AutoscalingOptions, ContainerOptions, JwtIssuerOptions, SidecarAppProps } from './props';
export { DefaultRouteEffect, RouteEffect } from './routes';
export type { RouteClaim, RouteRule } from './routes';
