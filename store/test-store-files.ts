/**
 * Real store files for the SQLite tests: a fresh store in a temp folder for
 * the contract suites (openTempStore), and per test a temp folder, the
 * stores opened on its file and a read-only connection of its own to look
 * at what was written (useStoreFiles).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach } from 'vitest';
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions } from './index.ts';

/** A fresh store on a real file in its own temp folder; close removes the folder. */
export async function openTempStore(prefix: string, options: Omit<SqliteStoreOptions, 'file'> = {}): Promise<{ store: SqliteStore; close(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const store = openSqliteStore({ file: path.join(dir, 'vpp.db'), ...options });
  return {
    store,
    async close() {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface StoreFiles<Table extends string> {
  /** This test's database file (it need not exist yet). */
  file(): string;
  /** This test's temp folder, removed after the test. */
  dir(): string;
  /** A store on this test's file, closed after the test. */
  open(options?: Omit<SqliteStoreOptions, 'file'>): SqliteStore;
  /** Reads the file through a connection of its own. */
  readRaw<T>(fn: (db: Database.Database) => T): T;
  /** Rows of a table, read through a connection of its own. */
  countRows(table: Table): number;
}

/**
 * Registers, in the calling describe, a beforeEach that makes a temp folder
 * named `prefix` plus a random suffix, and an afterEach that closes every
 * store `open` returned and removes the folder. The database file is
 * `name` in that folder (a relative path, e.g. nested/data/vpp.db).
 */
export function useStoreFiles<Table extends string = string>(prefix: string, name = 'vpp.db'): StoreFiles<Table> {
  let dir: string | undefined;
  let file: string | undefined;
  const opened: SqliteStore[] = [];

  const current = (value: string | undefined): string => {
    if (value === undefined) throw new Error('useStoreFiles: no test is running (file() and dir() exist only inside a test)');
    return value;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    file = path.join(dir, name);
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    fs.rmSync(current(dir), { recursive: true, force: true });
  });

  const files: StoreFiles<Table> = {
    file: () => current(file),
    dir: () => current(dir),
    open(options = {}) {
      const store = openSqliteStore({ file: current(file), ...options });
      opened.push(store);
      return store;
    },
    readRaw(fn) {
      const raw = new Database(current(file), { readonly: true });
      try {
        return fn(raw);
      } finally {
        raw.close();
      }
    },
    countRows(table) {
      return files.readRaw((db) => db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number);
    },
  };
  return files;
}
