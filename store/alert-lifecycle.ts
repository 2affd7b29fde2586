/**
 * The alert lifecycle as pure decisions, with no storage: given the latest
 * alert of a (rule, subject), or the alert an operator acts on, and what
 * happened, what the alert becomes and which transition records it. Every
 * AlertStore implementation stores what these functions decide, inside one
 * transaction that read the latest alert, so the rules of types.ts
 * (AlertStore.applyRuleResults, acknowledgeAlert, resolveAlert) hold
 * whoever calls.
 *
 * Also here: the checks and bounds applied to what callers pass, before
 * anything is written, so that bad input is refused ('invalid') or cut the
 * same way by every implementation, and an attacker or a flapping sensor
 * cannot fill the disk with long strings.
 */
import {
  ALERT_SEVERITIES,
  ALERT_SUBJECT_KINDS,
  RULE_ACTOR,
  type Alert,
  type AlertSeverity,
  type AlertSubjectKind,
  type AlertTransitionKind,
} from '../protocol/index.ts';
import { StoreError, type RuleSignal, type RuleSubjectKey, type RuleSubjectState } from './types.ts';

/** Characters of a summary that are kept (cut, not refused). */
export const MAX_ALERT_SUMMARY_CHARS = 1_000;
/** Characters of an acknowledgement note or a resolution reason that are kept (cut, not refused). */
export const MAX_ALERT_NOTE_CHARS = 1_000;
/** Labels per alert; more is refused. */
export const MAX_ALERT_LABELS = 16;
/** Characters of a label's name and of its value; longer is refused. */
export const MAX_ALERT_LABEL_CHARS = 200;
/** Characters of a rule id, a subject id and an actor; longer is refused. */
export const MAX_ALERT_ID_CHARS = 200;
/** The longest flapping window (a year); atMs + flapWindowMs must stay a safe integer. */
export const MAX_FLAP_WINDOW_MS = 366 * 86_400_000;
/** Bytes of a rule subject state's `data` as JSON (UTF-8); more is refused. */
export const MAX_RULE_STATE_DATA_BYTES = 1_024;

/**
 * How integrations are to hear of a transition when it is stored:
 * - queued: at once;
 * - held: from notBeforeMs on, unless a reopening cancels it first (a rule's resolution);
 * - silent: never (a reopening of a resolution integrations never heard of).
 */
export type NotifyOnStore = 'queued' | 'held' | 'silent';

/** A transition to store; the store gives it its seq and the alert's id. */
export interface TransitionDraft {
  kind: AlertTransitionKind;
  atMs: number;
  actor: string;
  note: string | null;
  notify: NotifyOnStore;
  /** When a held transition may be told; null unless `notify` is held. */
  notBeforeMs: number | null;
}

/** The latest alert of a (rule, subject) as the store holds it. */
export interface LatestAlert {
  alert: Alert;
  /**
   * True when the alert is resolved and its resolution is still held (not
   * yet told, so a reopening cancels it); false otherwise, including when
   * the resolution was already told (queued or routed).
   */
  resolutionHeld: boolean;
}

export type SignalDecision =
  /** Nothing to store: fire while open, clear while not open. */
  | { action: 'none' }
  /** A new alert; the store gives it its id. */
  | { action: 'open'; alert: Omit<Alert, 'id'>; transition: TransitionDraft }
  /**
   * The alert changes (the same id). With cancelHeldResolution, the store
   * also marks the alert's held resolution cancelled, in the same
   * transaction.
   */
  | { action: 'update'; alert: Alert; transition: TransitionDraft; cancelHeldResolution: boolean };

export type OperatorDecision = { action: 'update'; alert: Alert; transition: TransitionDraft } | { action: 'conflict'; message: string };

