/**
 * The rule engine: what every rule concludes about every subject, one input
 * at a time. Pure and synchronous (no I/O, no timers): the caller feeds it
 * committed samples, live aggregates and clock ticks, and stores what comes
 * out (see alerting.ts); the operators in evaluate-rules.ts put it on
 * streams.
 *
 * State is one small record per (rule, subject), keyed by subject id, so
 * that it can be partitioned by device or site across workers. Each record
 * is idle (absent), pending (the condition holds, not yet for its duration)
 * or active (fired, not cleared). A change of status comes out as a state to
 * save or a key to remove, next to the signal it causes, so the store keeps
 * both in one transaction and a restart resumes where the engine stood:
 * since when a condition held, and which conditions already fired.
 *
 * Time: device rules on samples run on sample time (a buffered flush after
 * an outage is judged by when things were measured); presence rules and
 * aggregate rules run on platform time (ticks and snapshots).
 */
import {
  fillSummary,
  FLEET_SUBJECT_ID,
  type AggregateSnapshot,
  type AlertRule,
  type FrozenCondition,
  type RateOfChangeCondition,
  type ThresholdCondition,
} from '../../protocol/index.ts';
import type { Presence, RuleSignal, RuleSubjectKey, RuleSubjectState } from '../../store/types.ts';
import type { CommittedSample, DeviceRef } from '../types.ts';

/** A device's connection state as the twin has it, for presence rules. */
export interface DevicePresence {
  device: DeviceRef;
  presence: Presence;
  /** Since when; null when never known (the engine then counts from when it first saw the device). */
  sinceMs: number | null;
}

export type RuleInput =
  | { kind: 'samples'; samples: readonly CommittedSample[] }
  | { kind: 'aggregates'; snapshots: readonly AggregateSnapshot[] }
  /** Platform time moved on: presence rules are checked against every active device. */
  | { kind: 'tick'; nowMs: number };

export interface RuleOutput {
  signals: RuleSignal[];
  save: RuleSubjectState[];
  remove: RuleSubjectKey[];
}

export interface RuleEngineDeps {
  regionOf(siteId: string): string | undefined;
  /** Every active device with its presence, read at each tick. */
  presences(): Iterable<DevicePresence>;
  /**
   * After a (re)start, devices need time to reconnect and report: until
   * `startedAtMs + startupGraceMs` (platform time) presence rules do not
   * fire (their conditions may go pending) and aggregate rules are not
   * evaluated, so a restart does not page for the whole fleet. Conditions
   * that fired before the restart stay as they were.
   */
  startedAtMs?: number;
  startupGraceMs?: number;
}

interface SubjectState {
  status: 'pending' | 'active';
  sinceMs: number;
  data: Record<string, number | string | boolean | null>;
}

/** Memory that does not need saving: rebuilt from the next samples after a restart. */
interface Recent {
  ts: number;
  value: number;
  power: number | null;
  /** Frozen rules: whether the gate (onlyWhile) was open at `ts`. */
  gateOpen?: boolean;
}

const key = (ruleId: string, subjectId: string): string => `${ruleId}\u0000${subjectId}`;
const splitKey = (k: string): [ruleId: string, subjectId: string] => k.split('\u0000') as [string, string];
/** Labels, computed only when a signal needs them (not per sample). */
type Labels = () => Record<string, string>;
const NO_LABELS: Labels = () => ({});

export function isEmptyOutput(output: RuleOutput): boolean {
  return output.signals.length === 0 && output.save.length === 0 && output.remove.length === 0;
}

export class RuleEngine {
  private readonly states = new Map<string, SubjectState>();
  /** Last sample per (rule, device) for rate-of-change and frozen rules. */
  private readonly recent = new Map<string, Recent>();
  /** When the engine first saw a device of unknown presence time (presence rules). */
  private firstSeen = new Map<string, number>();
  /** Statuses changed by the current step: the state to save, or null to remove. */
  private readonly changed = new Map<string, RuleSubjectState | null>();
  private readonly byKind: { [K in AlertRule['kind']]: Array<Extract<AlertRule, { kind: K }>> } = {
    threshold: [],
    rateOfChange: [],
    frozen: [],
    offline: [],
    stale: [],
  };

  constructor(
    readonly rules: readonly AlertRule[],
    private readonly deps: RuleEngineDeps,
    initial: readonly RuleSubjectState[] = [],
  ) {
    for (const rule of rules) (this.byKind[rule.kind] as AlertRule[]).push(rule);
    const known = new Set(rules.map((r) => r.id));
    for (const s of initial) {
      if (known.has(s.ruleId)) this.states.set(key(s.ruleId, s.subjectId), { status: s.status, sinceMs: s.sinceMs, data: { ...s.data } });
    }
  }

