/**
 * The contract between the manifest (lib/) and the services (apps/): the names, the rules of every
 * value, and the shutdown timing budget. Both sides import it, so the Deployment SidecarApp
 * synthesizes and the processes that run in it cannot drift apart. No dependencies: no cdk8s, no Express.
 */
export * from './names';
export * from './settings';
export * from './timing';
export * from './env';
export * from './routes';
