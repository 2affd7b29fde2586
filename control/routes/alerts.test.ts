import { describe, expect, it } from 'vitest';
import type { AlertSeverity, AlertSubjectKind } from '../../protocol/index.ts';
import type { RuleSignal } from '../../store/types.ts';
import { ALERT_RULES, T0 } from '../test-fixtures.ts';
import { useControlTest } from '../test-helper.ts';

const t = useControlTest();

interface AlertBody {
  id: string;
  ruleId: string;
  severity: AlertSeverity;
  subjectId: string;
  state: string;
  [key: string]: unknown;
}

function signal(ruleId: string, subjectId: string, atMs: number, options: Partial<RuleSignal> = {}): RuleSignal {
  return {
    ruleId,
    severity: 'warning',
    subjectKind: 'device',
    subjectId,
    signal: 'fire',
    atMs,
    summary: `${ruleId} on ${subjectId}`,
    value: 42.5,
    labels: { deviceType: 'battery', siteId: 'site-1' },
    flapWindowMs: 0,
    ...options,
  };
}

/** Opens an alert through the store as a rule would; returns its id. */
function fire(ruleId: string, subjectId: string, atMs: number, options: { severity?: AlertSeverity; subjectKind?: AlertSubjectKind } = {}): string {
  const events = t.store.alerts.applyRuleResults({ signals: [signal(ruleId, subjectId, atMs, options)] });
  expect(events).toHaveLength(1);
  return events[0]!.alert.id;
}

/** Five alerts of different rules, subjects, severities and states; ids in firing order. */
function seedAlerts(): { ids: string[] } {
  const ids = [
    fire('battery-overheat', 'bat-1', T0 - 5000, { severity: 'critical' }),
    fire('device-offline', 'bat-1', T0 - 4000),
    fire('device-offline', 'pv-1', T0 - 3000),
    fire('site-coverage', 'site-1', T0 - 2000, { subjectKind: 'site' }),
    fire('battery-overheat', 'bat-2', T0 - 1000, { severity: 'critical' }),
  ];
  t.store.alerts.acknowledgeAlert(ids[1]!, { actor: 'admin', note: null, atMs: T0 - 500 });
  t.store.alerts.resolveAlert(ids[2]!, { actor: 'admin', reason: 'replaced', atMs: T0 - 400 });
  // The rule clears this one: resolved by `rule`.
  t.store.alerts.applyRuleResults({ signals: [signal('battery-overheat', 'bat-1', T0 - 300, { signal: 'clear', severity: 'critical' })] });
  return { ids };
}

