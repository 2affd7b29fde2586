/**
 * DispatchStore over SQLite, on the connection the other ports share. The
 * control loop resumes from here after a restart: which dispatches are
 * running, what each battery was asked, when the loop last ran. Each change
 * reads the dispatch and writes it in one IMMEDIATE transaction, so a state
 * only moves forward whichever process (control cancelling, the dispatcher
 * running the loop) changes it.
 *
 * Lifecycle (protocol/commands.ts): scheduled → active → completed;
 * scheduled | active → cancelled | failed. The same state again changes
 * only the other fields.
 *
 * Bounds, so a caller in a loop cannot fill the disk: input is checked
 * before anything is written (checkNewDispatch, checkSetpoints); a dispatch
 * keeps at most `maxSamplesPerDispatch` samples, the oldest deleted first.
 */
import type Database from 'better-sqlite3';
import { DISPATCH_STATES, type DispatchState, type DispatchTarget } from '../protocol/index.ts';
import { cutText } from './alert-lifecycle.ts';
import {
  decodeListCursor,
  encodeListCursor,
  guard,
  immediateTransaction,
  isPlainObject,
  isStringOfLength,
  isUuid,
  requirePageLimit,
  requireSafeInteger,
  UUID_PROBLEM,
} from './sqlite-common.ts';
import { StoreError, type DispatchPlanRecord, type DispatchSample, type DispatchStore, type NewDispatch, type StoredDispatch } from './types.ts';

/** Samples kept per dispatch: a week-long dispatch sampled every minute fits. */
export const MAX_DISPATCH_SAMPLES = 10_000;
/** Characters of a region or a site id in a target; longer (or empty) is refused. */
export const MAX_DISPATCH_TARGET_ID_CHARS = 64;
/** Sites one dispatch may target; more (or none) is refused. */
export const MAX_DISPATCH_SITES = 10_000;
/** The largest |powerW| of a dispatch, 1 GW: far beyond any fleet, so only a wrong figure meets it. */
export const MAX_DISPATCH_POWER_W = 1e9;
/** The shortest and the longest dispatch. */
export const MIN_DISPATCH_DURATION_MS = 1_000;
export const MAX_DISPATCH_DURATION_MS = 7 * 86_400_000;
/** Setpoints of one dispatch; more is refused. */
export const MAX_DISPATCH_SETPOINTS = 100_000;
/** Characters of a device id in the setpoints, as on the wire. */
export const MAX_SETPOINT_DEVICE_ID_CHARS = 64;
/** Characters of a plan's explanation; longer is refused. */
export const MAX_DISPATCH_EXPLANATION_CHARS = 2_000;
/** Characters of a reason that are kept (cut, not refused). */
export const MAX_DISPATCH_REASON_CHARS = 1_000;
/** The largest page listDispatches returns. */
export const MAX_DISPATCH_PAGE = 1_000;
/** The most samples listDispatchSamples returns at once. */
export const MAX_DISPATCH_SAMPLE_PAGE = 100_000;

/** Problems named per kind of bad setpoint, so a huge bad input gives a short message. */
const MAX_NAMED_PROBLEMS = 3;

/** The state changes updateDispatch makes; the same state again is always allowed. */
const NEXT_STATES: Readonly<Record<DispatchState, readonly DispatchState[]>> = {
  scheduled: ['active', 'cancelled', 'failed'],
  active: ['completed', 'cancelled', 'failed'],
  completed: [],
  cancelled: [],
  failed: [],
};

export interface SqliteDispatchesOptions {
  /** Samples kept per dispatch (MAX_DISPATCH_SAMPLES); a positive integer. */
  maxSamplesPerDispatch?: number;
}

interface DispatchRow {
  id: string;
  target: string;
  power_w: number;
  start_at_ms: number;
  duration_ms: number;
  state: DispatchState;
  allow_partial: number;
  created_at_ms: number;
  plan: string;
  setpoints: string;
  last_loop_at_ms: number | null;
  reason: string | null;
  updated_at_ms: number;
}

