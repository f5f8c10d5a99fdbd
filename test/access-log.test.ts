/**
 * The hand-built access line (apps/sidecar/src/log.ts) is exactly what pino would write for the
 * same fields: same keys in the same order, same values, valid JSON for any path bytes.
 */
import { Writable } from 'stream';
import fc from 'fast-check';
import { createAccessLog, createLogger } from '../apps/sidecar/src/log';
import type { AccessFields } from '../apps/sidecar/src/log';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(l);
      cb();
    },
  });
  return { lines, stream };
}

const withoutTime = (line: string) => {
  const o = JSON.parse(line) as Record<string, unknown>;
  expect(typeof o.time).toBe('number');
  delete o.time;
  return o;
};

const fields: fc.Arbitrary<AccessFields> = fc.record(
  {
    method: fc.constantFrom('GET', 'POST', 'M-SEARCH', undefined),
    path: fc.string({ unit: 'binary', maxLength: 40 }),
    status: fc.integer({ min: 100, max: 599 }),
    durationMs: fc.double({ min: 0, max: 1e6, noNaN: true }).map((d) => Math.round(d * 100) / 100),
    requestId: fc.string({ maxLength: 20 }),
    subject: fc.string({ unit: 'binary', maxLength: 12 }),
    reason: fc.constantFrom('public', 'invalid_token', 'after_close', 'forbidden'),
    rule: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant('default' as const)),
    upstreamError: fc.constantFrom('ECONNREFUSED', 'UPSTREAM_TIMEOUT'),
    aborted: fc.constant(true),
    upgrade: fc.constant(true),
  },
  { requiredKeys: ['method', 'path', 'status', 'durationMs', 'requestId'] },
);

it('writes the line pino would write, key for key, for any fields', () => {
  const ours = capture();
  const theirs = capture();
  const write = createAccessLog(createLogger('info', ours.stream));
  const reference = createLogger('info', theirs.stream);
  fc.assert(
    fc.property(fields, (f) => {
      ours.lines.length = 0;
      theirs.lines.length = 0;
      write(f);
      const { method, ...rest } = f;
      reference.info({ ...(method === undefined ? {} : { method }), ...rest }, 'request');
      expect(ours.lines).toHaveLength(1);
      expect(Object.keys(JSON.parse(ours.lines[0]))).toEqual(Object.keys(JSON.parse(theirs.lines[0])));
      expect(withoutTime(ours.lines[0])).toEqual(withoutTime(theirs.lines[0]));
    }),
    { numRuns: 500 },
  );
});

it('writes nothing when the level is above info', () => {
  const ours = capture();
  createAccessLog(createLogger('warn', ours.stream))({ method: 'GET', path: '/', status: 200, durationMs: 1, requestId: 'r' });
  expect(ours.lines).toEqual([]);
});