/**
 * What a rule's signal does to the latest alert of its (rule, subject), or
 * to none. `signal` must have passed checkRuleSignal.
 *
 * - fire, no alert, or the latest resolved flapWindowMs or more before
 *   atMs: a new alert, firing, opened and fired at atMs (`fired`, told at
 *   once);
 * - fire, the latest resolved less than flapWindowMs before atMs: the same
 *   alert fires again (`reopened`): firedAtMs = atMs, reopenCount + 1, the
 *   acknowledgement and resolution cleared, summary, value and labels from
 *   the signal. When its resolution is still held, that resolution is
 *   cancelled and the reopening is silent, so integrations hear neither;
 *   when the resolution was told, the reopening is told at once;
 * - fire, an open alert: nothing;
 * - clear, an open alert: resolved by the rule at atMs (`resolved`), held
 *   until atMs + flapWindowMs (told at once when flapWindowMs is 0);
 * - clear, no open alert: nothing.
 */
export function decideSignal(latest: LatestAlert | undefined, signal: RuleSignal): SignalDecision {
  const open = latest !== undefined && latest.alert.state !== 'resolved' ? latest.alert : undefined;
  if (signal.signal === 'clear') {
    if (open === undefined) return { action: 'none' };
    const held = signal.flapWindowMs > 0;
    return {
      action: 'update',
      alert: { ...open, state: 'resolved', resolvedAtMs: signal.atMs, resolvedBy: RULE_ACTOR, resolveReason: null },
      transition: {
        kind: 'resolved',
        atMs: signal.atMs,
        actor: RULE_ACTOR,
        note: null,
        notify: held ? 'held' : 'queued',
        notBeforeMs: held ? signal.atMs + signal.flapWindowMs : null,
      },
      cancelHeldResolution: false,
    };
  }
  if (open !== undefined) return { action: 'none' };
  const resolved = latest?.alert;
  // resolvedAtMs is set on every resolved alert; null only if the stored row is damaged, then a new alert is the safe answer.
  if (resolved !== undefined && resolved.resolvedAtMs !== null && signal.atMs - resolved.resolvedAtMs < signal.flapWindowMs) {
    const cancelHeldResolution = latest!.resolutionHeld;
    // A resolution nobody was told of is taken back whole: an acknowledgement
    // stands, as it does for the integrations that saw it. A reopening that
    // is told starts over, unacknowledged.
    const keepAcknowledgement = cancelHeldResolution && resolved.acknowledgedAtMs !== null;
    return {
      action: 'update',
      alert: {
        ...resolved,
        state: keepAcknowledgement ? 'acknowledged' : 'firing',
        summary: signal.summary,
        value: signal.value,
        labels: { ...signal.labels },
        firedAtMs: signal.atMs,
        acknowledgedAtMs: keepAcknowledgement ? resolved.acknowledgedAtMs : null,
        acknowledgedBy: keepAcknowledgement ? resolved.acknowledgedBy : null,
        acknowledgeNote: keepAcknowledgement ? resolved.acknowledgeNote : null,
        resolvedAtMs: null,
        resolvedBy: null,
        resolveReason: null,
        reopenCount: resolved.reopenCount + 1,
      },
      transition: { kind: 'reopened', atMs: signal.atMs, actor: RULE_ACTOR, note: null, notify: cancelHeldResolution ? 'silent' : 'queued', notBeforeMs: null },
      cancelHeldResolution,
    };
  }
  return {
    action: 'open',
    alert: {
      ruleId: signal.ruleId,
      severity: signal.severity,
      subjectKind: signal.subjectKind,
      subjectId: signal.subjectId,
      state: 'firing',
      summary: signal.summary,
      value: signal.value,
      labels: { ...signal.labels },
      openedAtMs: signal.atMs,
      firedAtMs: signal.atMs,
      acknowledgedAtMs: null,
      acknowledgedBy: null,
      acknowledgeNote: null,
      resolvedAtMs: null,
      resolvedBy: null,
      resolveReason: null,
      reopenCount: 0,
    },
    transition: { kind: 'fired', atMs: signal.atMs, actor: RULE_ACTOR, note: null, notify: 'queued', notBeforeMs: null },
  };
}

/** firing → acknowledged by `actor`, told at once; a conflict when already acknowledged or resolved. Input as checked by checkOperatorInput. */
export function decideAcknowledge(alert: Alert, input: { actor: string; note: string | null; atMs: number }): OperatorDecision {
  if (alert.state !== 'firing') return { action: 'conflict', message: `alert ${alert.id} is already ${alert.state}` };
  return {
    action: 'update',
    alert: { ...alert, state: 'acknowledged', acknowledgedAtMs: input.atMs, acknowledgedBy: input.actor, acknowledgeNote: input.note },
    transition: { kind: 'acknowledged', atMs: input.atMs, actor: input.actor, note: input.note, notify: 'queued', notBeforeMs: null },
  };
}

