/**
 * In-process unit tests of lib/validate.ts (issue 9 §3): the synth-time prop checks. Every refusal
 * is a SidecarAppPropError whose `prop` and one-line message name the prop.
 */
import { SIDECAR_INTEGERS, quoted } from '../../lib/src/contract';
import {
  SidecarAppPropError,
  containerPortName,
  distinct,
  dnsSubdomain,
  envName,
  integer,
  label,
  oneOf,
  pinnedImage,
  port,
  publicPaths,
  quantity,
  resourceName,
  servicePortName,
} from '../../lib/src/validate';

const PROP = 'some.prop';

/** The SidecarAppPropError `check` throws; its prop and message must name the prop. */
function refusal(check: () => unknown, prop = PROP): SidecarAppPropError {
  let error: unknown;
  try {
    check();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(SidecarAppPropError);
  const e = error as SidecarAppPropError;
  expect(e.name).toBe('SidecarAppPropError');
  expect(e.prop).toBe(prop);
  expect(e.message.startsWith(`SidecarApp: ${prop} `)).toBe(true);
  expect(e.message).not.toMatch(/[\r\n]/);
  return e;
}

/** The message after "SidecarApp: <prop> ". */
const reason = (e: Error, prop = PROP) => e.message.slice(`SidecarApp: ${prop} `.length);

const HEX = 'a'.repeat(64);

describe('quantity', () => {
  it.each([
    ['50m', 0.05],
    ['100m', 0.1],
    ['1m', 0.001],
    ['0.5', 0.5],
    ['1', 1],
    ['0', 0],
    ['+1', 1],
    ['.5', 0.5],
    ['1.', 1],
    ['1.5', 1.5],
    ['250', 250],
    ['1k', 1_000],
    ['1M', 1_000_000],
    ['1G', 1_000_000_000],
    ['2T', 2e12],
    ['1P', 1e15],
    ['1E', 1e18],
    ['1Ki', 1_024],
    ['64Mi', 67_108_864],
    ['1.5Gi', 1_610_612_736],
    ['1Ti', 2 ** 40],
    ['1Pi', 2 ** 50],
    ['2Ei', 2 ** 61],
    ['1e3', 1_000],
    ['1E3', 1_000],
    ['1e+3', 1_000],
    ['1e-3', 0.001],
    ['5e0', 5],
    ['+.5Mi', 524_288],
  ])('%j → %p', (text, value) => {
    expect(quantity(PROP, text)).toBe(value);
  });

  it.each(['', '1.2.3', 'Mi', 'm', '-1', '-1Mi', '1 Mi', ' 1', '1 ', '1mi', '1MI', '1K', '1KI', '1ki', '1Gb', '1e', 'e3', '1e3Mi', '1Mi1', '++1', '0x10', '1,5', '.', '+', 'Infinity', 'NaN'])(
    'refuses %j',
    (text) => {
      const e = refusal(() => quantity(PROP, text));
      expect(reason(e)).toBe(`must be a Kubernetes quantity such as "100m", "0.5", "64Mi", got "${text}"`);
    },
  );
});

describe('pinnedImage', () => {
  it.each([
    'nginx:1.27',
    'repo/app:1.2.3',
    'docker.io/library/nginx:1.27.0-alpine',
    'ghcr.io/org/team/app:v1',
    'localhost/app:1',
    'localhost:5000/app:1',
    'registry.example.com:5000/team/app:1.0',
    '10.0.0.1:5000/app:2024-01-01',
    'my_app:1',
    'my__app:1',
    'my---app:1',
    'a.b/c:_x',
    'app:LATEST',
    `app:${'t'.repeat(128)}`,
    `app@sha256:${HEX}`,
    `app:1@sha256:${HEX}`,
    `app:latest@sha256:${HEX}`,
    `localhost:5000/app@sha256:${'0123456789abcdef'.repeat(4)}`,
  ])('accepts %j and returns it unchanged', (image) => {
    expect(pinnedImage(PROP, image)).toBe(image);
  });

  const pinned = 'must be pinned to a tag (e.g. "repo/app:1.2.3", not "latest") or a digest';

  it.each([
    ['', `must not be empty; image ${pinned}`],
    ['   ', `must not be empty; image ${pinned}`],
    ['nginx', `"nginx" has no tag; image ${pinned}`],
    ['repo/app', `"repo/app" has no tag; image ${pinned}`],
    // The registry's port is not a tag.
    ['localhost:5000/app', `"localhost:5000/app" has no tag; image ${pinned}`],
    ['nginx:latest', `"nginx:latest" uses the "latest" tag; image ${pinned}`],
    ['registry.example.com:5000/app:latest', `"registry.example.com:5000/app:latest" uses the "latest" tag; image ${pinned}`],
    ['a b:1', 'must not contain whitespace, got "a b:1"'],
    ['app:1\tx', 'must not contain whitespace, got "app:1\\tx"'],
    ['App:1', 'has an invalid repository "App" (lowercase letters, digits and separators only)'],
    ['repo//app:1', 'has an invalid repository "repo//app" (lowercase letters, digits and separators only)'],
    ['-app:1', 'has an invalid repository "-app" (lowercase letters, digits and separators only)'],
    ['app.:1', 'has an invalid repository "app." (lowercase letters, digits and separators only)'],
    [`@sha256:${HEX}`, 'has an invalid repository "" (lowercase letters, digits and separators only)'],
    ['bad_registry.io:5000/app:1', 'has an invalid registry "bad_registry.io:5000"'],
    ['reg.io:port/app:1', 'has an invalid registry "reg.io:port"'],
    ['app:', 'has an invalid tag ""'],
    ['app:-1', 'has an invalid tag "-1"'],
    ['app:.1', 'has an invalid tag ".1"'],
    ['app:1:2', 'has an invalid tag "1:2"'],
    [`app:${'t'.repeat(129)}`, `has an invalid tag "${'t'.repeat(80)}…"`],
    ['app@sha256:abc', 'has an invalid digest "sha256:abc" (expected sha256:<64 hex>)'],
    [`app@sha256:${'A'.repeat(64)}`, `has an invalid digest "sha256:${'A'.repeat(64)}" (expected sha256:<64 hex>)`],
    [`app@sha512:${HEX}`, `has an invalid digest "sha512:${HEX}" (expected sha256:<64 hex>)`],
    [`app@sha256:${HEX}a`, `has an invalid digest "sha256:${HEX}a" (expected sha256:<64 hex>)`],
  ])('refuses %j', (image, message) => {
    expect(reason(refusal(() => pinnedImage(PROP, image)))).toBe(message);
  });
});

// Was a bug: with a digest, pinnedImage returned before it checked the tag, so a reference whose tag is
// malformed passes synth. The reference grammar (name[:tag][@digest], tag = [\w][\w.-]{0,127}) makes
// the whole reference invalid, and the kubelet then refuses it (InvalidImageName): the pod that
// never starts which these checks exist to prevent.
describe('pinnedImage with a digest still checks the tag', () => {
  it.each([`app:-bad@sha256:${HEX}`, `app:@sha256:${HEX}`, `app:a%b@sha256:${HEX}`])('refuses %j', (image) => {
    expect(reason(refusal(() => pinnedImage(PROP, image)))).toMatch(/^has an invalid tag /);
  });
});

describe('resourceName', () => {
  it.each(['web', 'a', 'web-1', 'a-b-c', 'x'.repeat(63)])('accepts %j', (name) => {
    expect(resourceName(PROP, name)).toBe(name);
  });

  it.each(['', '1web', 'Web', 'web-', '-web', 'web_1', 'web.app', 'web app', 'x'.repeat(64), 'wéb'])('refuses %j', (name) => {
    expect(reason(refusal(() => resourceName(PROP, name)))).toBe(
      `must be a DNS label (lowercase letters, digits and '-', starting with a letter, at most 63 characters), got "${name}"`,
    );
  });
});

describe('dnsSubdomain and servicePortName', () => {
  it('a subdomain may have dots and start with a digit; a service port name is a label', () => {
    expect(dnsSubdomain(PROP, '1.example.com')).toBe('1.example.com');
    expect(reason(refusal(() => dnsSubdomain(PROP, 'a..b')))).toBe(`must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters), got "a..b"`);
    expect(servicePortName(PROP, '8080-http')).toBe('8080-http');
    expect(reason(refusal(() => servicePortName(PROP, 'a.b')))).toBe(`must be a DNS label (lowercase letters, digits and '-', at most 63 characters), got "a.b"`);
  });
});

describe('containerPortName', () => {
  it.each(['http', 'h', 'h2c', 'a1', '1a', 'web-admin', 'abcdefghijklmno', 'a-1-b'])('accepts %j', (name) => {
    expect(containerPortName(PROP, name)).toBe(name);
  });

  it.each([
    ['', 0],
    ['abcdefghijklmnop', 16],
    ['metrics-and-more-x', 18],
  ])('refuses %j by its length (%d)', (name, length) => {
    expect(reason(refusal(() => containerPortName(PROP, name)))).toBe(`must be 1..15 characters long (IANA service name), got "${name}" (${length})`);
  });

  it.each(['a--b', '123', '1-2', '-http', 'http-', 'HTTP', 'ht_tp', 'ht.tp', 'ht tp'])('refuses %j as no IANA service name', (name) => {
    expect(reason(refusal(() => containerPortName(PROP, name)))).toBe(
      `must be an IANA service name (lowercase letters, digits and single '-', with at least one letter), got "${name}"`,
    );
  });
});

describe('label', () => {
  it.each([
    ['app', 'web'],
    ['app', ''],
    ['app.kubernetes.io/name', 'web'],
    ['example.com/A_b.c-D', 'X_y.z-1'],
    ['k', 'v'],
    ['x'.repeat(63), 'y'.repeat(63)],
    [`${'p'.repeat(253)}/n`, 'v'],
  ])('accepts %j: %j', (key, value) => {
    expect(label(PROP, key, value)).toBeUndefined();
  });

  it.each(['', 'a/', '/a', 'Example.com/a', '-a', 'a-', '_a', 'a b', 'a/b/c', 'x'.repeat(64), `${'p'.repeat(254)}/n`, 'a:b'])('refuses the key %j', (key) => {
    expect(reason(refusal(() => label(PROP, key, 'v')))).toBe(`has an invalid label key ${quoted(key)}`);
  });

  it.each(['-x', 'x-', '.x', 'a b', 'a/b', 'y'.repeat(64), 'é'])('refuses the value %j', (value) => {
    expect(reason(refusal(() => label(PROP, 'app', value)))).toBe(`has an invalid value for label "app": "${value}"`);
  });
});

describe('distinct', () => {
  it('passes distinct values', () => {
    expect(
      distinct(
        [
          ['main.port', 8080],
          ['sidecar.port', 8081],
          ['admin.port', 9091],
        ],
        'ports',
      ),
    ).toBeUndefined();
    expect(distinct([], 'ports')).toBeUndefined();
  });

  it('names the later of two equal values and the earlier one in the message', () => {
    const e = refusal(
      () =>
        distinct(
          [
            ['main.port', 8080],
            ['admin.port', 9091],
            ['sidecar.port', 8080],
          ],
          'ports',
        ),
      'sidecar.port',
    );
    expect(e.message).toBe('SidecarApp: sidecar.port (8080) must differ from main.port: two ports cannot be the same');
  });

  it('compares strings too', () => {
    const e = refusal(
      () =>
        distinct(
          [
            ['main.portName', 'http'],
            ['sidecar.portName', 'http'],
          ],
          'port names',
        ),
      'sidecar.portName',
    );
    expect(e.message).toBe('SidecarApp: sidecar.portName ("http") must differ from main.portName: two port names cannot be the same');
  });
});

describe('envName', () => {
  it.each(['A', '_', '_X', 'FOO_BAR1', 'lower', 'a1'])('accepts %j', (name) => {
    expect(envName(PROP, name)).toBe(name);
  });

  it.each(['', '1A', 'A-B', 'A.B', 'A B', 'A=B', 'É'])('refuses %j', (name) => {
    expect(reason(refusal(() => envName(PROP, name)))).toBe(`has an invalid variable name "${name}" (letters, digits and '_', not starting with a digit)`);
  });
});

describe('integer, port, oneOf, publicPaths', () => {
  it('integer: the contract bounds, inclusive', () => {
    const rule = SIDECAR_INTEGERS.tokensPollIntervalMs;
    expect(integer(PROP, 50, rule)).toBe(50);
    expect(integer(PROP, 3_600_000, rule)).toBe(3_600_000);
    expect(reason(refusal(() => integer(PROP, 49, rule)))).toBe('must be an integer in 50..3600000, got 49');
    expect(reason(refusal(() => integer(PROP, 50.5, rule)))).toBe('must be an integer in 50..3600000, got 50.5');
  });

  it('port: 1..65535 (the apps’ 0 is no container port)', () => {
    expect([port(PROP, 1), port(PROP, 65_535)]).toEqual([1, 65_535]);
    expect(reason(refusal(() => port(PROP, 0)))).toBe('must be an integer in 1..65535, got 0');
    expect(reason(refusal(() => port(PROP, 65_536)))).toBe('must be an integer in 1..65535, got 65536');
  });

  it('oneOf', () => {
    expect(oneOf(PROP, 'b', ['a', 'b'])).toBe('b');
    expect(reason(refusal(() => oneOf(PROP, 'c' as string, ['a', 'b'])))).toBe('must be one of a, b, got "c"');
  });

  it('publicPaths: the contract grammar', () => {
    expect(publicPaths(PROP, ['/a', '/b'])).toEqual(['/a', '/b']);
    expect(reason(refusal(() => publicPaths(PROP, ['/a', '/a'])))).toBe('lists "/a" twice');
  });
});

// Was a bug: the module promises "a one-line Error that names the prop", but these checks quoted the
// value raw ("${value}"), so a value with a line break gives a multi-line message (the contract's
// quoted() escapes it). The refusal itself is right; only the message breaks the promise.
describe('messages stay on one line whatever the value', () => {
  it.each([
    ['pinnedImage', () => pinnedImage(PROP, 'app:1\nInjected: line')],
    ['quantity', () => quantity(PROP, '1\n')],
    ['resourceName', () => resourceName(PROP, 'web\nx')],
    ['containerPortName', () => containerPortName(PROP, 'a\nb')],
    ['envName', () => envName(PROP, 'A\nB')],
    ['label key', () => label(PROP, 'a\nb', 'v')],
    ['label value', () => label(PROP, 'app', 'v\nw')],
  ])('%s', (_name, check) => {
    refusal(check);
  });

  it('(the refusals themselves are right: SidecarAppPropError naming the prop)', () => {
    for (const check of [
      () => pinnedImage(PROP, 'app:1\nInjected: line'),
      () => quantity(PROP, '1\n'),
      () => resourceName(PROP, 'web\nx'),
      () => containerPortName(PROP, 'a\nb'),
      () => envName(PROP, 'A\nB'),
      () => label(PROP, 'a\nb', 'v'),
      () => label(PROP, 'app', 'v\nw'),
    ]) {
      expect(check).toThrow(SidecarAppPropError);
      expect(check).toThrow(/^SidecarApp: some\.prop /);
    }
  });
});
