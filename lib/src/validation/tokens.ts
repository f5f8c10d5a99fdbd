/**
 * Token-like literals. SidecarApp reads its tokens from a Secret created outside the manifests,
 * so no credential should ever be in one; a literal that looks like a credential in an env value
 * or an annotation is almost always a leak (manifests end up in git, CI logs, `kubectl get -o yaml`).
 *
 * What counts: an HTTP `Bearer`/`Basic` credential, a JWT (`eyJ...`), a URL with a password, a few
 * well-known token formats, and long random-looking runs: at least 24 characters of hex (digits and
 * letters, entropy >= 2.8 bits per character) or of base64/base64url (both cases, entropy >= 3.7,
 * less than 60% of it in runs of 3+ same-case letters, which names and paths are made of).
 * Not counted: image and content digests (`sha256:<hex>`), hex values of keys that name a digest,
 * commit or version, and `$(VAR)` / `${VAR}` references.
 */

export type TokenKind = 'bearer credential' | 'basic credential' | 'JWT' | 'password in a URL' | 'known token format' | 'random-looking string';

export interface TokenMatch {
  readonly kind: TokenKind;
  /** The first characters and the length, never the whole value. */
  readonly preview: string;
}

const DIGEST = /\b(?:sha1|sha224|sha256|sha384|sha512|md5):[0-9a-fA-F]{32,}\b/g;
/** Keys whose hex values are identifiers, not secrets. */
const HEX_ID_KEY = /sha|digest|commit|revision|checksum|hash|etag|version|uid|uuid/i;

const PATTERNS: ReadonlyArray<readonly [TokenKind, RegExp]> = [
  ['bearer credential', /\bBearer\s+[A-Za-z0-9\-._~+/]{16,}=*/i],
  ['basic credential', /\bBasic\s+[A-Za-z0-9+/]{12,}={0,2}(?![A-Za-z0-9+/=])/],
  ['JWT', /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/],
  ['JWT', /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/],
  // scheme://user:password@ ; a $(VAR) or ${VAR} password is a reference, not a literal.
  ['password in a URL', /\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]+:(?!\$[({])[^\s@/]+@/i],
  ['known token format', /\b(?:gh[opusr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|sk-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{35})/],
];

const RUN = /[A-Za-z0-9+/=_-]{24,}/g;

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** Share of characters in runs of 3+ lower-case (or 3+ upper-case) letters: words. Random base64: ~0.15; camelCase or SCREAMING_CASE names: ~0.7. */
function wordiness(s: string): number {
  const share = (pattern: RegExp) => (s.match(pattern) ?? []).reduce((n, m) => n + m.length, 0) / s.length;
  return Math.max(share(/[a-z]{3,}/g), share(/[A-Z]{3,}/g));
}

function looksRandom(run: string, key: string): boolean {
  const s = run.replace(/=+$/, '');
  if (s.length < 24) return false;
  if (/^[0-9a-f]+$/.test(s) || /^[0-9A-F]+$/.test(s)) {
    if (HEX_ID_KEY.test(key)) return false;
    return /[0-9]/.test(s) && /[a-fA-F]/.test(s) && entropy(s) >= 2.8;
  }
  const lower = /[a-z]/.test(s);
  const upper = /[A-Z]/.test(s);
  return lower && upper && entropy(s) >= 3.7 && wordiness(s) < 0.6;
}

function preview(s: string): string {
  return `"${s.slice(0, 4)}…" (${s.length} characters)`;
}

/**
 * The first token-like literal in `value`, or undefined.
 * @param key the env variable name or annotation key, which tells digests and commits apart from secrets
 */
export function findToken(value: string, key = ''): TokenMatch | undefined {
  const text = value.replace(DIGEST, ' ');
  for (const [kind, pattern] of PATTERNS) {
    const match = pattern.exec(text);
    if (match !== null) return { kind, preview: preview(match[0]) };
  }
  for (const match of text.match(RUN) ?? []) {
    if (looksRandom(match, key)) return { kind: 'random-looking string', preview: preview(match) };
  }
  return undefined;
}
