/**
 * Alerting with a real store, in virtual time (RxJS TestScheduler drives the
 * rule ticks and the inputs; the SQLite store is real): a flapping
 * condition makes one alert, reopened, and integrations hear one firing;
 * an alerting started again on the same store resumes without raising
 * anything twice; rules removed from the file have their alerts resolved.
 */
import { TestScheduler } from 'rxjs/testing';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateAlertRules, type AlertEvent, type AlertRule } from '../../protocol/index.ts';
import { openSqliteStore, StoreError, type SqliteStore } from '../../store/index.ts';
import { IngestCounters } from '../counters.ts';
import type { DeviceRef } from '../types.ts';
import { startAlerting, type AlertingOptions } from './alerting.ts';
import type { DevicePresence } from './rule-engine.ts';

const BATTERY: DeviceRef = { id: 'b1', type: 'battery', siteId: 's1' };

function rulesOf(flapWindowSeconds: number, ...raw: unknown[]): AlertRule[] {
  const result = validateAlertRules({ rules: raw, flapWindowSeconds });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.config.rules;
}

const overheat = {
  id: 'hot',
  severity: 'critical',
  subject: 'device',
  summary: '{subjectId} at {value}',
  threshold: { metric: 'tempC', above: 55, clearBelow: 50, forSeconds: 0 },
};

