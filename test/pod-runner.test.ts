/**
 * The local pod runner's pure parts, in-process: $(VAR) expansion, mount-path rewriting, the kubelet's
 * atomic volume layout on real folders and symlinks, port resolution, manifest lookup, a container's
 * env, and the refusals that come before any process starts. The e2e test runs the whole pod.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ADDRESSES } from '../lib/src/contract';
import { OutputLines } from '../tools/log-lines';
import {
  Container,
  containerEnv,
  DATA_LINK,
  Deployment,
  expandVars,
  findDeployment,
  findService,
  LocalMount,
  mountsOf,
  PodSpec,
  PodSpecError,
  prepareVolumes,
  resolvePort,
  rewriteMountedPath,
  rewriteMountedPaths,
  mintProjectedTokens,
  runPod,
  secretNamesOf,
  writeAtomicVolume,
} from '../tools/pod';
import { tempDir } from './support/http';

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
function scratch(): string {
  const { dir, cleanup } = tempDir('pod-runner-test-');
  cleanups.push(cleanup);
  return dir;
}

const deploymentOf = (spec: PodSpec, metadata: Deployment['metadata'] = { name: 'web', namespace: 'shop' }): Deployment => ({
  kind: 'Deployment',
  metadata,
  spec: { template: { spec } },
});

/** The folder's entries, sorted; payload folders shown as `..<stamp>`. */
const entries = (dir: string) =>
  fs
    .readdirSync(dir)
    .map((e) => (e.startsWith('..') && e !== DATA_LINK ? '..<stamp>' : e))
    .sort();
const modeOf = (file: string) => fs.statSync(file).mode & 0o777;

describe('expandVars: the kubelet $(VAR) syntax', () => {
  const vars = { HOST: 'db', PORT: '5432', EMPTY: '' };

  test('a defined variable is replaced, wherever and however often it appears', () => {
    expect(expandVars('$(HOST)', vars)).toBe('db');
    expect(expandVars('tcp://$(HOST):$(PORT)/x', vars)).toBe('tcp://db:5432/x');
    expect(expandVars('$(PORT)$(PORT)', vars)).toBe('54325432');
    expect(expandVars('[$(EMPTY)]', vars)).toBe('[]');
  });

  test('an undefined variable is left as written', () => {
    expect(expandVars('$(MISSING)', vars)).toBe('$(MISSING)');
    expect(expandVars('$(MISSING):$(PORT)', vars)).toBe('$(MISSING):5432');
  });

  test('$$ is a literal $, so $$(VAR) is the text $(VAR) and $$$(VAR) is $ then the value', () => {
    expect(expandVars('$$', vars)).toBe('$');
    expect(expandVars('$$(HOST)', vars)).toBe('$(HOST)');
    expect(expandVars('$$$(HOST)', vars)).toBe('$db');
    expect(expandVars('$$$$(HOST)', vars)).toBe('$$(HOST)');
    expect(expandVars('cost: $$5', vars)).toBe('cost: $5');
  });

  test('a $ that starts no reference stays, as does an unclosed one', () => {
    expect(expandVars('$HOST', vars)).toBe('$HOST');
    expect(expandVars('price$', vars)).toBe('price$');
    expect(expandVars('$(HOST', vars)).toBe('$(HOST');
    expect(expandVars('$()', vars)).toBe('$()');
  });

  test('a value is not expanded again', () => {
    expect(expandVars('$(A)', { A: '$(B)', B: 'deep' })).toBe('$(B)');
  });

  test('only the given variables count, not properties every object has', () => {
    expect(expandVars('$(toString)/$(constructor)', vars)).toBe('$(toString)/$(constructor)');
  });
});

