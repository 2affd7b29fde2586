/**
 * TwinStore over SQLite: one row per device with its latest state. Metrics
 * and status are stored as JSON text; presence and the times as columns.
 */
import type Database from 'better-sqlite3';
import { guard, immediateTransaction, requireSafeIntegerOrNull, serializeJson } from './sqlite-common.ts';
import { PRESENCES, StoreError, isConnected, type DeviceState, type Presence, type TwinStore } from './types.ts';

interface DeviceStateRow {
  device_id: string;
  last_ts: number | null;
  last_seen_ms: number | null;
  last_seq: number | null;
  metrics: string;
  online: number;
  presence: string;
  presence_since_ms: number | null;
  status: string | null;
}

type StateParams = [
  deviceId: string,
  lastTs: number | null,
  lastSeenMs: number | null,
  lastSeq: number | null,
  metrics: string,
  online: number,
  presence: Presence,
  presenceSinceMs: number | null,
  status: string | null,
];

const STATE_COLUMNS = 'device_id, last_ts, last_seen_ms, last_seq, metrics, online, presence, presence_since_ms, status';

function isPresence(value: unknown): value is Presence {
  return (PRESENCES as readonly unknown[]).includes(value);
}

function stateFromRow(row: DeviceStateRow): DeviceState {
  if (!isPresence(row.presence)) throw new StoreError('invalid', `device state of ${row.device_id} has unknown presence ${row.presence}`);
  return {
    deviceId: row.device_id,
    lastTs: row.last_ts,
    lastSeenMs: row.last_seen_ms,
    lastSeq: row.last_seq,
    metrics: JSON.parse(row.metrics) as Record<string, number>,
    presence: row.presence,
    presenceSinceMs: row.presence_since_ms,
    status: row.status === null ? null : (JSON.parse(row.status) as Record<string, unknown>),
  };
}

/**
 * The row of a state, or 'invalid' (before anything is written) when a time
 * or seq is not a safe integer, the presence is unknown, or metrics or
 * status cannot be serialised.
 */
function encodeState(s: DeviceState): StateParams {
  const what = `device state of ${s.deviceId}`;
  requireSafeIntegerOrNull(`${what}: lastTs`, s.lastTs);
  requireSafeIntegerOrNull(`${what}: lastSeenMs`, s.lastSeenMs);
  requireSafeIntegerOrNull(`${what}: lastSeq`, s.lastSeq);
  requireSafeIntegerOrNull(`${what}: presenceSinceMs`, s.presenceSinceMs);
  if (!isPresence(s.presence)) throw new StoreError('invalid', `${what}: unknown presence ${String(s.presence)}`);
  return [
    s.deviceId,
    s.lastTs,
    s.lastSeenMs,
    s.lastSeq,
    serializeJson(`${what}: metrics`, s.metrics),
    // The column predates presence; kept consistent with it for readers of the file.
    isConnected(s) ? 1 : 0,
    s.presence,
    s.presenceSinceMs,
    s.status === null ? null : serializeJson(`${what}: status`, s.status),
  ];
}

function prepareStatements(db: Database.Database) {
  return {
    upsertState: db.prepare<StateParams>(
      `INSERT INTO device_state (${STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET
         last_ts = excluded.last_ts, last_seen_ms = excluded.last_seen_ms, last_seq = excluded.last_seq,
         metrics = excluded.metrics, online = excluded.online, presence = excluded.presence,
         presence_since_ms = excluded.presence_since_ms, status = excluded.status`,
    ),
    getState: db.prepare<[string], DeviceStateRow>(`SELECT ${STATE_COLUMNS} FROM device_state WHERE device_id = ?`),
    listStates: db.prepare<[], DeviceStateRow>(`SELECT ${STATE_COLUMNS} FROM device_state ORDER BY device_id`),
    listStatesOf: db.prepare<[string], DeviceStateRow>(
      `SELECT ${STATE_COLUMNS} FROM device_state WHERE device_id IN (SELECT value FROM json_each(?)) ORDER BY device_id`,
    ),
  };
}

export class SqliteTwins implements TwinStore {
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly upsertBatch: (rows: readonly StateParams[]) => void;

  constructor(db: Database.Database) {
    const stmt = prepareStatements(db);
    this.stmt = stmt;
    this.upsertBatch = immediateTransaction(db, (rows: readonly StateParams[]) => {
      for (const row of rows) stmt.upsertState.run(...row);
    });
  }

  /** All or nothing: one state that cannot be stored (see encodeState) fails the call with 'invalid' and saves none. */
  saveDeviceStates(states: readonly DeviceState[]): void {
    if (states.length === 0) return;
    const rows = states.map(encodeState);
    guard('save device states', () => this.upsertBatch(rows));
  }

  getDeviceState(deviceId: string): DeviceState | undefined {
    const row = guard('get device state', () => this.stmt.getState.get(deviceId));
    return row === undefined ? undefined : stateFromRow(row);
  }

  /** All states, or those of the given devices (unknown ids are skipped); ordered by device id. */
  listDeviceStates(deviceIds?: readonly string[]): DeviceState[] {
    if (deviceIds !== undefined && deviceIds.length === 0) return [];
    const ids = deviceIds === undefined ? undefined : serializeJson('device ids', deviceIds);
    const rows = guard('list device states', () => (ids === undefined ? this.stmt.listStates.all() : this.stmt.listStatesOf.all(ids)));
    return rows.map(stateFromRow);
  }
}
