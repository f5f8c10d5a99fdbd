/**
 * The verified-JWT cache's budget (issue 20 §1): SidecarApp writes SIDECAR_JWT_CACHE_BYTES, derived
 * from the sidecar container's memory limit by the contract's jwtCacheBytesFor, when JWT issuers
 * are configured, and leaves it unset without them; the sidecar reads what the manifest carries.
 * The cache's bound itself is in test/jwt-verifier.test.ts; heap figures are bench/soak.ts's.
 */
import { Size, Testing } from 'cdk8s';
import { CONTAINER_NAMES, SIDECAR_ENV, SIDECAR_INTEGERS, jwtCacheBytesFor } from '../lib/src/contract';
import { SidecarApp } from '../lib/src';
import type { JwtIssuerOptions, SidecarAppProps } from '../lib/src';
import { loadConfig as loadSidecarConfig } from '../apps/sidecar/src/config';

/* eslint-disable @typescript-eslint/no-explicit-any */

const OKTA: JwtIssuerOptions = { name: 'okta', issuer: 'https://okta.test', audiences: ['api'], jwksConfigMap: 'okta-jwks' };
const MIB = 1024 * 1024;

function sidecarEnv(props: SidecarAppProps): Record<string, string> {
  const chart = Testing.chart();
  new SidecarApp(chart, 'orders', props);
  const spec = Testing.synth(chart).find((m: any) => m.kind === 'Deployment').spec.template.spec;
  const sidecar = [...spec.containers, ...(spec.initContainers ?? [])].find((c: any) => c.name === CONTAINER_NAMES.sidecar);
  return Object.fromEntries((sidecar.env ?? []).map((e: any) => [e.name, e.value]));
}

describe('jwtCacheBytesFor', () => {
  it('is a sixteenth of the limit in whole bytes, within the setting bounds; the default is that of the default 128Mi limit', () => {
    expect(jwtCacheBytesFor(128 * MIB)).toBe(8 * MIB);
    expect(jwtCacheBytesFor(100_000_001)).toBe(6_250_000);
    expect(jwtCacheBytesFor(0)).toBe(SIDECAR_INTEGERS.jwtCacheBytes.min);
    expect(jwtCacheBytesFor(1024 * 1024 * MIB)).toBe(SIDECAR_INTEGERS.jwtCacheBytes.max);
    expect(jwtCacheBytesFor(Number.NaN)).toBe(SIDECAR_INTEGERS.jwtCacheBytes.min);
    expect(SIDECAR_INTEGERS.jwtCacheBytes.default).toBe(jwtCacheBytesFor(128 * MIB));
  });
});

describe('SidecarApp sets SIDECAR_JWT_CACHE_BYTES from the sidecar memory limit', () => {
  it('with JWT issuers and the default 128Mi limit: the derived budget, the sidecar default too', () => {
    const env = sidecarEnv({ jwtIssuers: [OKTA] });
    expect(env[SIDECAR_ENV.jwtCacheBytes]).toBe(String(8 * MIB));
    expect(env[SIDECAR_ENV.jwtCacheBytes]).toBe(String(SIDECAR_INTEGERS.jwtCacheBytes.default));
  });

  it.each([
    ['512Mi', Size.mebibytes(512), 32 * MIB],
    ['1Gi', Size.gibibytes(1), 64 * MIB],
    ['96Mi', Size.mebibytes(96), 6 * MIB],
  ])('with JWT issuers and a user-set %s limit: its sixteenth, and the sidecar reads it', (_what, limit, expected) => {
    const env = sidecarEnv({ jwtIssuers: [OKTA], sidecar: { resources: { memory: { request: Size.mebibytes(64), limit } } } });
    expect(env[SIDECAR_ENV.jwtCacheBytes]).toBe(String(expected));
    // What the manifest carries is a value the sidecar starts with (its issuers' files aside: unread at load).
    expect(loadSidecarConfig(env).jwtCacheBytes).toBe(expected);
  });

  it('without JWT issuers the variable is unset, whatever the limit', () => {
    expect(SIDECAR_ENV.jwtCacheBytes in sidecarEnv({})).toBe(false);
    expect(SIDECAR_ENV.jwtCacheBytes in sidecarEnv({ sidecar: { resources: { memory: { limit: Size.mebibytes(512) } } } })).toBe(false);
  });
});
