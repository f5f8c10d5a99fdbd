/**
 * The contract's route rules (lib/src/contract/routes.ts), in-process: the canonical-path rule for
 * every spelling that could make one resource look like another, the tables accepted and refused
 * (with their messages), shadowing, and the encode/parse round trip.
 */
import fc from 'fast-check';
import {
  MAX_ROUTE_RULES,
  canonicalPathProblem,
  encodeRoutes,
  parseRoutes,
  publicPathRoutes,
  routeTableProblem,
  routesProblem,
} from '../lib/src/contract';
import type { RouteRuleSpec, RouteTableSpec } from '../lib/src/contract';

describe('canonicalPathProblem', () => {
  const CANONICAL = [
    '/',
    '/a',
    '/api/',
    '/api/v1/orders',
    "/A-Z_a.z~0!$&'()*+,=:@",
    '/a%20b',
    '/%22quoted%22',
    '/%3C%3E%5B%5D%7B%7D%7C%5E%60',
    '/caf%C3%A9',
    '/%E2%82%AC',
    '/%F0%9F%98%80',
    '/%F4%8F%BF%BF',
    '/...',
    '/.well-known/x',
    '/a.',
    '/a..',
    '/..a',
    '/a/b/',
  ];
  it.each(CANONICAL)('%j is canonical', (p) => {
    expect(canonicalPathProblem(p)).toBeUndefined();
  });

  const NOT_CANONICAL: [string, string, RegExp][] = [
    ['empty', '', /start with '\/'/],
    ['relative', 'api', /start with '\/'/],
    ['absolute-form', 'http://x/public', /start with '\/'/],
    ['asterisk-form', '*', /start with '\/'/],
    ['dot-dot segment', '/api/../admin', /'\.' or '\.\.' segment/],
    ['dot-dot at the end', '/api/..', /'\.' or '\.\.' segment/],
    ['dot segment', '/public/./admin', /'\.' or '\.\.' segment/],
    ['dot at the end', '/public/.', /'\.' or '\.\.' segment/],
    ['leading dot segment', '/./public', /'\.' or '\.\.' segment/],
    ['doubled slash', '//admin', /empty segment/],
    ['doubled slash inside', '/api//admin', /empty segment/],
    ['two trailing slashes', '/api//', /empty segment/],
    ['encoded slash', '/public%2F../admin', /percent-encodes/],
    ['encoded slash in a segment', '/public/..%2Fadmin', /percent-encodes/],
    ['lowercase encoded slash', '/public%2f..%2fadmin', /two uppercase hex/],
    ['encoded dots', '/api/%2E%2E/admin', /percent-encodes/],
    ['lowercase encoded dots', '/api/%2e%2e/admin', /two uppercase hex/],
    ['one encoded dot', '/api/.%2E/admin', /percent-encodes/],
    ['encoded backslash', '/public/%5C../admin', /percent-encodes/],
    ['encoded semicolon', '/public%3B/admin', /percent-encodes/],
    ['encoded percent', '/public%25/admin', /percent-encodes/],
    ['encoded question mark', '/public%3F', /percent-encodes/],
    ['encoded hash', '/public%23', /percent-encodes/],
    ['encoded letter', '/%41dmin', /percent-encodes/],
    ...[...'!$&\'()*+,=:@'].map((c): [string, string, RegExp] => [
      `an escaped '${c}', which is allowed plainly`,
      `/users/${'%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}admin`,
      /percent-encodes a character allowed plainly/,
    ]),
    ['encoded digit', '/v%31', /percent-encodes/],
    ['encoded tilde', '/%7Euser', /percent-encodes/],
    ['encoded NUL', '/public%00', /percent-encodes/],
    ['encoded control', '/public%0A', /percent-encodes/],
    ['encoded DEL', '/public%7F', /percent-encodes/],
    ['semicolon', '/public;/admin', /character outside/],
    ['dot semicolon', '/public/.;/admin', /character outside/],
    ['matrix parameter', '/public;jsessionid=1', /character outside/],
    ['hash', '/public#/../admin', /character outside/],
    ['backslash', '/public\\..\\admin', /character outside/],
    ['space', '/a b', /character outside/],
    ['tab', '/a\tb', /character outside/],
    ['quote', '/a"b', /character outside/],
    ['angle brackets', '/<script>', /character outside/],
    ['question mark', '/a?b', /character outside/],
    ['non-ASCII', '/caf\u00e9', /character outside/],
    ['dotless i', '/publ\u0131c', /character outside/],
    ['lone percent', '/public%', /two uppercase hex/],
    ['short escape', '/public%4', /two uppercase hex/],
    ['not hex', '/public%G1', /two uppercase hex/],
    ['%u escape', '/%u002e%u002e/admin', /two uppercase hex/],
    ['overlong dot', '/api/%C0%AE%C0%AE/admin', /UTF-8/],
    ['overlong slash', '/api%C0%AFadmin', /UTF-8/],
    ['overlong three bytes', '/%E0%80%AE', /UTF-8/],
    ['overlong four bytes', '/%F0%80%80%AE', /UTF-8/],
    ['surrogate', '/%ED%A0%80', /UTF-8/],
    ['above U+10FFFF', '/%F4%90%80%80', /UTF-8/],
    ['lone continuation byte', '/%80', /UTF-8/],
    ['cut-short sequence', '/%E2%82', /UTF-8/],
    ['sequence cut by a plain character', '/%E2%82x', /UTF-8/],
    ['sequence cut by a slash', '/%C3/a', /UTF-8/],
    ['invalid lead byte', '/%FF', /UTF-8/],
  ];
  it.each(NOT_CANONICAL)('%s: %j is not canonical', (_what, p, message) => {
    expect(canonicalPathProblem(p)).toMatch(message);
  });

  it('never echoes the path it judges (the message is one of a few fixed texts)', () => {
    const messages = new Set(NOT_CANONICAL.map(([, p]) => canonicalPathProblem(p)));
    expect(messages.size).toBeLessThanOrEqual(7);
    for (const [, p] of NOT_CANONICAL) if (p.length > 3) expect(canonicalPathProblem(p)).not.toContain(p.slice(1));
  });

  it('a canonical path survives decoding, dot-segment removal and slash merging unchanged in structure', () => {
    // Property: decoding a canonical path's escapes yields no '/', '\', ';', '.' segment or '%' that was not plainly there.
    const unit = fc.constantFrom('a', 'Z', '0', '-', '.', '_', '~', '!', '*', ':', '@', '/', '%2F', '%2E', '%41', '%20', '%C3%A9', '%C0%AE', ';', '\\', '%', '%2f');
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 10 }), (parts) => {
        const p = `/${parts.join('')}`;
        if (canonicalPathProblem(p) !== undefined) return;
        let decoded: string;
        try {
          decoded = decodeURIComponent(p);
        } catch {
          throw new Error(`canonical but not decodable: ${p}`);
        }
        expect(decoded.split('/').length).toBe(p.split('/').length);
        expect(decoded.split('/').slice(1, -1)).not.toContain('');
        expect(decoded.split('/')).not.toContain('.');
        expect(decoded.split('/')).not.toContain('..');
        expect(decoded).not.toMatch(/[\\;]/);
        expect(new URL(p, 'http://x').pathname).toBe(p);
      }),
      { numRuns: 2000 },
    );
  });
});

