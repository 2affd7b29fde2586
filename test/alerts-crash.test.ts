/**
 * Alerts across a crash, as a user runs them: `vpp up` is killed (SIGKILL)
 * while the webhook receiver is down, with an open, acknowledged alert
 * whose notifications are pending. After the restart the receiver gets each
 * transition once, in order, the alert is still open, and nothing is
 * raised twice (the rule's state survived the crash).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { answer, startReceiver, type Receiver } from '../notify/test-receiver.ts';
import type { AlertEvent } from '../protocol/index.ts';
import { alertTestEnv, verifiedEvents, type AlertView } from './support/alerts.ts';
import { eventually } from './support/platform.ts';
import { useProcessTestBed } from './support/process-bed.ts';
import { stopVpp } from './support/processes.ts';

describe('alerts across a crash', () => {
  const bed = useProcessTestBed();
  const receivers: Receiver[] = [];
  afterAll(async () => {
    for (const receiver of receivers) await receiver.close();
  });

  it('keeps open alerts and pending notifications across a SIGKILL, and raises nothing twice', { timeout: 120_000 }, async () => {
    const receiver = await startReceiver(answer(503, 'down for maintenance'));
    receivers.push(receiver);
    const { env, api, headers } = await alertTestEnv(bed, { VPP_SIM_SITES: '0' }, receiver);
    const first = bed.spawn('up', env);
    await first.waitForOutput(/virtual power plant is up/);
    // A device that never connects: offline, and it stays so across the restart.
    expect((await fetch(`${api}/sites`, { method: 'POST', headers, body: JSON.stringify({ id: 'kill-site', region: 'north', name: 'Kill' }) })).status).toBe(201);
    const created = await fetch(`${api}/devices`, { method: 'POST', headers, body: JSON.stringify({ type: 'battery', siteId: 'kill-site' }) });
    const { id: deviceId } = (await created.json()) as { id: string };
    const alert = await eventually(
      async () => {
        const page = (await (await fetch(`${api}/alerts?rule=device-offline&subject=${deviceId}`, { headers })).json()) as { alerts: AlertView[] };
        return page.alerts[0];
      },
      20_000,
      'the offline alert',
    );
    expect((await fetch(`${api}/alerts/${alert.id}/ack`, { method: 'POST', headers, body: JSON.stringify({ note: 'checking' }) })).status).toBe(200);
    // The receiver refuses the first transition (the second waits behind it, in order).
    await eventually(() => (receiver.requests.length > 0 ? true : undefined), 20_000, 'a refused delivery');

    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const refusedBeforeKill = receiver.requests.length;
    receiver.respond = answer(200, 'ok');

    const second = bed.spawn('up', env);
    await second.waitForOutput(/virtual power plant is up/);
    await eventually(() => (receiver.requests.length >= refusedBeforeKill + 2 ? true : undefined), 30_000, 'both transitions delivered after the restart');
    const page = (await (await fetch(`${api}/alerts`, { headers })).json()) as { alerts: AlertView[] };
    expect(page.alerts.map((a) => [a.id, a.ruleId, a.subjectId, a.state])).toEqual([[alert.id, 'device-offline', deviceId, 'acknowledged']]);

    // Resolved by hand: the alert's next transition, delivered after the earlier ones
    // (in order per alert), so a repeat of those would have arrived before it.
    expect((await fetch(`${api}/alerts/${alert.id}/resolve`, { method: 'POST', headers, body: JSON.stringify({ reason: 'device retired' }) })).status).toBe(200);
    await eventually(
      () => (receiver.requests.some((r) => (JSON.parse(r.body) as AlertEvent).transition.kind === 'resolved') ? true : undefined),
      10_000,
      'the resolution delivered',
    );
    const afterRestart = receiver.requests.slice(refusedBeforeKill).map((r) => JSON.parse(r.body) as AlertEvent);
    expect(afterRestart.map((e) => e.transition.kind)).toEqual(['fired', 'acknowledged', 'resolved']);
    expect(afterRestart.every((e) => e.alert.id === alert.id)).toBe(true);
    expect(new Set(afterRestart.map((e) => e.eventId)).size).toBe(3);
    expect(verifiedEvents(receiver).length).toBe(receiver.requests.length);
    const detail = (await (await fetch(`${api}/alerts/${alert.id}`, { headers })).json()) as AlertView;
    expect(detail.transitions.map((t) => t.kind)).toEqual(['fired', 'acknowledged', 'resolved']);
    expect(await stopVpp(second, 'SIGINT')).toBe(0);
  });
});