describe('alerting on a real store (virtual time)', () => {
  let store: SqliteStore;
  let scheduler: TestScheduler;
  let told: AlertEvent[];
  beforeEach(() => {
    store = openSqliteStore({ file: ':memory:' });
    scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    told = [];
  });
  afterEach(() => store.close());

  function start(rules: AlertRule[], presences: DevicePresence[] = [], overrides: Partial<AlertingOptions> = {}) {
    return startAlerting({
      rules,
      alerts: store.alerts,
      deps: { regionOf: () => 'north', presences: () => presences },
      counters: new IngestCounters(),
      clock: () => scheduler.now(),
      logger: pino({ level: 'silent' }),
      tickMs: 1_000,
      startupGraceMs: 0,
      retryDelayMs: 100,
      stopTimeoutMs: 1_000,
      onEvents: (events) => told.push(...events),
      scheduler,
      ...overrides,
    });
  }
  /** Runs virtual time up to `ms` (the rule tick never ends on its own). */
  const runUntil = (ms: number) => {
    scheduler.maxFrames = ms;
    scheduler.flush();
  };
  const temp = (ts: number, tempC: number) => ({ kind: 'samples' as const, samples: [{ device: BATTERY, ts, metrics: { tempC } }] });

  it('makes one alert of a flapping condition, reopened, and tells integrations one firing until it stays resolved', () => {
    scheduler.run(() => {
      const alerting = start(rulesOf(60, overheat));
      // Hot, cool, hot, cool, hot again within a minute, then cool for good.
      const script: Array<[number, number]> = [[0, 60], [10_000, 40], [20_000, 60], [30_000, 40], [40_000, 60], [50_000, 40]];
      for (const [at, tempC] of script) scheduler.schedule(() => alerting.input(temp(at, tempC)), at);
      runUntil(60_000);
      void alerting.stop();
      const [alert, ...others] = store.alerts.listAlerts({ limit: 10 });
      expect(others).toEqual([]);
      expect(alert).toMatchObject({ ruleId: 'hot', subjectId: 'b1', state: 'resolved', reopenCount: 2 });
      const transitions = store.alerts.getAlert(alert!.id)!.transitions;
      expect(transitions.map((t) => t.kind)).toEqual(['fired', 'resolved', 'reopened', 'resolved', 'reopened', 'resolved']);
      // Integrations: the firing at once; the last resolution once it has held for the window.
      expect(store.alerts.transitionsToRoute(50_000, 100).map((e) => e.transition.kind)).toEqual(['fired']);
      expect(store.alerts.transitionsToRoute(110_000, 100).map((e) => e.transition.kind)).toEqual(['fired', 'resolved']);
      // And the process was told of every stored transition (to wake its notifier).
      expect(told.map((e) => e.transition.kind)).toEqual(transitions.map((t) => t.kind));
    });
  });

  it('opens a new alert when the condition comes back after the window', () => {
    scheduler.run(() => {
      const alerting = start(rulesOf(5, overheat));
      const script: Array<[number, number]> = [[0, 60], [1_000, 40], [10_000, 60]];
      for (const [at, tempC] of script) scheduler.schedule(() => alerting.input(temp(at, tempC)), at);
      runUntil(20_000);
      void alerting.stop();
      expect(store.alerts.listAlerts({ limit: 10 }).map((a) => [a.state, a.reopenCount])).toEqual([
        ['firing', 0],
        ['resolved', 0],
      ]);
    });
  });

  it('resumes on the same store after a restart without raising anything twice', () => {
    scheduler.run(() => {
      const offline = { id: 'offline', severity: 'warning', subject: 'device', summary: '{subjectId} offline', offline: { forSeconds: 5 } };
      const presences: DevicePresence[] = [{ device: BATTERY, presence: 'offline', sinceMs: 0 }];
      const first = start(rulesOf(0, overheat, offline), presences);
      scheduler.schedule(() => first.input(temp(500, 60)), 500);
      runUntil(6_500);
      void first.stop();
      // A second alerting on the same store (the process restarted), ticking on.
      const second = start(rulesOf(0, overheat, offline), presences);
      scheduler.schedule(() => second.input(temp(9_000, 61)), 9_000 - scheduler.now());
      runUntil(20_000);
      void second.stop();
      const alerts = store.alerts.listAlerts({ limit: 10 });
      expect(alerts.map((a) => `${a.ruleId}/${a.state}`).sort()).toEqual(['hot/firing', 'offline/firing']);
      for (const alert of alerts) expect(store.alerts.getAlert(alert.id)!.transitions.map((t) => t.kind)).toEqual(['fired']);
      expect(second.engine.statusOf('offline', 'b1')).toBe('active');
    });
  });

  it('resolves the open alerts of rules no longer in the rules file, once', () => {
    scheduler.run(() => {
      const first = start(rulesOf(0, overheat));
      scheduler.schedule(() => first.input(temp(0, 60)), 0);
      runUntil(1_000);
      void first.stop();
      void start(rulesOf(0, { ...overheat, id: 'renamed' })).stop();
      const [alert] = store.alerts.listAlerts({ limit: 10 });
      expect(alert).toMatchObject({ ruleId: 'hot', state: 'resolved', resolvedBy: 'rule', resolveReason: 'rule removed from the rules file' });
      expect(store.alerts.loadRuleStates()).toEqual([]);
    });
  });

  it('retries a busy store with backoff, and goes on past a refusal', () => {
    scheduler.run(() => {
      let busy = 3;
      let refuse = false;
      const alerts = store.alerts;
      // The real store behind a gate that answers as a busy or refusing database would.
      const flaky = Object.create(alerts) as typeof alerts;
      flaky.applyRuleResults = (input) => {
        if (busy-- > 0) throw new StoreError('unavailable', 'database is locked');
        if (refuse) throw new StoreError('invalid', 'refused');
        return alerts.applyRuleResults(input);
      };
      const counters = new IngestCounters();
      const alerting = start(rulesOf(0, overheat), [], { alerts: flaky, counters });
      scheduler.schedule(() => alerting.input(temp(0, 60)), 0);
      runUntil(500);
      // The store is busy (StoreError 'unavailable'): retried after 100, 200, 400 ms, then stored.
      expect(store.alerts.listAlerts({ limit: 10 })).toEqual([]);
      expect(counters.alertWriteFailures).toBe(3);
      runUntil(1_000);
      expect(store.alerts.listAlerts({ limit: 10 }).map((a) => a.state)).toEqual(['firing']);
      // Refused outright (not a store error): counted, and the stream goes on.
      refuse = true;
      scheduler.schedule(() => alerting.input(temp(1_000, 40)), 1_000 - scheduler.now());
      runUntil(2_000);
      expect(counters.alertOutputsRefused).toBe(1);
      refuse = false;
      scheduler.schedule(() => alerting.input(temp(3_000, 60)), 3_000 - scheduler.now());
      scheduler.schedule(() => alerting.input(temp(4_000, 40)), 4_000 - scheduler.now());
      runUntil(5_000);
      void alerting.stop();
      expect(store.alerts.listAlerts({ limit: 10 }).map((a) => a.state)).toEqual(['resolved']);
    });
  });
});
