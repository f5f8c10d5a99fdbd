/**
 * The header and payload of a JWS compact token, read one way only, so that nobody behind the
 * sidecar can read another token than the one judged (SIDECAR_FORWARD_AUTHORIZATION hands main the
 * very text). JSON.parse keeps the last of two members of one name, many parsers the first, and
 * lenient decoders replace bad UTF-8 or drop a BOM; so a segment naming a member twice (at any
 * depth, escapes decoded), or that is not strict UTF-8, is no reading at all. The segments are
 * parsed here, once, never by jose.
 */

/** A parsed JSON object: read its members with `own`, never as plain properties. */
export type Json = Readonly<Record<string, unknown>>;

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const hasOwn = Object.prototype.hasOwnProperty;

/**
 * A member of a parsed JSON object, or undefined when it has none of that name: own properties
 * only, so a claim named `constructor`, `toString` or `__proto__` is the token's or absent, never
 * what every object inherits (or a polluted Object.prototype holds).
 */
export function own(o: Json, name: string): unknown {
  return hasOwn.call(o, name) ? o[name] : undefined;
}

/** One base64url segment as a JSON object and its text, or undefined: not strict UTF-8, not JSON, not an object. */
export function parseSegment(segment: string): { readonly json: Json; readonly text: string } | undefined {
  let text: string;
  let value: unknown;
  try {
    text = UTF8.decode(Buffer.from(segment, 'base64url'));
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  // JSON.parse gives `{"__proto__": …}` an own member of that name; it never sets a prototype.
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return { json: value as Json, text };
}

/**
 * Whether a valid JSON text names a member twice in one object, at any depth. One pass over the
 * text, a set of names per open object; a name with escapes is compared decoded ("s\u0075b" is "sub").
 */
export function hasDuplicateNames(text: string): boolean {
  // Per open object its names; undefined for an open array.
  const open: (Set<string> | undefined)[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let end = i + 1;
      let escaped = false;
      for (let d = text.charCodeAt(end); d !== 0x22; d = text.charCodeAt(end)) {
        if (d === 0x5c) {
          escaped = true;
          end += 2;
        } else end++;
      }
      if (expectName) {
        const names = open[open.length - 1]!;
        const name = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        if (names.has(name)) return true;
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === 0x7b) {
      open.push(new Set());
      expectName = true;
    } else if (c === 0x5b) {
      open.push(undefined);
      expectName = false;
    } else if (c === 0x7d || c === 0x5d) {
      open.pop();
    } else if (c === 0x2c) {
      expectName = open[open.length - 1] !== undefined;
    }
  }
  return false;
}

/** Freeze a parsed JSON value and everything in it: a cached verdict's claims are shared by every request that presents the token. */
export function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}
