/**
 * The outbox worker on the real SQLite store (`store.alerts`), delivering
 * through the real adapters to real HTTP receivers on loopback ports.
 * Alerts are raised the way the platform raises them: rule signals through
 * applyRuleResults, operators through acknowledgeAlert and resolveAlert.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertEvent, AlertSeverity, AlertSubjectKind } from '../protocol/index.ts';
import { openSqliteStore, type RuleSignal, type SqliteStore } from '../store/index.ts';
import { createAlertmanagerNotifier, type AlertmanagerAlert } from './alertmanager.ts';
import { createPagerDutyNotifier, type PagerDutyEvent } from './pagerduty.ts';
import type { NotificationRoute } from './routing.ts';
import { createSlackNotifier, type SlackMessage } from './slack.ts';
import { answer, startReceiver, waitFor, type ReceivedRequest, type Receiver } from './test-receiver.ts';
import type { Notifier } from './types.ts';
import { createWebhookNotifier } from './webhook.ts';
import { startNotifier, type NotifierWorker, type NotifierWorkerOptions } from './worker.ts';

const T0 = Date.UTC(2025, 5, 1, 12, 0, 0);
const SECRET = 'worker-test-secret-0123456789';

let dir: string;
let file: string;
let store: SqliteStore;
const receivers: Receiver[] = [];
const workers: NotifierWorker[] = [];
let logLines: Array<{ level: number; msg: string; [key: string]: unknown }>;
let logger: Logger;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vpp-notify-'));
  file = join(dir, 'vpp.db');
  store = openSqliteStore({ file });
  logLines = [];
  logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) });
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function receiver(respond = answer(200, 'ok')): Promise<Receiver> {
  const r = await startReceiver(respond);
  receivers.push(r);
  return r;
}

function signal(kind: 'fire' | 'clear', ruleId: string, subjectId: string, atMs: number, extra: Partial<RuleSignal> = {}): RuleSignal {
  return {
    ruleId,
    severity: 'critical' as AlertSeverity,
    subjectKind: 'device' as AlertSubjectKind,
    subjectId,
    signal: kind,
    atMs,
    summary: `${ruleId} on ${subjectId}`,
    value: kind === 'fire' ? 61.5 : null,
    labels: { siteId: 'site-7' },
    flapWindowMs: 0,
    ...extra,
  };
}

function apply(...signals: RuleSignal[]): AlertEvent[] {
  return store.alerts.applyRuleResults({ signals });
}

function start(options: Partial<NotifierWorkerOptions> & Pick<NotifierWorkerOptions, 'notifiers'>): NotifierWorker {
  const worker = startNotifier({
    outbox: store.alerts,
    alerts: store.alerts,
    clock: Date.now,
    logger,
    pollMs: 20,
    backoff: { baseMs: 5, maxMs: 40 },
    resendIntervalMs: 3_600_000,
    ...options,
  });
  workers.push(worker);
  return worker;
}

const webhookTo = (r: Receiver, timeoutMs?: number): Notifier => createWebhookNotifier({ url: r.url, secret: SECRET, clock: Date.now, timeoutMs });
const slackTo = (r: Receiver): Notifier => createSlackNotifier({ url: r.url });
const pagerDutyTo = (r: Receiver): Notifier => createPagerDutyNotifier({ routingKey: 'R0123456789ABCDEF0123456789ABCDE', url: r.url, source: 'vpp-test' });

/** The webhook event id of a request. */
const eventIdOf = (request: ReceivedRequest): string => String(request.headers['x-vpp-event-id']);
const seqOf = (eventId: string): number => Number(eventId.split('-')[1]);
const alertOf = (eventId: string): string => eventId.split('-')[0]!;

/** Until nothing is in flight and nothing pending: a receiver records a request before the worker stores its outcome. */
async function settled(worker: NotifierWorker): Promise<void> {
  await waitFor(
    () => worker.counters().inFlight === 0 && Object.values(store.alerts.countDeliveries()).every((c) => c.pending === 0),
    'the outbox to settle',
  );
}

function expectInOrderPerAlert(eventIds: readonly string[]): void {
  const lastSeq = new Map<string, number>();
  for (const id of eventIds) {
    const previous = lastSeq.get(alertOf(id)) ?? 0;
    expect(seqOf(id), `${id} after seq ${previous}`).toBeGreaterThanOrEqual(previous);
    lastSeq.set(alertOf(id), seqOf(id));
  }
}

