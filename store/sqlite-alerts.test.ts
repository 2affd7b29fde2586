/**
 * SqliteAlerts: the AlertStore and AlertOutbox contract on real files, and
 * what only SQLite has: persistence across reopening, two processes on one
 * file, lock timeouts, pruning, the per-alert transition bound, the schema's
 * own guard of one open alert per (rule, subject), query plans, and the
 * migration from version 3.
 */
import { describe, expect, it } from 'vitest';
import { describeAlertStoreContract } from './contract/index.ts';
import { MAX_TRANSITIONS_PER_ALERT, type RuleSignal } from './index.ts';
import { expectUnavailable, openTempStore, useStoreFiles } from './test-store-files.ts';

const FLAP_MS = 60_000;

function signal(values: Partial<RuleSignal> & Pick<RuleSignal, 'signal' | 'atMs'>): RuleSignal {
  return {
    ruleId: 'soc-low',
    severity: 'warning',
    subjectKind: 'device',
    subjectId: 'dev-1',
    summary: 'SoC low',
    value: 5,
    labels: {},
    flapWindowMs: FLAP_MS,
    ...values,
  };
}
const fire = (atMs: number, values: Partial<RuleSignal> = {}) => signal({ signal: 'fire', atMs, ...values });
const clear = (atMs: number, values: Partial<RuleSignal> = {}) => signal({ signal: 'clear', atMs, summary: '', ...values });

describeAlertStoreContract('SqliteStore.alerts', async () => {
  const { store, close } = await openTempStore('vpp-alerts-');
  return { store: store.alerts, close };
});

