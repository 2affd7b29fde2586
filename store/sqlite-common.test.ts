/** How errors are classified: 'unavailable' tells a writer to retry, 'invalid' to isolate the message. */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { guard, serializeJson, toStoreError } from './sqlite-common.ts';
import { StoreError } from './types.ts';

describe('toStoreError', () => {
  const transient = [
    'SQLITE_BUSY',
    'SQLITE_BUSY_SNAPSHOT',
    'SQLITE_LOCKED',
    'SQLITE_LOCKED_SHAREDCACHE',
    'SQLITE_IOERR',
    'SQLITE_IOERR_SHORT_READ',
    'SQLITE_IOERR_FSYNC',
    'SQLITE_FULL',
    'SQLITE_CANTOPEN',
    'SQLITE_CANTOPEN_ISDIR',
    'SQLITE_NOMEM',
    'SQLITE_INTERRUPT',
    'SQLITE_READONLY',
    'SQLITE_READONLY_DBMOVED',
    'SQLITE_PROTOCOL',
    'SQLITE_CORRUPT',
    'SQLITE_NOTADB',
  ];
  const deterministic = [
    'SQLITE_CONSTRAINT',
    'SQLITE_CONSTRAINT_PRIMARYKEY',
    'SQLITE_CONSTRAINT_NOTNULL',
    'SQLITE_TOOBIG',
    'SQLITE_MISMATCH',
    'SQLITE_RANGE',
    'SQLITE_ERROR',
    'SQLITE_SCHEMA',
    // Prefixes of transient codes that are not those codes.
    'SQLITE_FULLNESS',
    'SQLITE_BUSYBOX',
  ];

  it.each(transient)('maps %s to unavailable, keeping the driver error as cause', (code) => {
    const cause = new Database.SqliteError('boom', code);
    const error = toStoreError(cause, 'write telemetry');
    expect(error).toBeInstanceOf(StoreError);
    expect(error.code).toBe('unavailable');
    expect(error.cause).toBe(cause);
    expect(error.message).toBe('write telemetry: boom');
  });

  it.each(deterministic)('maps %s to invalid', (code) => {
    const error = toStoreError(new Database.SqliteError('boom', code), 'write telemetry');
    expect(error.code).toBe('invalid');
  });

  it('maps the driver’s closed-connection TypeError to unavailable', () => {
    expect(toStoreError(new TypeError('The database connection is not open'), 'x').code).toBe('unavailable');
  });

  it('maps any other error, and a thrown non-error, to invalid', () => {
    for (const thrown of [new RangeError('Maximum call stack size exceeded'), new TypeError('Converting circular structure to JSON'), new Error('odd'), 'a string']) {
      const error = toStoreError(thrown, 'x');
      expect(error.code).toBe('invalid');
      expect(error.cause).toBe(thrown);
    }
  });

  it('passes a StoreError through unchanged', () => {
    const original = new StoreError('not-found', 'device d does not exist');
    expect(toStoreError(original, 'x')).toBe(original);
  });

  it('classifies what a real connection throws: a constraint, a closed connection', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    db.prepare('INSERT INTO t VALUES (1)').run();
    expect(() => guard('insert', () => db.prepare('INSERT INTO t VALUES (1)').run())).toThrow(expect.objectContaining({ code: 'invalid' }));
    const statement = db.prepare('SELECT id FROM t');
    db.close();
    expect(() => guard('select', () => statement.all())).toThrow(expect.objectContaining({ code: 'unavailable' }));
  });
});

describe('serializeJson', () => {
  it('refuses cyclic, too deep and BigInt values, and values JSON has no text for, with invalid', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let deep: unknown = 0;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    for (const value of [cyclic, deep, { n: 1n }, undefined, () => 0]) {
      expect(() => serializeJson('status', value)).toThrow(expect.objectContaining({ code: 'invalid' }));
    }
    expect(serializeJson('status', { a: [1, 'b', null] })).toBe('{"a":[1,"b",null]}');
  });
});
