/**
 * CommandStore over SQLite, on the connection the other ports share. Each
 * change of a command (its row and its transition) is one IMMEDIATE
 * transaction that reads the command first, so several processes (control
 * creating commands, the dispatcher sending them, ingest applying acks) can
 * act on the same file, an ack is applied once whoever receives it, and a
 * crash keeps all or none of a change.
 *
 * Lifecycle (protocol/commands.ts): pending → sent (repeated while resent)
 * → accepted → completed; pending | sent → rejected, expired or failed;
 * pending | sent | accepted → completed. A change that does not move a
 * command forward writes nothing.
 *
 * Bounds, so a device offline for a day or a caller in a loop cannot fill
 * the disk: input is checked before anything is written (checkNewCommand);
 * a command keeps at most MAX_TRANSITIONS_PER_COMMAND transitions (see
 * markSent); pruneCommands deletes final commands after a retention.
 */
import type Database from 'better-sqlite3';
import { AckCheck, COMMAND_STATES, COMMAND_TYPES, type Ack, type CommandState, type CommandType } from '../protocol/index.ts';
import { cutText } from './alert-lifecycle.ts';
import {
  decodeListCursor,
  encodeListCursor,
  guard,
  immediateTransaction,
  isPlainObject,
  isStringOfLength,
  isUuid,
  pruneByRetention,
  requireLimit,
  requirePageLimit,
  requireSafeInteger,
  serializeJson,
  UUID_PROBLEM,
} from './sqlite-common.ts';
import { StoreError, type CommandQuery, type CommandStore, type CommandTransition, type NewCommand, type StoredCommand } from './types.ts';

/**
 * Transitions kept per command. A command's transitions before any ack
 * (pending, then one `sent` per publish) take at most this many minus two
 * rows, leaving room for `accepted` and a final state; past that, a resend
 * rewrites the command's latest `sent` transition into `attempts K to N`
 * (at the time of the latest of them) instead of adding a row.
 */
export const MAX_TRANSITIONS_PER_COMMAND = 50;
/** Bytes of a command's params as JSON (UTF-8); more is refused. */
export const MAX_COMMAND_PARAMS_BYTES = 4_096;
/** Characters of a device id, as on the wire (topics, AckSchema). */
export const MAX_COMMAND_DEVICE_ID_CHARS = 64;
/** Characters of an idempotency key; longer (or empty) is refused. */
export const MAX_IDEMPOTENCY_KEY_CHARS = 255;
/** Characters of a request hash; longer is refused. */
export const MAX_REQUEST_HASH_CHARS = 128;
/** Characters of a dispatch id; longer (or empty) is refused. */
export const MAX_DISPATCH_ID_CHARS = 128;
/** Bytes of what an ack says was applied, as JSON (UTF-8); more is refused. */
export const MAX_COMMAND_APPLIED_BYTES = 1_024;
/** The largest page listCommands returns. */
export const MAX_COMMAND_PAGE = 1_000;
/** Characters of a failCommand reason that are kept (cut, not refused). */
export const MAX_COMMAND_FAILURE_CHARS = 1_000;

/** Rows before any ack: pending plus the `sent` ones. Two rows stay free for `accepted` and a final state. */
const MAX_TRANSITIONS_BEFORE_ACK = MAX_TRANSITIONS_PER_COMMAND - 2;
/** Commands deleted per transaction by pruneCommands; bounds how long it holds the write lock. */
const PRUNE_COMMANDS_PER_TRANSACTION = 200;
/** Device ids per query of latestCommandPerDevice, so a whole fleet's list is read in bounded steps. */
const LATEST_PER_DEVICE_CHUNK = 500;

const EXPIRED_DETAIL = 'expired before the device accepted it';
const RAN_TO_EXPIRY_DETAIL = 'ran until its expiry; no completion ack came';

interface CommandRow {
  id: string;
  device_id: string;
  type: CommandType;
  params: string;
  state: CommandState;
  created_at_ms: number;
  expires_at_ms: number;
  attempts: number;
  next_attempt_at_ms: number | null;
  reason: string | null;
  applied: string | null;
  dispatch_id: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
}

interface TransitionRow {
  command_id: string;
  seq: number;
  state: CommandState;
  at_ms: number;
  detail: string | null;
}

interface InsertCommandParams {
  id: string;
  deviceId: string;
  type: CommandType;
  params: string;
  createdAtMs: number;
  expiresAtMs: number;
  dispatchId: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
}