const table = (rules: unknown[], extra: Record<string, unknown> = {}) => ({ rules, ...extra });

describe('routesProblem: accepted tables', () => {
  // Every row has all its columns: with fewer, jest would pass the test its `done` callback.
  const ACCEPTED: [string, RouteTableSpec, string[] | undefined][] = [
    ['no rules, deny', { rules: [], default: 'deny' }, undefined],
    ['exact public', table([{ path: '/healthz', effect: 'public' }]) as RouteTableSpec, undefined],
    ['prefix and the root', table([{ path: '/api/*', effect: 'authenticated' }, { path: '/*', effect: 'public' }]) as RouteTableSpec, undefined],
    ['methods', table([{ path: '/api/*', methods: ['GET', 'HEAD'], effect: 'public' }, { path: '/api/*', effect: 'authenticated' }]) as RouteTableSpec, undefined],
    ['a narrower rule first', table([{ path: '/api/admin/*', effect: 'subjects', subjects: ['ops'] }, { path: '/api/*', effect: 'authenticated' }]) as RouteTableSpec, undefined],
    [
      'subjects of every kind',
      table([{ path: '/x', effect: 'subjects', subjects: ['ci', 'okta:alice', 'system:serviceaccount:shop:*', 'okta:*', 'a*'] }]) as RouteTableSpec,
      undefined,
    ],
    ['claims with their issuer', table([{ path: '/x', effect: 'subjects', claims: [{ issuer: 'okta', claim: 'groups', value: 'ops' }] }]) as RouteTableSpec, ['okta']],
    ['an exact path the same as a prefix base but for other methods', table([{ path: '/api', methods: ['POST'], effect: 'public' }, { path: '/api/*', effect: 'authenticated' }]) as RouteTableSpec, undefined],
    ['a prefix that only looks like another', table([{ path: '/api/*', effect: 'public' }, { path: '/apix', effect: 'public' }, { path: '/apix/*', effect: 'authenticated' }]) as RouteTableSpec, undefined],
    ['methods of a later rule not all covered', table([{ path: '/*', methods: ['GET'], effect: 'public' }, { path: '/x', methods: ['GET', 'POST'], effect: 'authenticated' }]) as RouteTableSpec, undefined],
    ['64 rules', table(Array.from({ length: MAX_ROUTE_RULES }, (_v, i) => ({ path: `/r${i}`, effect: 'public' }))) as RouteTableSpec, undefined],
  ];
  it.each(ACCEPTED)('%s', (_what, spec, issuers) => {
    expect(routesProblem(spec, issuers)).toBeUndefined();
  });
});

