/**
 * Schema of the embedded SQLite store, versioned with `PRAGMA user_version`.
 *
 * MIGRATIONS[i] takes a database from version i to version i + 1. To change
 * the schema, append a migration; never edit one that has shipped, because
 * files in the field have already run it. Each migration runs in its own
 * IMMEDIATE transaction together with the version bump, so a crash leaves
 * the file at a whole version, and several processes opening the same file
 * at once migrate it exactly once.
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { StoreError } from './types.ts';

export type Migration = (db: Database.Database) => void;

export const MIGRATIONS: readonly Migration[] = [
  // 0 → 1: registry, telemetry, rollups, twins, dead letters.
  (db) => {
    db.exec(`
      CREATE TABLE sites (
        id TEXT PRIMARY KEY,
        region TEXT NOT NULL,
        name TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX sites_region ON sites (region);

      CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        site_id TEXT NOT NULL REFERENCES sites (id),
        secret_hash TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX devices_site ON devices (site_id);

      -- Raw samples live in two tables; a sample is in exactly one of them.
      -- telemetry is clustered by device then time, so a device's history is
      -- one range scan. New samples first go to telemetry_recent, clustered by
      -- time: a batch from thousands of devices then lands on a few pages at
      -- the end of the tree, where writing it straight into telemetry would
      -- dirty one page per device per batch. Compaction moves telemetry_recent
      -- into telemetry now and then, touching each device's pages once for
      -- many samples. metrics is a JSON object.
      CREATE TABLE telemetry (
        device_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        PRIMARY KEY (device_id, ts)
      ) WITHOUT ROWID;
      CREATE TABLE telemetry_recent (
        ts INTEGER NOT NULL,
        device_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        PRIMARY KEY (ts, device_id)
      ) WITHOUT ROWID;

      CREATE TABLE rollups (
        kind TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        bucket_start_ms INTEGER NOT NULL,
        min REAL NOT NULL,
        max REAL NOT NULL,
        mean REAL NOT NULL,
        last REAL NOT NULL,
        count INTEGER NOT NULL,
        devices_reporting INTEGER NOT NULL,
        devices_total INTEGER NOT NULL,
        PRIMARY KEY (kind, entity_id, metric, bucket_start_ms)
      ) WITHOUT ROWID;

      CREATE TABLE device_state (
        device_id TEXT PRIMARY KEY,
        last_ts INTEGER,
        last_seen_ms INTEGER,
        last_seq INTEGER,
        metrics TEXT NOT NULL,
        online INTEGER NOT NULL,
        status TEXT
      ) WITHOUT ROWID;

      CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at_ms INTEGER NOT NULL,
        topic TEXT NOT NULL,
        client_id TEXT,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        payload BLOB NOT NULL
      );
      -- (reason, id) serves both the per-reason listing, newest first, and
      -- the count by reason.
      CREATE INDEX dead_letters_reason ON dead_letters (reason, id);
    `);
  },
  // 1 → 2: coarse rollup tiers (15 minutes and 1 hour), kept longer than the
  // 1-minute rows, and how far each tier has been pruned. Existing 1-minute
  // rows are merged into the new tiers.
  (db) => {
    db.exec(`
      ${coarseRollupTable('rollups_15m')}
      ${coarseRollupTable('rollups_1h')}
      -- Times before before_ms have been pruned from the tier, so a coarser
      -- bucket older than that cannot be recomputed from this tier's rows.
      CREATE TABLE rollup_horizons (
        tier TEXT PRIMARY KEY,
        before_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
      ${backfillCoarseTier('rollups_15m', 'rollups', 15 * 60_000, '1', 'bucket_start_ms')}
      ${backfillCoarseTier('rollups_1h', 'rollups_15m', 60 * 60_000, 'minutes', 'last_minute_ms')}
    `);
  },
  // 2 → 3: secret rotation, twin presence, bounded dead letters.
  (db) => {
    // Hashes the payloads already stored, once; the function lives only on this connection.
    db.function('vpp_sha256_hex', { deterministic: true }, (payload: unknown) =>
      createHash('sha256')
        .update(Buffer.isBuffer(payload) ? payload : Buffer.from(String(payload ?? '')))
        .digest('hex'),
    );
    db.exec(`
      -- The secret a device had before its latest rotation, accepted until
      -- previous_secret_valid_until_ms (exclusive); both NULL when none.
      ALTER TABLE devices ADD COLUMN previous_secret_hash TEXT;
      ALTER TABLE devices ADD COLUMN previous_secret_valid_until_ms INTEGER;

      -- Presence from the broker's connection events. Nothing is known of
      -- existing rows' connections any more, so they start offline.
      ALTER TABLE device_state ADD COLUMN presence TEXT NOT NULL DEFAULT 'offline';
      ALTER TABLE device_state ADD COLUMN presence_since_ms INTEGER;
      UPDATE device_state SET online = 0;

      -- payload holds at most the first bytes of what was received;
      -- payload_bytes and payload_sha256 describe the whole of it.
      ALTER TABLE dead_letters ADD COLUMN payload_bytes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE dead_letters ADD COLUMN payload_sha256 TEXT NOT NULL DEFAULT '';
      ALTER TABLE dead_letters ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
      -- What the letter counts against the size cap (storedDeadLetterBytes in types.ts).
      ALTER TABLE dead_letters ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
      UPDATE dead_letters SET
        payload_bytes = length(payload),
        payload_sha256 = vpp_sha256_hex(payload),
        stored_bytes = length(payload) + length(CAST(topic AS BLOB)) + length(CAST(COALESCE(client_id, '') AS BLOB))
          + length(CAST(reason AS BLOB)) + length(CAST(detail AS BLOB));
      -- Retention deletes by age.
      CREATE INDEX dead_letters_received ON dead_letters (received_at_ms);

      -- Total stored_bytes of all letters, kept by triggers in the
      -- transaction that adds or deletes letters, so the size cap is checked
      -- without a scan and holds whichever process writes.
      CREATE TABLE dead_letter_totals (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        stored_bytes INTEGER NOT NULL
      );
      INSERT INTO dead_letter_totals (id, stored_bytes) SELECT 0, COALESCE(SUM(stored_bytes), 0) FROM dead_letters;
      CREATE TRIGGER dead_letters_added AFTER INSERT ON dead_letters BEGIN
        UPDATE dead_letter_totals SET stored_bytes = stored_bytes + NEW.stored_bytes WHERE id = 0;
      END;
      CREATE TRIGGER dead_letters_deleted AFTER DELETE ON dead_letters BEGIN
        UPDATE dead_letter_totals SET stored_bytes = stored_bytes - OLD.stored_bytes WHERE id = 0;
      END;
      CREATE TRIGGER dead_letters_size_changed AFTER UPDATE OF stored_bytes ON dead_letters BEGIN
        UPDATE dead_letter_totals SET stored_bytes = stored_bytes - OLD.stored_bytes + NEW.stored_bytes WHERE id = 0;
      END;
    `);
  },
  // 3 → 4: alerts, their transitions, rule subject states and the
  // notification outbox (sqlite-alerts.ts).
  (db) => {
    db.exec(`
      -- AUTOINCREMENT: an alert id is never reused, even after pruning, since
      -- integrations and operators refer to alerts by id.
      CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rule_id TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
        subject_kind TEXT NOT NULL CHECK (subject_kind IN ('device', 'site', 'region', 'fleet')),
        subject_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
        summary TEXT NOT NULL,
        value REAL,
        -- JSON object of string values.
        labels TEXT NOT NULL,
        opened_at_ms INTEGER NOT NULL,
        fired_at_ms INTEGER NOT NULL,
        acknowledged_at_ms INTEGER,
        acknowledged_by TEXT,
        acknowledge_note TEXT,
        resolved_at_ms INTEGER,
        resolved_by TEXT,
        resolve_reason TEXT,
        reopen_count INTEGER NOT NULL DEFAULT 0
      );
      -- At most one open alert per (rule, subject), whichever process writes.
      CREATE UNIQUE INDEX alerts_one_open ON alerts (rule_id, subject_id) WHERE state != 'resolved';
      -- The latest alert of (rule, subject), which a fire may reopen.
      CREATE INDEX alerts_rule_subject ON alerts (rule_id, subject_id, id);
      -- Listing newest first, filtered by each of these.
      CREATE INDEX alerts_rule ON alerts (rule_id, id);
      CREATE INDEX alerts_subject ON alerts (subject_id, id);
      CREATE INDEX alerts_state ON alerts (state, id);
      CREATE INDEX alerts_severity ON alerts (severity, id);
      -- Retention deletes resolved alerts by age.
      CREATE INDEX alerts_resolved_at ON alerts (resolved_at_ms) WHERE state = 'resolved';

      -- Each transition with the alert as it was right after it (JSON), so
      -- an event told late says what was true then. notify_state:
      --   queued    to be told at once;
      --   held      a rule's resolution, told from not_before_ms on unless a
      --             reopening cancels it first;
      --   cancelled a held resolution that a reopening cancelled (never told);
      --   routed    its deliveries exist (none when no integration matched);
      --   silent    never told (a reopening of a resolution nobody heard of).
      CREATE TABLE alert_transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id INTEGER NOT NULL REFERENCES alerts (id),
        kind TEXT NOT NULL CHECK (kind IN ('fired', 'acknowledged', 'resolved', 'reopened')),
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        note TEXT,
        notify_state TEXT NOT NULL CHECK (notify_state IN ('queued', 'held', 'cancelled', 'routed', 'silent')),
        not_before_ms INTEGER,
        alert TEXT NOT NULL,
        CHECK (notify_state != 'held' OR not_before_ms IS NOT NULL)
      );
      -- An alert's history, oldest first; its latest transition; the per-alert bound.
      CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, seq);
      -- Transitions still to be told, oldest first.
      CREATE INDEX alert_transitions_to_route ON alert_transitions (seq) WHERE notify_state IN ('queued', 'held');
      -- The earliest held resolution.
      CREATE INDEX alert_transitions_held ON alert_transitions (not_before_ms) WHERE notify_state = 'held';

      CREATE TABLE rule_subject_states (
        rule_id TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'active')),
        since_ms INTEGER NOT NULL,
        -- JSON object of scalars, at most 1 KiB.
        data TEXT NOT NULL,
        PRIMARY KEY (rule_id, subject_id)
      ) WITHOUT ROWID;

      -- One notification of one transition to one integration. alert_id
      -- repeats the transition's, so deliveries are ordered per (alert,
      -- integration) without a join.
      CREATE TABLE alert_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        transition_seq INTEGER NOT NULL REFERENCES alert_transitions (seq),
        alert_id INTEGER NOT NULL,
        integration TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at_ms INTEGER NOT NULL,
        last_attempt_at_ms INTEGER,
        last_error TEXT,
        delivered_at_ms INTEGER,
        -- Routing a transition twice creates nothing twice.
        UNIQUE (transition_seq, integration)
      );
      -- The first pending delivery of each (alert, integration), which alone may be handed out.
      CREATE INDEX alert_deliveries_pending ON alert_deliveries (alert_id, integration, transition_seq) WHERE state = 'pending';
      -- Pending deliveries by due time.
      CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at_ms) WHERE state = 'pending';
      CREATE INDEX alert_deliveries_integration ON alert_deliveries (integration, state);
    `);
  },
  // 4 → 5: the command queue and each command's transitions (sqlite-commands.ts).
  (db) => {
    db.exec(`
      -- One row per command. The type is checked by the store rather than
      -- by a CHECK, so a command type added to the protocol later needs no
      -- rebuild of the table. No foreign key to devices: the store keeps
      -- what it was asked to send, and devices are revoked, never deleted.
      -- params and applied are JSON objects; next_attempt_at_ms is NULL
      -- unless the command is pending or sent.
      CREATE TABLE commands (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        type TEXT NOT NULL,
        params TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'accepted', 'rejected', 'completed', 'expired', 'failed')),
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at_ms INTEGER,
        reason TEXT,
        applied TEXT,
        dispatch_id TEXT,
        idempotency_key TEXT,
        request_hash TEXT
      );
      -- A repeated request with the same key for the same device finds the
      -- first command, whichever process stores it.
      CREATE UNIQUE INDEX commands_idempotency ON commands (device_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
      -- Commands to (re)send, by when they are due.
      CREATE INDEX commands_due ON commands (next_attempt_at_ms, id) WHERE state IN ('pending', 'sent');
      -- Commands that expiry may end, by expiry.
      CREATE INDEX commands_expiry ON commands (expires_at_ms, id) WHERE state IN ('pending', 'sent', 'accepted');
      -- Listing newest first, unfiltered or by each filter; commands_device
      -- also serves the latest command of each device.
      CREATE INDEX commands_created ON commands (created_at_ms, id);
      CREATE INDEX commands_device ON commands (device_id, created_at_ms, id);
      CREATE INDEX commands_state ON commands (state, created_at_ms, id);
      CREATE INDEX commands_dispatch ON commands (dispatch_id, created_at_ms, id) WHERE dispatch_id IS NOT NULL;

      -- A command's transitions, seq counting from 1 per command. Once a
      -- command is final nothing is added to it, so its final transition is
      -- its last, and retention finds old final commands by that
      -- transition's time (command_transitions_final).
      CREATE TABLE command_transitions (
        command_id TEXT NOT NULL REFERENCES commands (id),
        seq INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'accepted', 'rejected', 'completed', 'expired', 'failed')),
        at_ms INTEGER NOT NULL,
        detail TEXT,
        PRIMARY KEY (command_id, seq)
      ) WITHOUT ROWID;
      CREATE INDEX command_transitions_final ON command_transitions (at_ms) WHERE state IN ('rejected', 'completed', 'expired', 'failed');
    `);
  },
  // 5 → 6: dispatches and their tracking samples (sqlite-dispatches.ts).
  (db) => {
    db.exec(`
      -- One row per dispatch. target, plan and setpoints are JSON (target
      -- one of {"fleet":true}, {"region":…}, {"siteIds":[…]}; setpoints an
      -- object of device id → W that the control loop rewrites). The loop
      -- resumes from these rows after a restart. A rowid table, not WITHOUT
      -- ROWID: a fleet's setpoints make rows far larger than a page.
      CREATE TABLE dispatches (
        id TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        power_w REAL NOT NULL,
        start_at_ms INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('scheduled', 'active', 'completed', 'cancelled', 'failed')),
        allow_partial INTEGER NOT NULL CHECK (allow_partial IN (0, 1)),
        created_at_ms INTEGER NOT NULL,
        plan TEXT NOT NULL,
        setpoints TEXT NOT NULL,
        last_loop_at_ms INTEGER,
        reason TEXT,
        updated_at_ms INTEGER NOT NULL
      );
      -- Listing newest first, all or by state.
      CREATE INDEX dispatches_created ON dispatches (created_at_ms, id);
      CREATE INDEX dispatches_state ON dispatches (state, created_at_ms, id);
      -- What the loop must run, by start: only unfinished dispatches are in it.
      CREATE INDEX dispatches_running ON dispatches (start_at_ms, id) WHERE state IN ('scheduled', 'active');

      -- The control loop's readings, one per (dispatch, time); a bounded
      -- number per dispatch, the oldest deleted first.
      CREATE TABLE dispatch_samples (
        dispatch_id TEXT NOT NULL REFERENCES dispatches (id),
        at_ms INTEGER NOT NULL,
        target_w REAL NOT NULL,
        measured_w REAL NOT NULL,
        confidence REAL NOT NULL,
        devices_reporting INTEGER NOT NULL,
        PRIMARY KEY (dispatch_id, at_ms)
      ) WITHOUT ROWID;
    `);
  },
  // 6 → 7: API tokens of operators, and the audit log.
  (db) => {
    db.exec(`
      -- One row per API token, by the SHA-256 (hex) of its secret, never the
      -- secret. Every request looks its token up by that hash (unique). A name
      -- is unique among tokens not revoked; a revoked one frees its name. No
      -- CHECK on role: the store checks it, so a new role needs no rebuild.
      CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        last_used_at_ms INTEGER,
        expires_at_ms INTEGER,
        revoked_at_ms INTEGER
      ) WITHOUT ROWID;
      CREATE UNIQUE INDEX api_tokens_secret_hash ON api_tokens (secret_hash);
      CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at_ms IS NULL;

      -- Append-only: AUTOINCREMENT, so an id is never reused, even after
      -- retention deleted every row, and paging by id stays stable; a trigger
      -- refuses every UPDATE. summary is a JSON object or NULL. Each index
      -- ends with the rowid, so a listing by actor, action or target walks it
      -- newest first without sorting; time serves ranges and retention.
      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        actor TEXT,
        role TEXT,
        address TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        summary TEXT,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL
      );
      CREATE INDEX audit_log_actor ON audit_log (actor) WHERE actor IS NOT NULL;
      CREATE INDEX audit_log_action ON audit_log (action);
      CREATE INDEX audit_log_target ON audit_log (target) WHERE target IS NOT NULL;
      CREATE INDEX audit_log_time ON audit_log (at_ms);
      CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
      BEGIN
        SELECT RAISE(ABORT, 'audit records are append-only');
      END;
    `);
  },
];

/**
 * A coarse tier has the columns of the 1-minute rollups plus what merging
 * its buckets again needs: how many 1-minute rows went into a bucket
 * (weights of the plain mean when no samples were counted) and the start of
 * its latest minute (whose `last` is the bucket's `last`).
 */
