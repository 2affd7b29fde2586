/**
 * AuditStore over SQLite, on the connection the other ports share: one row
 * per state-changing or refused call, appended in order, never edited (a
 * trigger refuses every UPDATE), deleted only by retention (pruneAudit).
 *
 * A record must not be lost because a caller sent something long: strings
 * beyond their bounds and a summary beyond MAX_AUDIT_SUMMARY_BYTES are cut,
 * not refused. Only what is malformed (a time that is not an integer, an
 * unknown role or outcome, a status that is not an HTTP status, a summary
 * that is not an object or cannot be encoded) is refused with 'invalid',
 * and then nothing of the batch is written.
 */
import type Database from 'better-sqlite3';
import { cutText } from './alert-lifecycle.ts';
import { guard, immediateTransaction, isOperatorRole, isPlainObject, requirePageLimit, requireSafeInteger, serializeJson } from './sqlite-common.ts';
import { OPERATOR_ROLES, StoreError, type AuditRecord, type AuditStore, type OperatorRole, type StoredAuditRecord } from './types.ts';

/** Characters (UTF-16 units) kept of each string; longer ones are cut, never inside a surrogate pair. */
export const MAX_AUDIT_ADDRESS_CHARS = 64;
export const MAX_AUDIT_ACTION_CHARS = 128;
export const MAX_AUDIT_TARGET_CHARS = 128;
export const MAX_AUDIT_ACTOR_CHARS = 64;
/** UTF-8 bytes of a summary as JSON; a longer one is cut (see cutSummary). */
export const MAX_AUDIT_SUMMARY_BYTES = 1_024;
/** The key under which a cut summary says what it lost. */
export const AUDIT_SUMMARY_CUT_KEY = '_truncated';
/** The largest page listAudit returns. */
export const MAX_AUDIT_PAGE = 1_000;
/** Records pruneAudit deletes per transaction, so a writer waits at most a short while. */
const PRUNE_BATCH = 1_000;

const OUTCOMES: ReadonlySet<string> = new Set<AuditRecord['outcome']>(['ok', 'refused', 'failed']);

interface AuditRow {
  id: number;
  at_ms: number;
  actor: string | null;
  role: OperatorRole | null;
  address: string;
  action: string;
  target: string | null;
  summary: string | null;
  status: number;
  outcome: AuditRecord['outcome'];
}

interface InsertParams {
  atMs: number;
  actor: string | null;
  role: OperatorRole | null;
  address: string;
  action: string;
  target: string | null;
  summary: string | null;
  status: number;
  outcome: AuditRecord['outcome'];
}

const AUDIT_COLUMNS = 'id, at_ms, actor, role, address, action, target, summary, status, outcome';

function recordFromRow(row: AuditRow): StoredAuditRecord {
  return {
    id: row.id,
    atMs: row.at_ms,
    actor: row.actor,
    role: row.role,
    address: row.address,
    action: row.action,
    target: row.target,
    summary: row.summary === null ? null : (JSON.parse(row.summary) as Record<string, unknown>),
    status: row.status,
    outcome: row.outcome,
  };
}

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

/**
 * The summary as JSON, at most MAX_AUDIT_SUMMARY_BYTES. One that is longer
 * becomes `{ "_truncated": { "bytes": <its size>, "droppedKeys": <how many
 * of its keys are not kept> }, ...its leading entries }`, keeping entries
 * in their order up to the first that does not fit (a key `_truncated` of
 * its own is dropped). Pushes a problem for a summary that is not an object
 * or that JSON cannot encode.
 */
function checkSummary(summary: unknown, problems: string[]): string | null | undefined {
  if (summary === null) return null;
  if (!isPlainObject(summary)) {
    problems.push('summary must be an object or null');
    return undefined;
  }
  let text: string;
  try {
    text = serializeJson('summary', summary);
  } catch (error) {
    problems.push((error as Error).message);
    return undefined;
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= MAX_AUDIT_SUMMARY_BYTES) return text;
  // The encoded form, so only what JSON keeps is counted (no undefined, toJSON applied).
  const entries = Object.entries(JSON.parse(text) as Record<string, unknown>);
  const kept: Record<string, unknown> = {};
  let keptCount = 0;
  const cut = (count: number) => ({ [AUDIT_SUMMARY_CUT_KEY]: { bytes, droppedKeys: entries.length - count } });
  for (const [key, value] of entries) {
    if (key === AUDIT_SUMMARY_CUT_KEY) continue;
    if (jsonBytes({ ...cut(keptCount + 1), ...kept, [key]: value }) > MAX_AUDIT_SUMMARY_BYTES) break;
    kept[key] = value;
    keptCount += 1;
  }
  return JSON.stringify({ ...cut(keptCount), ...kept });
}

