/**
 * Commands end to end on real sockets: the platform as `vpp up` wires it
 * (broker, ingest, dispatch's command sender, control) with a simulated
 * site, commands created through the API.
 *
 * - A setpoint reaches the battery, is accepted, shows as desired and
 *   reported in agreement on the device, and completes at its expiry.
 * - The same Idempotency-Key twice makes one command.
 * - A command to an offline device waits (not marked sent) and is delivered
 *   when the device comes back; one whose expiry passes first expires and
 *   never reaches the device.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startPlatform, type RunningPlatform } from './support/platform.ts';

interface CommandView {
  id: string;
  state: string;
  transitions: Array<{ state: string; at: string; detail: string | null }>;
}

describe('commands end to end', () => {
  let platform: RunningPlatform;
  beforeAll(async () => {
    platform = await startPlatform({
      VPP_SIM_SITES: '1',
      VPP_SIM_SPEED: '60',
      VPP_SIM_INTERVAL_MS: '60000',
      VPP_DEVICE_INTERVAL_MS: '1000',
    });
    await eventually(async () => {
      const device = (await (await platform.api('/api/v1/devices/site-0001-battery')).json()) as { presence: string };
      return device.presence === 'online' ? true : undefined;
    }, 20_000, 'the battery online');
  });
  afterAll(() => platform.stop());

  const send = async (deviceId: string, body: unknown, key?: string) =>
    platform.api(`/api/v1/devices/${deviceId}/commands`, { method: 'POST', body: JSON.stringify(body), headers: key ? { 'idempotency-key': key } : {} });
  const get = async (id: string) => (await (await platform.api(`/api/v1/commands/${id}`)).json()) as CommandView;
  const presence = async (deviceId: string) => ((await (await platform.api(`/api/v1/devices/${deviceId}`)).json()) as { presence: string }).presence;

  it('delivers a setpoint, shows it desired and reported in agreement, and completes it at its expiry', { timeout: 30_000 }, async () => {
    const created = await send('site-0001-battery', { type: 'setPower', params: { powerW: -1000 }, ttlSeconds: 4 });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as CommandView;
    await eventually(async () => ((await get(id)).state === 'accepted' ? true : undefined), 10_000, 'the command accepted');
    const device = await eventually(async () => {
      const body = (await (await platform.api('/api/v1/devices/site-0001-battery')).json()) as {
        control: { desired: { commandId: string } | null; reported: { mode?: string; commandId?: string | null } | null; agree: boolean | null };
      };
      return body.control.agree === true ? body : undefined;
    }, 10_000, 'desired and reported agreeing');
    expect(device.control.desired?.commandId).toBe(id);
    expect(device.control.reported).toMatchObject({ mode: 'setpoint', commandId: id });
    const done = await eventually(async () => {
      const command = await get(id);
      return command.state === 'completed' ? command : undefined;
    }, 15_000, 'the command completed');
    expect(done.transitions.map((t) => t.state)).toEqual(['pending', 'sent', 'accepted', 'completed']);
    expect(platform.sim!.fleet.stats().commandsReceived).toBeGreaterThanOrEqual(1);
    // The command sender's counters are in the dispatch service's heartbeat.
    const dispatchHealth = await eventually(async () => {
      const { services } = (await (await platform.api('/api/v1/services')).json()) as { services: Array<{ service: string; counters: Record<string, number> }> };
      const found = services.find((s) => s.service === 'dispatch');
      return found && found.counters.sent! >= 1 && found.counters.acksApplied! >= 2 ? found : undefined;
    }, 10_000, 'the dispatch heartbeat with its counters');
    expect(dispatchHealth.counters.acksInvalid).toBe(0);
  });

  it('makes one command of the same Idempotency-Key sent twice', async () => {
    const body = { type: 'setMode', params: { mode: 'idle' }, ttlSeconds: 2 };
    const first = await send('site-0001-battery', body, 'retry-1');
    const second = await send('site-0001-battery', body, 'retry-1');
    expect([first.status, second.status]).toEqual([201, 200]);
    const a = (await first.json()) as CommandView;
    const b = (await second.json()) as CommandView;
    expect(b.id).toBe(a.id);
    expect((await send('site-0001-battery', { ...body, ttlSeconds: 3 }, 'retry-1')).status).toBe(409);
  });

  it('holds a command for an offline device and delivers it when the device is back', { timeout: 40_000 }, async () => {
    const fleet = platform.sim!.fleet;
    fleet.setOffline('site-0001-solar', true);
    await eventually(async () => ((await presence('site-0001-solar')) === 'offline' ? true : undefined), 10_000, 'the inverter offline');
    const created = await send('site-0001-solar', { type: 'curtail', params: { maxPowerW: 500 }, ttlSeconds: 60 });
    const { id } = (await created.json()) as CommandView;
    const receivedBefore = fleet.stats().commandsReceived;
    const backAtMs = Date.now();
    fleet.setOffline('site-0001-solar', false);
    const accepted = await eventually(async () => {
      const command = await get(id);
      return command.state === 'accepted' ? command : undefined;
    }, 20_000, 'the command accepted after the reconnect');
    // It was sent only once the device was back, and reached it once.
    const sent = accepted.transitions.filter((t) => t.state === 'sent');
    expect(sent).toHaveLength(1);
    expect(Date.parse(sent[0]!.at)).toBeGreaterThanOrEqual(backAtMs);
    expect(fleet.stats().commandsReceived).toBe(receivedBefore + 1);
  });

  it('expires a command whose device stays away past its expiry, and never delivers it', { timeout: 40_000 }, async () => {
    const fleet = platform.sim!.fleet;
    fleet.setOffline('site-0001-meter', true);
    await eventually(async () => ((await presence('site-0001-meter')) === 'offline' ? true : undefined), 10_000, 'the meter offline');
    // A meter takes no command: use the battery, offline too.
    fleet.setOffline('site-0001-battery', true);
    await eventually(async () => ((await presence('site-0001-battery')) === 'offline' ? true : undefined), 10_000, 'the battery offline');
    const created = await send('site-0001-battery', { type: 'setPower', params: { powerW: 500 }, ttlSeconds: 1 });
    const { id } = (await created.json()) as CommandView;
    const expired = await eventually(async () => {
      const command = await get(id);
      return command.state === 'expired' ? command : undefined;
    }, 10_000, 'the command expired');
    expect(expired.transitions.map((t) => t.state)).toEqual(['pending', 'expired']);
    const receivedBefore = fleet.stats().commandsReceived;
    fleet.setOffline('site-0001-battery', false);
    fleet.setOffline('site-0001-meter', false);
    await eventually(async () => ((await presence('site-0001-battery')) === 'online' ? true : undefined), 10_000, 'the battery back');
    // Its own next cycles see nothing due: it is final. A fresh command still goes through.
    const fresh = (await (await send('site-0001-battery', { type: 'setMode', params: { mode: 'selfConsumption' }, ttlSeconds: 5 })).json()) as CommandView;
    await eventually(async () => (['accepted', 'completed'].includes((await get(fresh.id)).state) ? true : undefined), 10_000, 'a fresh command accepted');
    expect(fleet.stats().commandsReceived).toBe(receivedBefore + 1);
    expect((await get(id)).state).toBe('expired');
  });
});