/**
 * Open (firing or acknowledged) → resolved by `actor` with a reason, told
 * at once; an acknowledgement is kept. A conflict when already resolved.
 */
export function decideResolve(alert: Alert, input: { actor: string; reason: string; atMs: number }): OperatorDecision {
  if (alert.state === 'resolved') return { action: 'conflict', message: `alert ${alert.id} is already resolved` };
  return {
    action: 'update',
    alert: { ...alert, state: 'resolved', resolvedAtMs: input.atMs, resolvedBy: input.actor, resolveReason: input.reason },
    transition: { kind: 'resolved', atMs: input.atMs, actor: input.actor, note: input.reason, notify: 'queued', notBeforeMs: null },
  };
}

// ---- Checks of callers' input ----------------------------------------------

function invalid(message: string): StoreError {
  return new StoreError('invalid', message);
}

/** The first `max` UTF-16 units of `text`, never ending inside a surrogate pair. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

function requireTime(what: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid(`${what} must be an integer within ±(2^53 - 1), got ${String(value)}`);
}

function requireId(what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ALERT_ID_CHARS) {
    throw invalid(`${what} must be a string of 1 to ${MAX_ALERT_ID_CHARS} characters`);
  }
}

function isSeverity(value: unknown): value is AlertSeverity {
  return (ALERT_SEVERITIES as readonly unknown[]).includes(value);
}

function isSubjectKind(value: unknown): value is AlertSubjectKind {
  return (ALERT_SUBJECT_KINDS as readonly unknown[]).includes(value);
}

export function checkSeverity(what: string, value: unknown): asserts value is AlertSeverity {
  if (!isSeverity(value)) throw invalid(`${what}: unknown severity ${String(value)}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Labels as stored: at most MAX_ALERT_LABELS entries, names and values strings of at most MAX_ALERT_LABEL_CHARS; else 'invalid'. */
