/**
 * Contract of AlertStore and AlertOutbox, run by every implementation
 * against a fresh, empty store per test: the alert lifecycle (one open
 * alert per (rule, subject), fire/clear, flapping, operators' actions),
 * rule subject states, the bounds on what callers pass, and the
 * notification outbox (held resolutions, idempotent routing, deliveries in
 * order per (alert, integration), retries and dead deliveries).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alertEventId, type AlertEvent } from '../../protocol/index.ts';
import { StoreError, type AlertOutbox, type AlertStore, type RuleSignal, type RuleSubjectState } from '../types.ts';
import type { OpenStore } from './open-store.ts';

type Alerts = AlertStore & AlertOutbox;

/** The flapping window of the signals below. */
const FLAP_MS = 60_000;

function signal(values: Partial<RuleSignal> & Pick<RuleSignal, 'signal' | 'atMs'>): RuleSignal {
  return {
    ruleId: 'soc-low',
    severity: 'warning',
    subjectKind: 'device',
    subjectId: 'dev-1',
    summary: 'SoC low on dev-1',
    value: 5,
    labels: { siteId: 'site-1', deviceType: 'battery' },
    flapWindowMs: FLAP_MS,
    ...values,
  };
}

const fire = (atMs: number, values: Partial<RuleSignal> = {}): RuleSignal => signal({ signal: 'fire', atMs, ...values });
/** A clear as rules send it: no summary, the value that cleared. */
const clear = (atMs: number, values: Partial<RuleSignal> = {}): RuleSignal => signal({ signal: 'clear', atMs, summary: '', value: 1, ...values });

function expectStoreError(fn: () => unknown, code: StoreError['code']): StoreError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StoreError);
  expect((caught as StoreError).code).toBe(code);
  return caught as StoreError;
}

function only<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  return items[0]!;
}