  /** Saved states of rules no longer configured: the caller removes them. */
  static orphanStates(rules: readonly AlertRule[], saved: readonly RuleSubjectState[]): RuleSubjectKey[] {
    const known = new Set(rules.map((r) => r.id));
    return saved.filter((s) => !known.has(s.ruleId)).map(({ ruleId, subjectId }) => ({ ruleId, subjectId }));
  }

  /** The status of one (rule, subject): idle, pending or active. */
  statusOf(ruleId: string, subjectId: string): 'idle' | 'pending' | 'active' {
    return this.states.get(key(ruleId, subjectId))?.status ?? 'idle';
  }

  /**
   * Runs one input. The output names each (rule, subject) at most once, in
   * `save` or in `remove`, by its status after the whole input: a batch of
   * samples may take a subject through several statuses.
   */
  step(input: RuleInput): RuleOutput {
    const out: RuleOutput = { signals: [], save: [], remove: [] };
    this.changed.clear();
    switch (input.kind) {
      case 'samples':
        for (const sample of input.samples) this.onSample(sample, out);
        break;
      case 'aggregates':
        for (const snapshot of input.snapshots) this.onAggregate(snapshot, out);
        break;
      case 'tick':
        this.onTick(input.nowMs, out);
        break;
    }
    for (const [k, change] of this.changed) {
      if (change) out.save.push(change);
      else {
        const [ruleId, subjectId] = splitKey(k);
        out.remove.push({ ruleId, subjectId });
      }
    }
    return out;
  }

  private onSample(sample: CommittedSample, out: RuleOutput): void {
    const { device } = sample;
    let deviceLabels: Record<string, string> | undefined;
    const labels: Labels = () => (deviceLabels ??= this.deviceLabels(device));
    for (const rule of this.byKind.threshold) {
      if (rule.subject !== 'device' || !this.matchesDevice(rule, device)) continue;
      const value = sample.metrics[rule.threshold.metric];
      if (value !== undefined) this.applyThreshold(rule, rule.threshold, device.id, value, sample.ts, labels, out);
    }
    for (const rule of this.byKind.rateOfChange) {
      if (this.matchesDevice(rule, device)) this.applyRate(rule, rule.rateOfChange, sample, labels, out);
    }
    for (const rule of this.byKind.frozen) {
      if (this.matchesDevice(rule, device)) this.applyFrozen(rule, rule.frozen, sample, labels, out);
    }
  }

  private inStartupGrace(nowMs: number): boolean {
    return nowMs < (this.deps.startedAtMs ?? -Infinity) + (this.deps.startupGraceMs ?? 0);
  }

  private onAggregate(snapshot: AggregateSnapshot, out: RuleOutput): void {
    if (this.inStartupGrace(snapshot.ts)) return;
    for (const rule of this.byKind.threshold) {
      if (rule.subject !== snapshot.level || !this.matchesAggregate(rule, snapshot)) continue;
      const { metric } = rule.threshold;
      let value: number | null;
      if (metric === 'coverage') {
        // An entity without devices has no coverage to speak of.
        if (snapshot.coverage.devicesTotal === 0) continue;
        value = snapshot.coverage.ratio;
      } else {
        value = snapshot.metrics[metric as keyof AggregateSnapshot['metrics']] ?? null;
      }
      if (value === null) continue;
      const subjectId = snapshot.level === 'fleet' ? FLEET_SUBJECT_ID : snapshot.id;
      const labels: Record<string, string> = {};
      if (snapshot.level === 'site') {
        labels.siteId = snapshot.id;
        const region = this.deps.regionOf(snapshot.id);
        if (region !== undefined) labels.region = region;
      } else if (snapshot.level === 'region') labels.region = snapshot.id;
      this.applyThreshold(rule, rule.threshold, subjectId, value, snapshot.ts, () => labels, out);
    }
  }

  private onTick(nowMs: number, out: RuleOutput): void {
    const presenceRules = new Map<string, AlertRule>();
    for (const rule of [...this.byKind.offline, ...this.byKind.stale]) presenceRules.set(rule.id, rule);
    // Nothing to check and nothing to forget: the fleet is not read.
    if (presenceRules.size === 0 && this.recent.size === 0) return;
    const listed = new Set<string>();
    const firstSeen = new Map<string, number>();
    for (const { device, presence, sinceMs } of this.deps.presences()) {
      listed.add(device.id);
      if (presenceRules.size === 0) continue;
      let since = sinceMs;
      if (since === null) {
        since = this.firstSeen.get(device.id) ?? nowMs;
        firstSeen.set(device.id, since);
      }
      for (const rule of this.byKind.offline) {
        if (this.matchesDevice(rule, device)) this.applyPresence(rule, rule.offline.forSeconds, device, presence === 'offline', since, nowMs, out);
      }
      for (const rule of this.byKind.stale) {
        if (this.matchesDevice(rule, device)) this.applyPresence(rule, rule.stale.forSeconds, device, presence === 'stale', since, nowMs, out);
      }
    }
    // Only devices still listed and still of unknown presence time are remembered.
    this.firstSeen = firstSeen;
    // A device no longer listed (revoked) cannot be offline any more, and its last samples are forgotten.
    if (presenceRules.size > 0) {
      for (const [k, state] of this.states) {
        const [ruleId, subjectId] = splitKey(k);
        const rule = presenceRules.get(ruleId);
        if (rule === undefined || listed.has(subjectId)) continue;
        this.transition(rule, subjectId, null, nowMs, NO_LABELS, state.status === 'active' ? 'clear' : 'idle', out);
      }
    }
    for (const k of this.recent.keys()) {
      if (!listed.has(splitKey(k)[1])) this.recent.delete(k);
    }
  }

