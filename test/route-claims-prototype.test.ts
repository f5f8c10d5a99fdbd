/**
 * Route-rule claims named like Object.prototype's members (issue 18 §3, finding 4): a rule naming
 * `constructor`, `toString` or `__proto__` admits only a token whose payload has that claim as its
 * own; nothing inherited, even when a dependency has polluted Object.prototype. In-process against
 * the route matcher (apps/sidecar/src/routes.ts), then through the real sidecar with an HMAC issuer.
 * The payload decoding itself (jwt/verify.ts) is another suite's.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SignJWT } from 'jose';
import { SIDECAR_ENV, encodeJwtIssuers, parseRoutes } from '../lib/src/contract';
import type { JwtIssuerSpec, RouteTableSpec } from '../lib/src/contract';
import type { AuthVerdict } from '../apps/sidecar/src/auth-verdict';
import { admits, compileRoutes } from '../apps/sidecar/src/routes';
import { RunningApp, localSidecarEnv, startApp } from './support/apps';
import { request, tempDir } from './support/http';
import { TestUpstream, startUpstream } from './support/upstream';

const PROTOTYPE_NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__'];

const TABLE: RouteTableSpec = {
  rules: PROTOTYPE_NAMES.map((claim, i) => ({ path: `/r${i}`, effect: 'subjects' as const, claims: [{ issuer: 'idp', claim, value: 'admins' }] })),
};

/** The verdict the JWT verifier hands admission: the payload as JSON.parse made it, frozen. */
function verdict(payloadJson: string): AuthVerdict & { ok: true } {
  return { ok: true, subject: 'idp:alice', issuer: 'idp', claims: Object.freeze(JSON.parse(payloadJson) as Record<string, unknown>) };
}

describe('in-process: admits() reads own claims only', () => {
  const parsed = parseRoutes(JSON.stringify(TABLE), ['idp']);
  if (!parsed.ok) throw new Error(parsed.problem);
  const routes = compileRoutes(parsed.value);
  const ruleFor = (claim: string) => routes.match(`/r${PROTOTYPE_NAMES.indexOf(claim)}`, 'GET');

  it.each(PROTOTYPE_NAMES)('a rule on %j does not admit a payload without that claim', (claim) => {
    expect(admits(ruleFor(claim), verdict('{"sub":"alice"}'))).toBe(false);
  });

  it.each(PROTOTYPE_NAMES)('a rule on %j admits a payload holding it as its own claim, as a value or in a list', (claim) => {
    expect(admits(ruleFor(claim), verdict(JSON.stringify({ sub: 'alice', [claim]: 'admins' })))).toBe(true);
    expect(admits(ruleFor(claim), verdict(JSON.stringify({ sub: 'alice', [claim]: ['x', 'admins'] })))).toBe(true);
    expect(admits(ruleFor(claim), verdict(JSON.stringify({ sub: 'alice', [claim]: 'users' })))).toBe(false);
  });

  it('an own "__proto__" claim from JSON is a claim like any other, not the prototype', () => {
    const v = verdict('{"sub":"alice","__proto__":["admins"]}');
    expect(Object.getPrototypeOf(v.claims)).toBe(Object.prototype);
    expect(admits(ruleFor('__proto__'), v)).toBe(true);
  });

  it('a polluted Object.prototype admits nobody: inherited values are never claims', () => {
    const polluted = ['constructor', 'toString', 'valueOf', 'isPrototypeOf', 'hasOwnProperty', '__defineGetter__'];
    const saved = polluted.map((name) => [name, Object.getOwnPropertyDescriptor(Object.prototype, name)!] as const);
    // Verdicts while polluted; expect() itself runs only once the prototype is restored.
    const payloads = polluted.map(() => verdict('{"sub":"alice"}'));
    const ownAdmins = verdict('{"sub":"alice","constructor":"admins"}');
    const ownUsers = verdict('{"sub":"alice","constructor":"users"}');
    let withoutClaim: boolean[];
    let own: boolean[];
    try {
      // What a prototype-pollution bug in any dependency could leave behind.
      for (const name of polluted) Object.defineProperty(Object.prototype, name, { value: ['admins'], configurable: true, writable: true });
      withoutClaim = polluted.map((name, i) => admits(ruleFor(name), payloads[i]));
      own = [admits(ruleFor('constructor'), ownAdmins), admits(ruleFor('constructor'), ownUsers)];
    } finally {
      for (const [name, descriptor] of saved) Object.defineProperty(Object.prototype, name, descriptor);
    }
    expect(withoutClaim).toEqual(polluted.map(() => false));
    // The own claim still decides, either way.
    expect(own).toEqual([true, false]);
  });
});

describe('through the real sidecar, with an HMAC issuer', () => {
  const ISS = 'https://proto.test';
  const SECRET = 'an-hmac-secret-of-at-least-32-bytes!!';
  let upstream: TestUpstream;
  let sidecar: RunningApp;
  let dir: { dir: string; cleanup: () => void };

  const now = () => Math.floor(Date.now() / 1000);
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({ iss: ISS, aud: 'api', sub: 'alice', iat: now(), exp: now() + 300, ...claims }).setProtectedHeader({ alg: 'HS256' }).sign(Buffer.from(SECRET));

  beforeAll(async () => {
    upstream = await startUpstream();
    dir = tempDir('route-claims-prototype-');
    fs.mkdirSync(path.join(dir.dir, 'tokens'));
    fs.writeFileSync(path.join(dir.dir, 'tokens', 'ci'), 'static-token-0123456789abcdef');
    fs.writeFileSync(path.join(dir.dir, 'secret'), SECRET);
    const issuers: JwtIssuerSpec[] = [{ name: 'idp', issuer: ISS, audiences: ['api'], hmacSecretFile: path.join(dir.dir, 'secret') }];
    sidecar = await startApp('sidecar', {
      env: {
        ...localSidecarEnv(upstream.url, path.join(dir.dir, 'tokens')),
        [SIDECAR_ENV.jwtIssuers]: encodeJwtIssuers(issuers),
        [SIDECAR_ENV.routes]: JSON.stringify(TABLE),
      },
    });
  });

  afterAll(async () => {
    await sidecar?.stop('SIGKILL');
    await upstream?.close();
    dir?.cleanup();
  });

  it.each(PROTOTYPE_NAMES)('rule on %j: 403 without the claim, 200 with it as an own claim', async (claim) => {
    const target = `/r${PROTOTYPE_NAMES.indexOf(claim)}`;
    const without = await request(sidecar.port, { path: target, headers: { authorization: `Bearer ${await sign({})}` } });
    expect(without.status).toBe(403);
    const withClaim = await request(sidecar.port, { path: target, headers: { authorization: `Bearer ${await sign({ [claim]: ['admins'] })}` } });
    expect(withClaim.status).toBe(200);
  });
});