export function describeAlertStoreContract(name: string, open: OpenStore<Alerts>): void {
  describe(`AlertStore and AlertOutbox contract: ${name}`, () => {
    let alerts: Alerts;
    let close: () => Promise<void>;

    beforeEach(async () => {
      ({ store: alerts, close } = await open());
    });

    afterEach(async () => {
      await close();
    });

    /** Applies signals alone. */
    function apply(...signals: RuleSignal[]): AlertEvent[] {
      return alerts.applyRuleResults({ signals });
    }

    /** Routes everything there is to route at nowMs to `integrations`; returns what was routed. */
    function routeAll(nowMs: number, integrations: readonly string[] = []): AlertEvent[] {
      const events = alerts.transitionsToRoute(nowMs, 1_000);
      alerts.routeTransitions(
        events.map((e) => ({ seq: e.transition.seq, integrations })),
        nowMs,
      );
      return events;
    }

    describe('lifecycle', () => {
      it('opens a new firing alert on fire, with a `fired` transition told at once', () => {
        const event = only(apply(fire(1_000)));
        const { alert, transition } = event;
        expect(alert.id).toMatch(/^[1-9][0-9]*$/);
        expect(alert).toEqual({
          id: alert.id,
          ruleId: 'soc-low',
          severity: 'warning',
          subjectKind: 'device',
          subjectId: 'dev-1',
          state: 'firing',
          summary: 'SoC low on dev-1',
          value: 5,
          labels: { siteId: 'site-1', deviceType: 'battery' },
          openedAtMs: 1_000,
          firedAtMs: 1_000,
          acknowledgedAtMs: null,
          acknowledgedBy: null,
          acknowledgeNote: null,
          resolvedAtMs: null,
          resolvedBy: null,
          resolveReason: null,
          reopenCount: 0,
        });
        expect(transition).toEqual({ seq: transition.seq, alertId: alert.id, kind: 'fired', atMs: 1_000, actor: 'rule', note: null, notify: true });
        expect(event.eventId).toBe(alertEventId(alert.id, transition.seq));

        expect(alerts.getAlert(alert.id)).toEqual({ ...alert, transitions: [transition] });
        expect(alerts.transitionsToRoute(1_000, 10)).toEqual([event]);
        expect(alerts.listOpenAlerts()).toEqual([alert]);
      });

      it('does nothing on a fire while the alert is open, nor on a clear with no open alert', () => {
        expect(apply(clear(500))).toEqual([]);
        const [first] = apply(fire(1_000));
        expect(apply(fire(1_500, { summary: 'again', value: 3 }))).toEqual([]);
        alerts.acknowledgeAlert(first!.alert.id, { actor: 'ops', note: null, atMs: 1_600 });
        expect(apply(fire(1_700))).toEqual([]);
        const listed = alerts.listAlerts({ limit: 10 });
        expect(listed).toHaveLength(1);
        expect(listed[0]).toMatchObject({ id: first!.alert.id, state: 'acknowledged', summary: 'SoC low on dev-1', value: 5, firedAtMs: 1_000 });
        expect(alerts.getAlert(first!.alert.id)?.transitions.map((t) => t.kind)).toEqual(['fired', 'acknowledged']);
      });

      it('resolves by the rule on clear, keeping the summary and value of the firing, told only once the flapping window has passed', () => {
        const [fired] = apply(fire(1_000));
        routeAll(1_000);
        const resolved = only(apply(clear(2_000)));
        expect(resolved.alert).toEqual({ ...fired!.alert, state: 'resolved', resolvedAtMs: 2_000, resolvedBy: 'rule', resolveReason: null });
        expect(resolved.transition).toMatchObject({ kind: 'resolved', atMs: 2_000, actor: 'rule', note: null, notify: true });
        expect(resolved.transition.seq).toBeGreaterThan(fired!.transition.seq);

        expect(alerts.transitionsToRoute(2_000, 10)).toEqual([]);
        expect(alerts.transitionsToRoute(2_000 + FLAP_MS - 1, 10)).toEqual([]);
        expect(alerts.nextDueAtMs()).toBe(2_000 + FLAP_MS);
        expect(alerts.transitionsToRoute(2_000 + FLAP_MS, 10)).toEqual([resolved]);
        expect(alerts.listOpenAlerts()).toEqual([]);
        // A second clear finds no open alert.
        expect(apply(clear(2_500))).toEqual([]);
      });

      it('tells a rule’s resolution at once when the flapping window is 0, and a later fire opens a new alert', () => {
        const [fired] = apply(fire(1_000, { flapWindowMs: 0 }));
        const resolved = only(apply(clear(2_000, { flapWindowMs: 0 })));
        expect(alerts.transitionsToRoute(2_000, 10).map((e) => e.transition.seq)).toEqual([fired!.transition.seq, resolved.transition.seq]);
        const again = only(apply(fire(2_000, { flapWindowMs: 0 })));
        expect(again.transition.kind).toBe('fired');
        expect(Number(again.alert.id)).toBeGreaterThan(Number(fired!.alert.id));
      });

      it('reopens the same alert on a fire within the flapping window: the held resolution is cancelled and the reopening is silent', () => {
        const [fired] = apply(fire(1_000));
        routeAll(1_000, ['hook']);
        const acknowledged = alerts.acknowledgeAlert(fired!.alert.id, { actor: 'ops', note: 'looking', atMs: 1_500 });
        const [resolved] = apply(clear(2_000));
        const reopened = only(apply(fire(2_000 + FLAP_MS - 1, { summary: 'SoC very low on dev-1', value: 2, labels: { siteId: 'site-1' } })));

        // The resolution nobody heard of is taken back whole: the acknowledgement stands.
        expect(reopened.alert).toEqual({
          ...fired!.alert,
          state: 'acknowledged',
          summary: 'SoC very low on dev-1',
          value: 2,
          labels: { siteId: 'site-1' },
          openedAtMs: 1_000,
          firedAtMs: 2_000 + FLAP_MS - 1,
          acknowledgedAtMs: 1_500,
          acknowledgedBy: 'ops',
          acknowledgeNote: 'looking',
          reopenCount: 1,
        });
        expect(reopened.transition).toMatchObject({ alertId: fired!.alert.id, kind: 'reopened', actor: 'rule', notify: false });

        const stored = alerts.getAlert(fired!.alert.id)!;
        expect(stored.transitions.map((t) => [t.seq, t.kind, t.notify])).toEqual([
          [fired!.transition.seq, 'fired', true],
          [acknowledged.transition.seq, 'acknowledged', true],
          // Cancelled: integrations never hear of it.
          [resolved!.transition.seq, 'resolved', false],
          [reopened.transition.seq, 'reopened', false],
        ]);
        // Integrations heard `fired`, will hear `acknowledged`, and neither the resolution nor the reopening.
        expect(alerts.transitionsToRoute(10 * FLAP_MS, 10).map((e) => e.transition.seq)).toEqual([acknowledged.transition.seq]);
        routeAll(10 * FLAP_MS, ['hook']);
        expect(alerts.transitionsToRoute(10 * FLAP_MS, 10)).toEqual([]);

        // It flaps again: reopened once more, the count goes on.
        apply(clear(3 * FLAP_MS));
        const second = only(apply(fire(3 * FLAP_MS + 10)));
        expect(second.alert).toMatchObject({ id: fired!.alert.id, reopenCount: 2 });
        expect(second.transition.notify).toBe(false);
        expect(alerts.listAlerts({ limit: 10 })).toHaveLength(1);
      });

      it('tells a reopening when the resolution was told: after an operator’s resolution, or a rule’s whose window had passed when it was routed', () => {
        const [fired] = apply(fire(1_000));
        const resolvedByOperator = alerts.resolveAlert(fired!.alert.id, { actor: 'ops', reason: 'replaced the fuse', atMs: 2_000 });
        expect(alerts.transitionsToRoute(2_000, 10).map((e) => e.transition.seq)).toContain(resolvedByOperator.transition.seq);
        // The rule clears afterwards: nothing is open, nothing happens.
        expect(apply(clear(2_500))).toEqual([]);
        const reopened = only(apply(fire(2_000 + FLAP_MS / 2)));
        expect(reopened.alert).toMatchObject({ id: fired!.alert.id, state: 'firing', reopenCount: 1, resolvedBy: null, resolveReason: null, resolvedAtMs: null });
        expect(reopened.transition).toMatchObject({ kind: 'reopened', notify: true });
        expect(alerts.transitionsToRoute(2_000 + FLAP_MS / 2, 10).map((e) => e.transition.seq)).toContain(reopened.transition.seq);

        // A rule's resolution routed once its window passed, then a late fire timed within the window.
        routeAll(2_000 + FLAP_MS / 2);
        const [resolvedByRule] = apply(clear(100_000));
        routeAll(100_000 + FLAP_MS, ['hook']);
        expect(alerts.countDeliveries()).toEqual({ hook: { pending: 1, delivered: 0, dead: 0 } });
        const late = only(apply(fire(100_000 + FLAP_MS - 5)));
        expect(late.transition).toMatchObject({ kind: 'reopened', notify: true });
        expect(alerts.getAlert(fired!.alert.id)!.transitions.find((t) => t.seq === resolvedByRule!.transition.seq)?.notify).toBe(true);
      });

      it('opens a new alert with a new id on a fire at or after the end of the flapping window; the old resolution is still told', () => {
        const [fired] = apply(fire(1_000));
        const [resolved] = apply(clear(2_000));
        const next = only(apply(fire(2_000 + FLAP_MS)));
        expect(next.transition.kind).toBe('fired');
        expect(next.alert.id).not.toBe(fired!.alert.id);
        expect(Number(next.alert.id)).toBeGreaterThan(Number(fired!.alert.id));
        expect(next.alert).toMatchObject({ state: 'firing', openedAtMs: 2_000 + FLAP_MS, reopenCount: 0 });
        expect(alerts.getAlert(fired!.alert.id)).toMatchObject({ state: 'resolved', resolvedAtMs: 2_000 });
        expect(alerts.transitionsToRoute(2_000 + FLAP_MS, 10).map((e) => e.transition.seq)).toEqual([
          fired!.transition.seq,
          resolved!.transition.seq,
          next.transition.seq,
        ]);
        expect(alerts.listAlerts({ limit: 10 }).map((a) => a.id)).toEqual([next.alert.id, fired!.alert.id]);
      });

      it('keeps one alert per (rule, subject) and applies the signals of one call in order', () => {
        const events = apply(
          fire(1_000),
          fire(1_000, { subjectId: 'dev-2' }),
          fire(1_000, { ruleId: 'offline', severity: 'critical' }),
          fire(1_100),
          clear(1_200),
          fire(1_300),
        );
        expect(events.map((e) => [e.alert.ruleId, e.alert.subjectId, e.transition.kind, e.transition.notify])).toEqual([
          ['soc-low', 'dev-1', 'fired', true],
          ['soc-low', 'dev-2', 'fired', true],
          ['offline', 'dev-1', 'fired', true],
          ['soc-low', 'dev-1', 'resolved', true],
          ['soc-low', 'dev-1', 'reopened', false],
        ]);
        const seqs = events.map((e) => e.transition.seq);
        expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
        expect(events[3]!.alert.id).toBe(events[0]!.alert.id);
        expect(new Set(events.slice(0, 3).map((e) => e.alert.id)).size).toBe(3);
        expect(alerts.listOpenAlerts()).toHaveLength(3);
      });
    });

    describe('operators', () => {
      it('acknowledges a firing alert once, told at once; a second acknowledgement is a conflict', () => {
        const [fired] = apply(fire(1_000));
        const id = fired!.alert.id;
        const event = alerts.acknowledgeAlert(id, { actor: 'ops@example', note: 'on it', atMs: 1_500 });
        expect(event.alert).toEqual({ ...fired!.alert, state: 'acknowledged', acknowledgedAtMs: 1_500, acknowledgedBy: 'ops@example', acknowledgeNote: 'on it' });
        expect(event.transition).toMatchObject({ alertId: id, kind: 'acknowledged', atMs: 1_500, actor: 'ops@example', note: 'on it', notify: true });
        expect(event.eventId).toBe(alertEventId(id, event.transition.seq));
        expect(alerts.transitionsToRoute(1_500, 10).map((e) => e.transition.kind)).toEqual(['fired', 'acknowledged']);

        const conflict = expectStoreError(() => alerts.acknowledgeAlert(id, { actor: 'someone-else', note: null, atMs: 1_600 }), 'conflict');
        expect(conflict.message).toMatch(/acknowledged/);
        expect(alerts.getAlert(id)).toMatchObject({ acknowledgedBy: 'ops@example' });
        expect(alerts.getAlert(id)!.transitions).toHaveLength(2);
      });

      it('resolves an open alert with a reason, keeping its acknowledgement, told at once; resolving or acknowledging it again is a conflict', () => {
        const [firing] = apply(fire(1_000));
        const [other] = apply(fire(1_000, { subjectId: 'dev-2' }));
        alerts.acknowledgeAlert(firing!.alert.id, { actor: 'ops', note: null, atMs: 1_100 });

        const resolved = alerts.resolveAlert(firing!.alert.id, { actor: 'lead', reason: 'battery replaced', atMs: 1_200 });
        expect(resolved.alert).toMatchObject({
          state: 'resolved',
          acknowledgedBy: 'ops',
          acknowledgedAtMs: 1_100,
          resolvedBy: 'lead',
          resolvedAtMs: 1_200,
          resolveReason: 'battery replaced',
        });
        expect(resolved.transition).toMatchObject({ kind: 'resolved', actor: 'lead', note: 'battery replaced', notify: true });
        // Told at once, not held like a rule's resolution.
        expect(alerts.transitionsToRoute(1_200, 10).map((e) => e.transition.seq)).toContain(resolved.transition.seq);

        // A firing alert is resolved directly too.
        expect(alerts.resolveAlert(other!.alert.id, { actor: 'lead', reason: 'test', atMs: 1_300 }).alert).toMatchObject({ state: 'resolved', acknowledgedBy: null });

        expect(expectStoreError(() => alerts.resolveAlert(firing!.alert.id, { actor: 'lead', reason: 'again', atMs: 1_400 }), 'conflict').message).toMatch(/resolved/);
        expect(expectStoreError(() => alerts.acknowledgeAlert(firing!.alert.id, { actor: 'ops', note: null, atMs: 1_400 }), 'conflict').message).toMatch(/resolved/);
        expect(alerts.getAlert(firing!.alert.id)!.transitions.map((t) => t.kind)).toEqual(['fired', 'acknowledged', 'resolved']);
        expect(alerts.countOpenAlerts().byState).toEqual({ firing: 0, acknowledged: 0 });
      });

      it('answers not-found for unknown and malformed ids, and getAlert nothing', () => {
        const [fired] = apply(fire(1_000));
        const unknown = String(Number(fired!.alert.id) + 1000);
        for (const id of [unknown, 'abc', '', '0', '-1', '1.5', ` ${fired!.alert.id}`, `0${fired!.alert.id}`, '1e3', '99999999999999999999']) {
          expectStoreError(() => alerts.acknowledgeAlert(id, { actor: 'ops', note: null, atMs: 2_000 }), 'not-found');
          expectStoreError(() => alerts.resolveAlert(id, { actor: 'ops', reason: 'x', atMs: 2_000 }), 'not-found');
          expect(alerts.getAlert(id)).toBeUndefined();
        }
        expect(alerts.getAlert(fired!.alert.id)?.state).toBe('firing');
      });
    });

    describe('rule subject states', () => {
      const pending: RuleSubjectState = { ruleId: 'soc-low', subjectId: 'dev-1', status: 'pending', sinceMs: 900, data: {} };

      it('saves, updates and removes states in the same call as the signals, and loads them all', () => {
        expect(alerts.loadRuleStates()).toEqual([]);
        alerts.applyRuleResults({ signals: [], save: [pending, { ...pending, subjectId: 'dev-2', data: { lastValue: 3.5, lastTs: 800, frozen: false, note: 'x', none: null } }] });
        expect(alerts.loadRuleStates()).toEqual(
          expect.arrayContaining([pending, { ...pending, subjectId: 'dev-2', data: { lastValue: 3.5, lastTs: 800, frozen: false, note: 'x', none: null } }]),
        );

        const events = alerts.applyRuleResults({
          signals: [fire(1_000)],
          save: [{ ...pending, status: 'active' }],
          remove: [{ ruleId: 'soc-low', subjectId: 'dev-2' }, { ruleId: 'unknown', subjectId: 'nothing' }],
        });
        expect(events).toHaveLength(1);
        expect(alerts.loadRuleStates()).toEqual([{ ...pending, status: 'active' }]);

        alerts.applyRuleResults({ signals: [clear(2_000)], remove: [{ ruleId: 'soc-low', subjectId: 'dev-1' }] });
        expect(alerts.loadRuleStates()).toEqual([]);
        expect(alerts.listOpenAlerts()).toEqual([]);
      });

      it('ends a key that is both saved and removed in one call removed', () => {
        alerts.applyRuleResults({ signals: [], save: [pending], remove: [{ ruleId: 'soc-low', subjectId: 'dev-1' }] });
        expect(alerts.loadRuleStates()).toEqual([]);
      });
    });

    describe('input checks and bounds', () => {
      const good = fire(1_000, { subjectId: 'dev-ok' });
      const state: RuleSubjectState = { ruleId: 'soc-low', subjectId: 'dev-ok', status: 'active', sinceMs: 900, data: {} };

      it('refuses bad signals and states with invalid, writing nothing of the call', () => {
        const bad: Array<{ what: string; input: Parameters<AlertStore['applyRuleResults']>[0] }> = [
          { what: 'severity', input: { signals: [good, fire(1_000, { severity: 'fatal' as RuleSignal['severity'] })] } },
          { what: 'subject kind', input: { signals: [good, fire(1_000, { subjectKind: 'planet' as RuleSignal['subjectKind'] })] } },
          { what: 'signal', input: { signals: [good, { ...fire(1_000), signal: 'maybe' as RuleSignal['signal'] }] } },
          { what: 'fractional time', input: { signals: [good, fire(1_000.5)] } },
          { what: 'unsafe time', input: { signals: [good, fire(1e20)] } },
          { what: 'negative window', input: { signals: [good, fire(1_000, { flapWindowMs: -1 })] } },
          { what: 'NaN value', input: { signals: [good, fire(1_000, { value: Number.NaN })] } },
          { what: 'infinite value', input: { signals: [good, fire(1_000, { value: Number.POSITIVE_INFINITY })] } },
          { what: 'empty subject', input: { signals: [good, fire(1_000, { subjectId: '' })] } },
          { what: 'too many labels', input: { signals: [good, fire(1_000, { labels: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) })] } },
          { what: 'long label value', input: { signals: [good, fire(1_000, { labels: { siteId: 'x'.repeat(201) } })] } },
          { what: 'long label name', input: { signals: [good, fire(1_000, { labels: { ['k'.repeat(201)]: 'v' } })] } },
          { what: 'label not a string', input: { signals: [good, fire(1_000, { labels: { n: 1 as unknown as string } })] } },
          { what: 'state data over 1 KiB', input: { signals: [good], save: [state, { ...state, subjectId: 'dev-2', data: { blob: 'x'.repeat(1_100) } }] } },
          { what: 'state data nested', input: { signals: [good], save: [{ ...state, data: { nested: { a: 1 } as unknown as string } }] } },
          { what: 'state data NaN', input: { signals: [good], save: [{ ...state, data: { v: Number.NaN } }] } },
          { what: 'state status', input: { signals: [good], save: [{ ...state, status: 'asleep' as RuleSubjectState['status'] }] } },
          { what: 'state time', input: { signals: [good], save: [{ ...state, sinceMs: 1.5 }] } },
          { what: 'removed key', input: { signals: [good], remove: [{ ruleId: 'soc-low', subjectId: '' }] } },
        ];
        for (const { what, input } of bad) {
          const error = expectStoreError(() => alerts.applyRuleResults(input), 'invalid');
          expect(error.message, what).not.toBe('');
        }
        expect(alerts.listAlerts({ limit: 10 })).toEqual([]);
        expect(alerts.loadRuleStates()).toEqual([]);
        expect(alerts.transitionsToRoute(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);

        // State data of exactly 1 KiB as JSON passes.
        const exact = { blob: 'x'.repeat(1_024 - JSON.stringify({ blob: '' }).length) };
        expect(Buffer.byteLength(JSON.stringify(exact))).toBe(1_024);
        alerts.applyRuleResults({ signals: [good], save: [{ ...state, data: exact }] });
        expect(alerts.loadRuleStates()).toEqual([{ ...state, data: exact }]);
      });

      it('refuses operators’ input and outbox arguments that are not integers or names, with invalid', () => {
        const [fired] = apply(good);
        const id = fired!.alert.id;
        expectStoreError(() => alerts.acknowledgeAlert(id, { actor: '', note: null, atMs: 1 }), 'invalid');
        expectStoreError(() => alerts.acknowledgeAlert(id, { actor: 'a'.repeat(201), note: null, atMs: 1 }), 'invalid');
        expectStoreError(() => alerts.acknowledgeAlert(id, { actor: 'ops', note: null, atMs: 1.5 }), 'invalid');
        expectStoreError(() => alerts.resolveAlert(id, { actor: 'ops', reason: 'x', atMs: Number.NaN }), 'invalid');
        expectStoreError(() => alerts.listAlerts({ limit: -1 }), 'invalid');
        expectStoreError(() => alerts.listAlerts({ limit: 10, state: 'sleeping' as 'open' }), 'invalid');
        expectStoreError(() => alerts.listAlerts({ limit: 10, severity: 'fatal' as 'info' }), 'invalid');
        expectStoreError(() => alerts.listAlerts({ limit: 10, beforeId: 'abc' }), 'invalid');
        expectStoreError(() => alerts.transitionsToRoute(1.5, 10), 'invalid');
        expectStoreError(() => alerts.routeTransitions([{ seq: fired!.transition.seq, integrations: [''] }], 1_000), 'invalid');
        expectStoreError(() => alerts.dueDeliveries(1_000, -1), 'invalid');
        expect(alerts.getAlert(id)!.transitions).toHaveLength(1);
        expect(alerts.countDeliveries()).toEqual({});
      });

      it('cuts the summary, acknowledgement note and resolution reason to 1,000 characters, and takes 16 labels of 200', () => {
        const long = 'é'.repeat(1_500);
        const labels = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`${i}`.padEnd(200, 'k'), 'v'.repeat(200)]));
        const [fired] = apply(fire(1_000, { summary: long, labels }));
        expect(fired!.alert.summary).toBe(long.slice(0, 1_000));
        expect(fired!.alert.labels).toEqual(labels);
        expect(alerts.getAlert(fired!.alert.id)).toMatchObject({ summary: long.slice(0, 1_000), labels });
        const acknowledged = alerts.acknowledgeAlert(fired!.alert.id, { actor: 'ops', note: long, atMs: 1_100 });
        expect(acknowledged.alert.acknowledgeNote).toBe(long.slice(0, 1_000));
        expect(acknowledged.transition.note).toBe(long.slice(0, 1_000));
        const resolved = alerts.resolveAlert(fired!.alert.id, { actor: 'ops', reason: `${long}!`, atMs: 1_200 });
        expect(resolved.alert.resolveReason).toBe(long.slice(0, 1_000));
        expect(alerts.getAlert(fired!.alert.id)!.transitions.map((t) => t.note?.length ?? 0)).toEqual([0, 1_000, 1_000]);
        // Never cut inside a surrogate pair.
        const emoji = `${'a'.repeat(999)}😀tail`;
        const [second] = apply(fire(1_000, { subjectId: 'dev-2', summary: emoji }));
        expect(second!.alert.summary).toBe('a'.repeat(999));
      });
    });

    describe('listing and counting', () => {
      it('lists newest first with filters, `open` meaning firing or acknowledged, pages with beforeId, and counts open alerts', () => {
        const ids: Record<string, string> = {};
        const add = (key: string, values: Partial<RuleSignal>) => (ids[key] = apply(fire(1_000, values))[0]!.alert.id);
        add('a', { subjectId: 'dev-1', severity: 'warning' });
        add('b', { subjectId: 'dev-2', severity: 'critical', ruleId: 'offline' });
        add('c', { subjectId: 'dev-3', severity: 'info' });
        add('d', { subjectId: 'dev-1', severity: 'critical', ruleId: 'offline' });
        add('e', { subjectId: 'dev-4', severity: 'warning' });
        alerts.acknowledgeAlert(ids.b!, { actor: 'ops', note: null, atMs: 1_100 });
        alerts.acknowledgeAlert(ids.e!, { actor: 'ops', note: null, atMs: 1_100 });
        alerts.resolveAlert(ids.c!, { actor: 'ops', reason: 'noise', atMs: 1_200 });
        apply(clear(1_300, { subjectId: 'dev-1', ruleId: 'offline', severity: 'critical' }));
        const keysOf = (list: { id: string }[]) => list.map((a) => Object.keys(ids).find((k) => ids[k] === a.id));

        expect(keysOf(alerts.listAlerts({ limit: 10 }))).toEqual(['e', 'd', 'c', 'b', 'a']);
        expect(keysOf(alerts.listAlerts({ limit: 10, state: 'open' }))).toEqual(['e', 'b', 'a']);
        expect(keysOf(alerts.listAlerts({ limit: 10, state: 'firing' }))).toEqual(['a']);
        expect(keysOf(alerts.listAlerts({ limit: 10, state: 'acknowledged' }))).toEqual(['e', 'b']);
        expect(keysOf(alerts.listAlerts({ limit: 10, state: 'resolved' }))).toEqual(['d', 'c']);
        expect(keysOf(alerts.listAlerts({ limit: 10, severity: 'critical' }))).toEqual(['d', 'b']);
        expect(keysOf(alerts.listAlerts({ limit: 10, subjectId: 'dev-1' }))).toEqual(['d', 'a']);
        expect(keysOf(alerts.listAlerts({ limit: 10, ruleId: 'offline' }))).toEqual(['d', 'b']);
        expect(keysOf(alerts.listAlerts({ limit: 10, ruleId: 'offline', state: 'open', severity: 'critical', subjectId: 'dev-2' }))).toEqual(['b']);
        expect(alerts.listAlerts({ limit: 10, subjectId: 'nobody' })).toEqual([]);

        const page = alerts.listAlerts({ limit: 2 });
        expect(keysOf(page)).toEqual(['e', 'd']);
        const next = alerts.listAlerts({ limit: 2, beforeId: page.at(-1)!.id });
        expect(keysOf(next)).toEqual(['c', 'b']);
        expect(keysOf(alerts.listAlerts({ limit: 2, beforeId: next.at(-1)!.id }))).toEqual(['a']);
        expect(keysOf(alerts.listAlerts({ limit: 10, state: 'open', beforeId: ids.e! }))).toEqual(['b', 'a']);
        expect(alerts.listAlerts({ limit: 0 })).toEqual([]);

        expect(keysOf(alerts.listOpenAlerts())).toEqual(['e', 'b', 'a']);
        expect(alerts.countOpenAlerts()).toEqual({ bySeverity: { critical: 1, warning: 2, info: 0 }, byState: { firing: 1, acknowledged: 2 } });
        expect(alerts.listAlerts({ limit: 10 }).find((a) => a.id === ids.b)).toEqual(alerts.listOpenAlerts().find((a) => a.id === ids.b));
      });

      it('follows every transition after a seq, told or not, oldest first, limited', () => {
        expect(alerts.latestTransitionSeq()).toBe(0);
        expect(alerts.transitionsAfter(0, 10)).toEqual([]);
        const fired = only(apply(fire(1_000)));
        const acked = alerts.acknowledgeAlert(fired.alert.id, { actor: 'ops', note: 'looking', atMs: 1_100 });
        const resolved = only(apply(clear(1_200)));
        const reopened = only(apply(fire(1_300)));
        // The reopening cancelled the held resolution, which is now never told.
        const all = [fired, acked, { ...resolved, transition: { ...resolved.transition, notify: false } }, reopened];
        expect(alerts.latestTransitionSeq()).toBe(reopened.transition.seq);
        expect(alerts.transitionsAfter(0, 10)).toEqual(all);
        expect(alerts.transitionsAfter(fired.transition.seq, 2)).toEqual(all.slice(1, 3));
        expect(alerts.transitionsAfter(reopened.transition.seq, 10)).toEqual([]);
        expect(alerts.transitionsAfter(0, 10).map((e) => [e.transition.kind, e.alert.state])).toEqual([
          ['fired', 'firing'],
          ['acknowledged', 'acknowledged'],
          ['resolved', 'resolved'],
          ['reopened', reopened.alert.state],
        ]);
        expectStoreError(() => alerts.transitionsAfter(0.5, 10), 'invalid');
        expectStoreError(() => alerts.transitionsAfter(0, 0), 'invalid');
        expectStoreError(() => alerts.transitionsAfter(0, 1_001), 'invalid');
      });

      it('counts nothing open in an empty store', () => {
        expect(alerts.countOpenAlerts()).toEqual({ bySeverity: { critical: 0, warning: 0, info: 0 }, byState: { firing: 0, acknowledged: 0 } });
        expect(alerts.listOpenAlerts()).toEqual([]);
        expect(alerts.nextDueAtMs()).toBeNull();
        expect(alerts.countDeliveries()).toEqual({});
      });
    });

    describe('outbox', () => {
      it('hands out each transition with the alert as it was right after it, oldest first, limited', () => {
        const [fired] = apply(fire(1_000));
        const acknowledged = alerts.acknowledgeAlert(fired!.alert.id, { actor: 'ops', note: null, atMs: 1_100 });
        const [other] = apply(fire(1_200, { subjectId: 'dev-2' }));
        const toRoute = alerts.transitionsToRoute(1_200, 10);
        expect(toRoute).toEqual([fired, acknowledged, other]);
        expect(toRoute[0]!.alert.state).toBe('firing');
        expect(toRoute[1]!.alert.state).toBe('acknowledged');
        expect(alerts.transitionsToRoute(1_200, 2)).toEqual([fired, acknowledged]);
        expect(alerts.transitionsToRoute(1_200, 0)).toEqual([]);
      });

      it('routes idempotently: one pending delivery per integration, and a transition routed, cancelled or unknown is skipped', () => {
        const [a] = apply(fire(1_000));
        const [b] = apply(fire(1_000, { subjectId: 'dev-2' }));
        alerts.routeTransitions(
          [
            { seq: a!.transition.seq, integrations: ['hook', 'chat', 'hook'] },
            { seq: b!.transition.seq, integrations: [] },
          ],
          1_000,
        );
        expect(alerts.countDeliveries()).toEqual({ hook: { pending: 1, delivered: 0, dead: 0 }, chat: { pending: 1, delivered: 0, dead: 0 } });
        // Both are routed, including the one no integration matched.
        expect(alerts.transitionsToRoute(1_000, 10)).toEqual([]);

        alerts.routeTransitions([{ seq: a!.transition.seq, integrations: ['hook', 'chat', 'pager'] }, { seq: b!.transition.seq, integrations: ['hook'] }], 1_000);
        alerts.routeTransitions([{ seq: 1_000_000, integrations: ['hook'] }], 1_000);
        alerts.routeTransitions([], 1_000);
        expect(alerts.countDeliveries()).toEqual({ hook: { pending: 1, delivered: 0, dead: 0 }, chat: { pending: 1, delivered: 0, dead: 0 } });
        const due = alerts.dueDeliveries(1_000, 10);
        expect(due.map((d) => [d.integration, d.event])).toEqual([
          ['hook', a],
          ['chat', a],
        ]);
        expect(due[0]).toMatchObject({ attempts: 0, nextAttemptAtMs: 1_000, lastError: null });
      });

      it('does not route a held resolution that a reopening cancelled after it was listed, nor one whose window has not passed', () => {
        apply(fire(1_000));
        routeAll(1_000);
        const [resolved] = apply(clear(2_000));
        expect(alerts.transitionsToRoute(2_000 + FLAP_MS, 10)).toEqual([resolved]);
        // Routing before the window passed does nothing.
        alerts.routeTransitions([{ seq: resolved!.transition.seq, integrations: ['hook'] }], 2_000 + FLAP_MS - 1);
        expect(alerts.countDeliveries()).toEqual({});
        // A reopening (timed within the window) lands between listing and routing.
        apply(fire(2_000 + FLAP_MS - 1));
        alerts.routeTransitions([{ seq: resolved!.transition.seq, integrations: ['hook'] }], 2_000 + FLAP_MS);
        expect(alerts.countDeliveries()).toEqual({});
        expect(alerts.transitionsToRoute(10 * FLAP_MS, 10)).toEqual([]);
        expect(alerts.nextDueAtMs()).toBeNull();
      });

      it('hands out deliveries in order per (alert, integration): a failing first one holds back the next of its pair only', () => {
        const [a1] = apply(fire(1_000));
        const a2 = alerts.acknowledgeAlert(a1!.alert.id, { actor: 'ops', note: null, atMs: 1_100 });
        const [b1] = apply(fire(1_200, { subjectId: 'dev-2' }));
        routeAll(2_000, ['hook', 'chat']);
        const key = (d: { integration: string; event: AlertEvent }) => `${d.integration}:${d.event.eventId}`;
        const k = (integration: string, e: AlertEvent) => `${integration}:${e.eventId}`;

        let due = alerts.dueDeliveries(2_000, 10);
        expect(due.map(key)).toEqual([k('hook', a1!), k('chat', a1!), k('hook', b1!), k('chat', b1!)]);
        const byKey = new Map(due.map((d) => [key(d), d]));

        alerts.markFailed(byKey.get(k('hook', a1!))!.id, { atMs: 2_000, error: 'HTTP 503', nextAttemptAtMs: 5_000 });
        alerts.markDelivered(byKey.get(k('chat', a1!))!.id, 2_000);
        due = alerts.dueDeliveries(2_000, 10);
        // chat hears a2 now; hook waits for a1, but b1 goes on for both.
        expect(due.map(key)).toEqual([k('chat', a2), k('hook', b1!), k('chat', b1!)]);
        expect(alerts.dueDeliveries(2_000, 1).map(key)).toEqual([k('chat', a2)]);
        expect(alerts.nextDueAtMs()).toBe(2_000);

        for (const d of due) alerts.markDelivered(d.id, 2_100);
        expect(alerts.dueDeliveries(4_999, 10)).toEqual([]);
        // Only the failed one is due, later; the one behind it does not count.
        expect(alerts.nextDueAtMs()).toBe(5_000);
        const retry = only(alerts.dueDeliveries(5_000, 10));
        expect(retry).toMatchObject({ integration: 'hook', attempts: 1, nextAttemptAtMs: 5_000, lastError: 'HTTP 503' });
        expect(retry.event).toEqual(a1);
        alerts.markDelivered(retry.id, 5_000);
        expect(alerts.dueDeliveries(5_000, 10).map(key)).toEqual([k('hook', a2)]);
        expect(alerts.countDeliveries()).toEqual({ hook: { pending: 1, delivered: 2, dead: 0 }, chat: { pending: 0, delivered: 3, dead: 0 } });
      });

      it('gives a delivery up as dead on markFailed with no next attempt, which lets the next one of its pair go; keeps 1,000 characters of the error', () => {
        const [a1] = apply(fire(1_000));
        const a2 = alerts.acknowledgeAlert(a1!.alert.id, { actor: 'ops', note: null, atMs: 1_100 });
        routeAll(1_100, ['hook']);
        const first = only(alerts.dueDeliveries(1_100, 10));
        alerts.markFailed(first.id, { atMs: 1_100, error: 'x'.repeat(1_500), nextAttemptAtMs: 1_200 });
        const again = only(alerts.dueDeliveries(1_200, 10));
        expect(again).toMatchObject({ id: first.id, attempts: 1, lastError: 'x'.repeat(1_000) });
        alerts.markFailed(first.id, { atMs: 1_200, error: 'HTTP 400 bad payload', nextAttemptAtMs: null });
        expect(alerts.countDeliveries()).toEqual({ hook: { pending: 1, delivered: 0, dead: 1 } });
        const next = only(alerts.dueDeliveries(1_200, 10));
        expect(next.event).toEqual(a2);

        expectStoreError(() => alerts.markDelivered(first.id, 1_300), 'conflict');
        expectStoreError(() => alerts.markFailed(first.id, { atMs: 1_300, error: 'again', nextAttemptAtMs: 1_400 }), 'conflict');
        alerts.markDelivered(next.id, 1_300);
        expectStoreError(() => alerts.markDelivered(next.id, 1_300), 'conflict');
        expectStoreError(() => alerts.markDelivered(next.id + 1_000, 1_300), 'not-found');
        expectStoreError(() => alerts.markFailed(next.id + 1_000, { atMs: 1_300, error: 'x', nextAttemptAtMs: null }), 'not-found');
        expect(alerts.countDeliveries()).toEqual({ hook: { pending: 0, delivered: 1, dead: 1 } });
        expect(alerts.nextDueAtMs()).toBeNull();
      });

      it('says when the next pending delivery or held resolution becomes due', () => {
        expect(alerts.nextDueAtMs()).toBeNull();
        apply(fire(1_000), fire(1_000, { subjectId: 'dev-2' }));
        // Queued transitions are due at once and not counted.
        expect(alerts.nextDueAtMs()).toBeNull();
        routeAll(1_500, ['hook']);
        expect(alerts.nextDueAtMs()).toBe(1_500);
        for (const d of alerts.dueDeliveries(1_500, 10)) alerts.markFailed(d.id, { atMs: 1_500, error: 'timeout', nextAttemptAtMs: d.event.alert.subjectId === 'dev-1' ? 9_000 : 7_000 });
        expect(alerts.nextDueAtMs()).toBe(7_000);
        apply(clear(3_000));
        expect(alerts.nextDueAtMs()).toBe(7_000);
        apply(clear(3_000, { subjectId: 'dev-2', flapWindowMs: 1_000 }));
        expect(alerts.nextDueAtMs()).toBe(4_000);
      });
    });
  });
}
