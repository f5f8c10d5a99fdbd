/**
 * Trusted JWT issuers: the `jwtIssuers` prop, resolved into the JwtIssuerSpec list the sidecar reads
 * (SIDECAR_JWT_ISSUERS) and checked with the contract's rule, the one the sidecar applies at
 * start-up; and the ConfigMaps and Secrets their files come from, mounted into the sidecar.
 */
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { JWKS_MOUNT_ROOT, encodeJwtIssuers, jwtIssuersProblem, parseJwtIssuers, quoted } from './contract';
import type { JwtAlgorithm, JwtIssuerSpec } from './contract';
import * as check from './validate';
import { VOLUME_NAMES } from './volume-names';

/**
 * One trusted JWT issuer: bearer values shaped like a JWT are verified against it. Its keys come
 * from exactly one of `jwksConfigMap` (a ConfigMap mounted into the sidecar) and `jwksUrl`.
 */
export interface JwtIssuerOptions {
  /**
   * Prefix of the forwarded subject (`<name>:<claim>`), the issuer's metrics label, and the
   * directory its ConfigMap is mounted in. 1-63 characters of A-Z a-z 0-9 . _ -, not starting with . _ -.
   */
  readonly name: string;
  /** The exact `iss` claim of its tokens. */
  readonly issuer: string;
  /** A token's `aud` must name at least one of these (1-16, no duplicates). */
  readonly audiences: string[];
  /**
   * Name of an existing ConfigMap holding the issuer's JWKS under `jwksConfigMapKey`. Mounted
   * read-only as a directory, so an edited ConfigMap reaches the running pod (the sidecar reloads it).
   * Exactly one of `jwksConfigMap`, `jwksUrl` and `hmacSecret`.
   * @default - none: `jwksUrl` or `hmacSecret` must be set
   */
  readonly jwksConfigMap?: string;
  /**
   * The key of `jwksConfigMap` that holds the JWKS. Only with `jwksConfigMap`.
   * @default "jwks.json"
   */
  readonly jwksConfigMapKey?: string;
  /**
   * An https: URL the sidecar fetches the issuer's JWKS from (at start, every `refreshSeconds`,
   * and rate-limited on an unknown key id). Exactly one of `jwksConfigMap` and `jwksUrl`.
   * @default - none: `jwksConfigMap` must be set
   */
  readonly jwksUrl?: string;
  /**
   * Name of an existing Secret holding the issuer's HMAC secret (at least 32 bytes for HS256) under
   * `hmacSecretKey`: the issuer then verifies HS256/HS384/HS512 only, with that secret, never with a
   * public key. Mounted read-only into the sidecar and reloaded on change.
   * @default - none: an asymmetric issuer (`jwksConfigMap` or `jwksUrl`)
   */
  readonly hmacSecret?: string;
  /**
   * The key of `hmacSecret` that holds the secret. Only with `hmacSecret`.
   * @default "secret"
   */
  readonly hmacSecretKey?: string;
  /**
   * Name of an existing ConfigMap holding, under the key `ca.crt`, the PEM CA certificates to trust
   * for `jwksUrl` (a private CA). Only with `jwksUrl`.
   * @default - the default roots
   */
  readonly caConfigMap?: string;
  /**
   * Seconds between refetches of `jwksUrl`; a shorter Cache-Control max-age (not under 30) wins. Only with `jwksUrl`.
   * @default 300
   */
  readonly refreshSeconds?: number;
  /**
   * JWS algorithms accepted (contract `JWT_ALGORITHMS`); never `none` or HS*.
   * @default - contract DEFAULT_JWT_ALGORITHMS (RS256, ES256, EdDSA)
   */
  readonly algorithms?: string[];
  /**
   * Leeway for exp, nbf and iat, in seconds (0-300).
   * @default 30
   */
  readonly clockSkewSeconds?: number;
  /**
   * Longest accepted exp - iat, in seconds; tokens must then carry iat.
   * @default - no bound
   */
  readonly maxLifetimeSeconds?: number;
  /**
   * The claim forwarded after the name.
   * @default "sub"
   */
  readonly subjectClaim?: string;
  /**
   * Claims forwarded upstream, each as the header `x-auth-claim-<claim, lowercased>`; a value that
   * is not printable ASCII (at most 256 characters) refuses the request. Client copies are stripped.
   * @default - none
   */
  readonly forwardClaims?: string[];
  /**
   * The JWS header `typ` values accepted (RFC 8725 §3.11 explicit typing), compared without case and
   * with `application/` implied; `""` stands for a token without `typ`. `["at+jwt"]` is RFC 9068's
   * strict profile. Whatever this says, a token whose payload `typ` marks it as no access token
   * (Keycloak's `ID`, `Refresh`, `Logout`) is refused.
   * @default ["", "JWT", "at+jwt"]
   */
  readonly tokenTypes?: string[];
}

/**
 * The JWT props of SidecarAppProps. Not part of the jsii API on its own: jsii copies its members
 * into SidecarAppProps.
 * @jsii ignore
 */