/** A webhook receiver that records which event ids it accepted; `status(request, n)` picks the answer (n: requests so far for that id). */
async function webhookReceiver(status: (eventId: string, n: number) => number | 'hang' = () => 200): Promise<{ r: Receiver; acceptedIds: string[] }> {
  const acceptedIds: string[] = [];
  const seen = new Map<string, number>();
  const r = await receiver((request, response) => {
    const id = eventIdOf(request);
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    const code = status(id, n);
    if (code === 'hang') return;
    if (code >= 200 && code < 300) acceptedIds.push(id);
    response.writeHead(code, code === 429 ? { 'Retry-After': '7' } : {}).end();
  });
  return { r, acceptedIds };
}

describe('notification worker', () => {
  it('delivers every transition to every integration once, in order per alert', async () => {
    const hook = await webhookReceiver();
    const slack = await receiver(answer(200, 'ok'));
    const worker = start({ notifiers: [webhookTo(hook.r), slackTo(slack)] });

    const now = Date.now();
    const stored: AlertEvent[] = [];
    stored.push(...apply(signal('fire', 'battery-overtemp', 'bat-1', now), signal('fire', 'inverter-fault', 'inv-1', now)));
    worker.wake();
    stored.push(store.alerts.acknowledgeAlert(stored[0]!.alert.id, { actor: 'ops', note: 'on it', atMs: now + 1 }));
    stored.push(...apply(signal('clear', 'inverter-fault', 'inv-1', now + 2)));
    stored.push(store.alerts.resolveAlert(stored[0]!.alert.id, { actor: 'ops', reason: 'replaced fan', atMs: now + 3 }));
    worker.wake();

    const all = stored.map((e) => e.eventId);
    await waitFor(() => hook.acceptedIds.length === all.length && slack.requests.length === all.length, 'every delivery');
    expect([...hook.acceptedIds].sort()).toEqual([...all].sort());
    expect(new Set(hook.acceptedIds).size).toBe(all.length);
    expect(hook.r.requests).toHaveLength(all.length);
    expectInOrderPerAlert(hook.acceptedIds);
    const slackIds = slack.requests.map((req) => {
      const message = JSON.parse(req.body) as SlackMessage;
      return /event (\d+-\d+)/.exec(JSON.stringify(message.blocks))![1]!;
    });
    expect([...slackIds].sort()).toEqual([...all].sort());
    expectInOrderPerAlert(slackIds);

    await settled(worker);
    expect(worker.counters().integrations.webhook).toMatchObject({ routed: 5, delivered: 5, failedAttempts: 0, dead: 0 });
    expect(store.alerts.countDeliveries()).toEqual({ webhook: { pending: 0, delivered: 5, dead: 0 }, slack: { pending: 0, delivered: 5, dead: 0 } });
  });

  it('a receiver down (503) for a while then back gets every transition exactly once per event id, in order per alert', async () => {
    let down = true;
    const hook = await webhookReceiver(() => (down ? 503 : 200));
    const worker = start({ notifiers: [webhookTo(hook.r)], backoff: { baseMs: 10, maxMs: 50 }, maxAttempts: 1_000 });
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const [fired] = apply(signal('fire', 'battery-overtemp', `bat-${i}`, now));
      ids.push(fired!.eventId);
      ids.push(store.alerts.acknowledgeAlert(fired!.alert.id, { actor: 'ops', note: null, atMs: now + 1 }).eventId);
      ids.push(...apply(signal('clear', 'battery-overtemp', `bat-${i}`, now + 2)).map((e) => e.eventId));
    }
    worker.wake();
    await waitFor(() => worker.counters().integrations.webhook!.failedAttempts >= 12, 'failed attempts while down');
    // While down, only the first transition of each alert was tried: the next ones wait for it.
    expect(new Set(hook.r.requests.map(eventIdOf))).toEqual(new Set(ids.filter((_, i) => i % 3 === 0)));
    down = false;
    await waitFor(() => hook.acceptedIds.length === ids.length, 'every transition once the receiver is back');
    expect([...hook.acceptedIds].sort()).toEqual([...ids].sort());
    expectInOrderPerAlert(hook.acceptedIds);
    expectInOrderPerAlert(hook.r.requests.map(eventIdOf));
    await settled(worker);    expect(worker.counters().integrations.webhook).toMatchObject({ delivered: 12, dead: 0 });
  });

  it('honours Retry-After: the next attempt is stored no earlier, and made once the clock gets there', async () => {
    let nowMs = T0;
    const hook = await webhookReceiver((_id, n) => (n === 1 ? 429 : 200));
    const worker = start({ notifiers: [webhookTo(hook.r)], clock: () => nowMs, random: () => 0, backoff: { baseMs: 1_000, maxMs: 60_000 } });
    const [fired] = apply(signal('fire', 'battery-overtemp', 'bat-1', T0));
    worker.wake();
    await waitFor(() => worker.counters().integrations.webhook!.failedAttempts === 1, 'the 429');

    const [pending] = store.alerts.dueDeliveries(Number.MAX_SAFE_INTEGER, 10);
    expect(pending?.event.eventId).toBe(fired!.eventId);
    expect(pending?.attempts).toBe(1);
    expect(pending?.lastError).toContain('HTTP 429');
    // Backoff alone would say T0 + 500 (equal jitter, random 0); Retry-After: 7 says not before T0 + 7000.
    expect(pending?.nextAttemptAtMs).toBe(T0 + 7_000);
    expect(store.alerts.dueDeliveries(T0 + 6_999, 10)).toEqual([]);
    expect(store.alerts.nextDueAtMs()).toBe(T0 + 7_000);

    nowMs = T0 + 7_000;
    worker.wake();
    await waitFor(() => hook.acceptedIds.length === 1, 'the retry');
    await settled(worker);
    expect(hook.r.requests).toHaveLength(2);
  });

  it('a delivery is dead after maxAttempts, counted and logged at error; the next transition of the alert then goes out', async () => {
    const now = Date.now();
    const [fired] = apply(signal('fire', 'battery-overtemp', 'bat-1', now));
    const hook = await webhookReceiver((id) => (id === fired!.eventId ? 500 : 200));
    const worker = start({ notifiers: [webhookTo(hook.r)], maxAttempts: 3 });
    const [ack] = [store.alerts.acknowledgeAlert(fired!.alert.id, { actor: 'ops', note: null, atMs: now + 1 })];
    worker.wake();
    await waitFor(() => hook.acceptedIds.length === 1, 'the acknowledgement after the dead fire');
    await settled(worker);
    expect(hook.acceptedIds).toEqual([ack!.eventId]);
    expect(hook.r.requests.filter((req) => eventIdOf(req) === fired!.eventId)).toHaveLength(3);
    expect(worker.counters().integrations.webhook).toMatchObject({ failedAttempts: 3, dead: 1, delivered: 1 });
    expect(store.alerts.countDeliveries().webhook).toEqual({ pending: 0, delivered: 1, dead: 1 });
    const dead = logLines.filter((l) => l.level === 50 && l.msg.includes('dead'));
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ integration: 'webhook', eventId: fired!.eventId, attempts: 3 });
  });

  it('a refusal (400) is dead at once', async () => {
    const hook = await webhookReceiver(() => 400);
    const worker = start({ notifiers: [webhookTo(hook.r)] });
    apply(signal('fire', 'battery-overtemp', 'bat-1', Date.now()));
    worker.wake();
    await waitFor(() => worker.counters().integrations.webhook!.dead === 1, 'dead');
    expect(hook.r.requests).toHaveLength(1);
    expect(worker.counters().integrations.webhook!.failedAttempts).toBe(1);
  });

  it('restart: a worker stopped with deliveries pending or in flight loses nothing; a new one on the same file finishes them', async () => {
    // The first receiver accepts alert 1's fire and hangs on everything else.
    let firstId: string | undefined;
    const first = await webhookReceiver((id) => {
      firstId ??= id;
      return id === firstId ? 200 : 'hang';
    });
    const worker = start({ notifiers: [webhookTo(first.r)], timeoutMs: 300, concurrency: 2 });
    const now = Date.now();
    const ids = apply(
      signal('fire', 'battery-overtemp', 'bat-1', now),
      signal('fire', 'battery-overtemp', 'bat-2', now),
      signal('fire', 'battery-overtemp', 'bat-3', now),
    ).map((e) => e.eventId);
    worker.wake();
    await waitFor(
      () => first.acceptedIds.length === 1 && first.r.requests.length === 3 && worker.counters().inFlight === 2,
      'one accepted, two received and in flight',
    );
    await worker.stop();
    workers.splice(workers.indexOf(worker), 1);
    // Stored after the stop: not routed yet.
    const later = store.alerts.acknowledgeAlert('1', { actor: 'ops', note: null, atMs: now + 1 }).eventId;
    expect(store.alerts.countDeliveries().webhook).toEqual({ pending: 2, delivered: 1, dead: 0 });
    await store.close();

    store = openSqliteStore({ file });
    const second = await webhookReceiver();
    const restarted = start({ notifiers: [webhookTo(second.r)] });
    await waitFor(() => second.acceptedIds.length === 3, 'the rest after the restart');
    await settled(restarted);
    // Nothing lost: every event id accepted by one receiver or the other ...
    expect(new Set([...first.acceptedIds, ...second.acceptedIds])).toEqual(new Set([...ids, later]));
    // ... and what was marked delivered is not sent again.
    expect(second.acceptedIds).not.toContain(first.acceptedIds[0]);
    // The ones in flight at the stop are sent again with the same event id (the dedup key).
    const hung = first.r.requests.map(eventIdOf).filter((id) => id !== first.acceptedIds[0]);
    expect(hung).toHaveLength(2);
    for (const id of hung) expect(second.acceptedIds).toContain(id);
    expect(store.alerts.countDeliveries().webhook).toEqual({ pending: 0, delivered: 4, dead: 0 });
  });

  it('a receiver that times out delays neither another integration nor another alert', async () => {
    const now = Date.now();
    const [a] = apply(signal('fire', 'battery-overtemp', 'bat-slow', now));
    const hook = await webhookReceiver((id) => (id === a!.eventId ? 'hang' : 200));
    const slack = await receiver(answer(200, 'ok'));
    const [b] = apply(signal('fire', 'battery-overtemp', 'bat-fast', now));
    const worker = start({ notifiers: [webhookTo(hook.r, 3_000), slackTo(slack)], timeoutMs: 3_000 });
    const startedMs = Date.now();
    await waitFor(() => hook.acceptedIds.includes(b!.eventId) && slack.requests.length === 2, 'the other alert and the other integration', 2_500);
    expect(Date.now() - startedMs).toBeLessThan(1_500);
    await waitFor(() => worker.counters().integrations.webhook!.delivered === 1 && worker.counters().integrations.slack!.delivered === 2, 'their outcomes stored');
    expect(worker.counters().inFlight).toBe(1);
    expect(hook.acceptedIds).not.toContain(a!.eventId);
  });

  it('routes by severity and subject kind; an integration without routes gets everything', async () => {
    const pd = await receiver(answer(202, '{"status":"success"}'));
    const slack = await receiver(answer(200, 'ok'));
    const hook = await webhookReceiver();
    const routes: NotificationRoute[] = [
      { integration: 'pagerduty', severities: ['critical'] },
      { integration: 'slack', subjectKinds: ['site', 'region', 'fleet'] },
    ];
    const worker = start({ notifiers: [pagerDutyTo(pd), slackTo(slack), webhookTo(hook.r)], routes });
    const now = Date.now();
    const [critical] = apply(signal('fire', 'battery-overtemp', 'bat-1', now));
    apply(signal('fire', 'site-offline', 'site-7', now, { severity: 'warning', subjectKind: 'site' }));
    apply(signal('fire', 'low-soc', 'bat-2', now, { severity: 'info' }));
    worker.wake();
    await waitFor(() => hook.acceptedIds.length === 3, 'the webhook gets all three');
    await waitFor(() => pd.requests.length === 1 && slack.requests.length === 1, 'the routed ones');
    await settled(worker);
    expect((JSON.parse(pd.requests[0]!.body) as PagerDutyEvent).dedup_key).toBe(`vpp-alert-${critical!.alert.id}`);
    expect((JSON.parse(slack.requests[0]!.body) as SlackMessage).text).toContain('site site-7');
    expect(worker.counters().integrations).toMatchObject({ pagerduty: { routed: 1 }, slack: { routed: 1 }, webhook: { routed: 3 } });
    expect(store.alerts.countDeliveries()).toEqual({
      pagerduty: { pending: 0, delivered: 1, dead: 0 },
      slack: { pending: 0, delivered: 1, dead: 0 },
      webhook: { pending: 0, delivered: 3, dead: 0 },
    });
  });

  it('a held resolution is routed once its flapping window has passed, not before', async () => {
    let nowMs = T0;
    const hook = await webhookReceiver();
    const worker = start({ notifiers: [webhookTo(hook.r)], clock: () => nowMs });
    const [fired] = apply(signal('fire', 'battery-overtemp', 'bat-1', T0, { flapWindowMs: 60_000 }));
    const [resolved] = apply(signal('clear', 'battery-overtemp', 'bat-1', T0 + 1_000, { flapWindowMs: 60_000 }));
    worker.wake();
    await waitFor(() => hook.acceptedIds.length === 1, 'the fire');
    await settled(worker);
    expect(store.alerts.transitionsToRoute(T0 + 60_999, 10)).toEqual([]);
    expect(store.alerts.nextDueAtMs()).toBe(T0 + 61_000);
    nowMs = T0 + 61_000;
    worker.wake();
    await waitFor(() => hook.acceptedIds.length === 2, 'the resolution after its window');
    expect(hook.acceptedIds).toEqual([fired!.eventId, resolved!.eventId]);
  });

  it('re-sends the open alerts routed to an integration with resend, every resendIntervalMs', async () => {
    const am = await receiver(answer(200, ''));
    const routes: NotificationRoute[] = [{ integration: 'alertmanager', severities: ['critical', 'warning'] }];
    const now = Date.now();
    apply(signal('fire', 'battery-overtemp', 'bat-1', now), signal('fire', 'low-soc', 'bat-2', now, { severity: 'info' }));
    apply(signal('fire', 'battery-overtemp', 'bat-3', now), signal('clear', 'battery-overtemp', 'bat-3', now + 1));
    const worker = start({ notifiers: [createAlertmanagerNotifier({ url: am.url, resendIntervalMs: 200 })], routes, resendIntervalMs: 200 });
    await waitFor(() => worker.counters().integrations.alertmanager!.resends >= 2, 'two re-sends');
    const batches = am.requests.map((req) => JSON.parse(req.body) as AlertmanagerAlert[]);
    // Deliveries: bat-1 fired, bat-3 fired and resolved (bat-2 is info: routed away). Re-sends: only bat-1, still open.
    const resent = batches.filter((alerts) => alerts.every((a) => a.labels.subject_id === 'bat-1') && alerts.length === 1);
    expect(resent.length).toBeGreaterThanOrEqual(2);
    expect(batches.flat().some((a) => a.labels.subject_id === 'bat-2')).toBe(false);
  });

  it('store errors (another process holds the write lock) are counted and retried; the loop goes on', async () => {
    const hook = await webhookReceiver();
    apply(signal('fire', 'battery-overtemp', 'bat-1', Date.now()));
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    try {
      const worker = start({ notifiers: [webhookTo(hook.r)], pollMs: 50 });
      await waitFor(() => worker.counters().storeErrors >= 1, 'a store error');
      expect(hook.acceptedIds).toEqual([]);
      other.exec('COMMIT');
      await waitFor(() => hook.acceptedIds.length === 1, 'the delivery once the lock is free');
      expect(logLines.some((l) => l.level === 40 && String(l.msg).includes('store failed'))).toBe(true);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
    }
  });

  it('stop() returns within timeoutMs with a receiver that hangs; the delivery stays pending for the next run', async () => {
    const hook = await webhookReceiver(() => 'hang');
    // The adapter would wait a minute; the worker's deadline ends the attempt first.
    const worker = start({ notifiers: [webhookTo(hook.r, 60_000)], timeoutMs: 300 });
    apply(signal('fire', 'battery-overtemp', 'bat-1', Date.now()));
    worker.wake();
    await waitFor(() => worker.counters().inFlight === 1, 'in flight');
    const startedMs = Date.now();
    await worker.stop();
    workers.splice(workers.indexOf(worker), 1);
    expect(Date.now() - startedMs).toBeLessThan(2_000);
    expect(store.alerts.countDeliveries().webhook).toEqual({ pending: 1, delivered: 0, dead: 0 });
    const [pending] = store.alerts.dueDeliveries(Number.MAX_SAFE_INTEGER, 1);
    expect(pending?.lastError).toBe('timed out after 300 ms');
  });
});
