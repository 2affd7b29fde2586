/**
 * DeadLetterStore over SQLite, bounded so that bad input never fills the
 * disk: each payload is cut to `maxPayloadBytes` (its size and SHA-256 are
 * kept whole), each detail to its first 1,000 characters, and the stored
 * letters together (storedDeadLetterBytes: payload, topic, client id,
 * reason, detail) to `maxTotalBytes`, the oldest letters going first.
 * pruneDeadLetters removes letters older than `retentionMs`.
 *
 * The total of stored bytes lives in the file (`dead_letter_totals`,
 * kept by triggers in the same transaction as every insert and delete), so
 * checking the cap after an add reads one row, and the cap holds whichever
 * process adds letters.
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { guard, immediateTransaction, requireLimit, requireRange, requireSafeInteger } from './sqlite-common.ts';
import { StoreError, storedDeadLetterBytes, type DeadLetter, type DeadLetterLimits, type DeadLetterStore, type StoredDeadLetter } from './types.ts';

const DAY_MS = 86_400_000;

/** 4 KiB per payload, 64 MiB in all, kept for a week. */
export const DEFAULT_DEAD_LETTER_LIMITS: Readonly<DeadLetterLimits> = Object.freeze({
  maxPayloadBytes: 4_096,
  maxTotalBytes: 64 * 1024 * 1024,
  retentionMs: 7 * DAY_MS,
});

/** Characters of a letter's detail that are kept. */
export const MAX_DEAD_LETTER_DETAIL_CHARS = 1_000;

/**
 * Throws StoreError 'invalid' listing every problem: maxPayloadBytes a
 * non-negative integer, maxTotalBytes an integer at least maxPayloadBytes,
 * retentionMs a positive integer or Infinity.
 */
export function checkDeadLetterLimits(limits: DeadLetterLimits): void {
  const problems: string[] = [];
  const { maxPayloadBytes, maxTotalBytes, retentionMs } = limits;
  if (!Number.isSafeInteger(maxPayloadBytes) || maxPayloadBytes < 0) problems.push(`maxPayloadBytes must be a non-negative integer, got ${maxPayloadBytes}`);
  if (!Number.isSafeInteger(maxTotalBytes) || maxTotalBytes < maxPayloadBytes) {
    problems.push(`maxTotalBytes must be an integer no smaller than maxPayloadBytes, got ${maxTotalBytes}`);
  }
  if (!(retentionMs === Infinity || (Number.isSafeInteger(retentionMs) && retentionMs > 0))) {
    problems.push(`retentionMs must be a positive integer or Infinity, got ${retentionMs}`);
  }
  if (problems.length > 0) throw new StoreError('invalid', `invalid dead-letter limits: ${problems.join('; ')}`);
}

interface DeadLetterRow {
  id: number;
  received_at_ms: number;
  topic: string;
  client_id: string | null;
  reason: string;
  detail: string;
  payload: Buffer;
  payload_bytes: number;
  payload_sha256: string;
  truncated: number;
}

type LetterParams = [
  receivedAtMs: number,
  topic: string,
  clientId: string | null,
  reason: string,
  detail: string,
  payload: Buffer,
  payloadBytes: number,
  payloadSha256: string,
  truncated: number,
  storedBytes: number,
];

const LETTER_COLUMNS = 'id, received_at_ms, topic, client_id, reason, detail, payload, payload_bytes, payload_sha256, truncated';

function letterFromRow(row: DeadLetterRow): StoredDeadLetter {
  return {
    id: row.id,
    receivedAtMs: row.received_at_ms,
    topic: row.topic,
    clientId: row.client_id,
    reason: row.reason,
    detail: row.detail,
    payload: row.payload,
    payloadBytes: row.payload_bytes,
    payloadSha256: row.payload_sha256,
    truncated: row.truncated !== 0,
  };
}

/** The first MAX_DEAD_LETTER_DETAIL_CHARS UTF-16 units of a detail, never ending inside a surrogate pair. */
function cutDetail(detail: string): string {
  if (detail.length <= MAX_DEAD_LETTER_DETAIL_CHARS) return detail;
  const last = detail.charCodeAt(MAX_DEAD_LETTER_DETAIL_CHARS - 1);
  const end = last >= 0xd800 && last <= 0xdbff ? MAX_DEAD_LETTER_DETAIL_CHARS - 1 : MAX_DEAD_LETTER_DETAIL_CHARS;
  return detail.slice(0, end);
}