describe('routesProblem: refused tables, with their messages', () => {
  const REFUSED: [string, unknown, string, string[] | undefined][] = [
    ['not an object', [], 'must be a JSON object {"rules": [...], "default": "authenticated" | "deny"}, got a list', undefined],
    ['unknown table field', { rules: [], fallback: 'deny' }, 'has an unknown field "fallback" (known: rules, default)', undefined],
    ['rules missing', {}, 'rules must be a list of rules, got undefined', undefined],
    ['bad default', { rules: [], default: 'allow' }, 'default must be one of authenticated, deny, got "allow"', undefined],
    ['too many rules', table(Array.from({ length: MAX_ROUTE_RULES + 1 }, (_v, i) => ({ path: `/r${i}`, effect: 'public' }))), 'lists 65 rules; at most 64', undefined],
    ['rule not an object', table(['/x']), 'rule 1 must be an object {path, effect, ...}, got "/x"', undefined],
    ['unknown rule field', table([{ path: '/x', effect: 'public', method: 'GET' }]), 'rule 1 (/x) has an unknown field "method" (known: path, methods, effect, subjects, claims, anyStaticToken)', undefined],
    ['path not a string', table([{ path: 7, effect: 'public' }]), 'rule 1 path must be a string, got number', undefined],
    ['path not canonical', table([{ path: '/api/../admin', effect: 'public' }]), `rule 1 path "/api/../admin" is not canonical: it has a '.' or '..' segment`, undefined],
    ['prefix base not canonical', table([{ path: '/a%2f/*', effect: 'public' }]), `rule 1 path "/a%2f/*" is not canonical: it has a '%' not followed by two uppercase hex digits`, undefined],
    ['prefix with a doubled slash', table([{ path: '/api//*', effect: 'public' }]), `rule 1 path of a prefix rule is written '/api/*', not '/api//*', got "/api//*"`, undefined],
    ['star inside', table([{ path: '/api/*/x', effect: 'public' }]), `rule 1 path may hold '*' only as a trailing '/*' (a prefix rule; a path with a literal '*' is judged by a prefix rule above it), got "/api/*/x"`, undefined],
    ['star without slash', table([{ path: '/api*', effect: 'public' }]), `rule 1 path may hold '*' only as a trailing '/*' (a prefix rule; a path with a literal '*' is judged by a prefix rule above it), got "/api*"`, undefined],
    ['empty path', table([{ path: '', effect: 'public' }]), 'rule 1 path must be 1-1024 characters, got ""', undefined],
    ['lowercase method', table([{ path: '/x', methods: ['get'], effect: 'public' }]), 'rule 1 (/x) methods entries must be uppercase HTTP method tokens such as GET, got "get" (leave methods unset for every method)', undefined],
    ['no methods', table([{ path: '/x', methods: [], effect: 'public' }]), 'rule 1 (/x) methods must be a list of 1-16 entries, got 0 entries (leave methods unset for every method)', undefined],
    ['method twice', table([{ path: '/x', methods: ['GET', 'GET'], effect: 'public' }]), 'rule 1 (/x) methods lists "GET" twice (leave methods unset for every method)', undefined],
    ['method with a space', table([{ path: '/x', methods: ['GET '], effect: 'public' }]), 'rule 1 (/x) methods entries must be uppercase HTTP method tokens such as GET, got "GET " (leave methods unset for every method)', undefined],
    ['unknown effect', table([{ path: '/x', effect: 'allow' }]), 'rule 1 (/x) effect must be one of public, authenticated, subjects, got "allow"', undefined],
    ['subjects without an entry', table([{ path: '/x', effect: 'subjects' }]), 'rule 1 (/x) with effect subjects needs at least one entry in subjects or claims, or anyStaticToken', undefined],
    ['subjects on a public rule', table([{ path: '/x', effect: 'public', subjects: ['ci'] }]), 'rule 1 (/x) subjects, claims and anyStaticToken go with effect subjects, not public', undefined],
    ['claims on an authenticated rule', table([{ path: '/x', effect: 'authenticated', claims: [] }]), 'rule 1 (/x) subjects, claims and anyStaticToken go with effect subjects, not authenticated', undefined],
    ['bare star subject', table([{ path: '/x', effect: 'subjects', subjects: ['*'] }]), "rule 1 (/x) subjects must not list a bare '*': any authenticated caller is effect authenticated", undefined],
    ['star inside a subject', table([{ path: '/x', effect: 'subjects', subjects: ['a*b'] }]), `rule 1 (/x) subjects entries may hold '*' only at the end (a prefix), got "a*b"`, undefined],
    ['empty subjects', table([{ path: '/x', effect: 'subjects', subjects: [] }]), 'rule 1 (/x) subjects must be a list of 1-256 entries, got 0 entries', undefined],
    ['subject twice', table([{ path: '/x', effect: 'subjects', subjects: ['ci', 'ci'] }]), 'rule 1 (/x) subjects lists "ci" twice', undefined],
    ['subject not printable', table([{ path: '/x', effect: 'subjects', subjects: ['c\ni'] }]), 'rule 1 (/x) subjects entries must be 1-256 printable ASCII characters, got "c\\ni"', undefined],
    ['subject too long', table([{ path: '/x', effect: 'subjects', subjects: ['s'.repeat(257)] }]), `rule 1 (/x) subjects entries must be 1-256 printable ASCII characters, got "${'s'.repeat(80)}…"`, undefined],
    ['claim not an object', table([{ path: '/x', effect: 'subjects', claims: ['groups=ops'] }]), 'rule 1 (/x) claims entries must be objects {issuer, claim, value}, got "groups=ops"', undefined],
    ['claim field unknown', table([{ path: '/x', effect: 'subjects', claims: [{ issuer: 'okta', claim: 'g', value: 'v', op: 'eq' }] }]), 'rule 1 (/x) claims entries: one has an unknown field "op" (known: issuer, claim, value)', undefined],
    ['claim value not a string', table([{ path: '/x', effect: 'subjects', claims: [{ issuer: 'okta', claim: 'admin', value: true }] }]), 'rule 1 (/x) claims value must be 1-256 printable ASCII characters, got boolean', undefined],
    ['claim name bad', table([{ path: '/x', effect: 'subjects', claims: [{ issuer: 'okta', claim: 'a b', value: 'v' }] }]), 'rule 1 (/x) claims claim must be a claim name of 1-64 characters A-Z a-z 0-9 _ . -, got "a b"', undefined],
    ['claim twice', table([{ path: '/x', effect: 'subjects', claims: [{ issuer: 'okta', claim: 'g', value: 'v' }, { issuer: 'okta', claim: 'g', value: 'v' }] }]), 'rule 1 (/x) claims lists "okta: g = v" twice', undefined],
    [
      'claim of an issuer not configured',
      table([{ path: '/x', effect: 'subjects', claims: [{ issuer: 'okta', claim: 'g', value: 'v' }] }]),
      'rule 1 (/x) claims issuer "okta" is no configured JWT issuer (configured: idp, kubernetes)',
      ['idp', 'kubernetes'],
    ],
    ['claim with no issuer configured', table([{ path: '/x', effect: 'subjects', claims: [{ issuer: 'okta', claim: 'g', value: 'v' }] }]), 'rule 1 (/x) claims issuer "okta" is no configured JWT issuer (none is configured)', []],
  ];
  it.each(REFUSED)('%s', (_what, spec, message, issuers) => {
    expect(routesProblem(spec, issuers)).toBe(message);
  });
});

