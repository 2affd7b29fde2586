/**
 * Device secrets. The platform generates every secret (32 random bytes,
 * base64url), so a secret has 256 bits of entropy and cannot be guessed or
 * brute-forced from its hash; a slow password KDF would only cost CPU at each
 * of tens of thousands of connects. The registry therefore keeps a salted
 * SHA-256 of the secret, and verification compares in constant time.
 *
 * Format of a stored hash: `sha256$<salt base64url>$<digest base64url>`.
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