function checkString(what: string, value: unknown, max: number, options: { nullable: boolean; nonEmpty: boolean }, problems: string[]): string | null {
  if (value === null && options.nullable) return null;
  if (typeof value !== 'string' || (options.nonEmpty && value.length === 0)) {
    problems.push(`${what} must be ${options.nonEmpty ? 'a non-empty string' : 'a string'}${options.nullable ? ' or null' : ''}`);
    return null;
  }
  return cutText(value, max);
}

/** Checks one record and returns it ready to insert, or pushes its problems (prefixed with `what`). */
function checkRecord(what: string, record: AuditRecord, problems: string[]): InsertParams | undefined {
  if (!isPlainObject(record)) {
    problems.push(`${what} must be an object`);
    return undefined;
  }
  const own: string[] = [];
  if (!Number.isSafeInteger(record.atMs)) own.push(`atMs must be an integer within ±(2^53 - 1), got ${String(record.atMs)}`);
  const actor = checkString('actor', record.actor, MAX_AUDIT_ACTOR_CHARS, { nullable: true, nonEmpty: false }, own);
  if (record.role !== null && !isOperatorRole(record.role)) own.push(`role must be null or one of ${OPERATOR_ROLES.join(', ')}, got ${String(record.role)}`);
  const address = checkString('address', record.address, MAX_AUDIT_ADDRESS_CHARS, { nullable: false, nonEmpty: false }, own);
  const action = checkString('action', record.action, MAX_AUDIT_ACTION_CHARS, { nullable: false, nonEmpty: true }, own);
  const target = checkString('target', record.target, MAX_AUDIT_TARGET_CHARS, { nullable: true, nonEmpty: false }, own);
  const summary = checkSummary(record.summary, own);
  if (!Number.isSafeInteger(record.status) || record.status < 100 || record.status > 599) own.push(`status must be an HTTP status (100 to 599), got ${String(record.status)}`);
  if (typeof record.outcome !== 'string' || !OUTCOMES.has(record.outcome)) own.push(`outcome must be one of ok, refused, failed, got ${String(record.outcome)}`);
  if (own.length > 0) {
    problems.push(...own.map((problem) => `${what}: ${problem}`));
    return undefined;
  }
  return {
    atMs: record.atMs,
    actor,
    role: record.role,
    address: address!,
    action: action!,
    target,
    summary: summary ?? null,
    status: record.status,
    outcome: record.outcome,
  };
}

