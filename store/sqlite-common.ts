/**
 * What the SQLite port implementations share: turning driver errors into
 * StoreErrors (and so telling a writer whether to retry or to isolate), and
 * the checks every request gets before it touches the database, the
 * listing cursors of commands and dispatches, and pruning by a retention.
 */
import Database from 'better-sqlite3';
import { OPERATOR_ROLES, StoreError, type OperatorRole } from './types.ts';

/**
 * Primary result codes (extended codes such as SQLITE_IOERR_SHORT_READ or
 * SQLITE_BUSY_SNAPSHOT share their prefix) that say "the database cannot
 * serve anyone right now", not "this request is wrong": another process
 * holds a lock, the disk is full or failing, the file cannot be opened or
 * written, memory ran out, the call was interrupted.
 *
 * CORRUPT and NOTADB are here too: a damaged file refuses every request
 * alike, so the request is not at fault, and isolating it would dead-letter
 * the whole fleet's data into the same broken file. A writer keeps retrying
 * (and so applies backpressure and shows as stalled in health) until an
 * operator restores the file.
 */
const TRANSIENT_SQLITE_CODE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|NOMEM|INTERRUPT|READONLY|PROTOCOL|CORRUPT|NOTADB)(_|$)/;

/** What better-sqlite3 throws (a TypeError) for any call on a closed connection. */
const CONNECTION_CLOSED_MESSAGE = 'The database connection is not open';

/** The SQLite result code of a driver error, e.g. 'SQLITE_CONSTRAINT_PRIMARYKEY'; undefined for any other error. */
export function sqliteCode(error: unknown): string | undefined {
  return error instanceof Database.SqliteError ? error.code : undefined;
}

/**
 * Wraps an error thrown while serving a request into a StoreError, with the
 * original as its cause. A StoreError passes through unchanged.
 *
 * - SqliteError with a transient code (see TRANSIENT_SQLITE_CODE) → 'unavailable';
 * - any other SqliteError (CONSTRAINT, TOOBIG, MISMATCH, RANGE, ERROR, …) → 'invalid';
 * - the driver's TypeError for a closed connection → 'unavailable';
 * - anything else (a RangeError or TypeError from a bad value, a failed
 *   serialisation) → 'invalid': the same request would fail the same way.
 */
export function toStoreError(error: unknown, action: string): StoreError {
  if (error instanceof StoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = sqliteCode(error);
  const transient =
    code === undefined ? error instanceof TypeError && error.message === CONNECTION_CLOSED_MESSAGE : TRANSIENT_SQLITE_CODE.test(code);
  return new StoreError(transient ? 'unavailable' : 'invalid', `${action}: ${message}`, { cause: error });
}

/** Runs a database call, turning whatever it throws into a StoreError (see toStoreError). */
export function guard<T>(action: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toStoreError(error, action);
  }
}

/**
 * JSON text of a value that is stored as JSON. A value JSON cannot encode
 * (cyclic, a BigInt, nested so deep that the encoder runs out of stack, or
 * not encodable at all) is refused with 'invalid' before any write: it must
 * never take the process down, and retrying it would fail again.
 */