interface InsertParams {
  id: string;
  target: string;
  powerW: number;
  startAtMs: number;
  durationMs: number;
  allowPartial: number;
  createdAtMs: number;
  plan: string;
  setpoints: string;
}

interface UpdateParams {
  id: string;
  state: DispatchState;
  setpoints: string;
  lastLoopAtMs: number | null;
  reason: string | null;
  updatedAtMs: number;
}

interface SampleRow {
  at_ms: number;
  target_w: number;
  measured_w: number;
  confidence: number;
  devices_reporting: number;
}

interface SampleParams {
  dispatchId: string;
  atMs: number;
  targetW: number;
  measuredW: number;
  confidence: number;
  devicesReporting: number;
}

/** An updateDispatch change that passed checkChange; setpoints already as JSON. */
interface CheckedChange {
  state?: DispatchState;
  setpoints?: string;
  lastLoopAtMs?: number;
  reason?: string | null;
}

const DISPATCH_COLUMNS = `id, target, power_w, start_at_ms, duration_ms, state, allow_partial, created_at_ms, plan, setpoints,
  last_loop_at_ms, reason, updated_at_ms`;

function dispatchFromRow(row: DispatchRow): StoredDispatch {
  return {
    id: row.id,
    target: JSON.parse(row.target) as DispatchTarget,
    powerW: row.power_w,
    startAtMs: row.start_at_ms,
    durationMs: row.duration_ms,
    state: row.state,
    allowPartial: row.allow_partial === 1,
    createdAtMs: row.created_at_ms,
    plan: JSON.parse(row.plan) as DispatchPlanRecord,
    setpoints: JSON.parse(row.setpoints) as Record<string, number>,
    lastLoopAtMs: row.last_loop_at_ms,
    reason: row.reason,
    updatedAtMs: row.updated_at_ms,
  };
}

