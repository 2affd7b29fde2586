/**
 * AlertStore and AlertOutbox over SQLite, on the connection the other ports
 * share. What a signal or an operator does to an alert is decided by
 * alert-lifecycle.ts; this file reads the latest alert, stores the decision
 * (the alert row, the transition with the alert's snapshot right after it,
 * and, in the outbox, how and when integrations are told) in one IMMEDIATE
 * transaction, so several processes (ingest's rules, control's operators)
 * can act on the same file and a crash keeps all or none of a decision.
 *
 * A transition's notify_state drives the outbox: `queued` is told at once,
 * `held` (a rule's resolution) once its flapping window has passed,
 * `cancelled` never (a reopening came first), `silent` never (a reopening
 * of a resolution nobody heard of), `routed` once its deliveries exist.
 * A transition's `notify` reads true for queued, held and routed ones.
 *
 * Bounds, so a flapping sensor or an attacker cannot fill the disk: strings
 * are cut or refused by alert-lifecycle.ts; each alert keeps at most
 * MAX_TRANSITIONS_PER_ALERT transitions, the oldest settled ones going
 * first; pruneAlerts deletes alerts resolved longer ago than a retention.
 */
import type Database from 'better-sqlite3';
import {
  alertEventId,
  ALERT_SEVERITIES,
  ALERT_STATES,
  type Alert,
  type AlertEvent,
  type AlertSeverity,
  type AlertSubjectKind,
  type AlertState,
  type AlertTransition,
  type AlertTransitionKind,
} from '../protocol/index.ts';
import {
  checkAcknowledgeInput,
  checkResolveInput,
  checkRuleSignal,
  checkRuleSubjectKey,
  checkRuleSubjectState,
  checkSeverity,
  cutText,
  decideAcknowledge,
  decideResolve,
  decideSignal,
  MAX_ALERT_ID_CHARS,
  type LatestAlert,
  type OperatorDecision,
  type TransitionDraft,
} from './alert-lifecycle.ts';
import { guard, immediateTransaction, pruneByRetention, requireLimit, requirePageLimit, requireSafeInteger, serializeJson } from './sqlite-common.ts';
import {
  StoreError,
  type AlertOutbox,
  type AlertQuery,
  type AlertStore,
  type AlertWithTransitions,
  type Delivery,
  type DeliveryState,
  type RuleSignal,
  type RuleSubjectKey,
  type RuleSubjectState,
} from './types.ts';

/**
 * Transitions kept per alert. Past it, storing a transition deletes the
 * alert's oldest transitions whose notification is settled (routed with
 * every delivery delivered or dead, cancelled, or silent). Transitions still
 * to be told are never deleted, so an alert exceeds the bound only while
 * integrations lag behind.
 */
export const MAX_TRANSITIONS_PER_ALERT = 500;
/** Characters of a delivery's last error that are kept. */
export const MAX_DELIVERY_ERROR_CHARS = 1_000;
/** Alerts deleted per transaction by pruneAlerts; bounds how long it holds the write lock. */
const PRUNE_ALERTS_PER_TRANSACTION = 200;

type NotifyState = 'queued' | 'held' | 'cancelled' | 'routed' | 'silent';

interface AlertRow {
  id: number;
  rule_id: string;
  severity: AlertSeverity;
  subject_kind: AlertSubjectKind;
  subject_id: string;
  state: AlertState;
  summary: string;
  value: number | null;
  labels: string;
  opened_at_ms: number;
  fired_at_ms: number;
  acknowledged_at_ms: number | null;
  acknowledged_by: string | null;
  acknowledge_note: string | null;
  resolved_at_ms: number | null;
  resolved_by: string | null;
  resolve_reason: string | null;
  reopen_count: number;
}

interface TransitionRow {
  seq: number;
  alert_id: number;
  kind: AlertTransitionKind;
  at_ms: number;
  actor: string;
  note: string | null;
  notify_state: NotifyState;
  not_before_ms: number | null;
  /** The alert right after the transition, JSON. */
  alert: string;
}

interface DeliveryRow extends TransitionRow {
  delivery_id: number;
  integration: string;
  attempts: number;
  next_attempt_at_ms: number;
  last_error: string | null;
}

interface RuleStateRow {
  rule_id: string;
  subject_id: string;
  status: 'pending' | 'active';
  since_ms: number;
  data: string;
}

