/**
 * Alerts end to end, as a user runs them: `vpp up` with the simulator's
 * faults injected at start and a rules file; a signed webhook, a Slack
 * and a PagerDuty receiver on loopback (their payloads checked against the
 * documented formats), a real Alertmanager, and the read-only observer
 * account on MQTT.
 *
 * The faults produce exactly the expected alerts and transitions (and
 * nothing else), each delivered once to the webhook with a valid signature
 * and published on MQTT; an operator acknowledges and resolves one through
 * the API, and its still-holding condition raises nothing new.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { startAlertmanager, type RunningAlertmanager } from '../notify/test-alertmanager.ts';
import { formatErrors, PagerDutyEventsV2, SlackIncomingWebhookMessage } from '../notify/test-formats.ts';
import { answer, startReceiver, type Receiver } from '../notify/test-receiver.ts';
import type { AlertEvent } from '../protocol/index.ts';
import { alertTestEnv, FLAP_SECONDS, verifiedEvents, type AlertView } from './support/alerts.ts';
import { eventually } from './support/platform.ts';
import { useProcessTestBed } from './support/process-bed.ts';
import { stopVpp } from './support/processes.ts';

describe('alerts end to end', () => {
  const bed = useProcessTestBed();
  const receivers: Receiver[] = [];
  let alertmanager: RunningAlertmanager | undefined;
  afterAll(async () => {
    for (const receiver of receivers) await receiver.close();
    await alertmanager?.stop();
  });

  it('raises exactly the alerts the injected faults call for, tells the webhook, Slack, PagerDuty, Alertmanager and MQTT once per transition', { timeout: 150_000 }, async () => {
    const receiver = await startReceiver(answer(200, 'ok'));
    const slack = await startReceiver(answer(200, 'ok'));
    const pagerduty = await startReceiver(answer(202, '{"status":"success","message":"Event processed"}'));
    receivers.push(receiver, slack, pagerduty);
    alertmanager = await startAlertmanager();
    const { env, mqttPort, api, headers } = await alertTestEnv(
      bed,
      {
        VPP_SLACK_WEBHOOK_URL: `${slack.url}/services/T000/B000/XXXX`,
        VPP_PAGERDUTY_ROUTING_KEY: 'R0123456789ABCDEF0123456789ABCDE',
        VPP_PAGERDUTY_URL: `${pagerduty.url}/v2/enqueue`,
        VPP_ALERTMANAGER_URL: alertmanager.url,
        VPP_SIM_SITES: '2',
        VPP_SIM_FAULTS: [
          'overheat:site-0001-battery@1-45',
          'silent:site-0002-solar@1-12',
          'disconnect:site-0002-meter@1-12',
          'frozen:site-0001-meter@1',
          'soc-jump:site-0002-battery@2',
        ].join(','),
      },
      receiver,
    );
    const up = bed.spawn('up', env);
    await up.waitForOutput(/virtual power plant is up/);

    const observer = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
      username: 'vpp-observer',
      password: readFileSync(join(bed.dataDir, 'observer-secret'), 'utf8').trim(),
      clientId: 'vpp-observer',
      protocolVersion: 4,
    });
    const published: Array<{ topic: string; payload: string; retain: boolean }> = [];
    observer.on('message', (topic, payload, packet) => published.push({ topic, payload: payload.toString(), retain: packet.retain }));
    await observer.subscribeAsync('vpp/v1/alerts/#', { qos: 1 });

    const list = async (): Promise<AlertView[]> => {
      const page = (await (await fetch(`${api}/alerts?limit=500`, { headers })).json()) as { alerts: Array<{ id: string }> };
      return Promise.all(page.alerts.map(async ({ id }) => (await (await fetch(`${api}/alerts/${id}`, { headers })).json()) as AlertView));
    };

    // The frozen voltage stays frozen: an operator takes it, then closes it by hand.
    const frozen = await eventually(async () => (await list()).find((a) => a.ruleId === 'meter-voltage-frozen' && a.state === 'firing'), 30_000, 'the frozen voltage alert');
    // Alertmanager shows it firing, with the rule as alertname.
    const inAlertmanager = async () =>
      ((await (await fetch(`${alertmanager!.url}/api/v2/alerts?active=true`)).json()) as Array<{ labels: Record<string, string>; status: { state: string } }>).filter(
        (a) => a.labels.alertname === 'meter-voltage-frozen' && a.labels.subject_id === 'site-0001-meter',
      );
    await eventually(async () => ((await inAlertmanager()).length === 1 ? true : undefined), 10_000, 'the alert active in Alertmanager');
    const acked = await fetch(`${api}/alerts/${frozen.id}/ack`, { method: 'POST', headers, body: JSON.stringify({ note: 'on it' }) });
    expect(acked.status).toBe(200);
    expect(((await acked.json()) as { state: string }).state).toBe('acknowledged');
    const again = await fetch(`${api}/alerts/${frozen.id}/ack`, { method: 'POST', headers, body: '{}' });
    expect(again.status).toBe(409);
    const resolved = await fetch(`${api}/alerts/${frozen.id}/resolve`, { method: 'POST', headers, body: JSON.stringify({ reason: 'meter replaced' }) });
    expect(resolved.status).toBe(200);
    // The resolution ends it in Alertmanager.
    await eventually(async () => ((await inAlertmanager()).length === 0 ? true : undefined), 10_000, 'the alert resolved in Alertmanager');

    const expected = [
      'battery-overheat/site-0001-battery',
      'device-offline/site-0002-meter',
      'device-stale/site-0002-solar',
      'meter-voltage-frozen/site-0001-meter',
      'soc-implausible-change/site-0002-battery',
    ];
    const alerts = await eventually(
      async () => {
        const all = await list();
        const done = expected.every((key) => all.some((a) => `${a.ruleId}/${a.subjectId}` === key && a.state === 'resolved'));
        return done ? all : undefined;
      },
      90_000,
      'every expected alert resolved',
    );
    // Resolutions by rules are told once they have held for the flapping window.
    await eventually(
      () => (receiver.requests.filter((r) => (JSON.parse(r.body) as AlertEvent).transition.kind === 'resolved').length >= expected.length ? true : undefined),
      (FLAP_SECONDS + 10) * 1000,
      'every resolution told to the webhook',
    );
    const final = await list();
    expect(final.map((a) => `${a.ruleId}/${a.subjectId}`).sort()).toEqual(expected);
    for (const alert of final) {
      const kinds = alert.transitions.map((t) => t.kind);
      if (alert.ruleId === 'meter-voltage-frozen') {
        expect(kinds).toEqual(['fired', 'acknowledged', 'resolved']);
        expect(alert.resolvedBy).toBe('bootstrap');
      } else {
        expect(kinds, `${alert.ruleId}/${alert.subjectId}`).toEqual(['fired', 'resolved']);
        expect(alert.resolvedBy).toBe('rule');
      }
    }
    expect(alerts.length).toBe(expected.length);

    // The webhook: every transition once, signed, in order per alert.
    const events = verifiedEvents(receiver);
    expect(new Set(events.map((e) => e.eventId)).size).toBe(events.length);
    for (const alert of final) {
      const told = events.filter((e) => e.alert.id === alert.id).map((e) => e.transition.kind);
      expect(told, `${alert.ruleId}/${alert.subjectId}`).toEqual(alert.transitions.map((t) => t.kind));
    }

    // Slack and PagerDuty: one request per transition, each in the service's documented format.
    const told = final.flatMap((a) => a.transitions.map((t) => ({ alert: a, kind: t.kind })));
    // Each alert's resolution is its last transition: once every one has arrived, nothing is pending.
    const resolutionsAt = (r: Receiver, isResolution: (body: Record<string, unknown>) => boolean) =>
      r.requests.filter((request) => isResolution(JSON.parse(request.body) as Record<string, unknown>)).length;
    await eventually(() => (resolutionsAt(slack, (b) => String(b.text).includes('] Resolved: ')) >= expected.length ? true : undefined), 10_000, 'Slack told of every resolution');
    await eventually(() => (resolutionsAt(pagerduty, (b) => b.event_action === 'resolve') >= expected.length ? true : undefined), 10_000, 'PagerDuty told of every resolution');
    expect(slack.requests.length).toBe(told.length);
    for (const request of slack.requests) {
      expect(request.path).toBe('/services/T000/B000/XXXX');
      expect(formatErrors(SlackIncomingWebhookMessage, JSON.parse(request.body))).toEqual([]);
    }
    expect(pagerduty.requests.length).toBe(told.length);
    const actions = new Map<string, string[]>();
    for (const request of pagerduty.requests) {
      expect(request.path).toBe('/v2/enqueue');
      const event = JSON.parse(request.body) as { dedup_key: string; event_action: string };
      expect(formatErrors(PagerDutyEventsV2, event)).toEqual([]);
      actions.set(event.dedup_key, [...(actions.get(event.dedup_key) ?? []), event.event_action]);
    }
    const ACTION = { fired: 'trigger', reopened: 'trigger', acknowledged: 'acknowledge', resolved: 'resolve' } as const;
    for (const alert of final) {
      expect(actions.get(`vpp-alert-${alert.id}`), `${alert.ruleId}/${alert.subjectId}`).toEqual(alert.transitions.map((t) => ACTION[t.kind as keyof typeof ACTION]));
    }

    // MQTT: the same transitions on vpp/v1/alerts/{rule}/{subject}; a resolution clears the retained message.
    await eventually(() => (published.filter((m) => m.payload !== '').length >= events.length ? true : undefined), 10_000, 'MQTT transitions');
    for (const alert of final) {
      const topic = `vpp/v1/alerts/${alert.ruleId}/${alert.subjectId}`;
      const onTopic = published.filter((m) => m.topic === topic);
      const kinds = onTopic.filter((m) => m.payload !== '').map((m) => (JSON.parse(m.payload) as AlertEvent).transition.kind);
      expect(kinds, topic).toEqual(alert.transitions.map((t) => t.kind));
      expect(onTopic.at(-1)?.payload, `${topic} cleared`).toBe('');
    }
    await observer.endAsync();
    // The notifier's counters ride on ingest's heartbeat.
    const ingestHealth = await eventually(async () => {
      const { services } = (await (await fetch(`${api}/services`, { headers })).json()) as { services: Array<{ service: string; counters: Record<string, number> }> };
      const found = services.find((s) => s.service === 'ingest');
      return found && (found.counters['notify.webhook.delivered'] ?? 0) >= events.length ? found : undefined;
    }, 10_000, 'the notifier counters in the ingest heartbeat');
    expect(ingestHealth.counters['notify.webhook.dead']).toBe(0);
    expect(await stopVpp(up, 'SIGINT')).toBe(0);
  });
});