export interface JwtIssuersProps {
  /**
   * Trusted JWT issuers (at most 16): the sidecar then also accepts bearer JWTs they signed. Their
   * ConfigMaps are mounted read-only into the sidecar container under the contract's
   * `JWKS_MOUNT_ROOT`, and the list reaches it as `SIDECAR_JWT_ISSUERS`.
   * @default - none: only the static tokens count
   */
  readonly jwtIssuers?: JwtIssuerOptions[];
}

export const DEFAULT_JWKS_CONFIGMAP_KEY = 'jwks.json';
export const CA_CONFIGMAP_KEY = 'ca.crt';
export const DEFAULT_HMAC_SECRET_KEY = 'secret';
// A ConfigMap key as the API server checks it.
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
/** Volume names of the JWT issuers' ConfigMaps: the prefix and the issuer's index (issuer names are no DNS labels). */
const JWKS_VOLUME_PREFIX = VOLUME_NAMES.jwksPrefix;

/** A ConfigMap mounted as a directory into the sidecar for a JWT issuer. */
export interface JwtConfigMapMount {
  /** A ConfigMap (a JWKS or a CA) or, for an HMAC issuer, a Secret. */
  readonly configMap?: string;
  readonly secret?: string;
  /** The directory: `<JWKS_MOUNT_ROOT>/<issuer name>`. */
  readonly path: string;
}

/** The JWT issuers as the sidecar reads them, and the ConfigMaps their files come from. */
export interface ResolvedJwtIssuers {
  /** What SIDECAR_JWT_ISSUERS carries (file paths under the mounts); empty when none. */
  readonly specs: readonly JwtIssuerSpec[];
  readonly mounts: readonly JwtConfigMapMount[];
}

/** The label jwtIssuersProblem puts before the problem of the issuer at `index`, so the message can name the prop instead. */
function contractLabel(index: number, spec: unknown): string {
  const name = typeof spec === 'object' && spec !== null && typeof (spec as { name?: unknown }).name === 'string' ? (spec as { name: string }).name : undefined;
  return `issuer ${index + 1}${name === undefined ? '' : ` (${quoted(name)})`}: `;
}

/** Which source the issuer has, and which props go with which. */
function checkSources(prop: string, o: JwtIssuerOptions): void {
  if (typeof o !== 'object' || o === null) check.fail(prop, 'must be an object');
  if ([o.jwksConfigMap, o.jwksUrl, o.hmacSecret].filter((v) => v !== undefined).length !== 1) check.fail(prop, 'must have exactly one of jwksConfigMap, jwksUrl and hmacSecret');
  if (o.jwksConfigMap === undefined && o.jwksConfigMapKey !== undefined) check.fail(`${prop}.jwksConfigMapKey`, 'goes with jwksConfigMap');
  if (o.hmacSecret === undefined && o.hmacSecretKey !== undefined) check.fail(`${prop}.hmacSecretKey`, 'goes with hmacSecret');
  if (o.jwksUrl === undefined && o.caConfigMap !== undefined) check.fail(`${prop}.caConfigMap`, 'goes with jwksUrl');
}

/** The key of the issuer's ConfigMap or Secret, checked with the names of both. */
function mountedKey(prop: string, o: JwtIssuerOptions): string {
  const key =
    o.jwksConfigMap !== undefined ? (o.jwksConfigMapKey ?? DEFAULT_JWKS_CONFIGMAP_KEY) : o.hmacSecret !== undefined ? (o.hmacSecretKey ?? DEFAULT_HMAC_SECRET_KEY) : CA_CONFIGMAP_KEY;
  if (o.jwksConfigMap !== undefined) check.dnsSubdomain(`${prop}.jwksConfigMap`, o.jwksConfigMap);
  if (o.caConfigMap !== undefined) check.dnsSubdomain(`${prop}.caConfigMap`, o.caConfigMap);
  if (o.hmacSecret !== undefined) check.dnsSubdomain(`${prop}.hmacSecret`, o.hmacSecret);
  if (typeof key !== 'string' || key.length > 253 || !CONFIGMAP_KEY.test(key) || key === '.' || key === '..') {
    const keyProp = o.hmacSecret !== undefined ? 'hmacSecretKey' : 'jwksConfigMapKey';
    check.fail(`${prop}.${keyProp}`, `must be a ${o.hmacSecret !== undefined ? 'Secret' : 'ConfigMap'} key (1-253 characters of A-Z a-z 0-9 - _ ., not "." or ".."), got ${typeof key === 'string' ? quoted(key) : typeof key}`);
  }
  return key;
}