/** The columns of an alert row that an update writes; the others never change. */
interface AlertParams {
  id: number;
  state: AlertState;
  summary: string;
  value: number | null;
  labels: string;
  firedAtMs: number;
  acknowledgedAtMs: number | null;
  acknowledgedBy: string | null;
  acknowledgeNote: string | null;
  resolvedAtMs: number | null;
  resolvedBy: string | null;
  resolveReason: string | null;
  reopenCount: number;
}

type NewAlertParams = Omit<AlertParams, 'id'> & {
  ruleId: string;
  severity: AlertSeverity;
  subjectKind: AlertSubjectKind;
  subjectId: string;
  openedAtMs: number;
};

interface TransitionParams {
  alertId: number;
  kind: AlertTransitionKind;
  atMs: number;
  actor: string;
  note: string | null;
  notifyState: NotifyState;
  notBeforeMs: number | null;
  alert: string;
}

const ALERT_COLUMNS = `id, rule_id, severity, subject_kind, subject_id, state, summary, value, labels, opened_at_ms, fired_at_ms,
  acknowledged_at_ms, acknowledged_by, acknowledge_note, resolved_at_ms, resolved_by, resolve_reason, reopen_count`;
/** Most transitions one transitionsAfter call returns. */
const MAX_TRANSITIONS_PAGE = 1_000;

const TRANSITION_COLUMNS = 'seq, alert_id, kind, at_ms, actor, note, notify_state, not_before_ms, alert';

/** Transitions whose notification is settled: never to be told, or told to every integration it was routed to. */
const SETTLED_TRANSITION = `(t.notify_state IN ('cancelled', 'silent')
  OR (t.notify_state = 'routed' AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.transition_seq = t.seq AND d.state = 'pending')))`;

/** A pending delivery that no earlier pending delivery of its (alert, integration) holds back. */
const FIRST_PENDING_OF_PAIR = `d.state = 'pending' AND NOT EXISTS (
  SELECT 1 FROM alert_deliveries e
  WHERE e.state = 'pending' AND e.alert_id = d.alert_id AND e.integration = d.integration AND e.transition_seq < d.transition_seq)`;

function alertFromRow(row: AlertRow): Alert {
  return {
    id: String(row.id),
    ruleId: row.rule_id,
    severity: row.severity,
    subjectKind: row.subject_kind,
    subjectId: row.subject_id,
    state: row.state,
    summary: row.summary,
    value: row.value,
    labels: JSON.parse(row.labels) as Record<string, string>,
    openedAtMs: row.opened_at_ms,
    firedAtMs: row.fired_at_ms,
    acknowledgedAtMs: row.acknowledged_at_ms,
    acknowledgedBy: row.acknowledged_by,
    acknowledgeNote: row.acknowledge_note,
    resolvedAtMs: row.resolved_at_ms,
    resolvedBy: row.resolved_by,
    resolveReason: row.resolve_reason,
    reopenCount: row.reopen_count,
  };
}

function isNotified(state: NotifyState): boolean {
  return state === 'queued' || state === 'held' || state === 'routed';
}

function transitionFromRow(row: TransitionRow): AlertTransition {
  return {
    seq: row.seq,
    alertId: String(row.alert_id),
    kind: row.kind,
    atMs: row.at_ms,
    actor: row.actor,
    note: row.note,
    notify: isNotified(row.notify_state),
  };
}

function eventFromRow(row: TransitionRow): AlertEvent {
  return { eventId: alertEventId(String(row.alert_id), row.seq), alert: JSON.parse(row.alert) as Alert, transition: transitionFromRow(row) };
}

function alertParams(alert: Alert): AlertParams {
  return {
    id: Number(alert.id),
    state: alert.state,
    summary: alert.summary,
    value: alert.value,
    labels: JSON.stringify(alert.labels),
    firedAtMs: alert.firedAtMs,
    acknowledgedAtMs: alert.acknowledgedAtMs,
    acknowledgedBy: alert.acknowledgedBy,
    acknowledgeNote: alert.acknowledgeNote,
    resolvedAtMs: alert.resolvedAtMs,
    resolvedBy: alert.resolvedBy,
    resolveReason: alert.resolveReason,
    reopenCount: alert.reopenCount,
  };
}

/** The row id of an alert id: a positive integer in decimal, no sign, no leading zero; undefined otherwise. */
function parseAlertId(id: unknown): number | undefined {
  if (typeof id !== 'string' || !/^[1-9][0-9]{0,15}$/.test(id)) return undefined;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : undefined;
}