describe('rewriteMountedPaths', () => {
  const mounts = [{ mountPath: '/var/run/secrets/sidecar/kubernetes', dir: '/tmp/pod/volumes/kube-api' }];
  test('rewrites every string of a JSON value, and leaves other JSON alone', () => {
    const value = JSON.stringify({ audiences: ['orders'], tokenFile: '/var/run/secrets/sidecar/kubernetes/token', n: 3, list: ['/var/run/secrets/sidecar/kubernetes/ca.crt'] });
    expect(JSON.parse(rewriteMountedPaths(value, mounts))).toEqual({
      audiences: ['orders'],
      tokenFile: '/tmp/pod/volumes/kube-api/token',
      n: 3,
      list: ['/tmp/pod/volumes/kube-api/ca.crt'],
    });
    expect(rewriteMountedPaths('/var/run/secrets/sidecar/kubernetes/token', mounts)).toBe('/tmp/pod/volumes/kube-api/token');
    expect(rewriteMountedPaths('[not json', mounts)).toBe('[not json');
  });
});

describe('rewriteMountedPath and mountsOf', () => {
  const mounts: LocalMount[] = [
    { mountPath: '/var/run/secrets', dir: '/tmp/pod/volumes/outer' },
    { mountPath: '/var/run/secrets/sidecar/tokens', dir: '/tmp/pod/volumes/tokens' },
  ];

  test('the mount path itself and paths under it map into the folder', () => {
    expect(rewriteMountedPath('/var/run/secrets', mounts)).toBe('/tmp/pod/volumes/outer');
    expect(rewriteMountedPath('/var/run/secrets/ca.crt', mounts)).toBe('/tmp/pod/volumes/outer/ca.crt');
  });

  test('the longest mount wins, in whatever order the mounts come', () => {
    expect(rewriteMountedPath('/var/run/secrets/sidecar/tokens/ci', mounts)).toBe('/tmp/pod/volumes/tokens/ci');
    expect(rewriteMountedPath('/var/run/secrets/sidecar/tokens/ci', [...mounts].reverse())).toBe('/tmp/pod/volumes/tokens/ci');
  });

  test('a value that only shares a prefix, or lies elsewhere, is unchanged', () => {
    expect(rewriteMountedPath('/var/run/secrets-other/x', mounts)).toBe('/var/run/secrets-other/x');
    expect(rewriteMountedPath('/etc/hosts', mounts)).toBe('/etc/hosts');
    expect(rewriteMountedPath('info', mounts)).toBe('info');
  });

  test('mountsOf drops a trailing slash, joins subPath, and refuses an unknown volume', () => {
    const container: Container = {
      name: 'app',
      volumeMounts: [
        { name: 'tokens', mountPath: '/var/run/tokens/' },
        { name: 'config', mountPath: '/etc/app', subPath: 'prod' },
      ],
    };
    expect(mountsOf(container, { tokens: '/tmp/v/tokens', config: '/tmp/v/config' })).toEqual([
      { mountPath: '/var/run/tokens', dir: '/tmp/v/tokens' },
      { mountPath: '/etc/app', dir: '/tmp/v/config/prod' },
    ]);
    expect(() => mountsOf(container, { tokens: '/tmp/v/tokens' })).toThrow(new PodSpecError('container app volumeMount config', 'no volume with that name in the pod'));
  });
});

