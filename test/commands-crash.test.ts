/**
 * Commands across a crash, as a user runs them: `vpp up` is killed
 * (SIGKILL) with one command its device has answered and one it has not;
 * after the restart the unanswered one is sent again and answered, and the
 * answered one is never sent again. The device here is a plain MQTT client
 * that records every command it receives.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, eventually } from './support/platform.ts';
import { useProcessTestBed } from './support/process-bed.ts';
import { stopVpp } from './support/processes.ts';

describe('commands across a crash', () => {
  const bed = useProcessTestBed();

  it('picks up every unfinished command after a SIGKILL and sends nothing twice to a device that answered', { timeout: 120_000 }, async () => {
    const { env, mqttPort, httpPort } = await bed.env({ VPP_SIM_SITES: '0', VPP_ALERT_STARTUP_GRACE_SECONDS: '600' });
    const first = bed.spawn('up', env);
    await first.waitForOutput(/virtual power plant is up/);
    const api = `http://127.0.0.1:${httpPort}/api/v1`;
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    expect((await fetch(`${api}/sites`, { method: 'POST', headers, body: JSON.stringify({ id: 'crash-site', region: 'north', name: 'Crash' }) })).status).toBe(201);
    const { id: deviceId, secret } = (await (await fetch(`${api}/devices`, { method: 'POST', headers, body: JSON.stringify({ type: 'battery', siteId: 'crash-site' }) })).json()) as {
      id: string;
      secret: string;
    };

    // The device: records every command; answers only those it is told to.
    const received: string[] = [];
    const answer = new Set<string>();
    const connect = async (): Promise<MqttClient> => {
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: deviceId, username: deviceId, password: secret, protocolVersion: 4, reconnectPeriod: 0 });
      client.on('error', () => undefined);
      client.on('message', (_topic, payload) => {
        const command = JSON.parse(payload.toString()) as { id: string };
        received.push(command.id);
        if (answer.has(command.id)) void client.publishAsync(`vpp/v1/devices/${deviceId}/acks`, JSON.stringify({ commandId: command.id, status: 'accepted' }), { qos: 1 });
      });
      await client.subscribeAsync(`vpp/v1/devices/${deviceId}/commands`, { qos: 1 });
      return client;
    };
    let device = await connect();
    const presence = async () => ((await (await fetch(`${api}/devices/${deviceId}`, { headers })).json()) as { presence: string }).presence;
    await eventually(async () => ((await presence()) === 'online' ? true : undefined), 10_000, 'the device online');

    const create = async (powerW: number) =>
      ((await (await fetch(`${api}/devices/${deviceId}/commands`, { method: 'POST', headers, body: JSON.stringify({ type: 'setPower', params: { powerW }, ttlSeconds: 600 }) })).json()) as { id: string }).id;
    const answered = await create(1000);
    answer.add(answered);
    const state = async (id: string) => ((await (await fetch(`${api}/commands/${id}`, { headers })).json()) as { state: string }).state;
    await eventually(async () => ((await state(answered)) === 'accepted' ? true : undefined), 10_000, 'the first command accepted');
    const unanswered = await create(2000);
    await eventually(() => (received.includes(unanswered) ? true : undefined), 10_000, 'the second command received');
    expect(await state(unanswered)).toBe('sent');

    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    device.end(true);
    const answeredReceipts = received.filter((id) => id === answered).length;
    expect(answeredReceipts).toBe(1);

    const second = bed.spawn('up', env);
    await second.waitForOutput(/virtual power plant is up/);
    answer.add(unanswered);
    device = await connect();
    await eventually(async () => ((await state(unanswered)) === 'accepted' ? true : undefined), 30_000, 'the second command accepted after the restart');
    // A later command reaching the device means the sender has run its cycles since the
    // restart: a resend of the answered command would have come before it.
    const later = await create(3000);
    answer.add(later);
    await eventually(() => (received.includes(later) ? true : undefined), 10_000, 'a later command received');
    expect(received.filter((id) => id === answered)).toHaveLength(1);
    expect(await state(answered)).toBe('accepted');
    const detail = (await (await fetch(`${api}/commands/${unanswered}`, { headers })).json()) as { transitions: Array<{ state: string }> };
    expect(detail.transitions.map((t) => t.state).filter((s) => s === 'accepted')).toHaveLength(1);
    await device.endAsync();
    expect(await stopVpp(second, 'SIGINT')).toBe(0);
  });
});