function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare<LetterParams>(
      `INSERT INTO dead_letters (received_at_ms, topic, client_id, reason, detail, payload, payload_bytes, payload_sha256, truncated, stored_bytes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    storedBytes: db.prepare<[], number>('SELECT stored_bytes FROM dead_letter_totals WHERE id = 0').pluck(),
    oldest: db.prepare<[], { id: number; bytes: number }>('SELECT id, stored_bytes AS bytes FROM dead_letters ORDER BY id'),
    newestId: db.prepare<[], number>('SELECT MAX(id) FROM dead_letters').pluck(),
    deleteUpTo: db.prepare<[number]>('DELETE FROM dead_letters WHERE id <= ?'),
    deleteReceivedBefore: db.prepare<[number]>('DELETE FROM dead_letters WHERE received_at_ms < ?'),
    list: db.prepare<[number, number], DeadLetterRow>(`SELECT ${LETTER_COLUMNS} FROM dead_letters WHERE id < ? ORDER BY id DESC LIMIT ?`),
    listOfReason: db.prepare<[string, number, number], DeadLetterRow>(
      `SELECT ${LETTER_COLUMNS} FROM dead_letters WHERE reason = ? AND id < ? ORDER BY id DESC LIMIT ?`,
    ),
    countByReason: db.prepare<[], { reason: string; count: number }>('SELECT reason, COUNT(*) AS count FROM dead_letters GROUP BY reason ORDER BY reason'),
  };
}

export class SqliteDeadLetters implements DeadLetterStore {
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly limits: Readonly<DeadLetterLimits>;
  private readonly insertBatch: (rows: readonly LetterParams[]) => void;

  /** `limits` must have passed checkDeadLetterLimits. */
  constructor(db: Database.Database, limits: Readonly<DeadLetterLimits>) {
    const stmt = prepareStatements(db);
    this.stmt = stmt;
    this.limits = limits;
    this.insertBatch = immediateTransaction(db, (rows: readonly LetterParams[]) => {
      for (const row of rows) stmt.insert.run(...row);
      const storedBytes = stmt.storedBytes.get() ?? 0;
      if (storedBytes > limits.maxTotalBytes) this.deleteOldest(storedBytes - limits.maxTotalBytes);
    });
  }

  /**
   * Stores the letters, cut to the limits, in one transaction, then deletes
   * the oldest letters until the stored letters fit in maxTotalBytes (the
   * newest is always kept). A
   * letter with a non-integer receivedAtMs or a payload that is not a Buffer
   * fails the call with 'invalid' before anything is written.
   */
  addDeadLetters(letters: readonly DeadLetter[]): void {
    if (letters.length === 0) return;
    const rows = letters.map((l): LetterParams => {
      requireSafeInteger(`dead letter on ${l.topic}: receivedAtMs`, l.receivedAtMs);
      if (!Buffer.isBuffer(l.payload)) throw new StoreError('invalid', `dead letter on ${l.topic}: payload must be a Buffer`);
      const truncated = l.payload.length > this.limits.maxPayloadBytes;
      const stored = { ...l, detail: cutDetail(l.detail), payload: truncated ? l.payload.subarray(0, this.limits.maxPayloadBytes) : l.payload };
      return [
        stored.receivedAtMs,
        stored.topic,
        stored.clientId,
        stored.reason,
        stored.detail,
        stored.payload,
        l.payload.length,
        createHash('sha256').update(l.payload).digest('hex'),
        truncated ? 1 : 0,
        storedDeadLetterBytes(stored),
      ];
    });
    guard('add dead letters', () => this.insertBatch(rows));
  }

  /**
   * Newest first; pass the smallest id of a page as `beforeId` to get the
   * next page. With `maxBytes`, a letter is listed only while the payloads
   * listed, itself included, stay within maxBytes, except the first, which
   * is always listed.
   */
  listDeadLetters(query: { limit: number; reason?: string; beforeId?: number; maxBytes?: number }): StoredDeadLetter[] {
    requireLimit(query.limit);
    const { maxBytes } = query;
    if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 0)) {
      throw new StoreError('invalid', `maxBytes must be a non-negative integer, got ${maxBytes}`);
    }
    const beforeId = query.beforeId ?? Number.MAX_SAFE_INTEGER;
    return guard('list dead letters', () => {
      const rows =
        query.reason === undefined ? this.stmt.list.iterate(beforeId, query.limit) : this.stmt.listOfReason.iterate(query.reason, beforeId, query.limit);
      const listed: StoredDeadLetter[] = [];
      let listedBytes = 0;
      for (const row of rows) {
        if (maxBytes !== undefined && listed.length > 0 && listedBytes + row.payload.length > maxBytes) break;
        listed.push(letterFromRow(row));
        listedBytes += row.payload.length;
      }
      return listed;
    });
  }

  countDeadLettersByReason(): Record<string, number> {
    const rows = guard('count dead letters', () => this.stmt.countByReason.all());
    return Object.fromEntries(rows.map((row) => [row.reason, row.count]));
  }

  /** Deletes letters received before nowMs - retentionMs; returns how many. */
  pruneDeadLetters(nowMs: number): number {
    requireRange(nowMs, nowMs);
    if (this.limits.retentionMs === Infinity) return 0;
    const cutoffMs = nowMs - this.limits.retentionMs;
    return guard('prune dead letters', () => this.stmt.deleteReceivedBefore.run(cutoffMs).changes);
  }

  /** Deletes the oldest letters, never the newest, that add up to at least `bytes`. Runs inside the add's transaction. */
  private deleteOldest(bytes: number): void {
    const newestId = this.stmt.newestId.get();
    let freed = 0;
    let lastId: number | undefined;
    for (const row of this.stmt.oldest.iterate()) {
      if (row.id === newestId) break;
      freed += row.bytes;
      lastId = row.id;
      if (freed >= bytes) break;
    }
    if (lastId !== undefined) this.stmt.deleteUpTo.run(lastId);
  }
}
