/** The store's files are private to the user running it: folders it creates 0700, the database and its -wal and -shm 0600. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type SqliteStore } from './index.ts';

function modeOf(file: string): string {
  return (fs.statSync(file).mode & 0o777).toString(8);
}

describe('SqliteStore file modes', () => {
  let dir: string;
  const opened: SqliteStore[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpp-store-modes-'));
    // A folder the store did not create keeps its mode.
    fs.chmodSync(dir, 0o755);
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates missing folders 0700 and the database 0600, and SQLite creates the -wal and -shm files 0600', async () => {
    const file = path.join(dir, 'nested', 'data', 'vpp.db');
    const store = openSqliteStore({ file });
    opened.push(store);
    await store.writeTelemetry([{ deviceId: 'dev-1', ts: 1, seq: 1, metrics: { powerW: 1 } }]);
    store.addDeadLetters([{ receivedAtMs: 1, topic: 't', clientId: null, reason: 'schema', detail: '', payload: Buffer.from('x') }]);

    expect(modeOf(dir)).toBe('755');
    expect(modeOf(path.join(dir, 'nested'))).toBe('700');
    expect(modeOf(path.join(dir, 'nested', 'data'))).toBe('700');
    expect(fs.existsSync(`${file}-wal`)).toBe(true);
    expect(fs.existsSync(`${file}-shm`)).toBe(true);
    expect([modeOf(file), modeOf(`${file}-wal`), modeOf(`${file}-shm`)]).toEqual(['600', '600', '600']);
  });

  it('narrows an existing database, -wal and -shm of its own user to 0600', () => {
    const file = path.join(dir, 'vpp.db');
    // Another connection keeps the -wal and -shm files in place while the store opens.
    const other = new Database(file);
    try {
      other.pragma('journal_mode = WAL');
      other.exec('CREATE TABLE scratch (x)');
      for (const name of [file, `${file}-wal`, `${file}-shm`]) fs.chmodSync(name, 0o644);

      opened.push(openSqliteStore({ file }));
      expect([modeOf(file), modeOf(`${file}-wal`), modeOf(`${file}-shm`)]).toEqual(['600', '600', '600']);
    } finally {
      other.close();
    }
  });

  it.runIf(process.getuid?.() === 0)('leaves alone a database file that another user owns', () => {
    const file = path.join(dir, 'vpp.db');
    new Database(file).close();
    fs.chmodSync(file, 0o644);
    fs.chownSync(file, 4_321, 4_321);
    opened.push(openSqliteStore({ file }));
    expect(modeOf(file)).toBe('644');
  });
});
