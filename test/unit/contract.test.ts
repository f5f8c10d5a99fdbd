/**
 * In-process unit tests of contract/settings.ts and contract/timing.ts (issue 9 §3): the rules both
 * sides of the env boundary share, with exact values and exact problem texts, and the consistency
 * promises the contract's comments make between its own numbers.
 */
import {
  ADDRESSES,
  DEFAULT_LOG_LEVEL,
  DEFAULT_PORTS,
  DEFAULT_TIMING_BUDGET,
  DEFAULT_TIMING_INPUTS,
  GRACE_MARGIN_SECONDS,
  HEALTH_PATHS,
  LOG_LEVELS,
  MAIN_DEFAULTS,
  MAIN_EXTRA_DRAIN_MS,
  MAIN_INTEGERS,
  MAX_TIMER_MS,
  MIN_CONTAINER_PORT,
  POD_TIMING_INTEGERS,
  SHUTDOWN_MARGIN_SECONDS,
  SIDECAR_DEFAULTS,
  SIDECAR_INTEGERS,
  TOKEN_PATTERN,
  encodeBoolean,
  encodeInteger,
  encodePublicPaths,
  hostProblem,
  integerProblem,
  isLogLevel,
  logLevelProblem,
  parseBoolean,
  parseInteger,
  parseLogLevel,
  parsePublicPaths,
  pathProblem,
  publicPathProblem,
  publicPathsProblem,
  quoted,
  timingBudget,
} from '../../lib/src/contract';
import type { IntegerRule } from '../../lib/src/contract';

const RULE: IntegerRule = { min: 1, max: 10, default: 5 };

describe('quoted', () => {
  it.each([
    ['abc', '"abc"'],
    ['', '""'],
    ['a"b', '"a\\"b"'],
    ['a\\b', '"a\\\\b"'],
    ['a\nb', '"a\\nb"'],
    ['a\r\nb', '"a\\r\\nb"'],
    ['\u0001', '"\\u0001"'],
    ['tab\there', '"tab\\there"'],
  ])('%j → %s', (value, expected) => {
    expect(quoted(value)).toBe(expected);
  });

  it('keeps 80 characters whole and cuts longer values at 80 with an ellipsis', () => {
    expect(quoted('x'.repeat(80))).toBe(`"${'x'.repeat(80)}"`);
    expect(quoted('x'.repeat(81))).toBe(`"${'x'.repeat(80)}…"`);
    expect(quoted(`${'y'.repeat(79)}z${'w'.repeat(10_000)}`)).toBe(`"${'y'.repeat(79)}z…"`);
  });

  it('never spans lines, even for a long value full of newlines', () => {
    const q = quoted('\n'.repeat(200));
    expect(q).not.toMatch(/[\r\n]/);
    expect(q).toBe(`"${'\\n'.repeat(80)}…"`);
  });
});

describe('parseInteger', () => {
  it.each([
    ['1', 1],
    ['5', 5],
    ['10', 10],
  ])('accepts %j inside 1..10 (bounds inclusive) → %d', (text, value) => {
    expect(parseInteger(RULE, text)).toEqual({ ok: true, value });
  });

  it.each(['1e3', '0x10', ' 1', '1 ', '1.0', '1.', '-1', '+1', '', '1_000', '1,000', 'Infinity', 'NaN', 'one', '\u0661', '\uff11', '1\n'])(
    'refuses %j as not digits, quoting the text',
    (text) => {
      expect(parseInteger(RULE, text)).toEqual({ ok: false, problem: `must be an integer in 1..10, got ${quoted(text)}` });
    },
  );

  it.each([
    ['0', 0],
    ['11', 11],
  ])('refuses %j just outside 1..10, naming the number', (text, value) => {
    expect(parseInteger(RULE, text)).toEqual({ ok: false, problem: `must be an integer in 1..10, got ${value}` });
  });

  it('takes at most 10 digits: the largest timer is accepted, 11 digits never are', () => {
    const timer: IntegerRule = { min: 0, max: MAX_TIMER_MS, default: 0 };
    expect(parseInteger(timer, '2147483647')).toEqual({ ok: true, value: 2_147_483_647 });
    expect(parseInteger(timer, '2147483648')).toEqual({ ok: false, problem: 'must be an integer in 0..2147483647, got 2147483648' });
    expect(parseInteger(timer, '9999999999')).toEqual({ ok: false, problem: 'must be an integer in 0..2147483647, got 9999999999' });
    expect(parseInteger(timer, '00000000001')).toEqual({ ok: false, problem: 'must be an integer in 0..2147483647, got "00000000001"' });
    expect(parseInteger({ min: 0, max: Number.MAX_SAFE_INTEGER, default: 0 }, '12345678901')).toEqual({
      ok: false,
      problem: `must be an integer in 0..${Number.MAX_SAFE_INTEGER}, got "12345678901"`,
    });
  });

  it('encodeInteger is its inverse for every bound and default of the contract', () => {
    for (const rule of allRules()) {
      for (const v of [rule.min, rule.max, rule.default]) expect(parseInteger(rule, encodeInteger(v))).toEqual({ ok: true, value: v });
    }
  });
});