describe('writeAtomicVolume: the kubelet atomic writer layout', () => {
  test('..data links to a timestamped payload, each key links through ..data', () => {
    const dir = path.join(scratch(), 'tokens');
    writeAtomicVolume(dir, { ci: 'token-one', deploy: 'token-two' });

    expect(entries(dir)).toEqual(['..<stamp>', DATA_LINK, 'ci', 'deploy']);
    const payload = fs.readlinkSync(path.join(dir, DATA_LINK));
    expect(payload).toMatch(/^\.\.\d{4}(_\d\d){5}_\d{3}_\d+$/);
    expect(fs.lstatSync(path.join(dir, payload)).isDirectory()).toBe(true);
    expect(fs.readlinkSync(path.join(dir, 'ci'))).toBe(path.join(DATA_LINK, 'ci'));
    expect(fs.readFileSync(path.join(dir, payload, 'deploy'), 'utf8')).toBe('token-two');
    expect(fs.readFileSync(path.join(dir, 'ci'), 'utf8')).toBe('token-one');
  });

  test('files get the mode asked for, whatever the umask', () => {
    const dir = scratch();
    const previous = process.umask(0o077);
    try {
      writeAtomicVolume(path.join(dir, 'default'), { a: 'x' });
      writeAtomicVolume(path.join(dir, 'owner-only'), { a: 'x' }, 0o400);
    } finally {
      process.umask(previous);
    }
    expect(modeOf(path.join(dir, 'default', 'a'))).toBe(0o644);
    expect(modeOf(path.join(dir, 'owner-only', 'a'))).toBe(0o400);
  });

  test('a rotation swaps ..data to a new payload, removes the old one and updates the visible names', () => {
    const dir = path.join(scratch(), 'tokens');
    writeAtomicVolume(dir, { ci: 'old', gone: 'soon removed', toString: 'an ordinary name' });
    const oldPayload = fs.readlinkSync(path.join(dir, DATA_LINK));
    const ciLink = fs.lstatSync(path.join(dir, 'ci'));

    writeAtomicVolume(dir, { ci: 'new', added: 'fresh' });

    const newPayload = fs.readlinkSync(path.join(dir, DATA_LINK));
    expect(newPayload).not.toBe(oldPayload);
    expect(fs.existsSync(path.join(dir, oldPayload))).toBe(false);
    expect(entries(dir)).toEqual(['..<stamp>', DATA_LINK, 'added', 'ci']);
    expect(fs.readFileSync(path.join(dir, 'ci'), 'utf8')).toBe('new');
    expect(fs.readFileSync(path.join(dir, 'added'), 'utf8')).toBe('fresh');
    // Only ..data moved: a reader holding the path `ci` follows it to the new content.
    expect(fs.lstatSync(path.join(dir, 'ci')).ino).toBe(ciLink.ino);
  });

  test('a key that is not a plain file name is refused before anything is written', () => {
    const dir = path.join(scratch(), 'tokens');
    expect(() => writeAtomicVolume(dir, { ok: 'x', 'sub/dir': 'y' })).toThrow(new PodSpecError('volume file sub/dir', 'must be a plain file name'));
    expect(() => writeAtomicVolume(dir, { '..data': 'y' })).toThrow(PodSpecError);
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('prepareVolumes', () => {
  const spec = (volumes: PodSpec['volumes']): PodSpec => ({ containers: [], volumes });

  test('a Secret volume gets its files, items rename keys, and defaultMode keeps owner read', () => {
    const work = scratch();
    const volumes = prepareVolumes(
      spec([
        { name: 'tokens', secret: { secretName: 'api-tokens', defaultMode: 0o040 } },
        { name: 'picked', secret: { secretName: 'api-tokens', items: [{ key: 'ci', path: 'token' }] } },
        { name: 'scratch', emptyDir: {} },
      ]),
      work,
      { secrets: { 'api-tokens': { ci: 'one', deploy: 'two' } } },
    );
    expect(volumes).toEqual({
      tokens: path.join(work, 'volumes', 'tokens'),
      picked: path.join(work, 'volumes', 'picked'),
      scratch: path.join(work, 'volumes', 'scratch'),
    });
    expect(entries(volumes.tokens)).toEqual(['..<stamp>', DATA_LINK, 'ci', 'deploy']);
    expect(modeOf(path.join(volumes.tokens, 'ci'))).toBe(0o440);
    expect(entries(volumes.picked)).toEqual(['..<stamp>', DATA_LINK, 'token']);
    expect(fs.readFileSync(path.join(volumes.picked, 'token'), 'utf8')).toBe('one');
    expect(fs.readdirSync(volumes.scratch)).toEqual([]);
  });

  test('a ConfigMap volume reads configMaps, not secrets', () => {
    const work = scratch();
    const volumes = prepareVolumes(spec([{ name: 'conf', configMap: { name: 'settings' } }]), work, {
      secrets: { settings: { wrong: 'secret' } },
      configMaps: { settings: { 'app.yaml': 'level: info' } },
    });
    expect(entries(volumes.conf)).toEqual(['..<stamp>', DATA_LINK, 'app.yaml']);
  });

  test('a missing source is refused unless optional; a missing item key and other volume kinds are refused', () => {
    const work = scratch();
    expect(() => prepareVolumes(spec([{ name: 'tokens', secret: { secretName: 'absent' } }]), work, {})).toThrow(
      new PodSpecError('volume tokens', 'Secret absent was not provided to the local runner'),
    );
    const optional = prepareVolumes(spec([{ name: 'maybe', secret: { secretName: 'absent', optional: true } }]), work, {});
    expect(entries(optional.maybe)).toEqual(['..<stamp>', DATA_LINK]);
    expect(() => prepareVolumes(spec([{ name: 'picked', secret: { secretName: 's', items: [{ key: 'nope', path: 'x' }] } }]), work, { secrets: { s: { ci: 'one' } } })).toThrow(
      new PodSpecError('volume picked items', 'key nope is not in s'),
    );
    expect(() => prepareVolumes(spec([{ name: 'host' } as never]), work, {})).toThrow(/volume host: only secret, configMap, projected and emptyDir volumes/);
  });

  test('a projected volume: a token minted for the pod\'s service account and audience, beside ConfigMap items', async () => {
    const work = scratch();
    const podSpec = spec([
      {
        name: 'kube-api',
        projected: {
          sources: [
            { serviceAccountToken: { path: 'token', expirationSeconds: 600, audience: 'orders' } },
            { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          ],
        },
      },
    ]);
    const asked: unknown[] = [];
    const tokens = await mintProjectedTokens(podSpec, { namespace: 'shop', serviceAccount: 'frontend', podName: 'frontend-local' }, async (req) => {
      asked.push(req);
      return 'minted-token';
    });
    expect(asked).toEqual([{ namespace: 'shop', serviceAccount: 'frontend', podName: 'frontend-local', audience: 'orders', expirationSeconds: 600 }]);
    const volumes = prepareVolumes(podSpec, work, { configMaps: { 'kube-root-ca.crt': { 'ca.crt': 'PEM' } } }, tokens);
    expect(entries(volumes['kube-api'])).toEqual(['..<stamp>', DATA_LINK, 'ca.crt', 'token']);
    expect(fs.readFileSync(path.join(volumes['kube-api'], 'token'), 'utf8')).toBe('minted-token');
    await expect(mintProjectedTokens(podSpec, { namespace: 'a', serviceAccount: 'b', podName: 'c' }, undefined)).rejects.toThrow(/needs a token minter/);
    expect(() => prepareVolumes(podSpec, work, { configMaps: { 'kube-root-ca.crt': { 'ca.crt': 'PEM' } } })).toThrow(/was not minted/);
  });
});

describe('resolvePort', () => {
  const ports = [
    { containerPort: 8081, name: 'http' },
    { containerPort: 9091, name: 'admin' },
  ];

  test('a number, a numeric string and a declared name', () => {
    expect(resolvePort(7000, ports, 'f')).toBe(7000);
    expect(resolvePort('7001', ports, 'f')).toBe(7001);
    expect(resolvePort('admin', ports, 'f')).toBe(9091);
  });

  test('an undeclared name is refused, naming the field and the port', () => {
    expect(() => resolvePort('metrics', ports, 'container sidecar readinessProbe.httpGet.port')).toThrow(
      new PodSpecError('container sidecar readinessProbe.httpGet.port', 'port name "metrics" is not declared by the container'),
    );
  });
});

describe('findDeployment, findService, secretNamesOf', () => {
  const deployment = deploymentOf({ containers: [], volumes: [{ name: 'a', secret: { secretName: 's1' } }, { name: 'b', emptyDir: {} }, { name: 'c', secret: { secretName: 's2' } }] });
  const service = { kind: 'Service', spec: { ports: [] } };

  test('each finds its one document among the others, empty documents included', () => {
    const docs = [null, { kind: 'ServiceAccount' }, service, deployment, undefined];
    expect(findDeployment(docs)).toBe(deployment);
    expect(findService(docs)).toBe(service);
    expect(secretNamesOf(deployment)).toEqual(['s1', 's2']);
  });

  test('none, or more than one, is an error that says how many were found', () => {
    expect(() => findDeployment([service])).toThrow('expected exactly one Deployment in the manifest, found 0');
    expect(() => findDeployment([deployment, deployment])).toThrow('expected exactly one Deployment in the manifest, found 2');
    expect(() => findService([deployment])).toThrow('expected exactly one Service in the manifest, found 0');
    expect(() => findService([service, deployment, service])).toThrow('expected exactly one Service in the manifest, found 2');
  });
});

describe('containerEnv', () => {
  const mounts: LocalMount[] = [{ mountPath: '/var/run/tokens', dir: '/tmp/pod/volumes/tokens' }];
  const deployment = deploymentOf({ containers: [] });

  test('values expand from earlier vars only, then paths under a mount are rewritten', () => {
    const container: Container = {
      name: 'app',
      env: [
        { name: 'BEFORE', value: 'url=$(LATER)' },
        { name: 'LATER', value: 'x' },
        { name: 'DIR', value: '/var/run/tokens' },
        { name: 'FILE', value: '/var/run/tokens/ci' },
        { name: 'BUILT', value: '$(BASE_MOUNT)/ci' },
        { name: 'BASE_MOUNT', value: '/var/run/tokens' },
        { name: 'EXPANDED', value: '$(DIR)/deploy' },
        { name: 'ESCAPED', value: '$$(LATER)' },
        { name: 'NO_VALUE' },
      ],
    };
    expect(containerEnv(container, deployment, mounts)).toEqual({
      BEFORE: 'url=$(LATER)',
      LATER: 'x',
      DIR: '/tmp/pod/volumes/tokens',
      FILE: '/tmp/pod/volumes/tokens/ci',
      // BASE_MOUNT comes later, so this stays a literal and is no path under the mount.
      BUILT: '$(BASE_MOUNT)/ci',
      BASE_MOUNT: '/tmp/pod/volumes/tokens',
      EXPANDED: '/tmp/pod/volumes/tokens/deploy',
      ESCAPED: '$(LATER)',
      NO_VALUE: '',
    });
  });

  test('overrides come last, as given', () => {
    const container: Container = { name: 'app', env: [{ name: 'HOST', value: '0.0.0.0' }, { name: 'PORT', value: '80' }] };
    expect(containerEnv(container, deployment, [], { HOST: ADDRESSES.loopback, EXTRA: '$(PORT)' })).toEqual({ HOST: ADDRESSES.loopback, PORT: '80', EXTRA: '$(PORT)' });
  });

  test('downward-API fields with a local meaning resolve', () => {
    const container: Container = {
      name: 'app',
      env: [
        { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'WHO', value: '$(POD).$(NS)' },
      ],
    };
    expect(containerEnv(container, deployment, [])).toEqual({ POD: 'web-local', NS: 'shop', IP: ADDRESSES.loopback, WHO: 'web-local.shop' });
    expect(containerEnv({ name: 'app', env: [container.env![1]] }, deploymentOf({ containers: [] }, {}), [])).toEqual({ NS: 'default' });
  });

  test('any other valueFrom, and envFrom, are refused, naming the container and the var', () => {
    const secretRef = { secretKeyRef: { name: 'db', key: 'password' } };
    expect(() => containerEnv({ name: 'app', env: [{ name: 'PASSWORD', valueFrom: secretRef }] }, deployment, [])).toThrow(
      new PodSpecError('container app env PASSWORD', `valueFrom ${JSON.stringify(secretRef)} cannot be resolved by the local runner`),
    );
    expect(() => containerEnv({ name: 'app', env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } }] }, deployment, [])).toThrow(
      /^container app env X: valueFrom .*metadata\.uid.* cannot be resolved/,
    );
    expect(() => containerEnv({ name: 'app', env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'toString' } } }] }, deployment, [])).toThrow(PodSpecError);
    expect(() => containerEnv({ name: 'app', envFrom: [{ configMapRef: { name: 'c' } }] }, deployment, [])).toThrow(
      new PodSpecError('container app envFrom', 'is not supported by the local runner'),
    );
  });
});