  private applyThreshold(
    rule: AlertRule,
    condition: ThresholdCondition,
    subjectId: string,
    value: number,
    atMs: number,
    labels: Labels,
    out: RuleOutput,
  ): void {
    const breach = condition.above !== undefined ? value > condition.above : value < condition.below!;
    const cleared = condition.above !== undefined ? value < condition.clearBelow! : value > condition.clearAbove!;
    const state = this.states.get(key(rule.id, subjectId));
    if (state?.status === 'active') {
      if (cleared) this.transition(rule, subjectId, value, atMs, labels, 'clear', out);
      return;
    }
    if (!breach) {
      if (state) this.transition(rule, subjectId, value, atMs, labels, 'idle', out);
      return;
    }
    const sinceMs = state ? state.sinceMs : atMs;
    if (atMs - sinceMs >= condition.forSeconds * 1000) this.transition(rule, subjectId, value, atMs, labels, 'fire', out, sinceMs);
    else if (!state) this.transition(rule, subjectId, value, atMs, labels, 'pending', out, sinceMs);
  }

  private applyRate(rule: AlertRule, condition: RateOfChangeCondition, sample: CommittedSample, labels: Labels, out: RuleOutput): void {
    const value = sample.metrics[condition.metric];
    if (value === undefined) return;
    const recentKey = key(rule.id, sample.device.id);
    const previous = this.recent.get(recentKey);
    const power = condition.powerMetric !== undefined ? (sample.metrics[condition.powerMetric] ?? null) : null;
    if (previous && sample.ts <= previous.ts) return; // out of order: nothing to compare
    this.recent.set(recentKey, { ts: sample.ts, value, power });
    if (!previous) return;
    const minutes = (sample.ts - previous.ts) / 60_000;
    let allowedPerMinute: number;
    if (condition.maxPerMinute !== undefined) allowedPerMinute = condition.maxPerMinute;
    else {
      const capacity = sample.metrics[condition.capacityMetric!];
      if (capacity === undefined || capacity <= 0 || power === null) return;
      const maxPowerW = Math.max(Math.abs(power), Math.abs(previous.power ?? 0));
      allowedPerMinute = (condition.tolerance * 100 * maxPowerW) / (60 * capacity);
    }
    allowedPerMinute = allowedPerMinute + condition.slackPerMinute;
    const change = Math.abs(value - previous.value);
    const implausible = change > allowedPerMinute * minutes + condition.noise;
    const ratePerMinute = Math.round((change / minutes) * 100) / 100;
    const state = this.states.get(key(rule.id, sample.device.id));
    if (implausible && !state) this.transition(rule, sample.device.id, ratePerMinute, sample.ts, labels, 'fire', out, sample.ts);
    else if (!implausible && state) this.transition(rule, sample.device.id, ratePerMinute, sample.ts, labels, state.status === 'active' ? 'clear' : 'idle', out);
  }

  private applyFrozen(rule: AlertRule, condition: FrozenCondition, sample: CommittedSample, labels: Labels, out: RuleOutput): void {
    const value = sample.metrics[condition.metric];
    if (value === undefined) return;
    const subjectId = sample.device.id;
    const recentKey = key(rule.id, subjectId);
    const state = this.states.get(recentKey);
    const previous = this.recent.get(recentKey) ?? (state ? { ts: state.sinceMs, value: Number(state.data.value), power: null, gateOpen: true } : undefined);
    if (previous && sample.ts <= previous.ts && previous.value === value) return;
    const gate = condition.onlyWhile;
    const gateOpen = gate === undefined || Math.abs(sample.metrics[gate.metric] ?? 0) >= gate.absAtLeast;
    if (!previous || previous.value !== value || !gateOpen || previous.gateOpen !== true) {
      // The value moved, or the gate opened or closed: the clock starts again
      // (at rest the value may legitimately stand still, so only time under
      // the gate counts), and a frozen alert clears when the value moved.
      this.recent.set(recentKey, { ts: sample.ts, value, power: null, gateOpen });
      const moved = !previous || previous.value !== value;
      if (state && (moved || state.status === 'pending')) {
        this.transition(rule, subjectId, value, sample.ts, labels, state.status === 'active' ? 'clear' : 'idle', out);
      }
      return;
    }
    if (state?.status === 'active') return;
    const sinceMs = previous.ts;
    if (sample.ts - sinceMs >= condition.forSeconds * 1000) this.transition(rule, subjectId, value, sample.ts, labels, 'fire', out, sinceMs, { value });
    else if (!state) this.transition(rule, subjectId, value, sample.ts, labels, 'pending', out, sinceMs, { value });
  }