describe('shadowing: a rule an earlier one covers is refused, naming both', () => {
  const SHADOWED: [string, unknown[], string][] = [
    ['prefix covers exact', [{ path: '/api/*', effect: 'public' }, { path: '/health', effect: 'public' }, { path: '/api/x', effect: 'authenticated' }], 'rule 3 (/api/x) can never match: rule 1 (/api/*) matches every request it would'],
    ['prefix covers its own base', [{ path: '/api/*', effect: 'public' }, { path: '/api', effect: 'authenticated' }], 'rule 2 (/api) can never match: rule 1 (/api/*) matches every request it would'],
    ['prefix covers a narrower prefix', [{ path: '/api/*', effect: 'public' }, { path: '/api/v1/*', effect: 'authenticated' }], 'rule 2 (/api/v1/*) can never match: rule 1 (/api/*) matches every request it would'],
    ['the root covers everything', [{ path: '/*', effect: 'authenticated' }, { path: '/x', effect: 'public' }], 'rule 2 (/x) can never match: rule 1 (/*) matches every request it would'],
    ['duplicate exact rule', [{ path: '/x', effect: 'public' }, { path: '/x', effect: 'authenticated' }], 'rule 2 (/x) can never match: rule 1 (/x) matches every request it would'],
    ['duplicate prefix rule', [{ path: '/a/*', effect: 'public' }, { path: '/a/*', effect: 'public' }], 'rule 2 (/a/*) can never match: rule 1 (/a/*) matches every request it would'],
    ['every method before some', [{ path: '/x', effect: 'public' }, { path: '/x', methods: ['GET'], effect: 'authenticated' }], 'rule 2 (/x) can never match: rule 1 (/x) matches every request it would'],
    ['more methods before fewer', [{ path: '/x/*', methods: ['GET', 'POST'], effect: 'public' }, { path: '/x/y', methods: ['POST'], effect: 'authenticated' }], 'rule 2 (/x/y) can never match: rule 1 (/x/*) matches every request it would'],
  ];
  it.each(SHADOWED)('%s', (_what, rules, message) => {
    expect(routesProblem(table(rules))).toBe(message);
  });

  it('the contract says which rule; lib/ can name them its own way', () => {
    const found = routeTableProblem(table([{ path: '/a/*', effect: 'public' }, { path: '/a/b', effect: 'public' }]), undefined, (i) => `routes[${i}]`);
    expect(found).toEqual({ rule: 1, problem: 'can never match: routes[0] matches every request it would' });
  });

  it('a rule covered only in part is fine: a prefix does not cover an exact path beside it, an exact path no prefix', () => {
    expect(routesProblem(table([{ path: '/api', effect: 'public' }, { path: '/api/*', effect: 'authenticated' }]))).toBeUndefined();
    expect(routesProblem(table([{ path: '/api/*', methods: ['GET'], effect: 'public' }, { path: '/api/*', effect: 'authenticated' }]))).toBeUndefined();
    expect(routesProblem(table([{ path: '/a/b/*', effect: 'public' }, { path: '/a/*', effect: 'authenticated' }]))).toBeUndefined();
  });
});

