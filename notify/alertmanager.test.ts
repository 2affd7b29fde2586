/**
 * The Alertmanager adapter: its payload on its own, then against the real
 * Alertmanager binary (fails, saying to run scripts/install-deps.sh, when
 * it is missing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALERTMANAGER_ENDS_AT_INTERVALS, buildAlertmanagerAlert, createAlertmanagerNotifier, toLabelName } from './alertmanager.ts';
import { postJson } from './http.ts';
import { startAlertmanager, type RunningAlertmanager } from './test-alertmanager.ts';
import { makeAlert, makeEvent, T0 } from './test-fixtures.ts';

const RESEND_MS = 60_000;

describe('Alertmanager payload', () => {
  it('labels identify and route the alert; annotations describe it; an open alert ends 4 resend intervals ahead', () => {
    const now = T0 + 5_000;
    expect(buildAlertmanagerAlert(makeAlert(), { nowMs: now, resendIntervalMs: RESEND_MS })).toEqual({
      labels: {
        alertname: 'battery-overtemp',
        severity: 'critical',
        subject_kind: 'device',
        subject_id: 'bat-0001',
        alert_id: '42',
        deviceType: 'battery',
        siteId: 'site-7',
        region: 'north',
      },
      annotations: { summary: makeAlert().summary, state: 'firing', value: '61.5' },
      startsAt: new Date(T0).toISOString(),
      endsAt: new Date(now + ALERTMANAGER_ENDS_AT_INTERVALS * RESEND_MS).toISOString(),
    });
  });

  it('a resolved alert ends at its resolution; an acknowledged one is firing with state=acknowledged', () => {
    const resolved = buildAlertmanagerAlert(makeEvent('resolved').alert, { nowMs: T0 + 3_600_000, resendIntervalMs: RESEND_MS });
    expect(resolved.endsAt).toBe(new Date(T0).toISOString());
    expect(resolved.annotations.state).toBe('resolved');
    const acknowledged = buildAlertmanagerAlert(makeEvent('acknowledged', {}, 2).alert, { nowMs: T0 + 60_000, resendIntervalMs: RESEND_MS });
    expect(acknowledged.annotations.state).toBe('acknowledged');
    expect(Date.parse(acknowledged.endsAt)).toBeGreaterThan(T0 + 60_000);
  });

  it('makes label names valid, the platform labels winning a clash, empty values left out', () => {
    expect(toLabelName('device-type')).toBe('device_type');
    expect(toLabelName('1st')).toBe('_1st');
    expect(toLabelName('__meta')).toBe('_meta');
    expect(toLabelName('')).toBe('_');
    expect(toLabelName('zoné')).toBe('zon_');
    const alert = makeAlert({ labels: { severity: 'low', 'alert.id': 'x', empty: '', 'device-type': 'battery' } });
    const { labels } = buildAlertmanagerAlert(alert, { nowMs: T0, resendIntervalMs: RESEND_MS });
    expect(labels).toEqual({ severity: 'critical', alert_id: '42', device_type: 'battery', alertname: 'battery-overtemp', subject_kind: 'device', subject_id: 'bat-0001' });
  });

  it('adds generatorURL when configured', () => {
    const built = buildAlertmanagerAlert(makeAlert(), { nowMs: T0, resendIntervalMs: RESEND_MS, generatorUrl: (a) => `https://vpp.example.net/alerts/${a.id}` });
    expect(built.generatorURL).toBe('https://vpp.example.net/alerts/42');
  });
});

interface ActiveAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  endsAt: string;
  status: { state: string };
}

describe('against the real Alertmanager', () => {
  let alertmanager: RunningAlertmanager;
  beforeAll(async () => {
    alertmanager = await startAlertmanager();
    console.info(`Alertmanager ${alertmanager.version} at ${alertmanager.url}`);
  });
  afterAll(async () => {
    await alertmanager?.stop();
  });

  const listed = async (): Promise<ActiveAlert[]> => (await (await fetch(`${alertmanager.url}/api/v2/alerts`)).json()) as ActiveAlert[];
  const byId = async (id: string) => (await listed()).find((a) => a.labels.alert_id === id);
  const signal = () => new AbortController().signal;

  it('a firing alert becomes active; its resolution makes it inactive', async () => {
    const notifier = createAlertmanagerNotifier({ url: alertmanager.url, resendIntervalMs: RESEND_MS });
    const now = Date.now();
    const fired = makeEvent('fired', { id: '101', firedAtMs: now - 1_000, openedAtMs: now - 1_000, labels: { 'device-type': 'battery', siteId: 'site-7' } });
    expect(await notifier.deliver(fired, signal())).toEqual({ ok: true });
    const active = await byId('101');
    expect(active?.status.state).toBe('active');
    expect(active?.labels).toMatchObject({ alertname: 'battery-overtemp', severity: 'critical', subject_kind: 'device', subject_id: 'bat-0001', device_type: 'battery', siteId: 'site-7' });
    expect(active?.annotations).toMatchObject({ summary: fired.alert.summary, state: 'firing' });
    expect(Math.abs(Date.parse(active!.endsAt) - (now + 4 * RESEND_MS))).toBeLessThan(5_000);

    const resolved = makeEvent('resolved', { id: '101', firedAtMs: now - 1_000, openedAtMs: now - 1_000, resolvedAtMs: Date.now(), labels: fired.alert.labels }, 2);
    expect(await notifier.deliver(resolved, signal())).toEqual({ ok: true });
    const after = await byId('101');
    // Alertmanager 0.25 leaves resolved alerts out of GET /api/v2/alerts; a later version may list them as resolved.
    expect(after === undefined || after.status.state === 'resolved' || Date.parse(after.endsAt) <= Date.now()).toBe(true);
  });

  it('an acknowledged alert stays active with state=acknowledged', async () => {
    const notifier = createAlertmanagerNotifier({ url: alertmanager.url, resendIntervalMs: RESEND_MS });
    const now = Date.now();
    await notifier.deliver(makeEvent('fired', { id: '102', firedAtMs: now, openedAtMs: now }), signal());
    expect(await notifier.deliver(makeEvent('acknowledged', { id: '102', firedAtMs: now, openedAtMs: now }, 2), signal())).toEqual({ ok: true });
    const active = await byId('102');
    expect(active?.status.state).toBe('active');
    expect(active?.annotations.state).toBe('acknowledged');
  });

  it('resend posts every open alert in one request and Alertmanager keeps them all', async () => {
    let requests = 0;
    const notifier = createAlertmanagerNotifier({ url: alertmanager.url, resendIntervalMs: RESEND_MS });
    const now = Date.now();
    const open = ['201', '202', '203'].map((id) => makeAlert({ id, subjectId: `bat-${id}`, firedAtMs: now, openedAtMs: now }));
    const originalFetch = globalThis.fetch;
    globalThis.fetch = (...args: Parameters<typeof fetch>) => {
      requests += 1;
      return originalFetch(...args);
    };
    try {
      await notifier.resend!(open, signal());
    } finally {
      globalThis.fetch = originalFetch;
    }
    expect(requests).toBe(1);
    for (const id of ['201', '202', '203']) expect((await byId(id))?.status.state).toBe('active');
  });

  it('accepts every label name the sanitiser makes (Alertmanager refuses invalid ones with 400)', async () => {
    const notifier = createAlertmanagerNotifier({ url: alertmanager.url, resendIntervalMs: RESEND_MS });
    const labels = { 'device-type': 'a', '1st': 'b', __reserved: 'c', 'zoné': 'd', 'a.b/c': 'e', '': 'f' };
    const now = Date.now();
    expect(await notifier.deliver(makeEvent('fired', { id: '301', labels, firedAtMs: now, openedAtMs: now }), signal())).toEqual({ ok: true });
    expect((await byId('301'))?.status.state).toBe('active');
  });

  it("Alertmanager's 400 for an alert it refuses is a non-retryable outcome naming why", async () => {
    const outcome = await postJson({
      url: `${alertmanager.url}/api/v2/alerts`,
      body: '[{"labels":{"a-b":"x"}}]',
      timeoutMs: 5_000,
      signal: signal(),
      nowMs: Date.now,
    });
    expect(outcome).toMatchObject({ ok: false, retryable: false });
    expect(outcome.ok === false && outcome.detail).toMatch(/HTTP 400: .*invalid label set/);
  });
});