describe('integerProblem', () => {
  it('undefined inside the bounds, both ends included', () => {
    expect([1, 5, 10].map((v) => integerProblem(RULE, v))).toEqual([undefined, undefined, undefined]);
  });

  it.each([
    [0, 'must be an integer in 1..10, got 0'],
    [11, 'must be an integer in 1..10, got 11'],
    [1.5, 'must be an integer in 1..10, got 1.5'],
    [-1, 'must be an integer in 1..10, got -1'],
    [NaN, 'must be an integer in 1..10, got NaN'],
    [Infinity, 'must be an integer in 1..10, got Infinity'],
  ])('%p → %j', (value, problem) => {
    expect(integerProblem(RULE, value)).toBe(problem);
  });

  it('reads only min and max', () => {
    expect(integerProblem({ min: -3, max: -1 }, -2)).toBeUndefined();
    expect(integerProblem({ min: -3, max: -1 }, 0)).toBe('must be an integer in -3..-1, got 0');
  });
});

describe('log levels', () => {
  it.each(LOG_LEVELS.map((l) => [l]))('parses %j', (level) => {
    expect(parseLogLevel(level)).toEqual({ ok: true, value: level });
    expect(isLogLevel(level)).toBe(true);
    expect(logLevelProblem(level)).toBeUndefined();
  });

  it('the levels are pino’s, and the default is one of them', () => {
    expect([...LOG_LEVELS]).toEqual(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
    expect(DEFAULT_LOG_LEVEL).toBe('info');
  });

  it.each(['INFO', 'Info', ' info', 'info ', 'warning', 'verbose', ''])('refuses %j', (text) => {
    const problem = `must be one of fatal, error, warn, info, debug, trace, silent, got ${quoted(text)}`;
    expect(parseLogLevel(text)).toEqual({ ok: false, problem });
    expect(logLevelProblem(text)).toBe(problem);
    expect(isLogLevel(text)).toBe(false);
  });
});

describe('booleans', () => {
  it('encode and parse are inverse', () => {
    expect(encodeBoolean(true)).toBe('true');
    expect(encodeBoolean(false)).toBe('false');
    expect(parseBoolean(encodeBoolean(true))).toEqual({ ok: true, value: true });
    expect(parseBoolean(encodeBoolean(false))).toEqual({ ok: true, value: false });
  });

  it.each(['TRUE', 'True', '1', '0', 'yes', 'no', 'on', ' true', 'true ', ''])('refuses %j', (text) => {
    expect(parseBoolean(text)).toEqual({ ok: false, problem: `must be "true" or "false", got ${quoted(text)}` });
  });
});

describe('pathProblem', () => {
  it.each(['/', '/healthz', '/a/b/c', '/a,b', '/%3F', '/caf%C3%A9', '/a;b=c', "/~user/!$&'()*+=@:"])('accepts %j', (p) => {
    expect(pathProblem(p)).toBeUndefined();
  });

  it.each(['', 'healthz', 'a/b', '*', 'http://h/x', '/a?b', '/a?', '/a#b', '/a b', '/a\tb', '/a\nb', '/a\rb', '/a\u0000', '/a\u001f', '/a\u007f', '/a\u0085', '/a\u00a0b', '/a\u2028', '/caf\u00e9', '/gesundheit\u20ac'])(
    'refuses %j',
    (p) => {
      expect(pathProblem(p)).toBe(`must start with '/' and contain no '?', '#', whitespace, control or non-ASCII characters (percent-encode them), got ${quoted(p)}`);
    },
  );
});

describe('publicPathProblem', () => {
  it.each(['/', '/version', '/a/b', '/a;b'])('accepts %j', (p) => {
    expect(publicPathProblem(p)).toBeUndefined();
  });

  it.each(['/a,b', ',', '/a,', 'version', '/a?b', '/a#b', '/a b', '/a\u0000', ''])('refuses %j', (p) => {
    expect(publicPathProblem(p)).toBe(`must start with '/' and contain no '?', '#', ',', whitespace, control or non-ASCII characters (percent-encode them), got ${quoted(p)}`);
  });
});

describe('publicPathsProblem', () => {
  it('undefined for no paths and for distinct valid paths', () => {
    expect(publicPathsProblem([])).toBeUndefined();
    expect(publicPathsProblem(['/a', '/b', '/a/b', '/A'])).toBeUndefined();
  });

  it('names the first bad entry', () => {
    expect(publicPathsProblem(['/ok', 'bad', '/a,b'])).toBe(
      `entries must start with '/' and contain no '?', '#', ',', whitespace, control or non-ASCII characters (percent-encode them), got "bad"`,
    );
  });

  it('names a path listed twice (case counts: /A is not /a)', () => {
    expect(publicPathsProblem(['/a', '/b', '/a'])).toBe('lists "/a" twice');
    expect(publicPathsProblem(['/x', '/x', 'bad'])).toBe('lists "/x" twice');
  });
});

describe('encodePublicPaths / parsePublicPaths', () => {
  it('an empty list is no value at all', () => {
    expect(encodePublicPaths([])).toBeUndefined();
  });

  it.each([[['/a']], [['/a', '/b/c']], [['/version', '/', '/x;y', '/caf%C3%A9']]])('round trip %j', (paths) => {
    const text = encodePublicPaths(paths);
    expect(text).toBe(paths.join(','));
    expect(parsePublicPaths(text!)).toEqual({ ok: true, value: paths });
  });

  it.each(['', ',', ',/a', '/a,', '/a,,/b'])('refuses an empty entry in %j', (text) => {
    expect(parsePublicPaths(text)).toEqual({ ok: false, problem: 'contains an empty entry' });
  });

  it('refuses duplicates', () => {
    expect(parsePublicPaths('/a,/b,/a')).toEqual({ ok: false, problem: 'lists "/a" twice' });
  });

  it('refuses an entry with a space (no trimming)', () => {
    expect(parsePublicPaths('/a, /b')).toEqual({
      ok: false,
      problem: `entries must start with '/' and contain no '?', '#', ',', whitespace, control or non-ASCII characters (percent-encode them), got " /b"`,
    });
  });
});

describe('hostProblem', () => {
  const H253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;

  it.each([
    '0.0.0.0',
    '127.0.0.1',
    'localhost',
    'a',
    'A1',
    '1',
    'my-host.example.com',
    'ns1.Example.ORG',
    '::',
    '::1',
    'fe80::1',
    '2001:db8::8a2e:370:7334',
    '::ffff:127.0.0.1',
    H253,
    'f:'.repeat(22) + 'f',
    'fe80::1%eth0',
  ])('accepts %j', (value) => {
    expect(hostProblem(value)).toBeUndefined();
  });

  it('the ceilings: 253 characters for a name, 45 for an IPv6 literal', () => {
    expect(H253).toHaveLength(253);
    expect(hostProblem(`${H253}d`)).toBe(`must be an IP address or host name, got ${quoted(`${H253}d`)}`);
    expect(('f:'.repeat(22) + 'f').length).toBe(45);
    expect(hostProblem('f:'.repeat(23))).toBe(`must be an IP address or host name, got ${quoted('f:'.repeat(23))}`);
  });

  it.each(['', '-a', 'a-', '.a', 'a.', 'a_b', 'a b', 'a/b', 'http://127.0.0.1', '[::1]', ':', '127.0.0.1:80x', 'h\u00e9', 'fe80::1%', 'fe80::1%eth 0'])(
    'refuses %j',
    (value) => {
      expect(hostProblem(value)).toBe(`must be an IP address or host name, got ${quoted(value)}`);
    },
  );
});

describe('TOKEN_PATTERN (RFC 6750 b64token)', () => {
  it.each(['a', 'abc123', 'A-Z_a.z~0+9/', 'abc=', 'abc==', 'abc===', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig-_', '/', '+', '~'])('accepts %j', (t) => {
    expect(TOKEN_PATTERN.test(t)).toBe(true);
  });

  it.each(['', '=', '==', '=abc', 'ab=c', 'a=b=', 'a b', 'a\tb', 'abc\n', '\nabc', 'a,b', 'a"b', 'a;b', 'a:b', 'a\\b', 'caf\u00e9', 'abc= '])(
    'refuses %j',
    (t) => {
      expect(TOKEN_PATTERN.test(t)).toBe(false);
    },
  );
});

describe('timingBudget', () => {
  it('the default inputs', () => {
    expect(DEFAULT_TIMING_INPUTS).toEqual({ drainDelayMs: 5_000, upstreamTimeoutMs: 15_000, preStopDelaySeconds: 5, terminationGracePeriodSeconds: 40 });
    expect(timingBudget(DEFAULT_TIMING_INPUTS)).toEqual({ mainDrainDelayMs: 10_000, sidecarShutdownTimeoutMs: 33_000, minTerminationGracePeriodSeconds: 30 });
    expect(DEFAULT_TIMING_BUDGET).toEqual(timingBudget(DEFAULT_TIMING_INPUTS));
  });

  it.each([
    // drain, upstream, preStop, grace → main drain, sidecar shutdown, min grace
    [{ drainDelayMs: 2_000, upstreamTimeoutMs: 3_000, preStopDelaySeconds: 1, terminationGracePeriodSeconds: 20 }, [7_000, 17_000, 11]],
    // 5001 ms rounds up to 6 s.
    [{ drainDelayMs: 2_001, upstreamTimeoutMs: 3_000, preStopDelaySeconds: 1, terminationGracePeriodSeconds: 20 }, [7_001, 17_000, 12]],
    [{ drainDelayMs: 5_500, upstreamTimeoutMs: 1_000, preStopDelaySeconds: 3, terminationGracePeriodSeconds: 30 }, [10_500, 25_000, 15]],
    [{ drainDelayMs: 0, upstreamTimeoutMs: 1, preStopDelaySeconds: 0, terminationGracePeriodSeconds: 3_600 }, [5_000, 3_598_000, 6]],
    [{ drainDelayMs: 600_000, upstreamTimeoutMs: 2_700_000, preStopDelaySeconds: 0, terminationGracePeriodSeconds: 3_600 }, [605_000, 3_598_000, 3_305]],
  ])('%j', (inputs, [main, shutdown, grace]) => {
    expect(timingBudget(inputs)).toEqual({ mainDrainDelayMs: main, sidecarShutdownTimeoutMs: shutdown, minTerminationGracePeriodSeconds: grace });
  });

  it('the margins it uses', () => {
    expect([MAIN_EXTRA_DRAIN_MS, SHUTDOWN_MARGIN_SECONDS, GRACE_MARGIN_SECONDS]).toEqual([5_000, 2, 5]);
  });
});

function allRules(): IntegerRule[] {
  return [...Object.values(SIDECAR_INTEGERS), ...Object.values(MAIN_INTEGERS), ...Object.values(POD_TIMING_INTEGERS)];
}

describe('consistency the contract promises', () => {
  const groups = { SIDECAR_INTEGERS, MAIN_INTEGERS, POD_TIMING_INTEGERS } as Record<string, Record<string, IntegerRule>>;
  const rows = Object.entries(groups).flatMap(([group, rules]) => Object.entries(rules).map(([key, rule]) => [`${group}.${key}`, rule] as const));

  it.each(rows)('%s: whole-number bounds, min ≤ default ≤ max, within the timer limit', (_name, rule) => {
    expect(Number.isInteger(rule.min) && Number.isInteger(rule.max) && Number.isInteger(rule.default)).toBe(true);
    expect(rule.min).toBeLessThanOrEqual(rule.default);
    expect(rule.default).toBeLessThanOrEqual(rule.max);
    expect(rule.min).toBeGreaterThanOrEqual(0);
    expect(rule.max).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(integerProblem(rule, rule.default)).toBeUndefined();
  });

  it('the sidecar closes an idle pooled socket before main does', () => {
    expect(SIDECAR_INTEGERS.upstreamIdleTimeoutMs.default).toBeLessThan(MAIN_INTEGERS.keepAliveTimeoutMs.default);
  });

  it("main's keep-alive leaves room for headersTimeout = keep-alive + 1 s", () => {
    expect(MAIN_INTEGERS.keepAliveTimeoutMs.max + 1_000).toBe(MAX_TIMER_MS);
  });

  it("the sidecar's default shutdown bound is longer than its default drain", () => {
    expect(SIDECAR_INTEGERS.shutdownTimeoutMs.default).toBeGreaterThan(SIDECAR_INTEGERS.drainDelayMs.default);
    expect(SIDECAR_INTEGERS.shutdownTimeoutMs.default).toBe(DEFAULT_TIMING_BUDGET.sidecarShutdownTimeoutMs);
  });

  it("main's default drain outlasts the sidecar's", () => {
    expect(MAIN_INTEGERS.drainDelayMs.default).toBe(SIDECAR_INTEGERS.drainDelayMs.default + MAIN_EXTRA_DRAIN_MS);
    expect(MAIN_INTEGERS.drainDelayMs.default).toBe(DEFAULT_TIMING_BUDGET.mainDrainDelayMs);
  });

  it('the defaults are the timing inputs', () => {
    expect(SIDECAR_INTEGERS.drainDelayMs.default).toBe(DEFAULT_TIMING_INPUTS.drainDelayMs);
    expect(SIDECAR_INTEGERS.upstreamTimeoutMs.default).toBe(DEFAULT_TIMING_INPUTS.upstreamTimeoutMs);
    expect(POD_TIMING_INTEGERS.preStopDelaySeconds.default).toBe(DEFAULT_TIMING_INPUTS.preStopDelaySeconds);
    expect(POD_TIMING_INTEGERS.terminationGracePeriodSeconds.default).toBe(DEFAULT_TIMING_INPUTS.terminationGracePeriodSeconds);
  });

  it('the default grace period holds the default preStop, drain and upstream timeout', () => {
    expect(DEFAULT_TIMING_BUDGET.minTerminationGracePeriodSeconds).toBeLessThanOrEqual(DEFAULT_TIMING_INPUTS.terminationGracePeriodSeconds);
  });

  it('the longest drain plus the longest upstream timeout fit the longest grace period', () => {
    const longest = timingBudget({
      drainDelayMs: SIDECAR_INTEGERS.drainDelayMs.max,
      upstreamTimeoutMs: SIDECAR_INTEGERS.upstreamTimeoutMs.max,
      preStopDelaySeconds: POD_TIMING_INTEGERS.preStopDelaySeconds.min,
      terminationGracePeriodSeconds: POD_TIMING_INTEGERS.terminationGracePeriodSeconds.max,
    });
    expect(longest.minTerminationGracePeriodSeconds).toBeLessThanOrEqual(POD_TIMING_INTEGERS.terminationGracePeriodSeconds.max);
    // The shutdown bound is what that longest grace period allows, and longer than the longest drain.
    expect(SIDECAR_INTEGERS.shutdownTimeoutMs.max).toBe(longest.sidecarShutdownTimeoutMs);
    expect(SIDECAR_INTEGERS.shutdownTimeoutMs.max).toBe(3_598_000);
    expect(SIDECAR_INTEGERS.shutdownTimeoutMs.max).toBeGreaterThan(SIDECAR_INTEGERS.drainDelayMs.max);
    expect(SIDECAR_INTEGERS.upstreamTimeoutMs.max).toBe(45 * 60_000);
  });

  it('ports: 0 for local runs, a container port from 1, the default ports distinct', () => {
    for (const rule of [SIDECAR_INTEGERS.port, SIDECAR_INTEGERS.adminPort, MAIN_INTEGERS.port]) expect([rule.min, rule.max]).toEqual([0, 65_535]);
    expect(MIN_CONTAINER_PORT).toBe(1);
    expect([SIDECAR_INTEGERS.port.default, SIDECAR_INTEGERS.adminPort.default, MAIN_INTEGERS.port.default]).toEqual([
      DEFAULT_PORTS.sidecar,
      DEFAULT_PORTS.admin,
      DEFAULT_PORTS.main,
    ]);
    expect(new Set(Object.values(DEFAULT_PORTS)).size).toBe(3);
  });

  it("the sidecar's default upstream is main's default port on the loopback, and parses as its own rules want", () => {
    expect(SIDECAR_DEFAULTS.upstream).toBe(`http://${ADDRESSES.loopback}:${MAIN_INTEGERS.port.default}`);
    expect(pathProblem(SIDECAR_DEFAULTS.upstreamHealthPath)).toBeUndefined();
    expect(SIDECAR_DEFAULTS.upstreamHealthPath).toBe(HEALTH_PATHS.main);
    expect(publicPathsProblem(SIDECAR_DEFAULTS.publicPaths)).toBeUndefined();
    expect(hostProblem(SIDECAR_DEFAULTS.host)).toBeUndefined();
    expect(hostProblem(MAIN_DEFAULTS.host)).toBeUndefined();
    expect(isLogLevel(SIDECAR_DEFAULTS.logLevel) && isLogLevel(MAIN_DEFAULTS.logLevel)).toBe(true);
  });
});