async function list(query: string): Promise<{ alerts: AlertBody[]; next: string | null }> {
  const response = await t.request({ method: 'GET', url: `/api/v1/alerts${query}` });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

describe('GET /api/v1/alerts', () => {
  it('lists newest first with ISO times', async () => {
    const { ids } = seedAlerts();
    const body = await list('');
    expect(body.alerts.map((a) => a.id)).toEqual([...ids].reverse());
    expect(body.next).toBeNull();
    const bat1 = body.alerts.find((a) => a.id === ids[0])!;
    expect(bat1).toEqual({
      id: ids[0],
      ruleId: 'battery-overheat',
      severity: 'critical',
      subjectKind: 'device',
      subjectId: 'bat-1',
      state: 'resolved',
      summary: 'battery-overheat on bat-1',
      value: 42.5,
      labels: { deviceType: 'battery', siteId: 'site-1' },
      openedAt: new Date(T0 - 5000).toISOString(),
      firedAt: new Date(T0 - 5000).toISOString(),
      acknowledgedAt: null,
      acknowledgedBy: null,
      acknowledgeNote: null,
      resolvedAt: new Date(T0 - 300).toISOString(),
      resolvedBy: 'rule',
      resolveReason: null,
      reopenCount: 0,
    });
  });

  it('filters by state, open included', async () => {
    const { ids } = seedAlerts();
    expect((await list('?state=firing')).alerts.map((a) => a.id)).toEqual([ids[4], ids[3]]);
    expect((await list('?state=acknowledged')).alerts.map((a) => a.id)).toEqual([ids[1]]);
    expect((await list('?state=resolved')).alerts.map((a) => a.id)).toEqual([ids[2], ids[0]]);
    expect((await list('?state=open')).alerts.map((a) => a.id)).toEqual([ids[4], ids[3], ids[1]]);
  });

  it('filters by severity, subject and rule, and combines filters', async () => {
    const { ids } = seedAlerts();
    expect((await list('?severity=critical')).alerts.map((a) => a.id)).toEqual([ids[4], ids[0]]);
    expect((await list('?severity=info')).alerts).toEqual([]);
    expect((await list('?subject=bat-1')).alerts.map((a) => a.id)).toEqual([ids[1], ids[0]]);
    expect((await list('?subject=site-1')).alerts.map((a) => a.ruleId)).toEqual(['site-coverage']);
    expect((await list('?rule=device-offline')).alerts.map((a) => a.id)).toEqual([ids[2], ids[1]]);
    expect((await list('?rule=battery-overheat&state=open')).alerts.map((a) => a.id)).toEqual([ids[4]]);
    expect((await list('?subject=bat-1&severity=warning&state=acknowledged')).alerts.map((a) => a.id)).toEqual([ids[1]]);
  });

  it('pages with limit and next, and next is null on the last page', async () => {
    const { ids } = seedAlerts();
    const page1 = await list('?limit=2');
    expect(page1.alerts.map((a) => a.id)).toEqual([ids[4], ids[3]]);
    expect(page1.next).toBe(ids[3]);
    const page2 = await list(`?limit=2&before=${page1.next}`);
    expect(page2.alerts.map((a) => a.id)).toEqual([ids[2], ids[1]]);
    expect(page2.next).toBe(ids[1]);
    const page3 = await list(`?limit=2&before=${page2.next}`);
    expect(page3.alerts.map((a) => a.id)).toEqual([ids[0]]);
    expect(page3.next).toBeNull();

    // A page that ends exactly at the last alert has no next.
    expect((await list('?limit=5')).next).toBeNull();
    // Paging keeps the filter.
    const open1 = await list('?state=open&limit=1');
    expect(open1.alerts.map((a) => a.id)).toEqual([ids[4]]);
    const open2 = await list(`?state=open&limit=5&before=${open1.next}`);
    expect(open2.alerts.map((a) => a.id)).toEqual([ids[3], ids[1]]);
    expect(open2.next).toBeNull();
  });

  it('answers 400 naming the parameter for bad values', async () => {
    const cases: Array<[string, RegExp]> = [
      ['state=burning', /^state: must be one of firing, acknowledged, resolved, open$/],
      ['severity=fatal', /^severity: must be one of critical, warning, info$/],
      ['limit=0', /^limit: /],
      ['limit=501', /^limit: /],
      ['limit=ten', /^limit: /],
      ['before=abc', /^before: /],
      ['before=0', /^before: /],
      ['before=-3', /^before: /],
      ['rule=Battery_Overheat', /^rule: /],
      ['subject=', /^subject: /],
      [`subject=${'x'.repeat(201)}`, /^subject: /],
    ];
    for (const [query, message] of cases) {
      const response = await t.request({ method: 'GET', url: `/api/v1/alerts?${query}` });
      expect(response.statusCode, query).toBe(400);
      expect(response.json(), query).toEqual({ code: 'bad-request', message: expect.stringMatching(message) });
    }
  });
});

describe('GET /api/v1/alerts/:id', () => {
  it('answers the alert with its transitions, oldest first', async () => {
    const id = fire('battery-overheat', 'bat-1', T0 - 1000, { severity: 'critical' });
    t.store.alerts.acknowledgeAlert(id, { actor: 'admin', note: 'on it', atMs: T0 - 500 });
    t.store.alerts.resolveAlert(id, { actor: 'admin', reason: 'cooled down', atMs: T0 });

    const response = await t.request({ method: 'GET', url: `/api/v1/alerts/${id}` });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({
      id,
      state: 'resolved',
      acknowledgedAt: new Date(T0 - 500).toISOString(),
      acknowledgedBy: 'admin',
      acknowledgeNote: 'on it',
      resolvedAt: new Date(T0).toISOString(),
      resolvedBy: 'admin',
      resolveReason: 'cooled down',
    });
    expect(body.transitions).toHaveLength(3);
    expect(body.transitions.map((tr: { kind: string }) => tr.kind)).toEqual(['fired', 'acknowledged', 'resolved']);
    expect(body.transitions[0]).toEqual({ seq: expect.any(Number), kind: 'fired', at: new Date(T0 - 1000).toISOString(), actor: 'rule', note: null, notify: true });
    expect(body.transitions[1]).toMatchObject({ kind: 'acknowledged', at: new Date(T0 - 500).toISOString(), actor: 'admin', note: 'on it' });
    expect(body.transitions[2]).toMatchObject({ kind: 'resolved', at: new Date(T0).toISOString(), actor: 'admin', note: 'cooled down' });
    const seqs = body.transitions.map((tr: { seq: number }) => tr.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it('answers 404 for an unknown or non-numeric id', async () => {
    fire('battery-overheat', 'bat-1', T0);
    for (const id of ['999', 'abc', '0', '-1', '1.5', '99999999999999999999']) {
      const response = await t.request({ method: 'GET', url: `/api/v1/alerts/${id}` });
      expect(response.statusCode, id).toBe(404);
      expect(response.json(), id).toEqual({ code: 'not-found', message: `alert '${id}' does not exist` });
    }
  });
});

describe('POST /api/v1/alerts/:id/ack', () => {
  it('acknowledges a firing alert as the name of an operator token, tells the notifier once, and answers 409 the second time', async () => {
    const id = fire('device-offline', 'bat-1', T0 - 1000);
    const token = await t.createToken('operator', 'ops-anna');
    t.clock.nowMs = T0 + 250;
    const response = await t.requestAs(token, { method: 'POST', url: `/api/v1/alerts/${id}/ack`, payload: { note: 'driving there' } });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({
      id,
      state: 'acknowledged',
      acknowledgedAt: new Date(T0 + 250).toISOString(),
      acknowledgedBy: 'ops-anna',
      acknowledgeNote: 'driving there',
      resolvedAt: null,
    });

    const stored = t.store.alerts.getAlert(id)!;
    expect(stored.state).toBe('acknowledged');
    const transition = stored.transitions.at(-1)!;
    expect(transition).toMatchObject({ kind: 'acknowledged', actor: 'ops-anna', note: 'driving there', atMs: T0 + 250 });
    expect(t.alertTransitions).toHaveLength(1);
    expect(t.alertTransitions[0]).toEqual({ eventId: `${id}-${transition.seq}`, alert: expect.objectContaining({ id, state: 'acknowledged' }), transition });

    const again = await t.request({ method: 'POST', url: `/api/v1/alerts/${id}/ack`, payload: {} });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toEqual({
      code: 'conflict',
      message: `alert '${id}' is already acknowledged (by ops-anna at ${new Date(T0 + 250).toISOString()})`,
    });
    expect(t.alertTransitions).toHaveLength(1);
  });

  it('takes no body, an empty JSON body or {} alike', async () => {
    const ids = [fire('device-offline', 'a-1', T0), fire('device-offline', 'a-2', T0), fire('device-offline', 'a-3', T0)];
    const noBody = await t.request({ method: 'POST', url: `/api/v1/alerts/${ids[0]}/ack` });
    const emptyJson = await t.request({ method: 'POST', url: `/api/v1/alerts/${ids[1]}/ack`, headers: { 'content-type': 'application/json' }, payload: '' });
    const emptyObject = await t.request({ method: 'POST', url: `/api/v1/alerts/${ids[2]}/ack`, payload: {} });
    for (const response of [noBody, emptyJson, emptyObject]) {
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toMatchObject({ state: 'acknowledged', acknowledgeNote: null });
    }
    expect(t.alertTransitions.map((e) => e.alert.id)).toEqual(ids);
  });

  it('refuses a long note, an unknown property and malformed JSON with 400', async () => {
    const id = fire('device-offline', 'bat-1', T0);
    const long = await t.request({ method: 'POST', url: `/api/v1/alerts/${id}/ack`, payload: { note: 'x'.repeat(1001) } });
    expect(long.statusCode).toBe(400);
    expect(long.json().message).toMatch(/^note: /);
    const unknown = await t.request({ method: 'POST', url: `/api/v1/alerts/${id}/ack`, payload: { notes: 'typo' } });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().message).toBe('notes: is not a known property');
    const malformed = await t.request({ method: 'POST', url: `/api/v1/alerts/${id}/ack`, headers: { 'content-type': 'application/json' }, payload: '{"note":' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().code).toBe('bad-request');
    expect(t.store.alerts.getAlert(id)!.state).toBe('firing');
    expect(t.alertTransitions).toEqual([]);
  });

  it('answers 409 naming the state for a resolved alert, and 404 for an unknown one', async () => {
    const id = fire('device-offline', 'bat-1', T0 - 1000);
    t.store.alerts.resolveAlert(id, { actor: 'admin', reason: 'replaced', atMs: T0 - 500 });
    const resolved = await t.request({ method: 'POST', url: `/api/v1/alerts/${id}/ack` });
    expect(resolved.statusCode).toBe(409);
    expect(resolved.json().message).toBe(`alert '${id}' is already resolved (by admin at ${new Date(T0 - 500).toISOString()})`);
    for (const unknown of ['999', 'abc']) {
      const response = await t.request({ method: 'POST', url: `/api/v1/alerts/${unknown}/ack` });
      expect(response.statusCode, unknown).toBe(404);
      expect(response.json().message).toBe(`alert '${unknown}' does not exist`);
    }
    expect(t.alertTransitions).toEqual([]);
  });

  it('still answers 200 when the notifier cannot be woken, since the transition is stored', async () => {
    const id = fire('device-offline', 'bat-1', T0);
    t.alertTransitionFail = new Error('notifier gone');
    const response = await t.request({ method: 'POST', url: `/api/v1/alerts/${id}/ack` });
    expect(response.statusCode).toBe(200);
    expect(t.store.alerts.getAlert(id)!.state).toBe('acknowledged');
    expect(t.alertTransitions).toHaveLength(1);
  });
});

describe('POST /api/v1/alerts/:id/resolve', () => {
  it('needs a reason that is not blank', async () => {
    const id = fire('device-offline', 'bat-1', T0);
    const cases: Array<[string, Parameters<typeof t.request>[0]['payload'] | undefined, string]> = [
      ['no body', undefined, 'reason: is required'],
      ['{}', {}, 'reason: is required'],
      ['empty', { reason: '' }, 'reason: must NOT have fewer than 1 characters'],
      ['blank', { reason: '   ' }, 'reason: must not be blank'],
      ['too long', { reason: 'x'.repeat(1001) }, 'reason: must NOT have more than 1000 characters'],
    ];
    for (const [name, payload, message] of cases) {
      const response = await t.request({ method: 'POST', url: `/api/v1/alerts/${id}/resolve`, ...(payload === undefined ? {} : { payload }) });
      expect(response.statusCode, name).toBe(400);
      expect(response.json(), name).toEqual({ code: 'bad-request', message });
    }
    expect(t.store.alerts.getAlert(id)!.state).toBe('firing');
    expect(t.alertTransitions).toEqual([]);
  });

  it('resolves an acknowledged alert as the configured admin token (bootstrap), tells the notifier once, and answers 409 the second time', async () => {
    const id = fire('device-offline', 'bat-1', T0 - 1000);
    t.store.alerts.acknowledgeAlert(id, { actor: 'admin', note: null, atMs: T0 - 500 });
    t.clock.nowMs = T0 + 100;
    const response = await t.request({ method: 'POST', url: `/api/v1/alerts/${id}/resolve`, payload: { reason: ' cable replaced ' } });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({
      id,
      state: 'resolved',
      acknowledgedBy: 'admin',
      resolvedAt: new Date(T0 + 100).toISOString(),
      resolvedBy: 'bootstrap',
      resolveReason: 'cable replaced',
    });

    const transition = t.store.alerts.getAlert(id)!.transitions.at(-1)!;
    expect(transition).toMatchObject({ kind: 'resolved', actor: 'bootstrap', note: 'cable replaced', atMs: T0 + 100 });
    expect(t.alertTransitions).toHaveLength(1);
    expect(t.alertTransitions[0]).toEqual({ eventId: `${id}-${transition.seq}`, alert: expect.objectContaining({ id, state: 'resolved' }), transition });

    const again = await t.request({ method: 'POST', url: `/api/v1/alerts/${id}/resolve`, payload: { reason: 'again' } });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toEqual({
      code: 'conflict',
      message: `alert '${id}' is already resolved (by bootstrap at ${new Date(T0 + 100).toISOString()})`,
    });
    expect(t.alertTransitions).toHaveLength(1);
  });

  it('resolves a firing alert, and answers 404 for an unknown one', async () => {
    const id = fire('battery-overheat', 'bat-1', T0, { severity: 'critical' });
    const response = await t.request({ method: 'POST', url: `/api/v1/alerts/${id}/resolve`, payload: { reason: 'false alarm' } });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ state: 'resolved', acknowledgedAt: null, resolveReason: 'false alarm' });
    const unknown = await t.request({ method: 'POST', url: '/api/v1/alerts/12345/resolve', payload: { reason: 'x' } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ code: 'not-found', message: "alert '12345' does not exist" });
  });
});

describe('GET /api/v1/alert-rules', () => {
  it('answers the rules and routes as configured', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/alert-rules' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual(JSON.parse(JSON.stringify({ rules: ALERT_RULES.rules, routes: ALERT_RULES.routes })));
    expect(ALERT_RULES.rules.map((r) => r.kind).sort()).toEqual(['frozen', 'offline', 'rateOfChange', 'stale', 'threshold', 'threshold']);
  });
});

describe('GET /api/v1/alert-deliveries', () => {
  it('counts deliveries by integration and state', async () => {
    expect((await t.request({ method: 'GET', url: '/api/v1/alert-deliveries' })).json()).toEqual({ integrations: {} });

    const ids = [fire('battery-overheat', 'bat-1', T0, { severity: 'critical' }), fire('battery-overheat', 'bat-2', T0), fire('device-offline', 'bat-3', T0)];
    const toRoute = t.store.alerts.transitionsToRoute(T0, 100);
    expect(toRoute.map((e) => e.alert.id)).toEqual(ids);
    t.store.alerts.routeTransitions(
      [
        { seq: toRoute[0]!.transition.seq, integrations: ['pagerduty', 'slack'] },
        { seq: toRoute[1]!.transition.seq, integrations: ['pagerduty'] },
        { seq: toRoute[2]!.transition.seq, integrations: ['slack'] },
      ],
      T0,
    );
    const due = t.store.alerts.dueDeliveries(T0, 100);
    expect(due).toHaveLength(4);
    const pagerduty = due.filter((d) => d.integration === 'pagerduty');
    t.store.alerts.markDelivered(pagerduty[0]!.id, T0 + 1);
    t.store.alerts.markFailed(pagerduty[1]!.id, { atMs: T0 + 1, error: 'HTTP 400', nextAttemptAtMs: null });

    const response = await t.request({ method: 'GET', url: '/api/v1/alert-deliveries' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      integrations: {
        pagerduty: { pending: 0, delivered: 1, dead: 1 },
        slack: { pending: 2, delivered: 0, dead: 0 },
      },
    });
  });
});

describe('alert routes and the token', () => {
  it('answer 401 without the admin token, before anything else', async () => {
    const id = fire('device-offline', 'bat-1', T0);
    const requests = [
      { method: 'GET', url: '/api/v1/alerts' },
      { method: 'GET', url: '/api/v1/alerts?state=bogus' },
      { method: 'GET', url: `/api/v1/alerts/${id}` },
      { method: 'POST', url: `/api/v1/alerts/${id}/ack` },
      { method: 'POST', url: `/api/v1/alerts/${id}/resolve`, payload: { reason: 'x' } },
      { method: 'GET', url: '/api/v1/alert-rules' },
      { method: 'GET', url: '/api/v1/alert-deliveries' },
    ] as const;
    for (const request of requests) {
      const response = await t.app.inject(request);
      expect(response.statusCode, request.url).toBe(401);
      expect(response.json().code).toBe('unauthorized');
    }
    expect(t.store.alerts.getAlert(id)!.state).toBe('firing');
    expect(t.alertTransitions).toEqual([]);
  });

  it('answer 503 when the store is down', async () => {
    await t.store.close();
    for (const url of ['/api/v1/alerts', '/api/v1/alerts/1', '/api/v1/alert-deliveries']) {
      const response = await t.request({ method: 'GET', url });
      expect(response.statusCode, url).toBe(503);
      expect(response.json().code).toBe('unavailable');
    }
    const ack = await t.request({ method: 'POST', url: '/api/v1/alerts/1/ack' });
    expect(ack.statusCode).toBe(503);
  });
});