  private applyPresence(rule: AlertRule, forSeconds: number, device: DeviceRef, holds: boolean, sinceMs: number, nowMs: number, out: RuleOutput): void {
    const state = this.states.get(key(rule.id, device.id));
    const labels: Labels = () => this.deviceLabels(device);
    if (!holds) {
      if (state) this.transition(rule, device.id, null, nowMs, labels, state.status === 'active' ? 'clear' : 'idle', out);
      return;
    }
    if (state?.status === 'active') return;
    if (nowMs - sinceMs >= forSeconds * 1000 && !this.inStartupGrace(nowMs)) this.transition(rule, device.id, null, nowMs, labels, 'fire', out, sinceMs);
    else if (!state) this.transition(rule, device.id, null, nowMs, labels, 'pending', out, sinceMs);
  }

  /**
   * Moves (rule, subject) to its next status and records what must be
   * stored: `pending` saves the state, `fire` saves it active and signals,
   * `clear` removes it and signals, `idle` removes it.
   */
  private transition(
    rule: AlertRule,
    subjectId: string,
    value: number | null,
    atMs: number,
    labels: Labels,
    to: 'pending' | 'fire' | 'clear' | 'idle',
    out: RuleOutput,
    sinceMs = atMs,
    data: SubjectState['data'] = {},
  ): void {
    const k = key(rule.id, subjectId);
    if (to === 'pending' || to === 'fire') {
      const state: SubjectState = { status: to === 'fire' ? 'active' : 'pending', sinceMs, data };
      this.states.set(k, state);
      this.changed.set(k, { ruleId: rule.id, subjectId, status: state.status, sinceMs, data });
    } else {
      this.states.delete(k);
      this.changed.set(k, null);
    }
    if (to === 'fire' || to === 'clear') {
      const signalLabels = labels();
      out.signals.push({
        ruleId: rule.id,
        severity: rule.severity,
        subjectKind: rule.subject,
        subjectId,
        signal: to,
        atMs,
        summary: to === 'fire' ? this.summaryOf(rule, subjectId, value, signalLabels) : '',
        value: value === null ? null : roundForDisplay(value),
        labels: signalLabels,
        flapWindowMs: rule.flapWindowSeconds * 1000,
      });
    }
  }

  private summaryOf(rule: AlertRule, subjectId: string, value: number | null, labels: Record<string, string>): string {
    return fillSummary(rule.summary, {
      ruleId: rule.id,
      subjectId,
      subjectKind: rule.subject,
      severity: rule.severity,
      value: value === null ? '' : String(roundForDisplay(value)),
      ...labels,
    });
  }

  private deviceLabels(device: DeviceRef): Record<string, string> {
    const region = this.deps.regionOf(device.siteId);
    return region === undefined ? { deviceType: device.type, siteId: device.siteId } : { deviceType: device.type, siteId: device.siteId, region };
  }

  private matchesDevice(rule: AlertRule, device: DeviceRef): boolean {
    const { filter } = rule;
    if (filter.deviceTypes && !filter.deviceTypes.includes(device.type)) return false;
    if (filter.siteIds && !filter.siteIds.includes(device.siteId)) return false;
    if (filter.regions) {
      const region = this.deps.regionOf(device.siteId);
      if (region === undefined || !filter.regions.includes(region)) return false;
    }
    return true;
  }

  private matchesAggregate(rule: AlertRule, snapshot: AggregateSnapshot): boolean {
    const { filter } = rule;
    const region = snapshot.level === 'site' ? this.deps.regionOf(snapshot.id) : snapshot.level === 'region' ? snapshot.id : undefined;
    if (filter.siteIds && !(snapshot.level === 'site' && filter.siteIds.includes(snapshot.id))) return false;
    if (filter.regions && !(region !== undefined && filter.regions.includes(region))) return false;
    return true;
  }
}

/** Values in alerts are for people: at most 3 decimals. */
function roundForDisplay(value: number): number {
  return Math.round(value * 1000) / 1000;
}