interface TransitionParams {
  commandId: string;
  state: CommandState;
  atMs: number;
  detail: string | null;
}

interface EndParams {
  id: string;
  state: CommandState;
  reason: string | null;
  applied: string | null;
}

/** A NewCommand that passed checkNewCommand, with its params as JSON. */
type CheckedCommand = InsertCommandParams;

const COMMAND_COLUMNS = `id, device_id, type, params, state, created_at_ms, expires_at_ms, attempts, next_attempt_at_ms,
  reason, applied, dispatch_id, idempotency_key, request_hash`;

function commandFromRow(row: CommandRow, transitions: CommandTransition[]): StoredCommand {
  return {
    id: row.id,
    deviceId: row.device_id,
    type: row.type,
    params: JSON.parse(row.params) as Record<string, unknown>,
    state: row.state,
    createdAtMs: row.created_at_ms,
    expiresAtMs: row.expires_at_ms,
    attempts: row.attempts,
    nextAttemptAtMs: row.next_attempt_at_ms,
    reason: row.reason,
    applied: row.applied === null ? null : (JSON.parse(row.applied) as Record<string, number | string | null>),
    dispatchId: row.dispatch_id,
    transitions,
  };
}

function transitionFromRow(row: TransitionRow): CommandTransition {
  return { state: row.state, atMs: row.at_ms, detail: row.detail };
}

/**
 * Checks everything a new command carries and returns it ready to insert;
 * 'invalid' listing every problem found otherwise, before any write.
 */
