/**
 * Device secrets. The platform generates every secret (32 random bytes,
 * base64url), so a secret has 256 bits of entropy and cannot be guessed or
 * brute-forced from its hash; a slow password KDF would only cost CPU at each
 * of tens of thousands of connects. The registry therefore keeps a salted
 * SHA-256 of the secret, and verification compares in constant time.
 *
 * Format of a stored hash: `sha256$<salt base64url>$<digest base64url>`.
 *
 * API tokens are hashed differently (hashTokenSecret): the salt above makes
 * every hash of the same secret different, so a device secret is checked
 * against the hashes of one device found by its id, but a token arrives
 * alone and must be found by its hash. A token is as random as a device
 * secret, so an unsalted SHA-256 of it is as safe to store, and it is the
 * key of one index lookup per request.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const SCHEME = 'sha256';

export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

function digest(salt: string, secret: string): Buffer {
  return createHash('sha256').update(salt).update('\0').update(secret).digest();
}

export function hashSecret(secret: string): string {
  const salt = randomBytes(16).toString('base64url');
  return `${SCHEME}$${salt}$${digest(salt, secret).toString('base64url')}`;
}

/** True when `secret` matches `storedHash`; false for any malformed hash. */
export function verifySecret(secret: string, storedHash: string): boolean {
  const parts = storedHash.split('$');
  if (parts.length !== 3 || parts[0] !== SCHEME) return false;
  const expected = Buffer.from(parts[2]!, 'base64url');
  const actual = digest(parts[1]!, secret);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Format of hashTokenSecret's output: 64 lowercase hex digits. */
export const TOKEN_SECRET_HASH = /^[0-9a-f]{64}$/;

/**
 * The hash an API token is stored and looked up by: SHA-256 of the token,
 * in lowercase hex. Unsalted, so the same token always gives the same hash
 * (TokenStore.authenticate is one keyed lookup); safe only for secrets the
 * platform generates (generateSecret: 256 random bits), never for anything
 * a person chose.
 */
export function hashTokenSecret(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