/** The issuer prop as the sidecar's spec, its file under `dir`; lists copied, so a later change by the caller changes nothing. */
function issuerSpec(o: JwtIssuerOptions, file: string): JwtIssuerSpec {
  const copy = <T>(v: T[]): T[] => (Array.isArray(v) ? [...v] : v);
  return {
    name: o.name,
    issuer: o.issuer,
    audiences: copy(o.audiences),
    ...(o.jwksConfigMap !== undefined ? { jwksFile: file } : {}),
    ...(o.hmacSecret !== undefined ? { hmacSecretFile: file } : {}),
    ...(o.jwksUrl !== undefined ? { jwksUrl: o.jwksUrl } : {}),
    ...(o.caConfigMap !== undefined ? { caFile: file } : {}),
    ...(o.refreshSeconds !== undefined ? { refreshSeconds: o.refreshSeconds } : {}),
    ...(o.algorithms !== undefined ? { algorithms: copy(o.algorithms) as JwtAlgorithm[] } : {}),
    ...(o.clockSkewSeconds !== undefined ? { clockSkewSeconds: o.clockSkewSeconds } : {}),
    ...(o.maxLifetimeSeconds !== undefined ? { maxLifetimeSeconds: o.maxLifetimeSeconds } : {}),
    ...(o.subjectClaim !== undefined ? { subjectClaim: o.subjectClaim } : {}),
    ...(o.forwardClaims !== undefined ? { forwardClaims: copy(o.forwardClaims) } : {}),
    ...(o.tokenTypes !== undefined ? { tokenTypes: copy(o.tokenTypes) } : {}),
  };
}

/** One issuer, checked alone (its own problems name it), and what is mounted for it. */
function resolveIssuer(o: JwtIssuerOptions, i: number): { spec: JwtIssuerSpec; mounts: JwtConfigMapMount[] } {
  const prop = `jwtIssuers[${i}]`;
  checkSources(prop, o);
  // The directory of the issuer's ConfigMap; the contract's check of the name comes below, before any use.
  const dir = `${JWKS_MOUNT_ROOT}/${String(o.name)}`;
  const key = mountedKey(prop, o);
  const spec = issuerSpec(o, `${dir}/${key}`);
  const problem = jwtIssuersProblem([spec]);
  if (problem !== undefined) {
    const label = contractLabel(0, spec);
    check.fail(prop, problem.startsWith(label) ? problem.slice(label.length) : problem);
  }
  const mounts: JwtConfigMapMount[] = [];
  const configMap = o.jwksConfigMap ?? o.caConfigMap;
  if (configMap !== undefined) mounts.push({ configMap, path: dir });
  if (o.hmacSecret !== undefined) mounts.push({ secret: o.hmacSecret, path: dir });
  return { spec, mounts };
}

/**
 * The issuer props as the JwtIssuerSpec list the sidecar reads, with the mount paths of their
 * ConfigMaps, checked with the contract's rule (the one the sidecar applies at start-up).
 */
export function resolveJwtIssuers(options: readonly JwtIssuerOptions[]): ResolvedJwtIssuers {
  if (!Array.isArray(options)) check.fail('jwtIssuers', 'must be a list of issuers');
  const specs: JwtIssuerSpec[] = [];
  const mounts: JwtConfigMapMount[] = [];
  options.forEach((o, i) => {
    const issuer = resolveIssuer(o, i);
    specs.push(issuer.spec);
    mounts.push(...issuer.mounts);
  });
  // The list: its size, and names and issuers used twice.
  const problem = jwtIssuersProblem(specs);
  if (problem !== undefined) {
    const index = /^issuer (\d+)/.exec(problem);
    if (index === null) check.fail('jwtIssuers', problem);
    const i = Number(index[1]) - 1;
    const label = contractLabel(i, specs[i]);
    check.fail(`jwtIssuers[${i}]`, problem.startsWith(label) ? problem.slice(label.length) : problem);
  }
  // What the sidecar will do with the env: it must read it back.
  const encoded = encodeJwtIssuers(specs);
  if (encoded !== undefined) {
    const parsed = parseJwtIssuers(encoded);
    if (!parsed.ok) check.fail('jwtIssuers', parsed.problem);
  }
  return { specs, mounts };
}

/**
 * Each issuer's ConfigMap (its JWKS, or the CA of its jwksUrl), into the sidecar only, as a
 * directory: an edited ConfigMap reaches the pod, and the sidecar reloads the JWKS file. An HMAC
 * issuer's Secret the same way, readable by the pod's group only.
 */
export function mountJwtIssuers(scope: Construct, sidecar: kplus.Container, mounts: readonly JwtConfigMapMount[]): void {
  mounts.forEach((m, i) => {
    const volume =
      m.secret !== undefined
        ? kplus.Volume.fromSecret(scope, `jwks-${i}`, kplus.Secret.fromSecretName(scope, `jwks-secret-${i}`, m.secret), { name: `${JWKS_VOLUME_PREFIX}${i}`, defaultMode: 0o440, optional: false })
        : kplus.Volume.fromConfigMap(scope, `jwks-${i}`, kplus.ConfigMap.fromConfigMapName(scope, `jwks-configmap-${i}`, m.configMap!), {
            name: `${JWKS_VOLUME_PREFIX}${i}`,
            defaultMode: 0o444,
            optional: false,
          });
    sidecar.mount(m.path, volume, { readOnly: true });
  });
}