function checkNewCommand(command: NewCommand, nowMs: number): CheckedCommand {
  const problems: string[] = [];
  if (!isUuid(command.id)) problems.push(UUID_PROBLEM);
  if (!isStringOfLength(command.deviceId, 1, MAX_COMMAND_DEVICE_ID_CHARS)) problems.push(`deviceId must be a string of 1 to ${MAX_COMMAND_DEVICE_ID_CHARS} characters`);
  if (!(COMMAND_TYPES as readonly unknown[]).includes(command.type)) problems.push(`type must be one of ${COMMAND_TYPES.join(', ')}`);
  let params: string | undefined;
  if (!isPlainObject(command.params)) {
    problems.push('params must be an object');
  } else {
    try {
      params = serializeJson('params', command.params);
      const bytes = Buffer.byteLength(params, 'utf8');
      if (bytes > MAX_COMMAND_PARAMS_BYTES) problems.push(`params must be at most ${MAX_COMMAND_PARAMS_BYTES} bytes as JSON, got ${bytes}`);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (!Number.isSafeInteger(nowMs)) problems.push(`nowMs must be an integer within ±(2^53 - 1), got ${String(nowMs)}`);
  if (!Number.isSafeInteger(command.expiresAtMs)) {
    problems.push(`expiresAtMs must be an integer within ±(2^53 - 1), got ${String(command.expiresAtMs)}`);
  } else if (Number.isSafeInteger(nowMs) && command.expiresAtMs <= nowMs) {
    problems.push(`expiresAtMs (${command.expiresAtMs}) must be after nowMs (${nowMs})`);
  }
  const dispatchId = command.dispatchId ?? null;
  if (dispatchId !== null && !isStringOfLength(dispatchId, 1, MAX_DISPATCH_ID_CHARS)) problems.push(`dispatchId must be null or a string of 1 to ${MAX_DISPATCH_ID_CHARS} characters`);
  const idempotencyKey = command.idempotencyKey ?? null;
  if (idempotencyKey !== null && !isStringOfLength(idempotencyKey, 1, MAX_IDEMPOTENCY_KEY_CHARS)) {
    problems.push(`idempotencyKey must be null or a string of 1 to ${MAX_IDEMPOTENCY_KEY_CHARS} characters`);
  }
  const requestHash = command.requestHash ?? null;
  if (requestHash !== null && !isStringOfLength(requestHash, 0, MAX_REQUEST_HASH_CHARS)) problems.push(`requestHash must be null or a string of at most ${MAX_REQUEST_HASH_CHARS} characters`);
  if (problems.length > 0 || params === undefined) throw new StoreError('invalid', `create command: ${problems.join('; ')}`);
  return {
    id: command.id,
    deviceId: command.deviceId,
    type: command.type,
    params,
    createdAtMs: nowMs,
    expiresAtMs: command.expiresAtMs,
    dispatchId,
    idempotencyKey,
    requestHash,
  };
}

function checkTime(action: string, what: string, value: number): void {
  requireSafeInteger(`${action}: ${what}`, value);
}

function prepareStatements(db: Database.Database) {
  return {
    byId: db.prepare<[string], CommandRow>(`SELECT ${COMMAND_COLUMNS} FROM commands WHERE id = ?`),
    byIdempotencyKey: db.prepare<[string, string], CommandRow>(`SELECT ${COMMAND_COLUMNS} FROM commands WHERE device_id = ? AND idempotency_key = ?`),
    insertCommand: db.prepare<InsertCommandParams>(
      `INSERT INTO commands (id, device_id, type, params, state, created_at_ms, expires_at_ms, attempts, next_attempt_at_ms,
         reason, applied, dispatch_id, idempotency_key, request_hash)
       VALUES (@id, @deviceId, @type, @params, 'pending', @createdAtMs, @expiresAtMs, 0, @createdAtMs,
         NULL, NULL, @dispatchId, @idempotencyKey, @requestHash)`,
    ),
    insertTransition: db.prepare<TransitionParams>(
      `INSERT INTO command_transitions (command_id, seq, state, at_ms, detail)
       VALUES (@commandId, (SELECT COALESCE(MAX(seq), 0) + 1 FROM command_transitions WHERE command_id = @commandId), @state, @atMs, @detail)`,
    ),
    countTransitionsOf: db.prepare<[string], number>('SELECT COUNT(*) FROM command_transitions WHERE command_id = ?').pluck(),
    rewriteLatestTransition: db.prepare<{ commandId: string; atMs: number; detail: string }>(
      `UPDATE command_transitions SET at_ms = @atMs, detail = @detail
       WHERE command_id = @commandId AND seq = (SELECT MAX(seq) FROM command_transitions WHERE command_id = @commandId)`,
    ),
    transitionsOf: db.prepare<[string], TransitionRow>('SELECT command_id, seq, state, at_ms, detail FROM command_transitions WHERE command_id = ? ORDER BY seq'),
    transitionsOfMany: db.prepare<[string], TransitionRow>(
      `SELECT command_id, seq, state, at_ms, detail FROM command_transitions
       WHERE command_id IN (SELECT value FROM json_each(?)) ORDER BY command_id, seq`,
    ),
    markSent: db.prepare<[number, string]>("UPDATE commands SET state = 'sent', attempts = attempts + 1, next_attempt_at_ms = ? WHERE id = ?"),
    // Accepted or final: nothing more to send.
    end: db.prepare<EndParams>('UPDATE commands SET state = @state, next_attempt_at_ms = NULL, reason = @reason, applied = @applied WHERE id = @id'),
    // The IN terms repeat the partial indexes' conditions word for word, so SQLite may use those
    // indexes; INDEXED BY makes it, since without statistics it takes commands_state and sorts,
    // which reads every pending and sent command when thousands of devices are offline.
    due: db.prepare<[number, number, number], CommandRow>(
      `SELECT ${COMMAND_COLUMNS} FROM commands INDEXED BY commands_due
       WHERE state IN ('pending', 'sent') AND next_attempt_at_ms <= ? AND expires_at_ms > ?
       ORDER BY next_attempt_at_ms, id LIMIT ?`,
    ),
    unacceptedExpired: db.prepare<[number], CommandRow>(
      `SELECT ${COMMAND_COLUMNS} FROM commands INDEXED BY commands_expiry
       WHERE state IN ('pending', 'sent', 'accepted') AND state != 'accepted' AND expires_at_ms <= ?
       ORDER BY expires_at_ms, id`,
    ),
    acceptedOverdue: db.prepare<[number], CommandRow>(
      `SELECT ${COMMAND_COLUMNS} FROM commands INDEXED BY commands_expiry
       WHERE state IN ('pending', 'sent', 'accepted') AND state = 'accepted' AND expires_at_ms <= ?
       ORDER BY expires_at_ms, id`,
    ),
    latestOfDevices: db.prepare<[string], CommandRow>(
      `SELECT ${COMMAND_COLUMNS} FROM commands
       WHERE id IN (
         SELECT (SELECT l.id FROM commands l WHERE l.device_id = d.value ORDER BY l.created_at_ms DESC, l.id DESC LIMIT 1)
         FROM (SELECT DISTINCT value FROM json_each(?)) d)`,
    ),
    count: db.prepare<[], { state: CommandState; count: number }>('SELECT state, COUNT(*) AS count FROM commands GROUP BY state'),
    // Final commands whose final (and so last) transition is older than the cutoff. The
    // command's own state is checked too, so only a final command is ever deleted.
    prunable: db.prepare<[number, number], string>(
      `SELECT t.command_id FROM command_transitions t
       WHERE t.state IN ('rejected', 'completed', 'expired', 'failed') AND t.at_ms < ?
         AND EXISTS (SELECT 1 FROM commands c WHERE c.id = t.command_id AND c.state IN ('rejected', 'completed', 'expired', 'failed'))
       ORDER BY t.at_ms LIMIT ?`,
    ).pluck(),
    deleteTransitionsOf: db.prepare<[string]>('DELETE FROM command_transitions WHERE command_id = ?'),
    deleteCommand: db.prepare<[string]>('DELETE FROM commands WHERE id = ?'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteCommands implements CommandStore {
  private readonly db: Database.Database;
  private readonly stmt: Statements;
  /** listCommands statements by the set of filters used. */
  private readonly listStatements = new Map<string, Database.Statement<Record<string, unknown>, CommandRow>>();
  private readonly createTx: (command: CheckedCommand) => { command: StoredCommand; created: boolean };
  private readonly markSentTx: (id: string, atMs: number, nextAttemptAtMs: number) => StoredCommand | undefined;
  private readonly ackTx: (deviceId: string, ack: Ack, atMs: number) => StoredCommand | undefined;
  private readonly expireTx: (nowMs: number, acceptedCutoffMs: number) => StoredCommand[];
  private readonly failTx: (id: string, atMs: number, reason: string) => StoredCommand | undefined;
  private readonly pruneTx: (cutoffMs: number) => number;
  /** A read transaction (deferred), so commands and their transitions are read from the same moment. */
  private readonly readTx: <T>(fn: () => T) => T;

  constructor(db: Database.Database) {
    this.db = db;
    const stmt = prepareStatements(db);
    this.stmt = stmt;

    this.createTx = immediateTransaction(db, (command: CheckedCommand) => {
      if (command.idempotencyKey !== null) {
        const existing = stmt.byIdempotencyKey.get(command.deviceId, command.idempotencyKey);
        if (existing !== undefined) {
          if (existing.request_hash !== command.requestHash) {
            throw new StoreError(
              'conflict',
              `idempotency key ${JSON.stringify(command.idempotencyKey)} of device ${command.deviceId} was used for another request (command ${existing.id})`,
            );
          }
          return { command: this.withTransitions(existing), created: false };
        }
      }
      if (stmt.byId.get(command.id) !== undefined) throw new StoreError('conflict', `command ${command.id} exists`);
      stmt.insertCommand.run(command);
      stmt.insertTransition.run({ commandId: command.id, state: 'pending', atMs: command.createdAtMs, detail: null });
      return { command: this.read(command.id)!, created: true };
    });

    this.markSentTx = immediateTransaction(db, (id: string, atMs: number, nextAttemptAtMs: number) => {
      const row = stmt.byId.get(id);
      if (row === undefined || (row.state !== 'pending' && row.state !== 'sent')) return undefined;
      const attempt = row.attempts + 1;
      stmt.markSent.run(nextAttemptAtMs, id);
      const rows = stmt.countTransitionsOf.get(id)!;
      if (row.state === 'sent' && rows >= MAX_TRANSITIONS_BEFORE_ACK) {
        // Row k + 1 holds attempt k (row 1 is `pending`), so the latest row stands for the attempts from rows - 1 on.
        stmt.rewriteLatestTransition.run({ commandId: id, atMs, detail: `attempts ${rows - 1} to ${attempt}` });
      } else {
        stmt.insertTransition.run({ commandId: id, state: 'sent', atMs, detail: `attempt ${attempt}` });
      }
      return this.read(id);
    });

    this.ackTx = immediateTransaction(db, (deviceId: string, ack: Ack, atMs: number) => {
      const row = stmt.byId.get(ack.commandId);
      if (row === undefined || row.device_id !== deviceId) return undefined;
      const from = row.state;
      const unanswered = from === 'pending' || from === 'sent';
      const moves = ack.status === 'completed' ? unanswered || from === 'accepted' : unanswered;
      if (!moves) return undefined;
      const reason = ack.reason ?? null;
      const applied = ack.status !== 'rejected' && ack.applied !== undefined ? JSON.stringify(ack.applied) : row.applied;
      stmt.end.run({ id: row.id, state: ack.status, reason: ack.status === 'accepted' ? row.reason : reason, applied });
      stmt.insertTransition.run({ commandId: row.id, state: ack.status, atMs, detail: reason });
      return this.read(row.id);
    });

    this.expireTx = immediateTransaction(db, (nowMs: number, acceptedCutoffMs: number) => {
      const changed: string[] = [];
      for (const row of stmt.unacceptedExpired.all(nowMs)) {
        stmt.end.run({ id: row.id, state: 'expired', reason: row.reason, applied: row.applied });
        stmt.insertTransition.run({ commandId: row.id, state: 'expired', atMs: nowMs, detail: EXPIRED_DETAIL });
        changed.push(row.id);
      }
      for (const row of stmt.acceptedOverdue.all(acceptedCutoffMs)) {
        stmt.end.run({ id: row.id, state: 'completed', reason: row.reason, applied: row.applied });
        stmt.insertTransition.run({ commandId: row.id, state: 'completed', atMs: nowMs, detail: RAN_TO_EXPIRY_DETAIL });
        changed.push(row.id);
      }
      return changed.map((id) => this.read(id)!);
    });

    this.failTx = immediateTransaction(db, (id: string, atMs: number, reason: string) => {
      const row = stmt.byId.get(id);
      if (row === undefined || (row.state !== 'pending' && row.state !== 'sent')) return undefined;
      stmt.end.run({ id, state: 'failed', reason: row.reason, applied: row.applied });
      stmt.insertTransition.run({ commandId: id, state: 'failed', atMs, detail: reason });
      return this.read(id);
    });

    this.pruneTx = immediateTransaction(db, (cutoffMs: number) => {
      const ids = stmt.prunable.all(cutoffMs, PRUNE_COMMANDS_PER_TRANSACTION);
      for (const id of ids) {
        stmt.deleteTransitionsOf.run(id);
        stmt.deleteCommand.run(id);
      }
      return ids.length;
    });

    const read = db.transaction((fn: () => unknown) => fn());
    this.readTx = <T>(fn: () => T): T => read(fn) as T;
  }

  /**
   * See CommandStore.createCommand. Checked first, nothing written on
   * 'invalid': id a lowercase UUID; deviceId 1 to 64 characters; type one
   * of COMMAND_TYPES; params an object of at most MAX_COMMAND_PARAMS_BYTES
   * as JSON; nowMs and expiresAtMs safe integers, expiresAtMs > nowMs;
   * dispatchId 1 to MAX_DISPATCH_ID_CHARS characters, idempotencyKey 1 to
   * MAX_IDEMPOTENCY_KEY_CHARS, requestHash at most MAX_REQUEST_HASH_CHARS,
   * each or null. A missing requestHash counts as null when comparing.
   */
  createCommand(command: NewCommand, nowMs: number): { command: StoredCommand; created: boolean } {
    const checked = checkNewCommand(command, nowMs);
    return guard('create command', () => this.createTx(checked));
  }

  getCommand(id: string): StoredCommand | undefined {
    if (typeof id !== 'string') return undefined;
    return guard('get command', () => this.readTx(() => this.read(id)));
  }

  /**
   * See CommandQuery. Throws 'invalid' for a limit outside 1 to
   * MAX_COMMAND_PAGE, an unknown state, a filter that is not a string, or a
   * `before` that is not a cursor this store returned.
   */
  listCommands(query: CommandQuery): { commands: StoredCommand[]; next: string | null } {
    const { limit } = query;
    requirePageLimit('list commands', limit, MAX_COMMAND_PAGE);
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: limit + 1 };
    if (query.deviceId !== undefined) {
      if (typeof query.deviceId !== 'string') throw new StoreError('invalid', 'list commands: deviceId must be a string');
      where.push('device_id = @deviceId');
      params.deviceId = query.deviceId;
    }
    if (query.state !== undefined) {
      if (!(COMMAND_STATES as readonly unknown[]).includes(query.state)) throw new StoreError('invalid', `list commands: unknown state ${String(query.state)}`);
      where.push('state = @state');
      params.state = query.state;
    }
    if (query.dispatchId !== undefined) {
      if (typeof query.dispatchId !== 'string') throw new StoreError('invalid', 'list commands: dispatchId must be a string');
      where.push('dispatch_id = @dispatchId');
      params.dispatchId = query.dispatchId;
    }
    if (query.before !== undefined) {
      const cursor = decodeListCursor(query.before, 'list commands');
      where.push('(created_at_ms, id) < (@beforeMs, @beforeId)');
      params.beforeMs = cursor.createdAtMs;
      params.beforeId = cursor.id;
    }
    const sql = `SELECT ${COMMAND_COLUMNS} FROM commands ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at_ms DESC, id DESC LIMIT @limit`;
    return guard('list commands', () => {
      let statement = this.listStatements.get(sql);
      if (statement === undefined) {
        statement = this.db.prepare<Record<string, unknown>, CommandRow>(sql);
        this.listStatements.set(sql, statement);
      }
      const prepared = statement;
      const rows = this.readTx(() => this.withTransitionsOfMany(prepared.all(params)));
      if (rows.length <= limit) return { commands: rows, next: null };
      const page = rows.slice(0, limit);
      const last = page.at(-1)!;
      return { commands: page, next: encodeListCursor(last.createdAtMs, last.id) };
    });
  }

  /** See CommandStore.dueCommands: by next attempt, then id. 'invalid' for a nowMs or limit that is not a (non-negative) integer. */
  dueCommands(nowMs: number, limit: number): StoredCommand[] {
    checkTime('due commands', 'nowMs', nowMs);
    requireLimit(limit);
    if (limit === 0) return [];
    return guard('list due commands', () => this.readTx(() => this.withTransitionsOfMany(this.stmt.due.all(nowMs, nowMs, limit))));
  }

  /**
   * See CommandStore.markSent. The first publish moves pending → sent with
   * a transition `attempt 1`; each resend adds a `sent` transition
   * `attempt N`, until the command has MAX_TRANSITIONS_PER_COMMAND - 2
   * transitions; further resends rewrite the latest one into `attempts K to
   * N` at atMs, so the history stays bounded and still says how many
   * publishes there were. Returns the command as stored after the call;
   * undefined, writing nothing, for an unknown id or a command no longer
   * pending or sent. 'invalid' for times that are not integers.
   */
  markSent(id: string, input: { atMs: number; nextAttemptAtMs: number }): StoredCommand | undefined {
    checkTime('mark sent', 'atMs', input.atMs);
    checkTime('mark sent', 'nextAttemptAtMs', input.nextAttemptAtMs);
    if (typeof id !== 'string') return undefined;
    return guard('mark sent', () => this.markSentTx(id, input.atMs, input.nextAttemptAtMs));
  }

  /**
   * See CommandStore.applyAck. The ack must pass AckSchema, and its
   * `applied` be at most MAX_COMMAND_APPLIED_BYTES as JSON ('invalid'
   * otherwise, nothing written). The transition's detail is the ack's
   * reason (null without one). `reason` is set by rejected and completed;
   * `applied` is set by an accepted or completed ack that carries it and
   * otherwise kept, so a completion without `applied` keeps what the
   * acceptance said.
   */
  applyAck(deviceId: string, ack: Ack, atMs: number): StoredCommand | undefined {
    checkTime('apply ack', 'atMs', atMs);
    if (!AckCheck.Check(ack)) {
      const first = AckCheck.Errors(ack).First();
      throw new StoreError('invalid', `apply ack: not an ack${first === undefined ? '' : ` (${first.path || '/'}: ${first.message})`}`);
    }
    // AckSchema bounds the values and their number, not the length of the names.
    if (ack.applied !== undefined && Buffer.byteLength(JSON.stringify(ack.applied), 'utf8') > MAX_COMMAND_APPLIED_BYTES) {
      throw new StoreError('invalid', `apply ack: applied must be at most ${MAX_COMMAND_APPLIED_BYTES} bytes as JSON`);
    }
    if (typeof deviceId !== 'string') return undefined;
    return guard('apply ack', () => this.ackTx(deviceId, ack, atMs));
  }

  /**
   * See CommandStore.expireCommands, in one transaction: pending or sent
   * with expiresAtMs <= nowMs → expired, accepted with expiresAtMs +
   * completionGraceMs <= nowMs → completed, each with a transition at nowMs.
   * Returns the expired ones, then the completed ones, each by expiry.
   * 'invalid' for a nowMs or completionGraceMs that is not a (non-negative)
   * integer.
   */
  expireCommands(nowMs: number, completionGraceMs: number): StoredCommand[] {
    checkTime('expire commands', 'nowMs', nowMs);
    if (!Number.isSafeInteger(completionGraceMs) || completionGraceMs < 0 || !Number.isSafeInteger(nowMs - completionGraceMs)) {
      throw new StoreError('invalid', `expire commands: completionGraceMs must be a non-negative integer, got ${String(completionGraceMs)}`);
    }
    return guard('expire commands', () => this.expireTx(nowMs, nowMs - completionGraceMs));
  }

  /**
   * See CommandStore.failCommand. The reason (cut to
   * MAX_COMMAND_FAILURE_CHARS) is the failed transition's detail; the
   * command's `reason` stays the device's (null). 'invalid' for an atMs that
   * is not an integer.
   */
  failCommand(id: string, input: { atMs: number; reason: string }): StoredCommand | undefined {
    checkTime('fail command', 'atMs', input.atMs);
    const reason = cutText(typeof input.reason === 'string' ? input.reason : String(input.reason), MAX_COMMAND_FAILURE_CHARS);
    if (typeof id !== 'string') return undefined;
    return guard('fail command', () => this.failTx(id, input.atMs, reason));
  }

  /**
   * See CommandStore.latestCommandPerDevice: the newest by creation, then
   * id (the first that listCommands gives for the device). Reads
   * LATEST_PER_DEVICE_CHUNK devices per query, all in one read transaction.
   * 'invalid' for an id that is not a string.
   */
  latestCommandPerDevice(deviceIds: readonly string[]): Map<string, StoredCommand> {
    if (deviceIds.some((id) => typeof id !== 'string')) throw new StoreError('invalid', 'latest command per device: device ids must be strings');
    const latest = new Map<string, StoredCommand>();
    if (deviceIds.length === 0) return latest;
    return guard('latest command per device', () =>
      this.readTx(() => {
        for (let start = 0; start < deviceIds.length; start += LATEST_PER_DEVICE_CHUNK) {
          const chunk = JSON.stringify(deviceIds.slice(start, start + LATEST_PER_DEVICE_CHUNK));
          for (const command of this.withTransitionsOfMany(this.stmt.latestOfDevices.all(chunk))) latest.set(command.deviceId, command);
        }
        return latest;
      }),
    );
  }

  countCommands(): Record<CommandState, number> {
    const rows = guard('count commands', () => this.stmt.count.all());
    const counts = Object.fromEntries(COMMAND_STATES.map((state) => [state, 0])) as Record<CommandState, number>;
    for (const row of rows) counts[row.state] += row.count;
    return counts;
  }

  // ---- Bounds -------------------------------------------------------------------

  /**
   * Deletes final commands (rejected, completed, expired, failed) whose last
   * transition is before nowMs - retentionMs, with their transitions, and
   * returns how many. Works PRUNE_COMMANDS_PER_TRANSACTION commands per
   * transaction, so other writers wait at most a short while. retentionMs
   * Infinity keeps everything; a fraction of a millisecond is rounded.
   * Unfinished commands are never pruned. A pruned command's idempotency
   * key is free again, so keep the retention longer than a client may
   * retry a request.
   */
  pruneCommands(nowMs: number, retentionMs: number): number {
    return pruneByRetention('prune commands', nowMs, retentionMs, PRUNE_COMMANDS_PER_TRANSACTION, this.pruneTx);
  }

  // ---- Inside transactions ------------------------------------------------------

  /** The command with its transitions; call inside a transaction. */
  private read(id: string): StoredCommand | undefined {
    const row = this.stmt.byId.get(id);
    return row === undefined ? undefined : this.withTransitions(row);
  }

  private withTransitions(row: CommandRow): StoredCommand {
    return commandFromRow(row, this.stmt.transitionsOf.all(row.id).map(transitionFromRow));
  }

  /** The commands of these rows, in their order, with their transitions read in one query. */
  private withTransitionsOfMany(rows: readonly CommandRow[]): StoredCommand[] {
    if (rows.length === 0) return [];
    const byCommand = new Map<string, CommandTransition[]>();
    for (const t of this.stmt.transitionsOfMany.all(JSON.stringify(rows.map((r) => r.id)))) {
      let list = byCommand.get(t.command_id);
      if (list === undefined) byCommand.set(t.command_id, (list = []));
      list.push(transitionFromRow(t));
    }
    return rows.map((row) => commandFromRow(row, byCommand.get(row.id) ?? []));
  }
}
