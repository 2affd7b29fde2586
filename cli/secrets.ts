/**
 * Secrets the platform generates for itself (admin token, service password)
 * when they are not configured: kept in the data folder, readable by the
 * owner only, so every process sharing the folder agrees on them and a
 * restart keeps them.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function loadOrCreateSecret(dataDir: string, name: string, configured: string | undefined): string {
  if (configured !== undefined) return configured;
  const file = join(dataDir, name);
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (existing.length >= 16) return existing;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const created = randomBytes(24).toString('base64url');
  try {
    // 'wx': when two processes start together, the first one wins…
    writeFileSync(file, `${created}\n`, { mode: 0o600, flag: 'wx' });
    return created;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // …and the other reads what it wrote.
    return readFileSync(file, 'utf8').trim();
  }
}