function checkLabels(what: string, labels: unknown): Record<string, string> {
  if (!isPlainObject(labels)) throw invalid(`${what}: labels must be an object`);
  const entries = Object.entries(labels);
  if (entries.length > MAX_ALERT_LABELS) throw invalid(`${what}: at most ${MAX_ALERT_LABELS} labels, got ${entries.length}`);
  for (const [name, value] of entries) {
    if (name.length > MAX_ALERT_LABEL_CHARS) throw invalid(`${what}: label name longer than ${MAX_ALERT_LABEL_CHARS} characters`);
    if (typeof value !== 'string') throw invalid(`${what}: label ${name} must be a string`);
    if (value.length > MAX_ALERT_LABEL_CHARS) throw invalid(`${what}: label ${name} longer than ${MAX_ALERT_LABEL_CHARS} characters`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/**
 * The signal as stored: the summary cut to MAX_ALERT_SUMMARY_CHARS. Throws
 * 'invalid' for an unknown severity, subject kind or signal, a rule or
 * subject id that is empty or longer than MAX_ALERT_ID_CHARS, an atMs that
 * is not a safe integer, a flapping window that is not a number from 0 to
 * MAX_FLAP_WINDOW_MS (it is rounded to whole milliseconds), a value that is
 * neither null nor finite, or labels beyond their bounds.
 */
export function checkRuleSignal(signal: RuleSignal): RuleSignal {
  const what = `signal of rule ${String(signal.ruleId)} on ${String(signal.subjectId)}`;
  requireId(`${what}: ruleId`, signal.ruleId);
  requireId(`${what}: subjectId`, signal.subjectId);
  checkSeverity(what, signal.severity);
  if (!isSubjectKind(signal.subjectKind)) throw invalid(`${what}: unknown subject kind ${String(signal.subjectKind)}`);
  if (signal.signal !== 'fire' && signal.signal !== 'clear') throw invalid(`${what}: unknown signal ${String(signal.signal)}`);
  requireTime(`${what}: atMs`, signal.atMs);
  // A duration, often computed from seconds (1.1 * 1000 is 1100.0000000000002), so it is rounded rather than refused.
  if (typeof signal.flapWindowMs !== 'number' || !Number.isFinite(signal.flapWindowMs) || signal.flapWindowMs < 0 || signal.flapWindowMs > MAX_FLAP_WINDOW_MS) {
    throw invalid(`${what}: flapWindowMs must be a number from 0 to ${MAX_FLAP_WINDOW_MS}, got ${String(signal.flapWindowMs)}`);
  }
  if (signal.value !== null && (typeof signal.value !== 'number' || !Number.isFinite(signal.value))) {
    throw invalid(`${what}: value must be a finite number or null, got ${String(signal.value)}`);
  }
  if (typeof signal.summary !== 'string') throw invalid(`${what}: summary must be a string`);
  const flapWindowMs = Math.round(signal.flapWindowMs);
  requireTime(`${what}: atMs + flapWindowMs`, signal.atMs + flapWindowMs);
  return {
    ...signal,
    flapWindowMs,
    summary: cutText(signal.summary, MAX_ALERT_SUMMARY_CHARS),
    labels: checkLabels(what, signal.labels),
  };
}

/**
 * Throws 'invalid' for an unknown status, a sinceMs that is not an integer,
 * ids beyond their bounds, or data that is not an object of strings,
 * finite numbers, booleans and nulls, or whose JSON exceeds
 * MAX_RULE_STATE_DATA_BYTES. Returns the data's JSON.
 */
export function checkRuleSubjectState(state: RuleSubjectState): string {
  const what = `state of rule ${String(state.ruleId)} on ${String(state.subjectId)}`;
  checkRuleSubjectKey(state);
  if (state.status !== 'pending' && state.status !== 'active') throw invalid(`${what}: unknown status ${String(state.status)}`);
  requireTime(`${what}: sinceMs`, state.sinceMs);
  if (!isPlainObject(state.data)) throw invalid(`${what}: data must be an object`);
  for (const [name, value] of Object.entries(state.data)) {
    const ok = value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
    if (!ok) throw invalid(`${what}: data.${name} must be a string, a finite number, a boolean or null`);
  }
  const json = JSON.stringify(state.data);
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_RULE_STATE_DATA_BYTES) throw invalid(`${what}: data is ${bytes} bytes as JSON, more than ${MAX_RULE_STATE_DATA_BYTES}`);
  return json;
}

export function checkRuleSubjectKey(key: RuleSubjectKey): void {
  requireId('rule state: ruleId', key.ruleId);
  requireId('rule state: subjectId', key.subjectId);
}

function checkActorAndTime(action: string, input: { actor: string; atMs: number }): void {
  requireId(`${action}: actor`, input.actor);
  requireTime(`${action}: atMs`, input.atMs);
}

/**
 * An acknowledgement as stored: the note cut to MAX_ALERT_NOTE_CHARS.
 * Throws 'invalid' for an actor that is empty or longer than
 * MAX_ALERT_ID_CHARS, a time that is not an integer, or a note that is
 * neither a string nor null. (The actor may be `rule`: ingest resolves the
 * open alerts of a rule removed from the rules file as the rule.)
 */
export function checkAcknowledgeInput(input: { actor: string; note: string | null; atMs: number }): { actor: string; note: string | null; atMs: number } {
  checkActorAndTime('acknowledge alert', input);
  if (input.note !== null && typeof input.note !== 'string') throw invalid('acknowledge alert: note must be a string or null');
  return { actor: input.actor, note: input.note === null ? null : cutText(input.note, MAX_ALERT_NOTE_CHARS), atMs: input.atMs };
}

/** An operator's resolution as stored: the reason cut to MAX_ALERT_NOTE_CHARS; refused as checkAcknowledgeInput, and for a reason that is not a string. */
export function checkResolveInput(input: { actor: string; reason: string; atMs: number }): { actor: string; reason: string; atMs: number } {
  checkActorAndTime('resolve alert', input);
  if (typeof input.reason !== 'string') throw invalid('resolve alert: reason must be a string');
  return { actor: input.actor, reason: cutText(input.reason, MAX_ALERT_NOTE_CHARS), atMs: input.atMs };
}