export function serializeJson(what: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new StoreError('invalid', `${what} cannot be serialised: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (typeof text !== 'string') throw new StoreError('invalid', `${what} cannot be serialised: ${typeof value}`);
  return text;
}

export function requireLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new StoreError('invalid', `limit must be a non-negative integer, got ${limit}`);
}

export function requireRange(fromMs: number, toMs: number): void {
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) throw new StoreError('invalid', `time range must be finite, got ${fromMs}..${toMs}`);
}

/**
 * Refuses a number SQLite would store inexactly: a fraction, or an integer
 * beyond 2^53 (which JavaScript only holds as a float), with 'invalid'.
 */
export function requireSafeInteger(what: string, value: number): void {
  if (!Number.isSafeInteger(value)) throw new StoreError('invalid', `${what} must be an integer within ±(2^53 - 1), got ${value}`);
}

export function requireSafeIntegerOrNull(what: string, value: number | null): void {
  if (value !== null) requireSafeInteger(what, value);
}

/** A cursor is short (a time and a UUID); anything longer is not one. */
const MAX_CURSOR_CHARS = 200;
/** The canonical text form of a UUID, lowercase, as crypto.randomUUID() makes it. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The opaque cursor of a row (a command, a dispatch) in the listing order:
 * base64url of the JSON `[createdAtMs, id]`.
 */
export function encodeListCursor(createdAtMs: number, id: string): string {
  return Buffer.from(JSON.stringify([createdAtMs, id]), 'utf8').toString('base64url');
}

/**
 * Reads a cursor made by encodeListCursor; anything else (even a different
 * spelling of the same bytes) is 'invalid', its message starting with
 * `action` (e.g. 'list commands').
 */
export function decodeListCursor(cursor: unknown, action: string): { createdAtMs: number; id: string } {
  const refuse = () => new StoreError('invalid', `${action}: \`before\` is not a cursor this store returned`);
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw refuse();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw refuse();
  }
  if (!Array.isArray(value) || value.length !== 2 || !Number.isSafeInteger(value[0]) || typeof value[1] !== 'string') throw refuse();
  const [createdAtMs, id] = value as [number, string];
  if (encodeListCursor(createdAtMs, id) !== cursor) throw refuse();
  return { createdAtMs, id };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isStringOfLength(value: unknown, min: number, max: number): value is string {
  return typeof value === 'string' && value.length >= min && value.length <= max;
}

/** Resolves on the next turn of the event loop, after pending I/O. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * `fn` as one IMMEDIATE transaction: it takes the write lock up front, so it
 * waits (up to busy_timeout) at its start rather than failing to upgrade a
 * read lock halfway, and it commits or rolls back as a whole.
 */
export function immediateTransaction<A extends unknown[], R>(db: Database.Database, fn: (...args: A) => R): (...args: A) => R {
  return db.transaction(fn).immediate;
}

/** Refuses a page size that is not an integer from 1 to `max`, with 'invalid' (e.g. action 'list commands'). */
export function requirePageLimit(action: string, limit: number, max: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > max) {
    throw new StoreError('invalid', `${action}: limit must be an integer from 1 to ${max}, got ${String(limit)}`);
  }
}

/** The problem listed for an id that is not a UUID (see UUID). */
export const UUID_PROBLEM = 'id must be a UUID in lowercase hex (8-4-4-4-12)';

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

export function isOperatorRole(value: unknown): value is OperatorRole {
  return (OPERATOR_ROLES as readonly unknown[]).includes(value);
}

/**
 * Prunes by a retention: 'invalid' for a nowMs that is not an integer or a
 * retentionMs that is negative or not a number; Infinity keeps everything.
 * The retention is a duration, often computed from days (0.0123 * 86 400 000
 * is not a whole number), so it is rounded rather than refused. Calls
 * pruneBatch(cutoffMs), one transaction deleting at most batchSize rows,
 * until a batch comes back short, so other writers wait at most a short
 * while; returns how many were deleted in all.
 */
export function pruneByRetention(action: string, nowMs: number, retentionMs: number, batchSize: number, pruneBatch: (cutoffMs: number) => number): number {
  requireSafeInteger(`${action}: nowMs`, nowMs);
  if (retentionMs === Infinity) return 0;
  if (typeof retentionMs !== 'number' || !Number.isFinite(retentionMs) || retentionMs < 0) {
    throw new StoreError('invalid', `${action}: retentionMs must be a non-negative number or Infinity, got ${String(retentionMs)}`);
  }
  const cutoffMs = nowMs - Math.round(retentionMs);
  let pruned = 0;
  for (;;) {
    const n = guard(action, () => pruneBatch(cutoffMs));
    pruned += n;
    if (n < batchSize) return pruned;
  }
}
