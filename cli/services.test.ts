/**
 * issueCredentials, which the simulator's start runs over its whole fleet
 * plan: a device revoked by an operator stays revoked (the simulator's
 * credential reset used to lift revocations at every start). openPlatform:
 * the data folder and its files are the owner's only.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { openSqliteStore, verifySecret, type SqliteStore } from '../store/index.ts';
import { pino } from 'pino';
import { loadConfig } from './config.ts';
import { issueCredentials, openPlatform } from './services.ts';

let dir: string;
let store: SqliteStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vpp-cli-'));
  store = openSqliteStore({ file: join(dir, 'vpp.db') });
  store.upsertSite({ id: 's1', region: 'north', name: 'One' });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const plan = [
  { id: 'dev-1', type: 'battery' as const, siteId: 's1' },
  { id: 'dev-2', type: 'solar' as const, siteId: 's1' },
];

it('creates the devices, gives existing ones a new secret, and leaves a revoked one revoked and out', () => {
  const first = issueCredentials(store, plan, 1_000);
  expect(first.map((d) => d.id)).toEqual(['dev-1', 'dev-2']);
  expect(store.revokeDevice('dev-2', 2_000)).toBe(true);

  const second = issueCredentials(store, plan, 3_000);
  expect(second.map((d) => d.id)).toEqual(['dev-1']);
  const [hash] = store.getAcceptedSecretHashes('dev-1', 3_000);
  expect(verifySecret(second[0]!.secret, hash!)).toBe(true);
  expect(verifySecret(first[0]!.secret, hash!)).toBe(false);
  expect(store.getDevice('dev-2')?.revokedAtMs).toBe(2_000);
  expect(store.getAcceptedSecretHashes('dev-2', 3_000)).toEqual([]);
});

it('keeps the data folder and every file in it to the owner: folder 0700, files 0600', async () => {
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { mode: 0o755 });
  const platform = openPlatform(loadConfig({ VPP_DATA_DIR: dataDir }), pino({ level: 'silent' }));
  try {
    platform.store.upsertSite({ id: 's1', region: 'north', name: 'One' });
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dataDir);
    expect(files).toEqual(expect.arrayContaining(['vpp.db', 'admin-token', 'ingest-secret', 'control-secret']));
    for (const name of files) expect([name, statSync(join(dataDir, name)).mode & 0o777]).toEqual([name, 0o600]);
  } finally {
    await platform.store.close();
  }
});
