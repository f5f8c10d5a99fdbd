/**
 * What each of the two containers takes (image, port, env, resources, args) and their shared log
 * level: the types only, so that the main container's own options (main-options.ts) can extend them.
 */
import * as kplus from 'cdk8s-plus-28';

/** The log level of both containers (pino's levels). */
export enum LogLevel {
  FATAL = 'fatal',
  ERROR = 'error',
  WARN = 'warn',
  INFO = 'info',
  DEBUG = 'debug',
  TRACE = 'trace',
  SILENT = 'silent',
}

/** Options of the main or the sidecar container. */
export interface ContainerOptions {
  /**
   * Image reference, pinned to a tag (never `latest`) or a digest.
   * @default "sidecar-app-main:<package version>" / "sidecar-app-sidecar:<package version>"
   */
  readonly image?: string;
  /**
   * Container port the process listens on.
   * @default contract DEFAULT_PORTS.main for main, DEFAULT_PORTS.sidecar for the sidecar
   */
  readonly port?: number;
  /**
   * Name of that container port (IANA service name, at most 15 characters).
   * @default "main-http" / "sidecar-http"
   */
  readonly portName?: string;
  /**
   * Extra environment variables. A name the construct already sets (the contract's env) is
   * rejected rather than silently overridden.
   * @default - none
   */
  readonly env?: { [name: string]: string };
  /**
   * CPU and memory requests and limits; each unset field keeps its default.
   * @default requests 50m CPU / 64Mi; limits 500m CPU / 256Mi (main), 500m CPU / 128Mi (sidecar)
   */
  readonly resources?: kplus.ContainerResources;
  /**
   * Arguments appended to the image's entry point.
   * @default - none
   */
  readonly args?: string[];
}
