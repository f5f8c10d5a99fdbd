/**
 * The images runner behind `npm run test:images` (scripts/test-images.ts): builds the pod's images
 * and runs them with Docker as the synthesized manifest runs them. See docs/images.md.
 */
export * from './build';
export * from './checks';
export * from './docker';
export * from './http';
export * from './plan';
export * from './pod-run';
export * from './static-main';
export * from './steps';
export * from './stop';
