/**
 * Real store files for the SQLite tests: a fresh store in a temp folder for
 * the contract suites (openTempStore), and per test a temp folder, the
 * stores opened on its file and a read-only connection of its own to look
 * at what was written (useStoreFiles), with the checks every port's file
 * suite makes: writes under another connection's write lock, query plans
 * and the migration from an older version.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect } from 'vitest';
import { MIGRATIONS, SCHEMA_VERSION, StoreError, migrateSchema, openSqliteStore, type SqliteStore, type SqliteStoreOptions } from './index.ts';

/** The n-th test id, a version 4 UUID. */
export function uuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** Expects every call to throw with code unavailable (e.g. on a closed store). */
export function expectUnavailable(...calls: Array<() => unknown>): void {
  for (const call of calls) expect(call).toThrow(expect.objectContaining({ code: 'unavailable' }));
}

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
  /** Runs fn on a writable connection of its own (the schema's own checks), closed after. */
  writeRaw<T>(fn: (db: Database.Database) => T): T;
  /** A store closed and a new one opened on the same file. */
  reopen(store: SqliteStore, options?: Omit<SqliteStoreOptions, 'file'>): Promise<SqliteStore>;
  /**
   * While another connection holds the write lock (BEGIN IMMEDIATE),
   * expects every write to throw a StoreError with code unavailable, then
   * runs whileHeld (reads go on in WAL mode) and releases the lock.
   */
  expectWritesUnavailableWhileLocked(writes: Record<string, () => unknown>, whileHeld?: () => void): void;
  /** EXPLAIN QUERY PLAN of sql, its details joined by " | ". */
  explain(sql: string, ...params: unknown[]): string;
  /** The query plan of the prepared statement `name` of a port (its private `stmt`). */
  planOf(port: object, name: string, ...params: unknown[]): string;
  /** Writes the file at schema `version` (WAL, as a store would) and lets seed fill it. */
  createAtVersion(version: number, seed?: (db: Database.Database) => void): void;
  /** Expects the file at SCHEMA_VERSION, which is at least `atLeast`. */
  expectCurrentVersion(atLeast: number): void;
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
    writeRaw(fn) {
      const raw = new Database(current(file));
      try {
        return fn(raw);
      } finally {
        raw.close();
      }
    },
    async reopen(store, options) {
      await store.close();
      return files.open(options);
    },
    expectWritesUnavailableWhileLocked(writes, whileHeld) {
      files.writeRaw((other) => {
        other.exec('BEGIN IMMEDIATE');
        for (const [name, write] of Object.entries(writes)) {
          let caught: unknown;
          try {
            write();
          } catch (error) {
            caught = error;
          }
          expect(caught, name).toBeInstanceOf(StoreError);
          expect((caught as StoreError).code, name).toBe('unavailable');
        }
        whileHeld?.();
        other.exec('ROLLBACK');
      });
    },
    explain(sql, ...params) {
      return files.readRaw((db) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join(' | '));
    },
    planOf(port, name, ...params) {
      const statement = (port as { stmt?: Record<string, Database.Statement> }).stmt?.[name];
      if (statement === undefined) throw new Error(`planOf: no prepared statement ${name}`);
      return files.explain(statement.source, ...params);
    },
    createAtVersion(version, seed) {
      files.writeRaw((raw) => {
        raw.pragma('journal_mode = WAL');
        migrateSchema(raw, MIGRATIONS.slice(0, version));
        expect(raw.pragma('user_version', { simple: true })).toBe(version);
        seed?.(raw);
      });
    },
    expectCurrentVersion(atLeast) {
      expect(files.readRaw((db) => db.pragma('user_version', { simple: true }))).toBe(SCHEMA_VERSION);
      expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(atLeast);
    },
  };
  return files;
}