describe('SqliteAlerts on a file', () => {
  const { open, reopen, countRows, writeRaw, expectWritesUnavailableWhileLocked, planOf, createAtVersion, expectCurrentVersion } = useStoreFiles<
    'alerts' | 'alert_transitions' | 'alert_deliveries' | 'rule_subject_states'
  >('vpp-alerts-');

  it('keeps open alerts, held resolutions, pending deliveries and rule states after close and reopen', async () => {
    const first = open();
    const [a] = first.alerts.applyRuleResults({
      signals: [fire(1_000)],
      save: [{ ruleId: 'soc-low', subjectId: 'dev-1', status: 'active', sinceMs: 900, data: { last: 5 } }],
    });
    first.alerts.routeTransitions([{ seq: a!.transition.seq, integrations: ['hook'] }], 1_000);
    const [b] = first.alerts.applyRuleResults({ signals: [fire(1_000, { subjectId: 'dev-2' })] });
    first.alerts.routeTransitions([{ seq: b!.transition.seq, integrations: [] }], 1_000);
    const [resolved] = first.alerts.applyRuleResults({ signals: [clear(2_000, { subjectId: 'dev-2' })] });

    const second = await reopen(first);
    expect(second.alerts.listOpenAlerts()).toEqual([a!.alert]);
    expect(second.alerts.loadRuleStates()).toEqual([{ ruleId: 'soc-low', subjectId: 'dev-1', status: 'active', sinceMs: 900, data: { last: 5 } }]);
    expect(second.alerts.nextDueAtMs()).toBe(1_000);
    expect(second.alerts.dueDeliveries(1_000, 10).map((d) => [d.integration, d.event])).toEqual([['hook', a]]);
    expect(second.alerts.transitionsToRoute(2_000 + FLAP_MS - 1, 10)).toEqual([]);
    expect(second.alerts.transitionsToRoute(2_000 + FLAP_MS, 10)).toEqual([resolved]);
    // The held resolution is still cancellable after the restart.
    const [reopened] = second.alerts.applyRuleResults({ signals: [fire(2_500, { subjectId: 'dev-2' })] });
    expect(reopened).toMatchObject({ alert: { id: b!.alert.id, reopenCount: 1 }, transition: { kind: 'reopened', notify: false } });
    expect(second.alerts.transitionsToRoute(2_000 + FLAP_MS, 10)).toEqual([]);
  });

  it('lets a second store on the same file (like another process) acknowledge an alert the first one then sees', () => {
    const ingest = open();
    const control = open();
    const [fired] = ingest.alerts.applyRuleResults({ signals: [fire(1_000)] });
    const id = fired!.alert.id;

    const acknowledged = control.alerts.acknowledgeAlert(id, { actor: 'ops', note: 'taking it', atMs: 1_500 });
    expect(ingest.alerts.getAlert(id)).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'ops', acknowledgeNote: 'taking it' });
    expect(ingest.alerts.getAlert(id)!.transitions.map((t) => t.kind)).toEqual(['fired', 'acknowledged']);
    expect(() => ingest.alerts.acknowledgeAlert(id, { actor: 'other', note: null, atMs: 1_600 })).toThrow(expect.objectContaining({ code: 'conflict' }));
    // The lifecycle holds whichever process signals: still open, so the fire does nothing.
    expect(control.alerts.applyRuleResults({ signals: [fire(1_700)] })).toEqual([]);
    expect(ingest.alerts.transitionsToRoute(1_700, 10)).toEqual([fired, acknowledged]);
    ingest.alerts.applyRuleResults({ signals: [clear(2_000)] });
    expect(control.alerts.countOpenAlerts().byState).toEqual({ firing: 0, acknowledged: 0 });
  });

  it('fails alert writes with unavailable while another connection holds the write lock, writing nothing, and writes once it is released', () => {
    const store = open({ busyTimeoutMs: 50 });
    const [fired] = store.alerts.applyRuleResults({ signals: [fire(1_000)] });
    store.alerts.routeTransitions([{ seq: fired!.transition.seq, integrations: ['hook'] }], 1_000);
    const [delivery] = store.alerts.dueDeliveries(1_000, 10);
    const writes: Record<string, () => unknown> = {
      applyRuleResults: () => store.alerts.applyRuleResults({ signals: [fire(1_000, { subjectId: 'dev-2' })] }),
      acknowledgeAlert: () => store.alerts.acknowledgeAlert(fired!.alert.id, { actor: 'ops', note: null, atMs: 1_100 }),
      markDelivered: () => store.alerts.markDelivered(delivery!.id, 1_100),
      pruneAlerts: () => store.alerts.pruneAlerts(1_100, 0),
    };
    expectWritesUnavailableWhileLocked(writes, () => {
      // Readers go on in WAL mode.
      expect(store.alerts.listOpenAlerts()).toHaveLength(1);
    });
    expect(store.alerts.listOpenAlerts()).toHaveLength(1);
    for (const write of Object.values(writes)) write();
    expect(store.alerts.listOpenAlerts().map((a) => a.state)).toEqual(['firing', 'acknowledged']);
    expect(store.alerts.countDeliveries()).toEqual({ hook: { pending: 0, delivered: 1, dead: 0 } });
  });

  it('prunes resolved alerts older than the retention with their transitions and deliveries, keeping any with something still to tell', () => {
    const store = open();
    const { alerts } = store;
    const idOf = (subjectId: string) => alerts.listAlerts({ limit: 1, subjectId })[0]!.id;
    // told: resolved long ago, told and delivered. dead: resolved long ago, its delivery dead.
    alerts.applyRuleResults({ signals: [fire(1_000, { subjectId: 'told' }), fire(1_000, { subjectId: 'dead' }), fire(1_000, { subjectId: 'held' })] });
    alerts.applyRuleResults({ signals: [fire(1_000, { subjectId: 'pending' }), fire(1_000, { subjectId: 'open' }), fire(1_000, { subjectId: 'recent' })] });
    alerts.applyRuleResults({ signals: [clear(2_000, { subjectId: 'told', flapWindowMs: 0 }), clear(2_000, { subjectId: 'dead', flapWindowMs: 0 })] });
    alerts.resolveAlert(idOf('pending'), { actor: 'ops', reason: 'done', atMs: 2_000 });
    // held: resolved long ago by its rule, with a window that has not passed for the router yet.
    alerts.applyRuleResults({ signals: [clear(2_000, { subjectId: 'held', flapWindowMs: 1_000_000 })] });
    for (const event of alerts.transitionsToRoute(3_000, 100)) alerts.routeTransitions([{ seq: event.transition.seq, integrations: ['hook'] }], 3_000);
    for (const d of alerts.dueDeliveries(3_000, 100)) {
      if (d.event.alert.subjectId === 'dead') alerts.markFailed(d.id, { atMs: 3_000, error: 'gone', nextAttemptAtMs: null });
      else if (d.event.alert.subjectId === 'pending') alerts.markFailed(d.id, { atMs: 3_000, error: 'busy', nextAttemptAtMs: 50_000 });
      else alerts.markDelivered(d.id, 3_000);
    }
    for (const d of alerts.dueDeliveries(3_000, 100)) alerts.markDelivered(d.id, 3_000);
    alerts.applyRuleResults({ signals: [clear(90_000, { subjectId: 'recent', flapWindowMs: 0 })] });
    const told = idOf('told');
    const recent = idOf('recent');
    const before = { transitions: countRows('alert_transitions'), deliveries: countRows('alert_deliveries') };

    expect(alerts.pruneAlerts(100_000, 10_000)).toBe(2);
    expect(alerts.getAlert(told)).toBeUndefined();
    expect(alerts.listAlerts({ limit: 10 }).map((a) => a.subjectId).sort()).toEqual(['held', 'open', 'pending', 'recent']);
    // told had fired + resolved, each delivered; dead likewise, its resolution dead.
    expect(countRows('alert_transitions')).toBe(before.transitions - 4);
    expect(countRows('alert_deliveries')).toBe(before.deliveries - 4);
    expect(alerts.pruneAlerts(100_000, 10_000)).toBe(0);

    // Once what it had to tell is settled, it goes too.
    for (let due = alerts.dueDeliveries(50_000, 10); due.length > 0; due = alerts.dueDeliveries(50_000, 10)) {
      for (const d of due) alerts.markDelivered(d.id, 50_000);
    }
    for (const event of alerts.transitionsToRoute(1_002_000, 10)) alerts.routeTransitions([{ seq: event.transition.seq, integrations: [] }], 1_002_000);
    expect(alerts.pruneAlerts(100_000, 10_000)).toBe(2);
    expect(alerts.listAlerts({ limit: 10 }).map((a) => a.subjectId).sort()).toEqual(['open', 'recent']);
    expect(alerts.pruneAlerts(Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY)).toBe(0);
    expect(alerts.pruneAlerts(200_000, 0)).toBe(1);

    // Ids are never reused: a new alert of a pruned alert's subject gets a new one.
    const [again] = alerts.applyRuleResults({ signals: [fire(300_000, { subjectId: 'recent' })] });
    expect(Number(again!.alert.id)).toBeGreaterThan(Number(recent));
    expect(() => alerts.pruneAlerts(1, -1)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => alerts.pruneAlerts(1.5, 10)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => alerts.pruneAlerts(1, Number.NaN)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(alerts.pruneAlerts(400_000, 0.0123 * 86_400_000)).toBe(0);
  });

  it(`keeps at most ${MAX_TRANSITIONS_PER_ALERT} transitions per alert, deleting the oldest settled ones and never one still to be told`, () => {
    const store = open();
    const { alerts } = store;
    // A flapping sensor: every clear's held resolution is cancelled by the next fire, and every reopening is silent.
    const flaps: RuleSignal[] = [fire(0)];
    for (let i = 1; i <= 300; i++) flaps.push(clear(i * 10), fire(i * 10 + 5));
    const events = alerts.applyRuleResults({ signals: flaps });
    expect(events).toHaveLength(601);
    const id = events[0]!.alert.id;
    let stored = alerts.getAlert(id)!;
    expect(stored.reopenCount).toBe(300);
    expect(stored.transitions).toHaveLength(MAX_TRANSITIONS_PER_ALERT);
    // The first, `fired`, is not told yet, so it stays; the next oldest went.
    expect(stored.transitions[0]!.seq).toBe(events[0]!.transition.seq);
    expect(stored.transitions.slice(1).map((t) => t.seq)).toEqual(events.slice(-(MAX_TRANSITIONS_PER_ALERT - 1)).map((e) => e.transition.seq));

    // Routed, with its delivery pending: still to be told, still kept.
    alerts.routeTransitions([{ seq: events[0]!.transition.seq, integrations: ['hook'] }], 10_000);
    alerts.applyRuleResults({ signals: [clear(10_000), fire(10_005)] });
    stored = alerts.getAlert(id)!;
    expect(stored.transitions).toHaveLength(MAX_TRANSITIONS_PER_ALERT);
    expect(stored.transitions[0]!.kind).toBe('fired');

    // Delivered: settled, so the next transition deletes it and its delivery.
    alerts.markDelivered(alerts.dueDeliveries(10_000, 1)[0]!.id, 10_000);
    alerts.applyRuleResults({ signals: [clear(10_010)] });
    stored = alerts.getAlert(id)!;
    expect(stored.transitions).toHaveLength(MAX_TRANSITIONS_PER_ALERT);
    expect(stored.transitions[0]!.kind).not.toBe('fired');
    expect(stored.transitions.at(-1)).toMatchObject({ kind: 'resolved', notify: true });
    expect(alerts.countDeliveries()).toEqual({});
    expect(countRows('alert_transitions')).toBe(MAX_TRANSITIONS_PER_ALERT);
  });

  it('shares the store’s connection: closing the store makes alert calls unavailable', async () => {
    const store = open();
    store.alerts.applyRuleResults({ signals: [fire(1_000)] });
    await store.close();
    expectUnavailable(
      () => store.alerts.listOpenAlerts(),
      () => store.alerts.applyRuleResults({ signals: [fire(1_000, { subjectId: 'dev-2' })] }),
      () => store.alerts.nextDueAtMs(),
    );
  });

  it('refuses a second open alert of one (rule, subject) in the schema itself', () => {
    const store = open();
    store.alerts.applyRuleResults({ signals: [fire(1_000)] });
    writeRaw((raw) => {
      const insert = raw.prepare(
        `INSERT INTO alerts (rule_id, severity, subject_kind, subject_id, state, summary, value, labels, opened_at_ms, fired_at_ms)
         VALUES ('soc-low', 'warning', 'device', ?, ?, '', NULL, '{}', 1, 1)`,
      );
      expect(() => insert.run('dev-1', 'acknowledged')).toThrow(/UNIQUE/);
      insert.run('dev-1', 'resolved');
      insert.run('dev-2', 'firing');
    });
  });

  it('uses its indexes for the latest alert of (rule, subject), the transitions to route and the due deliveries', () => {
    const store = open();
    const plan = (name: string, ...params: unknown[]) => planOf(store.alerts, name, ...params);
    expect(plan('latestOf', 'r', 's')).toMatch(/SEARCH alerts USING (COVERING )?INDEX alerts_rule_subject \(rule_id=\? AND subject_id=\?\)/);
    expect(plan('toRoute', 1, 10)).toMatch(/alert_transitions USING INDEX alert_transitions_to_route/);
    const due = plan('due', 1, 10);
    expect(due).toMatch(/alert_deliveries_due/);
    expect(due).toMatch(/SEARCH e USING (COVERING )?INDEX alert_deliveries_pending \(alert_id=\? AND integration=\? AND transition_seq<\?\)/);
    expect(plan('transitionsOf', 1)).toMatch(/INDEX alert_transitions_alert \(alert_id=\?\)/);
  });

  it('migrates a version 3 file with data to version 4, keeping its data and adding empty alert tables', () => {
    createAtVersion(3, (raw) => {
      raw.prepare("INSERT INTO sites VALUES ('site-1', 'north', 'One')").run();
      raw.prepare("INSERT INTO devices (id, type, site_id, secret_hash, created_at_ms) VALUES ('dev-1', 'battery', 'site-1', 'h1', 1000)").run();
      raw.prepare("INSERT INTO device_state (device_id, last_ts, last_seen_ms, last_seq, metrics, online, status, presence, presence_since_ms) VALUES ('dev-1', 5, 6, 7, '{\"socPct\":3}', 1, NULL, 'online', 4)").run();
      raw
        .prepare('INSERT INTO dead_letters (received_at_ms, topic, client_id, reason, detail, payload, payload_bytes, payload_sha256, truncated, stored_bytes) VALUES (1, ?, NULL, ?, ?, ?, 1, ?, 0, 9)')
        .run('t', 'schema', 'd', Buffer.from('x'), 'h');
    });

    const store = open();
    expectCurrentVersion(4);
    expect(store.getAcceptedSecretHashes('dev-1', 2_000)).toEqual(['h1']);
    expect(store.getDeviceState('dev-1')).toMatchObject({ presence: 'online', metrics: { socPct: 3 } });
    expect(store.countDeadLettersByReason()).toEqual({ schema: 1 });
    expect(store.alerts.listAlerts({ limit: 10 })).toEqual([]);
    expect(store.alerts.loadRuleStates()).toEqual([]);
    expect(countRows('alert_deliveries')).toBe(0);

    const [fired] = store.alerts.applyRuleResults({ signals: [fire(1_000)], save: [{ ruleId: 'soc-low', subjectId: 'dev-1', status: 'active', sinceMs: 1_000, data: {} }] });
    expect(fired!.alert.id).toBe('1');
    expect(store.alerts.getAlert('1')?.transitions).toHaveLength(1);
    expect(countRows('rule_subject_states')).toBe(1);
  });
});