function sampleFromRow(row: SampleRow): DispatchSample {
  return {
    atMs: row.at_ms,
    targetW: row.target_w,
    measuredW: row.measured_w,
    confidence: row.confidence,
    devicesReporting: row.devices_reporting,
  };
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isState(value: unknown): value is DispatchState {
  return (DISPATCH_STATES as readonly unknown[]).includes(value);
}

/**
 * The target as JSON in its one canonical form, or undefined with the
 * problem pushed. Exactly one of fleet, region and siteIds, and nothing
 * else, so what is stored is what was meant.
 */
function checkTarget(target: unknown, problems: string[]): string | undefined {
  const form = 'target must be exactly one of {fleet: true}, {region}, {siteIds}';
  if (!isPlainObject(target)) {
    problems.push(form);
    return undefined;
  }
  const keys = Object.keys(target);
  if (keys.length !== 1) {
    problems.push(form);
    return undefined;
  }
  if ('fleet' in target) {
    if (target.fleet === true) return JSON.stringify({ fleet: true });
    problems.push('target.fleet must be true');
  } else if ('region' in target) {
    if (isStringOfLength(target.region, 1, MAX_DISPATCH_TARGET_ID_CHARS)) return JSON.stringify({ region: target.region });
    problems.push(`target.region must be a string of 1 to ${MAX_DISPATCH_TARGET_ID_CHARS} characters`);
  } else if ('siteIds' in target) {
    const siteIds = target.siteIds;
    if (!Array.isArray(siteIds) || siteIds.length < 1 || siteIds.length > MAX_DISPATCH_SITES) {
      problems.push(`target.siteIds must be a list of 1 to ${MAX_DISPATCH_SITES} site ids`);
    } else if (!siteIds.every((id) => isStringOfLength(id, 1, MAX_DISPATCH_TARGET_ID_CHARS))) {
      problems.push(`target.siteIds must hold strings of 1 to ${MAX_DISPATCH_TARGET_ID_CHARS} characters`);
    } else {
      return JSON.stringify({ siteIds });
    }
  } else {
    problems.push(form);
  }
  return undefined;
}

/** Setpoints as JSON, or undefined with what is wrong pushed (a few offending ids named, not thousands). */
function checkSetpoints(setpoints: unknown, problems: string[]): string | undefined {
  if (!isPlainObject(setpoints)) {
    problems.push('setpoints must be an object of device id → W');
    return undefined;
  }
  const entries = Object.entries(setpoints);
  if (entries.length > MAX_DISPATCH_SETPOINTS) {
    problems.push(`setpoints must have at most ${MAX_DISPATCH_SETPOINTS} entries, got ${entries.length}`);
    return undefined;
  }
  const badIds: string[] = [];
  const badValues: string[] = [];
  for (const [id, value] of entries) {
    if (id.length < 1 || id.length > MAX_SETPOINT_DEVICE_ID_CHARS) badIds.push(JSON.stringify(id.slice(0, MAX_SETPOINT_DEVICE_ID_CHARS)));
    else if (!isFiniteNumber(value)) badValues.push(id);
  }
  if (badIds.length > 0) {
    problems.push(`setpoints device ids must be 1 to ${MAX_SETPOINT_DEVICE_ID_CHARS} characters (${badIds.length} are not, e.g. ${badIds.slice(0, MAX_NAMED_PROBLEMS).join(', ')})`);
  }
  if (badValues.length > 0) {
    problems.push(`setpoints must be finite numbers of W (${badValues.length} are not, e.g. ${badValues.slice(0, MAX_NAMED_PROBLEMS).join(', ')})`);
  }
  return badIds.length > 0 || badValues.length > 0 ? undefined : JSON.stringify(setpoints);
}

/** The plan's documented fields as JSON (other fields are not kept), or undefined with the problems pushed. */
function checkPlan(plan: unknown, problems: string[]): string | undefined {
  if (!isPlainObject(plan)) {
    problems.push('plan must be an object');
    return undefined;
  }
  const before = problems.length;
  if (typeof plan.feasible !== 'boolean') problems.push('plan.feasible must be a boolean');
  for (const field of ['availableW', 'shortfallW', 'marginW', 'marginWh'] as const) {
    if (!isFiniteNumber(plan[field])) problems.push(`plan.${field} must be a finite number`);
  }
  if (!Number.isSafeInteger(plan.devicesUsed) || (plan.devicesUsed as number) < 0) problems.push('plan.devicesUsed must be a non-negative integer');
  if (!isStringOfLength(plan.explanation, 0, MAX_DISPATCH_EXPLANATION_CHARS)) {
    problems.push(`plan.explanation must be a string of at most ${MAX_DISPATCH_EXPLANATION_CHARS} characters`);
  }
  if (problems.length > before) return undefined;
  const record = plan as unknown as DispatchPlanRecord;
  const kept: DispatchPlanRecord = {
    feasible: record.feasible,
    availableW: record.availableW,
    shortfallW: record.shortfallW,
    marginW: record.marginW,
    marginWh: record.marginWh,
    devicesUsed: record.devicesUsed,
    explanation: record.explanation,
  };
  return JSON.stringify(kept);
}

/**
 * Checks everything a new dispatch carries and returns it ready to insert;
 * 'invalid' listing every problem found otherwise, before any write.
 */
function checkNewDispatch(dispatch: NewDispatch, nowMs: number): InsertParams {
  const problems: string[] = [];
  if (!isPlainObject(dispatch)) throw new StoreError('invalid', 'create dispatch: the dispatch must be an object');
  if (!isUuid(dispatch.id)) problems.push(UUID_PROBLEM);
  const target = checkTarget(dispatch.target, problems);
  if (!isFiniteNumber(dispatch.powerW) || Math.abs(dispatch.powerW) > MAX_DISPATCH_POWER_W) {
    problems.push(`powerW must be a finite number of W within ±${MAX_DISPATCH_POWER_W}, got ${String(dispatch.powerW)}`);
  }
  if (!Number.isSafeInteger(dispatch.startAtMs)) problems.push(`startAtMs must be an integer within ±(2^53 - 1), got ${String(dispatch.startAtMs)}`);
  if (!Number.isSafeInteger(dispatch.durationMs) || dispatch.durationMs < MIN_DISPATCH_DURATION_MS || dispatch.durationMs > MAX_DISPATCH_DURATION_MS) {
    problems.push(`durationMs must be an integer from ${MIN_DISPATCH_DURATION_MS} to ${MAX_DISPATCH_DURATION_MS} (7 days), got ${String(dispatch.durationMs)}`);
  } else if (Number.isSafeInteger(dispatch.startAtMs) && !Number.isSafeInteger(dispatch.startAtMs + dispatch.durationMs)) {
    problems.push('startAtMs + durationMs must be an integer within ±(2^53 - 1)');
  }
  if (typeof dispatch.allowPartial !== 'boolean') problems.push('allowPartial must be a boolean');
  const plan = checkPlan(dispatch.plan, problems);
  const setpoints = checkSetpoints(dispatch.setpoints, problems);
  if (!Number.isSafeInteger(nowMs)) problems.push(`nowMs must be an integer within ±(2^53 - 1), got ${String(nowMs)}`);
  if (problems.length > 0 || target === undefined || plan === undefined || setpoints === undefined) {
    throw new StoreError('invalid', `create dispatch: ${problems.join('; ')}`);
  }
  return {
    id: dispatch.id,
    target,
    powerW: dispatch.powerW,
    startAtMs: dispatch.startAtMs,
    durationMs: dispatch.durationMs,
    allowPartial: dispatch.allowPartial ? 1 : 0,
    createdAtMs: nowMs,
    plan,
    setpoints,
  };
}

/** Checks an updateDispatch change; 'invalid' listing every problem, before any write. */
function checkChange(change: Parameters<DispatchStore['updateDispatch']>[1], nowMs: number): CheckedChange {
  if (!isPlainObject(change)) throw new StoreError('invalid', 'update dispatch: the change must be an object');
  const problems: string[] = [];
  const checked: CheckedChange = {};
  if (change.state !== undefined) {
    if (isState(change.state)) checked.state = change.state;
    else problems.push(`state must be one of ${DISPATCH_STATES.join(', ')}, got ${String(change.state)}`);
  }
  if (change.setpoints !== undefined) {
    const setpoints = checkSetpoints(change.setpoints, problems);
    if (setpoints !== undefined) checked.setpoints = setpoints;
  }
  if (change.lastLoopAtMs !== undefined) {
    if (Number.isSafeInteger(change.lastLoopAtMs)) checked.lastLoopAtMs = change.lastLoopAtMs;
    else problems.push(`lastLoopAtMs must be an integer within ±(2^53 - 1), got ${String(change.lastLoopAtMs)}`);
  }
  if (change.reason !== undefined) {
    if (change.reason === null) checked.reason = null;
    else if (typeof change.reason === 'string') checked.reason = cutText(change.reason, MAX_DISPATCH_REASON_CHARS);
    else problems.push('reason must be a string or null');
  }
  if (!Number.isSafeInteger(nowMs)) problems.push(`nowMs must be an integer within ±(2^53 - 1), got ${String(nowMs)}`);
  if (problems.length > 0) throw new StoreError('invalid', `update dispatch: ${problems.join('; ')}`);
  return checked;
}

/** Checks a sample; 'invalid' listing every problem, before any write. */
function checkSample(sample: DispatchSample): void {
  if (!isPlainObject(sample)) throw new StoreError('invalid', 'add dispatch sample: the sample must be an object');
  const problems: string[] = [];
  if (!Number.isSafeInteger(sample.atMs)) problems.push(`atMs must be an integer within ±(2^53 - 1), got ${String(sample.atMs)}`);
  for (const field of ['targetW', 'measuredW', 'confidence'] as const) {
    if (!isFiniteNumber(sample[field])) problems.push(`${field} must be a finite number, got ${String(sample[field])}`);
  }
  if (!Number.isSafeInteger(sample.devicesReporting) || sample.devicesReporting < 0) {
    problems.push(`devicesReporting must be a non-negative integer, got ${String(sample.devicesReporting)}`);
  }
  if (problems.length > 0) throw new StoreError('invalid', `add dispatch sample: ${problems.join('; ')}`);
}

function prepareStatements(db: Database.Database) {
  return {
    byId: db.prepare<[string], DispatchRow>(`SELECT ${DISPATCH_COLUMNS} FROM dispatches WHERE id = ?`),
    exists: db.prepare<[string], number>('SELECT 1 FROM dispatches WHERE id = ?').pluck(),
    insert: db.prepare<InsertParams>(
      `INSERT INTO dispatches (id, target, power_w, start_at_ms, duration_ms, state, allow_partial, created_at_ms, plan, setpoints,
         last_loop_at_ms, reason, updated_at_ms)
       VALUES (@id, @target, @powerW, @startAtMs, @durationMs, 'scheduled', @allowPartial, @createdAtMs, @plan, @setpoints,
         NULL, NULL, @createdAtMs)`,
    ),
    update: db.prepare<UpdateParams>(
      `UPDATE dispatches SET state = @state, setpoints = @setpoints, last_loop_at_ms = @lastLoopAtMs, reason = @reason, updated_at_ms = @updatedAtMs
       WHERE id = @id`,
    ),
    // The IN term repeats the partial index's condition word for word, so SQLite may use that
    // index; INDEXED BY makes it, since without statistics it may take dispatches_state and sort.
    running: db.prepare<[number], DispatchRow>(
      `SELECT ${DISPATCH_COLUMNS} FROM dispatches INDEXED BY dispatches_running
       WHERE state IN ('scheduled', 'active') AND (state = 'active' OR start_at_ms <= ?)
       ORDER BY start_at_ms, id`,
    ),
    upsertSample: db.prepare<SampleParams>(
      `INSERT INTO dispatch_samples (dispatch_id, at_ms, target_w, measured_w, confidence, devices_reporting)
       VALUES (@dispatchId, @atMs, @targetW, @measuredW, @confidence, @devicesReporting)
       ON CONFLICT (dispatch_id, at_ms) DO UPDATE SET
         target_w = excluded.target_w, measured_w = excluded.measured_w,
         confidence = excluded.confidence, devices_reporting = excluded.devices_reporting`,
    ),
    // Keeps the newest `keep` samples: deletes those older than the keep-th newest (none while
    // there are fewer, as the subquery is then NULL). One range of the primary key.
    trimSamples: db.prepare<{ dispatchId: string; keep: number }>(
      `DELETE FROM dispatch_samples WHERE dispatch_id = @dispatchId AND at_ms < (
         SELECT at_ms FROM dispatch_samples WHERE dispatch_id = @dispatchId ORDER BY at_ms DESC LIMIT 1 OFFSET @keep - 1)`,
    ),
    samples: db.prepare<[string, number, number], SampleRow>(
      `SELECT at_ms, target_w, measured_w, confidence, devices_reporting FROM dispatch_samples
       WHERE dispatch_id = ? AND at_ms >= ? ORDER BY at_ms LIMIT ?`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteDispatches implements DispatchStore {
  /** Samples kept per dispatch. */
  readonly maxSamplesPerDispatch: number;
  private readonly db: Database.Database;
  private readonly stmt: Statements;
  /** listDispatches statements by the set of filters used. */
  private readonly listStatements = new Map<string, Database.Statement<Record<string, unknown>, DispatchRow>>();
  private readonly createTx: (dispatch: InsertParams) => StoredDispatch;
  private readonly updateTx: (id: string, change: CheckedChange, nowMs: number) => StoredDispatch;
  private readonly addSampleTx: (params: SampleParams) => void;

  constructor(db: Database.Database, options: SqliteDispatchesOptions = {}) {
    const maxSamples = options.maxSamplesPerDispatch ?? MAX_DISPATCH_SAMPLES;
    if (!Number.isSafeInteger(maxSamples) || maxSamples < 1) {
      throw new StoreError('invalid', `maxSamplesPerDispatch must be a positive integer, got ${String(maxSamples)}`);
    }
    this.maxSamplesPerDispatch = maxSamples;
    this.db = db;
    const stmt = prepareStatements(db);
    this.stmt = stmt;

    this.createTx = immediateTransaction(db, (dispatch: InsertParams) => {
      if (stmt.exists.get(dispatch.id) !== undefined) throw new StoreError('conflict', `dispatch ${dispatch.id} exists`);
      stmt.insert.run(dispatch);
      return dispatchFromRow(stmt.byId.get(dispatch.id)!);
    });

    this.updateTx = immediateTransaction(db, (id: string, change: CheckedChange, nowMs: number) => {
      const row = stmt.byId.get(id);
      if (row === undefined) throw new StoreError('not-found', `dispatch ${id} not found`);
      const state = change.state ?? row.state;
      const moves = state !== row.state;
      if (moves && !NEXT_STATES[row.state].includes(state)) {
        throw new StoreError('conflict', `dispatch ${id} cannot go from ${row.state} to ${state}`);
      }
      const changes = moves || change.setpoints !== undefined || change.lastLoopAtMs !== undefined || change.reason !== undefined;
      if (!changes) return dispatchFromRow(row);
      stmt.update.run({
        id,
        state,
        setpoints: change.setpoints ?? row.setpoints,
        lastLoopAtMs: change.lastLoopAtMs ?? row.last_loop_at_ms,
        reason: change.reason !== undefined ? change.reason : row.reason,
        updatedAtMs: moves ? nowMs : row.updated_at_ms,
      });
      return dispatchFromRow(stmt.byId.get(id)!);
    });

    this.addSampleTx = immediateTransaction(db, (params: SampleParams) => {
      if (stmt.exists.get(params.dispatchId) === undefined) throw new StoreError('not-found', `dispatch ${params.dispatchId} not found`);
      stmt.upsertSample.run(params);
      stmt.trimSamples.run({ dispatchId: params.dispatchId, keep: this.maxSamplesPerDispatch });
    });
  }

  /**
   * See DispatchStore.createDispatch. Checked first, nothing written on
   * 'invalid': id a lowercase UUID; target exactly one of `{fleet: true}`,
   * `{region}` (1 to 64 characters), `{siteIds}` (1 to MAX_DISPATCH_SITES
   * ids of 1 to 64 characters); powerW finite, |powerW| ≤
   * MAX_DISPATCH_POWER_W; startAtMs and nowMs safe integers; durationMs an
   * integer from 1 s to 7 days; allowPartial a boolean; the plan's fields
   * (only those of DispatchPlanRecord are kept) of their types, its
   * explanation at most MAX_DISPATCH_EXPLANATION_CHARS; setpoints an
   * object of at most MAX_DISPATCH_SETPOINTS device ids (1 to 64
   * characters) → finite W. Stored `scheduled`, updatedAtMs = nowMs.
   */
  createDispatch(dispatch: NewDispatch, nowMs: number): StoredDispatch {
    const checked = checkNewDispatch(dispatch, nowMs);
    return guard('create dispatch', () => this.createTx(checked));
  }

  getDispatch(id: string): StoredDispatch | undefined {
    if (typeof id !== 'string') return undefined;
    return guard('get dispatch', () => {
      const row = this.stmt.byId.get(id);
      return row === undefined ? undefined : dispatchFromRow(row);
    });
  }

  /**
   * See DispatchStore.listDispatches. Throws 'invalid' for a limit outside
   * 1 to MAX_DISPATCH_PAGE, an unknown state, or a `before` that is not a
   * cursor this store returned.
   */
  listDispatches(query: { state?: DispatchState; limit: number; before?: string }): { dispatches: StoredDispatch[]; next: string | null } {
    const { limit } = query;
    requirePageLimit('list dispatches', limit, MAX_DISPATCH_PAGE);
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: limit + 1 };
    if (query.state !== undefined) {
      if (!isState(query.state)) throw new StoreError('invalid', `list dispatches: unknown state ${String(query.state)}`);
      where.push('state = @state');
      params.state = query.state;
    }
    if (query.before !== undefined) {
      const cursor = decodeListCursor(query.before, 'list dispatches');
      where.push('(created_at_ms, id) < (@beforeMs, @beforeId)');
      params.beforeMs = cursor.createdAtMs;
      params.beforeId = cursor.id;
    }
    const sql = `SELECT ${DISPATCH_COLUMNS} FROM dispatches ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at_ms DESC, id DESC LIMIT @limit`;
    return guard('list dispatches', () => {
      let statement = this.listStatements.get(sql);
      if (statement === undefined) {
        statement = this.db.prepare<Record<string, unknown>, DispatchRow>(sql);
        this.listStatements.set(sql, statement);
      }
      const rows = statement.all(params).map(dispatchFromRow);
      if (rows.length <= limit) return { dispatches: rows, next: null };
      const page = rows.slice(0, limit);
      const last = page.at(-1)!;
      return { dispatches: page, next: encodeListCursor(last.createdAtMs, last.id) };
    });
  }

  /** See DispatchStore.runningDispatches: scheduled with startAtMs ≤ nowMs, or active; by start, then id. 'invalid' for a nowMs that is not an integer. */
  runningDispatches(nowMs: number): StoredDispatch[] {
    requireSafeInteger('running dispatches: nowMs', nowMs);
    return guard('running dispatches', () => this.stmt.running.all(nowMs).map(dispatchFromRow));
  }

  /**
   * See DispatchStore.updateDispatch. Checked first ('invalid', nothing
   * written): a known state, setpoints as for createDispatch, integer
   * lastLoopAtMs and nowMs, a string or null reason (cut to
   * MAX_DISPATCH_REASON_CHARS). Then, in one transaction: 'not-found' for an
   * unknown id; 'conflict' naming both states for a change that is not
   * forward (see NEXT_STATES); the same state again changes only the other
   * fields. A field left out is kept; updatedAtMs becomes nowMs only when
   * the state changes.
   */
  updateDispatch(
    id: string,
    change: { state?: DispatchState; setpoints?: Record<string, number>; lastLoopAtMs?: number; reason?: string | null },
    nowMs: number,
  ): StoredDispatch {
    const checked = checkChange(change, nowMs);
    if (typeof id !== 'string') throw new StoreError('not-found', 'update dispatch: the id must be a string');
    return guard('update dispatch', () => this.updateTx(id, checked, nowMs));
  }

  /**
   * See DispatchStore.addDispatchSample. A sample at a time the dispatch
   * already has replaces it. After the write, the samples beyond
   * maxSamplesPerDispatch are deleted, oldest first, in the same
   * transaction. 'invalid' for a time or count that is not an integer or a
   * figure that is not finite; 'not-found' for an unknown dispatch.
   */
  addDispatchSample(id: string, sample: DispatchSample): void {
    checkSample(sample);
    if (typeof id !== 'string') throw new StoreError('not-found', 'add dispatch sample: the id must be a string');
    const params: SampleParams = {
      dispatchId: id,
      atMs: sample.atMs,
      targetW: sample.targetW,
      measuredW: sample.measuredW,
      confidence: sample.confidence,
      devicesReporting: sample.devicesReporting,
    };
    guard('add dispatch sample', () => this.addSampleTx(params));
  }

  /**
   * See DispatchStore.listDispatchSamples: by time, from fromMs inclusive.
   * An unknown dispatch has none. 'invalid' for a limit outside 1 to
   * MAX_DISPATCH_SAMPLE_PAGE or a fromMs that is not an integer.
   */
  listDispatchSamples(id: string, query: { fromMs?: number; limit: number }): DispatchSample[] {
    const { limit } = query;
    requirePageLimit('list dispatch samples', limit, MAX_DISPATCH_SAMPLE_PAGE);
    const fromMs = query.fromMs ?? Number.MIN_SAFE_INTEGER;
    requireSafeInteger('list dispatch samples: fromMs', fromMs);
    if (typeof id !== 'string') return [];
    return guard('list dispatch samples', () => this.stmt.samples.all(id, fromMs, limit).map(sampleFromRow));
  }
}