function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare<InsertParams>(
      `INSERT INTO audit_log (at_ms, actor, role, address, action, target, summary, status, outcome)
       VALUES (@atMs, @actor, @role, @address, @action, @target, @summary, @status, @outcome)`,
    ),
    // One batch of the records older than the cutoff, found by the time index.
    pruneBatch: db.prepare<[number, number]>('DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at_ms < ? LIMIT ?)'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteAudit implements AuditStore {
  private readonly db: Database.Database;
  private readonly stmt: Statements;
  /** listAudit statements by the set of filters used. */
  private readonly listStatements = new Map<string, Database.Statement<Record<string, unknown>, AuditRow>>();
  private readonly appendTx: (records: readonly InsertParams[]) => void;

  constructor(db: Database.Database) {
    this.db = db;
    const stmt = prepareStatements(db);
    this.stmt = stmt;
    this.appendTx = immediateTransaction(db, (records: readonly InsertParams[]) => {
      for (const record of records) stmt.insert.run(record);
    });
  }

  /**
   * See AuditStore.appendAudit: the records in one transaction, in their
   * order (ids increase along it). Every record is checked first, and one
   * bad record refuses the batch ('invalid' listing every problem, nothing
   * written): atMs an integer; actor a string or null; role null or a known
   * role; address a string; action a non-empty string; target a string or
   * null; summary an object JSON can encode, or null; status an integer
   * from 100 to 599; outcome ok, refused or failed. Strings are cut to
   * their bounds (MAX_AUDIT_ACTOR_CHARS and the others) and a summary to
   * MAX_AUDIT_SUMMARY_BYTES (see checkSummary), not refused.
   */
  appendAudit(records: readonly AuditRecord[]): void {
    if (!Array.isArray(records)) throw new StoreError('invalid', 'append audit: records must be an array');
    const problems: string[] = [];
    const checked: InsertParams[] = [];
    records.forEach((record: AuditRecord, index) => {
      const params = checkRecord(`record ${index}`, record, problems);
      if (params !== undefined) checked.push(params);
    });
    if (problems.length > 0) throw new StoreError('invalid', `append audit: ${problems.join('; ')}`);
    if (checked.length === 0) return;
    guard('append audit', () => this.appendTx(checked));
  }

  /**
   * See AuditStore.listAudit: newest first (by id), every filter given
   * applying (actor, action and target equal, fromMs ≤ atMs < toMs, id <
   * beforeId), at most `limit`. Pass the smallest id of a page as
   * `beforeId` for the next. A filter string is cut like the stored field,
   * so the value that was appended finds its records. 'invalid' for a limit
   * outside 1 to MAX_AUDIT_PAGE, a filter string that is not a string, or
   * a time or beforeId that is not an integer.
   */
  listAudit(query: { actor?: string; action?: string; target?: string; fromMs?: number; toMs?: number; limit: number; beforeId?: number }): StoredAuditRecord[] {
    if (!isPlainObject(query)) throw new StoreError('invalid', 'list audit: the query must be an object');
    const { limit } = query;
    requirePageLimit('list audit', limit, MAX_AUDIT_PAGE);
    const where: string[] = [];
    const params: Record<string, unknown> = { limit };
    const strings = [
      ['actor', MAX_AUDIT_ACTOR_CHARS],
      ['action', MAX_AUDIT_ACTION_CHARS],
      ['target', MAX_AUDIT_TARGET_CHARS],
    ] as const;
    for (const [field, max] of strings) {
      const value: unknown = query[field];
      if (value === undefined) continue;
      if (typeof value !== 'string') throw new StoreError('invalid', `list audit: ${field} must be a string`);
      where.push(`${field} = @${field}`);
      params[field] = cutText(value, max);
    }
    const integers = [
      ['fromMs', 'at_ms >= @fromMs'],
      ['toMs', 'at_ms < @toMs'],
      ['beforeId', 'id < @beforeId'],
    ] as const;
    for (const [field, condition] of integers) {
      const value: unknown = query[field];
      if (value === undefined) continue;
      if (!Number.isSafeInteger(value)) throw new StoreError('invalid', `list audit: ${field} must be an integer within ±(2^53 - 1), got ${String(value)}`);
      where.push(condition);
      params[field] = value;
    }
    const sql = `SELECT ${AUDIT_COLUMNS} FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
    return guard('list audit', () => {
      let statement = this.listStatements.get(sql);
      if (statement === undefined) {
        statement = this.db.prepare<Record<string, unknown>, AuditRow>(sql);
        this.listStatements.set(sql, statement);
      }
      return statement.all(params).map(recordFromRow);
    });
  }

  /**
   * See AuditStore.pruneAudit: deletes the records with atMs before
   * `nowMs - retentionMs`, PRUNE_BATCH per transaction, and returns how
   * many. `retentionMs` Infinity keeps everything. 'invalid' for a nowMs
   * that is not an integer or a retention that is negative or not an
   * integer.
   */
  pruneAudit(nowMs: number, retentionMs: number): number {
    requireSafeInteger('prune audit: nowMs', nowMs);
    if (retentionMs === Number.POSITIVE_INFINITY) return 0;
    if (!Number.isSafeInteger(retentionMs) || retentionMs < 0) {
      throw new StoreError('invalid', `prune audit: retentionMs must be a non-negative integer or Infinity, got ${String(retentionMs)}`);
    }
    const cutoffMs = nowMs - retentionMs;
    return guard('prune audit', () => {
      let deleted = 0;
      for (;;) {
        const changes = this.stmt.pruneBatch.run(cutoffMs, PRUNE_BATCH).changes;
        deleted += changes;
        if (changes < PRUNE_BATCH) return deleted;
      }
    });
  }
}
