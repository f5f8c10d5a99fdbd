/**
 * Hand-built JWS compact tokens: header and payload given as exact text (or bytes), so a test can
 * send what no JWT library would write (a member named twice, an escaped name, bytes that are not
 * UTF-8) and still sign it correctly, leaving only the check under test to refuse it.
 */
import { generateKeyPairSync, sign } from 'crypto';
import type { KeyObject } from 'crypto';
import { importJwks } from '../../apps/sidecar/src/jwt/keys';
import type { JwksKey } from '../../apps/sidecar/src/jwt/keys';

const segment = (part: string | Buffer) => Buffer.from(part).toString('base64url');

/** An ES256 token over the given header and payload, signed with `key` (an EC P-256 private key). */
export function es256Token(header: string | Buffer, payload: string | Buffer, key: KeyObject): string {
  const signingInput = `${segment(header)}.${segment(payload)}`;
  const signature = sign('sha256', Buffer.from(signingInput, 'latin1'), { key, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${signature.toString('base64url')}`;
}

/** A fresh EC P-256 key: its private half for es256Token, its public half imported as the verifier's key set (one key, `kid`). */
export async function es256KeySet(kid = 'k1'): Promise<{ privateKey: KeyObject; keys: JwksKey[] }> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keys = await importJwks(JSON.stringify({ keys: [{ ...pair.publicKey.export({ format: 'jwk' }), kid }] }), () => undefined);
  return { privateKey: pair.privateKey, keys };
}