function prepareStatements(db: Database.Database) {
  return {
    latestOf: db.prepare<[string, string], AlertRow>(`SELECT ${ALERT_COLUMNS} FROM alerts WHERE rule_id = ? AND subject_id = ? ORDER BY id DESC LIMIT 1`),
    alertById: db.prepare<[number], AlertRow>(`SELECT ${ALERT_COLUMNS} FROM alerts WHERE id = ?`),
    latestTransitionOf: db.prepare<[number], Pick<TransitionRow, 'seq' | 'kind' | 'notify_state'>>(
      'SELECT seq, kind, notify_state FROM alert_transitions WHERE alert_id = ? ORDER BY seq DESC LIMIT 1',
    ),
    insertAlert: db.prepare<NewAlertParams>(
      `INSERT INTO alerts (rule_id, severity, subject_kind, subject_id, state, summary, value, labels, opened_at_ms, fired_at_ms,
         acknowledged_at_ms, acknowledged_by, acknowledge_note, resolved_at_ms, resolved_by, resolve_reason, reopen_count)
       VALUES (@ruleId, @severity, @subjectKind, @subjectId, @state, @summary, @value, @labels, @openedAtMs, @firedAtMs,
         @acknowledgedAtMs, @acknowledgedBy, @acknowledgeNote, @resolvedAtMs, @resolvedBy, @resolveReason, @reopenCount)`,
    ),
    updateAlert: db.prepare<AlertParams>(
      `UPDATE alerts SET state = @state, summary = @summary, value = @value, labels = @labels, fired_at_ms = @firedAtMs,
         acknowledged_at_ms = @acknowledgedAtMs, acknowledged_by = @acknowledgedBy, acknowledge_note = @acknowledgeNote,
         resolved_at_ms = @resolvedAtMs, resolved_by = @resolvedBy, resolve_reason = @resolveReason, reopen_count = @reopenCount
       WHERE id = @id`,
    ),
    insertTransition: db.prepare<TransitionParams>(
      `INSERT INTO alert_transitions (alert_id, kind, at_ms, actor, note, notify_state, not_before_ms, alert)
       VALUES (@alertId, @kind, @atMs, @actor, @note, @notifyState, @notBeforeMs, @alert)`,
    ),
    // An alert has at most one held transition: its latest resolution.
    cancelHeldOf: db.prepare<[number]>("UPDATE alert_transitions SET notify_state = 'cancelled' WHERE alert_id = ? AND notify_state = 'held'"),
    countTransitionsOf: db.prepare<[number], number>('SELECT COUNT(*) FROM alert_transitions WHERE alert_id = ?').pluck(),
    oldestSettledOf: db.prepare<[number, number], number>(
      `SELECT t.seq FROM alert_transitions t WHERE t.alert_id = ? AND ${SETTLED_TRANSITION} ORDER BY t.seq LIMIT ?`,
    ).pluck(),
    deleteDeliveriesOfTransition: db.prepare<[number]>('DELETE FROM alert_deliveries WHERE transition_seq = ?'),
    deleteTransition: db.prepare<[number]>('DELETE FROM alert_transitions WHERE seq = ?'),
    transitionsOf: db.prepare<[number], TransitionRow>(`SELECT ${TRANSITION_COLUMNS} FROM alert_transitions WHERE alert_id = ? ORDER BY seq`),
    transitionsAfter: db.prepare<[number, number], TransitionRow>(`SELECT ${TRANSITION_COLUMNS} FROM alert_transitions WHERE seq > ? ORDER BY seq LIMIT ?`),
    latestTransitionSeq: db.prepare<[], number | null>('SELECT MAX(seq) FROM alert_transitions').pluck(),
    listOpen: db.prepare<[], AlertRow>(`SELECT ${ALERT_COLUMNS} FROM alerts WHERE state != 'resolved' ORDER BY id DESC`),
    countOpen: db.prepare<[], { severity: AlertSeverity; state: 'firing' | 'acknowledged'; count: number }>(
      "SELECT severity, state, COUNT(*) AS count FROM alerts WHERE state != 'resolved' GROUP BY severity, state",
    ),

    upsertRuleState: db.prepare<[string, string, string, number, string]>(
      `INSERT INTO rule_subject_states (rule_id, subject_id, status, since_ms, data) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (rule_id, subject_id) DO UPDATE SET status = excluded.status, since_ms = excluded.since_ms, data = excluded.data`,
    ),
    deleteRuleState: db.prepare<[string, string]>('DELETE FROM rule_subject_states WHERE rule_id = ? AND subject_id = ?'),
    loadRuleStates: db.prepare<[], RuleStateRow>('SELECT rule_id, subject_id, status, since_ms, data FROM rule_subject_states ORDER BY rule_id, subject_id'),

    // The IN term repeats the partial index's condition word for word, so SQLite uses that index.
    toRoute: db.prepare<[number, number], TransitionRow>(
      `SELECT ${TRANSITION_COLUMNS} FROM alert_transitions
       WHERE notify_state IN ('queued', 'held') AND (notify_state = 'queued' OR not_before_ms <= ?)
       ORDER BY seq LIMIT ?`,
    ),
    routingOf: db.prepare<[number], Pick<TransitionRow, 'alert_id' | 'notify_state' | 'not_before_ms'>>(
      'SELECT alert_id, notify_state, not_before_ms FROM alert_transitions WHERE seq = ?',
    ),
    insertDelivery: db.prepare<[number, number, string, number]>(
      `INSERT OR IGNORE INTO alert_deliveries (transition_seq, alert_id, integration, state, attempts, next_attempt_at_ms)
       VALUES (?, ?, ?, 'pending', 0, ?)`,
    ),
    markRouted: db.prepare<[number]>("UPDATE alert_transitions SET notify_state = 'routed' WHERE seq = ?"),
    due: db.prepare<[number, number], DeliveryRow>(
      `SELECT d.id AS delivery_id, d.integration, d.attempts, d.next_attempt_at_ms, d.last_error,
         t.seq, t.alert_id, t.kind, t.at_ms, t.actor, t.note, t.notify_state, t.not_before_ms, t.alert
       FROM alert_deliveries d JOIN alert_transitions t ON t.seq = d.transition_seq
       WHERE d.next_attempt_at_ms <= ? AND ${FIRST_PENDING_OF_PAIR}
       ORDER BY d.transition_seq, d.id LIMIT ?`,
    ),
    deliveryState: db.prepare<[number], DeliveryState>('SELECT state FROM alert_deliveries WHERE id = ?').pluck(),
    markDelivered: db.prepare<[number, number, number]>(
      `UPDATE alert_deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at_ms = ?, last_attempt_at_ms = ?
       WHERE id = ? AND state = 'pending'`,
    ),
    markFailed: db.prepare<{ id: number; atMs: number; error: string; nextAttemptAtMs: number | null }>(
      `UPDATE alert_deliveries SET
         state = CASE WHEN @nextAttemptAtMs IS NULL THEN 'dead' ELSE 'pending' END,
         attempts = attempts + 1,
         next_attempt_at_ms = COALESCE(@nextAttemptAtMs, next_attempt_at_ms),
         last_attempt_at_ms = @atMs,
         last_error = @error
       WHERE id = @id AND state = 'pending'`,
    ),
    countDeliveries: db.prepare<[], { integration: string; state: DeliveryState; count: number }>(
      'SELECT integration, state, COUNT(*) AS count FROM alert_deliveries GROUP BY integration, state',
    ),
    nextDue: db.prepare<[], number | null>(
      `SELECT MIN(at) FROM (
         SELECT MIN(d.next_attempt_at_ms) AS at FROM alert_deliveries d WHERE ${FIRST_PENDING_OF_PAIR}
         UNION ALL
         SELECT MIN(not_before_ms) AS at FROM alert_transitions WHERE notify_state = 'held')`,
    ).pluck(),

    // Resolved before the cutoff, and nothing of it still to be told.
    prunable: db.prepare<[number, number], number>(
      `SELECT a.id FROM alerts a
       WHERE a.state = 'resolved' AND a.resolved_at_ms < ?
         AND NOT EXISTS (SELECT 1 FROM alert_transitions t WHERE t.alert_id = a.id AND t.notify_state IN ('queued', 'held'))
         AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.state = 'pending')
       ORDER BY a.resolved_at_ms LIMIT ?`,
    ).pluck(),
    deleteDeliveriesOfAlert: db.prepare<[number]>('DELETE FROM alert_deliveries WHERE transition_seq IN (SELECT seq FROM alert_transitions WHERE alert_id = ?)'),
    deleteTransitionsOfAlert: db.prepare<[number]>('DELETE FROM alert_transitions WHERE alert_id = ?'),
    deleteAlert: db.prepare<[number]>('DELETE FROM alerts WHERE id = ?'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

interface CheckedRuleResults {
  signals: RuleSignal[];
  save: Array<{ state: RuleSubjectState; data: string }>;
  remove: RuleSubjectKey[];
}

export class SqliteAlerts implements AlertStore, AlertOutbox {
  private readonly db: Database.Database;
  private readonly stmt: Statements;
  /** listAlerts statements by the set of filters used. */
  private readonly listStatements = new Map<string, Database.Statement<Record<string, unknown>, AlertRow>>();
  private readonly applyTx: (input: CheckedRuleResults) => AlertEvent[];
  private readonly operatorTx: (alertId: number, decide: (alert: Alert) => OperatorDecision) => AlertEvent;
  private readonly routeTx: (routes: ReadonlyArray<{ seq: number; integrations: readonly string[] }>, nowMs: number) => void;
  private readonly pruneTx: (cutoffMs: number) => number;
  /** A read transaction (deferred), so an alert and its transitions are read from the same moment. */
  private readonly readAlertTx: (alertId: number) => AlertWithTransitions | undefined;

  constructor(db: Database.Database) {
    this.db = db;
    const stmt = prepareStatements(db);
    this.stmt = stmt;

    this.applyTx = immediateTransaction(db, (input: CheckedRuleResults) => {
      const events: AlertEvent[] = [];
      for (const signal of input.signals) {
        const decision = decideSignal(this.latestAlertOf(signal.ruleId, signal.subjectId), signal);
        if (decision.action === 'none') continue;
        if (decision.action === 'open') {
          const { alert } = decision;
          const { id: _none, ...params } = alertParams({ ...alert, id: '0' });
          const newAlert: NewAlertParams = {
            ...params,
            ruleId: alert.ruleId,
            severity: alert.severity,
            subjectKind: alert.subjectKind,
            subjectId: alert.subjectId,
            openedAtMs: alert.openedAtMs,
          };
          const id = Number(stmt.insertAlert.run(newAlert).lastInsertRowid);
          events.push(this.storeTransition({ ...alert, id: String(id) }, decision.transition));
        } else {
          if (decision.cancelHeldResolution) stmt.cancelHeldOf.run(Number(decision.alert.id));
          stmt.updateAlert.run(alertParams(decision.alert));
          events.push(this.storeTransition(decision.alert, decision.transition));
        }
      }
      // Saves first, then removals: a key in both ends removed (see AlertStore.applyRuleResults).
      for (const { state, data } of input.save) stmt.upsertRuleState.run(state.ruleId, state.subjectId, state.status, state.sinceMs, data);
      for (const key of input.remove) stmt.deleteRuleState.run(key.ruleId, key.subjectId);
      return events;
    });

    this.operatorTx = immediateTransaction(db, (alertId: number, decide: (alert: Alert) => OperatorDecision) => {
      const row = stmt.alertById.get(alertId);
      if (row === undefined) throw new StoreError('not-found', `alert ${alertId} does not exist`);
      const decision = decide(alertFromRow(row));
      if (decision.action === 'conflict') throw new StoreError('conflict', decision.message);
      stmt.updateAlert.run(alertParams(decision.alert));
      return this.storeTransition(decision.alert, decision.transition);
    });

    this.routeTx = immediateTransaction(db, (routes: ReadonlyArray<{ seq: number; integrations: readonly string[] }>, nowMs: number) => {
      for (const route of routes) {
        const transition = stmt.routingOf.get(route.seq);
        // Gone (pruned), already routed, cancelled by a reopening, silent, or held and not yet due: nothing to do.
        if (transition === undefined) continue;
        const { notify_state: state, not_before_ms: notBeforeMs } = transition;
        if (state !== 'queued' && !(state === 'held' && notBeforeMs !== null && notBeforeMs <= nowMs)) continue;
        for (const integration of route.integrations) stmt.insertDelivery.run(route.seq, transition.alert_id, integration, nowMs);
        stmt.markRouted.run(route.seq);
      }
    });

    this.readAlertTx = db.transaction((alertId: number) => {
      const row = stmt.alertById.get(alertId);
      if (row === undefined) return undefined;
      return { ...alertFromRow(row), transitions: stmt.transitionsOf.all(alertId).map(transitionFromRow) };
    });

    this.pruneTx = immediateTransaction(db, (cutoffMs: number) => {
      const ids = stmt.prunable.all(cutoffMs, PRUNE_ALERTS_PER_TRANSACTION);
      for (const id of ids) {
        stmt.deleteDeliveriesOfAlert.run(id);
        stmt.deleteTransitionsOfAlert.run(id);
        stmt.deleteAlert.run(id);
      }
      return ids.length;
    });
  }

  // ---- AlertStore -----------------------------------------------------------

  /**
   * See AlertStore.applyRuleResults. Every input is checked first
   * (checkRuleSignal, checkRuleSubjectState): one bad signal or state fails
   * the call with 'invalid' and nothing is written. Saves are applied
   * before removals, so a key in both ends removed.
   */
  applyRuleResults(input: { signals: readonly RuleSignal[]; save?: readonly RuleSubjectState[]; remove?: readonly RuleSubjectKey[] }): AlertEvent[] {
    const checked: CheckedRuleResults = {
      signals: input.signals.map(checkRuleSignal),
      save: (input.save ?? []).map((state) => ({ state, data: checkRuleSubjectState(state) })),
      remove: (input.remove ?? []).map((key) => {
        checkRuleSubjectKey(key);
        return key;
      }),
    };
    if (checked.signals.length === 0 && checked.save.length === 0 && checked.remove.length === 0) return [];
    return guard('apply rule results', () => this.applyTx(checked));
  }

  loadRuleStates(): RuleSubjectState[] {
    const rows = guard('load rule states', () => this.stmt.loadRuleStates.all());
    return rows.map((row) => ({
      ruleId: row.rule_id,
      subjectId: row.subject_id,
      status: row.status,
      sinceMs: row.since_ms,
      data: JSON.parse(row.data) as RuleSubjectState['data'],
    }));
  }

  /** See AlertStore.acknowledgeAlert; 'invalid' for input checkAcknowledgeInput refuses. */
  acknowledgeAlert(id: string, input: { actor: string; note: string | null; atMs: number }): AlertEvent {
    const checked = checkAcknowledgeInput(input);
    const alertId = parseAlertId(id);
    if (alertId === undefined) throw new StoreError('not-found', `alert ${String(id)} does not exist`);
    return guard('acknowledge alert', () => this.operatorTx(alertId, (alert) => decideAcknowledge(alert, checked)));
  }

  /** See AlertStore.resolveAlert; 'invalid' for input checkResolveInput refuses. */
  resolveAlert(id: string, input: { actor: string; reason: string; atMs: number }): AlertEvent {
    const checked = checkResolveInput(input);
    const alertId = parseAlertId(id);
    if (alertId === undefined) throw new StoreError('not-found', `alert ${String(id)} does not exist`);
    return guard('resolve alert', () => this.operatorTx(alertId, (alert) => decideResolve(alert, checked)));
  }

  getAlert(id: string): AlertWithTransitions | undefined {
    const alertId = parseAlertId(id);
    if (alertId === undefined) return undefined;
    return guard('get alert', () => this.readAlertTx(alertId));
  }

  /**
   * Newest first by id. Throws 'invalid' for an unknown state or severity,
   * a limit that is not a non-negative integer, or a beforeId that is not
   * a decimal integer.
   */
  listAlerts(query: AlertQuery): Alert[] {
    requireLimit(query.limit);
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: query.limit };
    if (query.state !== undefined) {
      if (query.state === 'open') {
        // Word for word the condition of the partial index alerts_one_open.
        where.push("state != 'resolved'");
      } else {
        if (!(ALERT_STATES as readonly unknown[]).includes(query.state)) throw new StoreError('invalid', `list alerts: unknown state ${String(query.state)}`);
        where.push('state = @state');
        params.state = query.state;
      }
    }
    if (query.severity !== undefined) {
      checkSeverity('list alerts', query.severity);
      where.push('severity = @severity');
      params.severity = query.severity;
    }
    if (query.subjectId !== undefined) {
      where.push('subject_id = @subjectId');
      params.subjectId = query.subjectId;
    }
    if (query.ruleId !== undefined) {
      where.push('rule_id = @ruleId');
      params.ruleId = query.ruleId;
    }
    if (query.beforeId !== undefined) {
      if (typeof query.beforeId !== 'string' || !/^[0-9]{1,16}$/.test(query.beforeId)) {
        throw new StoreError('invalid', `list alerts: beforeId must be an alert id, got ${String(query.beforeId)}`);
      }
      where.push('id < @beforeId');
      params.beforeId = Number(query.beforeId);
    }
    const sql = `SELECT ${ALERT_COLUMNS} FROM alerts ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
    return guard('list alerts', () => {
      let statement = this.listStatements.get(sql);
      if (statement === undefined) {
        statement = this.db.prepare<Record<string, unknown>, AlertRow>(sql);
        this.listStatements.set(sql, statement);
      }
      return statement.all(params).map(alertFromRow);
    });
  }

  /** See AlertStore.transitionsAfter. 'invalid' when afterSeq is not an integer or limit not from 1 to 1000. */
  transitionsAfter(afterSeq: number, limit: number): AlertEvent[] {
    requireSafeInteger('transitions after: afterSeq', afterSeq);
    requirePageLimit('transitions after', limit, MAX_TRANSITIONS_PAGE);
    return guard('transitions after', () => this.stmt.transitionsAfter.all(afterSeq, limit).map(eventFromRow));
  }

  latestTransitionSeq(): number {
    return guard('latest transition seq', () => this.stmt.latestTransitionSeq.get() ?? 0);
  }

  listOpenAlerts(): Alert[] {
    return guard('list open alerts', () => this.stmt.listOpen.all().map(alertFromRow));
  }

  countOpenAlerts(): { bySeverity: Record<AlertSeverity, number>; byState: Record<'firing' | 'acknowledged', number> } {
    const rows = guard('count open alerts', () => this.stmt.countOpen.all());
    const bySeverity = Object.fromEntries(ALERT_SEVERITIES.map((s) => [s, 0])) as Record<AlertSeverity, number>;
    const byState: Record<'firing' | 'acknowledged', number> = { firing: 0, acknowledged: 0 };
    for (const row of rows) {
      bySeverity[row.severity] += row.count;
      byState[row.state] += row.count;
    }
    return { bySeverity, byState };
  }

  // ---- AlertOutbox ------------------------------------------------------------

  /** Queued transitions, and held ones whose not_before_ms <= nowMs, oldest seq first. */
  transitionsToRoute(nowMs: number, limit: number): AlertEvent[] {
    requireSafeInteger('transitions to route: nowMs', nowMs);
    requireLimit(limit);
    return guard('list transitions to route', () => this.stmt.toRoute.all(nowMs, limit).map(eventFromRow));
  }

  /**
   * See AlertOutbox.routeTransitions. Each delivery is due at nowMs. A seq
   * that is unknown (pruned), already routed, cancelled, silent, or held
   * with its window not passed by nowMs is skipped, so a reopening that
   * cancelled a resolution after the notifier read it wins. An integration
   * named twice for one transition gets one delivery. Throws 'invalid' for
   * a seq or nowMs that is not an integer, or an integration name that is
   * empty or longer than MAX_ALERT_ID_CHARS, before writing anything.
   */
  routeTransitions(routes: readonly { seq: number; integrations: readonly string[] }[], nowMs: number): void {
    requireSafeInteger('route transitions: nowMs', nowMs);
    for (const route of routes) {
      requireSafeInteger('route transitions: seq', route.seq);
      for (const integration of route.integrations) {
        if (typeof integration !== 'string' || integration.length === 0 || integration.length > MAX_ALERT_ID_CHARS) {
          throw new StoreError('invalid', `route transitions: an integration name must be a string of 1 to ${MAX_ALERT_ID_CHARS} characters`);
        }
      }
    }
    if (routes.length === 0) return;
    guard('route transitions', () => this.routeTx(routes, nowMs));
  }

  dueDeliveries(nowMs: number, limit: number): Delivery[] {
    requireSafeInteger('due deliveries: nowMs', nowMs);
    requireLimit(limit);
    const rows = guard('list due deliveries', () => this.stmt.due.all(nowMs, limit));
    return rows.map((row) => ({
      id: row.delivery_id,
      integration: row.integration,
      event: eventFromRow(row),
      attempts: row.attempts,
      nextAttemptAtMs: row.next_attempt_at_ms,
      lastError: row.last_error,
    }));
  }

  /** Counts the attempt and settles the delivery. Throws 'not-found' for an unknown id, 'conflict' when it is already delivered or dead. */
  markDelivered(id: number, atMs: number): void {
    requireSafeInteger('mark delivered: id', id);
    requireSafeInteger('mark delivered: atMs', atMs);
    guard('mark delivered', () => {
      if (this.stmt.markDelivered.run(atMs, atMs, id).changes === 0) this.throwNotPending(id);
    });
  }

  /**
   * Counts the attempt and keeps the error's first MAX_DELIVERY_ERROR_CHARS
   * characters; retried from nextAttemptAtMs, or dead when it is null.
   * Throws as markDelivered.
   */
  markFailed(id: number, input: { atMs: number; error: string; nextAttemptAtMs: number | null }): void {
    requireSafeInteger('mark failed: id', id);
    requireSafeInteger('mark failed: atMs', input.atMs);
    if (input.nextAttemptAtMs !== null) requireSafeInteger('mark failed: nextAttemptAtMs', input.nextAttemptAtMs);
    const error = cutText(typeof input.error === 'string' ? input.error : String(input.error), MAX_DELIVERY_ERROR_CHARS);
    guard('mark failed', () => {
      if (this.stmt.markFailed.run({ id, atMs: input.atMs, error, nextAttemptAtMs: input.nextAttemptAtMs }).changes === 0) this.throwNotPending(id);
    });
  }

  countDeliveries(): Record<string, Record<DeliveryState, number>> {
    const rows = guard('count deliveries', () => this.stmt.countDeliveries.all());
    const counts: Record<string, Record<DeliveryState, number>> = {};
    for (const row of rows) {
      counts[row.integration] ??= { pending: 0, delivered: 0, dead: 0 };
      counts[row.integration]![row.state] += row.count;
    }
    return counts;
  }

  /**
   * The earliest next attempt among the pending deliveries that may be
   * handed out (the first pending one of each (alert, integration); the
   * others wait for it, not for a time), and the earliest end of a held
   * resolution's window; null when there is neither. Queued transitions
   * are due at once and not counted here: a notifier looks at
   * transitionsToRoute on every tick.
   */
  nextDueAtMs(): number | null {
    return guard('next due time', () => this.stmt.nextDue.get() ?? null);
  }

  // ---- Bounds -------------------------------------------------------------------

  /**
   * Deletes alerts resolved before nowMs - retentionMs, with their
   * transitions and deliveries, and returns how many alerts. An alert with
   * anything still to be told (a queued or held transition, a pending
   * delivery) is kept until that is settled. Works PRUNE_ALERTS_PER_TRANSACTION
   * alerts per transaction, so other writers wait at most a short while.
   * retentionMs Infinity keeps everything; a fraction of a millisecond is
   * rounded. A retention shorter than a rule's
   * flapping window makes a fire after the prune open a new alert where it
   * would have reopened the pruned one.
   */
  pruneAlerts(nowMs: number, retentionMs: number): number {
    return pruneByRetention('prune alerts', nowMs, retentionMs, PRUNE_ALERTS_PER_TRANSACTION, this.pruneTx);
  }

  // ---- Inside transactions ------------------------------------------------------

  private latestAlertOf(ruleId: string, subjectId: string): LatestAlert | undefined {
    const row = this.stmt.latestOf.get(ruleId, subjectId);
    if (row === undefined) return undefined;
    const alert = alertFromRow(row);
    if (alert.state !== 'resolved') return { alert, resolutionHeld: false };
    const last = this.stmt.latestTransitionOf.get(row.id);
    return { alert, resolutionHeld: last?.kind === 'resolved' && last.notify_state === 'held' };
  }

  /** Stores a transition with the alert's snapshot, applies the per-alert bound, and returns the event. */
  private storeTransition(alert: Alert, draft: TransitionDraft): AlertEvent {
    const alertId = Number(alert.id);
    const snapshot = serializeJson(`alert ${alert.id}`, alert);
    const seq = Number(
      this.stmt.insertTransition.run({
        alertId,
        kind: draft.kind,
        atMs: draft.atMs,
        actor: draft.actor,
        note: draft.note,
        notifyState: draft.notify,
        notBeforeMs: draft.notBeforeMs,
        alert: snapshot,
      }).lastInsertRowid,
    );
    this.boundTransitionsOf(alertId);
    return {
      eventId: alertEventId(alert.id, seq),
      // Read back from the snapshot, so this event is exactly what the outbox hands out later.
      alert: JSON.parse(snapshot) as Alert,
      transition: { seq, alertId: alert.id, kind: draft.kind, atMs: draft.atMs, actor: draft.actor, note: draft.note, notify: draft.notify !== 'silent' },
    };
  }

  /** Deletes the alert's oldest settled transitions (and their deliveries) beyond MAX_TRANSITIONS_PER_ALERT. */
  private boundTransitionsOf(alertId: number): void {
    const excess = this.stmt.countTransitionsOf.get(alertId)! - MAX_TRANSITIONS_PER_ALERT;
    if (excess <= 0) return;
    for (const seq of this.stmt.oldestSettledOf.all(alertId, excess)) {
      this.stmt.deleteDeliveriesOfTransition.run(seq);
      this.stmt.deleteTransition.run(seq);
    }
  }

  private throwNotPending(id: number): never {
    const state = this.stmt.deliveryState.get(id);
    if (state === undefined) throw new StoreError('not-found', `delivery ${id} does not exist`);
    throw new StoreError('conflict', `delivery ${id} is already ${state}`);
  }
}