function coarseRollupTable(table: string): string {
  return `CREATE TABLE ${table} (
        kind TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        bucket_start_ms INTEGER NOT NULL,
        min REAL NOT NULL,
        max REAL NOT NULL,
        mean REAL NOT NULL,
        last REAL NOT NULL,
        count INTEGER NOT NULL,
        devices_reporting INTEGER NOT NULL,
        devices_total INTEGER NOT NULL,
        minutes INTEGER NOT NULL,
        last_minute_ms INTEGER NOT NULL,
        PRIMARY KEY (kind, entity_id, metric, bucket_start_ms)
      ) WITHOUT ROWID;`;
}

/** Merges every row of a finer tier into the buckets of a coarser one (a one-off, whole-table pass). */
function backfillCoarseTier(target: string, source: string, widthMs: number, minutes: string, lastMinute: string): string {
  return `INSERT INTO ${target} (kind, entity_id, metric, bucket_start_ms, min, max, mean, last, count, devices_reporting, devices_total, minutes, last_minute_ms)
      SELECT g.kind, g.entity_id, g.metric, g.bucket, g.min, g.max, g.mean, s.last, g.count, g.devices_reporting, g.devices_total, g.minutes, g.last_minute_ms
      FROM (
        SELECT kind, entity_id, metric,
          bucket_start_ms - (((bucket_start_ms % ${widthMs}) + ${widthMs}) % ${widthMs}) AS bucket,
          MIN(min) AS min, MAX(max) AS max,
          CASE WHEN SUM(count) > 0 THEN SUM(mean * count) / SUM(count) ELSE SUM(mean * ${minutes}) / SUM(${minutes}) END AS mean,
          SUM(count) AS count, MAX(devices_reporting) AS devices_reporting, MAX(devices_total) AS devices_total,
          SUM(${minutes}) AS minutes, MAX(${lastMinute}) AS last_minute_ms, MAX(bucket_start_ms) AS latest
        FROM ${source} GROUP BY kind, entity_id, metric, bucket
      ) g
      JOIN ${source} s ON s.kind = g.kind AND s.entity_id = g.entity_id AND s.metric = g.metric AND s.bucket_start_ms = g.latest;`;
}

/** The version this code writes and expects. */
export const SCHEMA_VERSION = MIGRATIONS.length;

function readUserVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the file to SCHEMA_VERSION. Returns the version found before.
 * Throws StoreError 'invalid' for a file written by a newer version, which
 * this code must not touch.
 */
export function migrateSchema(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  const found = readUserVersion(db);
  if (found > migrations.length) {
    throw new StoreError('invalid', `database schema version ${found} is newer than this code's ${migrations.length}`);
  }
  for (let version = found; version < migrations.length; version++) {
    db.transaction(() => {
      // Another process may have migrated while this one waited for the lock.
      if (readUserVersion(db) !== version) return;
      migrations[version]!(db);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
  return found;
}