describe('encodeRoutes / parseRoutes', () => {
  it('the table that changes nothing has no encoding: the variable stays unset', () => {
    expect(encodeRoutes({ rules: [] })).toBeUndefined();
    expect(encodeRoutes({ rules: [], default: 'authenticated' })).toBeUndefined();
    expect(encodeRoutes({ rules: [], default: 'deny' })).toBe('{"rules":[],"default":"deny"}');
  });

  it('writes fields in a fixed order, and the default only when it is deny', () => {
    const rule = { claims: [{ value: 'ops', claim: 'groups', issuer: 'okta' }], subjects: ['ci'], effect: 'subjects', methods: ['GET'], path: '/x' } as unknown as RouteRuleSpec;
    expect(encodeRoutes({ rules: [rule], default: 'authenticated' })).toBe(
      '{"rules":[{"path":"/x","methods":["GET"],"effect":"subjects","subjects":["ci"],"claims":[{"issuer":"okta","claim":"groups","value":"ops"}]}]}',
    );
  });

  it('parse applies the default and freezes the table', () => {
    const parsed = parseRoutes('{"rules":[{"path":"/healthz","effect":"public"}]}');
    expect(parsed).toEqual({ ok: true, value: { rules: [{ path: '/healthz', effect: 'public' }], default: 'authenticated' } });
    if (!parsed.ok) return;
    expect(Object.isFrozen(parsed.value)).toBe(true);
    expect(Object.isFrozen(parsed.value.rules[0])).toBe(true);
  });

  it.each([
    ['not JSON', '{rules:[]}', 'must be a JSON object {"rules": [...]}, got "{rules:[]}"'],
    ['the table that changes nothing', '{"rules":[]}', 'lists no rule and keeps the default (leave it unset instead)'],
    ['a refused table', '{"rules":[{"path":"//x","effect":"public"}]}', `rule 1 path "//x" is not canonical: it has an empty segment ('//')`],
  ])('parse refuses %s', (_what, text, problem) => {
    expect(parseRoutes(text)).toEqual({ ok: false, problem });
  });

  it('parse checks claims against the issuer names it is given', () => {
    const text = '{"rules":[{"path":"/x","effect":"subjects","claims":[{"issuer":"okta","claim":"g","value":"v"}]}]}';
    expect(parseRoutes(text).ok).toBe(true);
    expect(parseRoutes(text, ['okta']).ok).toBe(true);
    expect(parseRoutes(text, ['idp'])).toEqual({ ok: false, problem: 'rule 1 (/x) claims issuer "okta" is no configured JWT issuer (configured: idp)' });
  });

  // Tables of a few paths, methods and effects, so shadowing and duplicates come up often.
  const rule: fc.Arbitrary<RouteRuleSpec> = fc
    .record({
      path: fc.constantFrom('/', '/*', '/a', '/a/*', '/a/b', '/a/b/*', '/b', '//a', '/a;b'),
      methods: fc.option(fc.subarray(['GET', 'HEAD', 'POST'], { minLength: 1 }), { nil: undefined }),
      effect: fc.constantFrom('public' as const, 'authenticated' as const, 'subjects' as const),
      subjects: fc.option(fc.subarray(['ci', 'okta:*', 'okta:alice'], { minLength: 1 }), { nil: undefined }),
    })
    .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as RouteRuleSpec);

  it('round trip: every valid table encodes to text that parses back to it; an invalid one is refused by both', () => {
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 5 }), fc.constantFrom('authenticated' as const, 'deny' as const), (rules, def) => {
        const spec: RouteTableSpec = { rules, default: def };
        const problem = routesProblem(spec);
        const encoded = encodeRoutes(spec);
        if (encoded === undefined) {
          expect(rules).toEqual([]);
          return;
        }
        const parsed = parseRoutes(encoded);
        if (problem !== undefined) {
          expect(parsed).toEqual({ ok: false, problem });
          return;
        }
        expect(parsed).toEqual({ ok: true, value: { rules, default: def } });
      }),
      { numRuns: 1000 },
    );
  });
});

describe('publicPathRoutes: the public paths as exact public rules', () => {
  it('keeps order and spelling', () => {
    expect(publicPathRoutes(['/version', '/Version', '/favicon.ico'])).toEqual({
      ok: true,
      value: [
        { path: '/version', effect: 'public' },
        { path: '/Version', effect: 'public' },
        { path: '/favicon.ico', effect: 'public' },
      ],
    });
  });

  it.each([
    ['/api/*', `entries are exact paths and must not hold '*' (a prefix is a route rule), got "/api/*"`],
    ['/a*b', `entries are exact paths and must not hold '*' (a prefix is a route rule), got "/a*b"`],
    ['/a;b', `entries must be canonical paths: "/a;b" has a character outside A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , = : @ / and %XX escapes`],
    ['//a', `entries must be canonical paths: "//a" has an empty segment ('//')`],
  ])('refuses %j', (p, problem) => {
    expect(publicPathRoutes(['/ok', p])).toEqual({ ok: false, problem });
  });
});