describe('runPod refuses what it cannot reproduce, before any process starts', () => {
  const refused = (spec: PodSpec) => runPod(deploymentOf(spec));

  test.each<[string, PodSpec, RegExp]>([
    ['init containers that are not native sidecars', { containers: [{ name: 'main' }], initContainers: [{ name: 'migrate' }] }, /^spec\.template\.spec\.initContainers migrate: only native sidecars \(restartPolicy: Always\) are supported/],
    ['a container with no app of its name', { containers: [{ name: 'web' }] }, /^container web: no app for this container name \(known: main, sidecar\)$/],
    ['a command replacing the entrypoint', { containers: [{ name: 'main', command: ['sh', '-c', 'true'] }] }, /^container main command: replaces the image's ENTRYPOINT/],
    [
      'one port declared by two containers',
      { containers: [{ name: 'main', ports: [{ containerPort: 18080 }] }, { name: 'sidecar', ports: [{ containerPort: 18080 }] }] },
      /^container sidecar port 18080: also declared by container main$/,
    ],
    ['an unsupported volume', { containers: [{ name: 'main' }], volumes: [{ name: 'host' }] }, /^volume host: only secret, configMap, projected and emptyDir/],
  ])('%s', async (_name, spec, expected) => {
    const err = await refused(spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PodSpecError);
    expect((err as Error).message).toMatch(expected);
  });

  test('something that is not a Deployment', async () => {
    await expect(runPod({ kind: 'Service' } as never)).rejects.toThrow('runPod needs a Deployment with spec.template.spec.containers');
  });

  test('a workDir handed in is left to the caller after a refusal', async () => {
    const work = path.join(scratch(), 'pod');
    fs.mkdirSync(work);
    await expect(runPod(deploymentOf({ containers: [{ name: 'web' }], volumes: [{ name: 'scratch', emptyDir: {} }] }), { workDir: work })).rejects.toThrow(PodSpecError);
    expect(fs.readdirSync(path.join(work, 'volumes'))).toEqual(['scratch']);
  });
});

describe('OutputLines: the launcher reading a process output', () => {
  test('lines split across chunks are whole once their newline arrives; the unfinished tail waits', () => {
    const seen: string[] = [];
    const output = new OutputLines('app', (line) => seen.push(line));
    const feed = output.feeder();
    feed(Buffer.from('{"msg":"sta'));
    expect(output.lines).toEqual([]);
    feed(Buffer.from('rting"}\nplain text\n{"msg":"listening","port":80'));
    expect(output.lines).toEqual(['{"msg":"starting"}', 'plain text']);
    expect(seen).toEqual(output.lines);
    expect(output.logs()).toEqual([{ msg: 'starting' }]);
  });

  test('waitFor resolves with a line already seen or one still to come, and times out naming the process', async () => {
    const output = new OutputLines('sidecar');
    const feed = output.feeder();
    feed(Buffer.from('{"msg":"starting"}\n'));
    await expect(output.waitFor((l) => l.msg === 'starting')).resolves.toEqual({ msg: 'starting' });
    const listening = output.waitFor((l) => l.msg === 'listening', 1_000);
    feed(Buffer.from('{"msg":"listening","port":8081}\n'));
    await expect(listening).resolves.toEqual({ msg: 'listening', port: 8081 });
    await expect(output.waitFor((l) => l.msg === 'never', 20)).rejects.toThrow(/^no matching log line from sidecar within 20 ms; output:\n\{"msg":"starting"\}/);
  });

  test('after discard() nothing is kept', () => {
    const output = new OutputLines('app');
    const feed = output.feeder();
    feed(Buffer.from('kept\n'));
    output.discard();
    feed(Buffer.from('dropped\n'));
    expect(output.lines).toEqual(['kept']);
  });
});
