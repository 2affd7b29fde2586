/**
 * Commands over real sockets: a two-site fleet against an aedes broker, on
 * a clock the test moves forward (`skewMs`), so expiries, drains and the
 * offline grace are reached in a fraction of a second; everything else
 * waits for the observable message with a bounded timeout.
 *
 * Ordering: a device publishes its status before the ack of the same
 * change, over one connection at QoS 1, so the observer receives them in
 * that order; "no status between these two acks" is then a fact about the
 * recorded stream, not a guess after a pause.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeAck, decodeTelemetry, deviceTopic, samplesOf, type Ack, type TelemetrySample } from '../protocol/index.ts';
import { generateSecret } from '../store/credentials.ts';
import { CONNECTION_LOST_REASON, CURTAILMENT_LIFTED_REASON } from './commands.ts';
import { planFleet, type SimDeviceSpec } from './fleet-plan.ts';
import { startFleet, type Fleet, type FleetOptions } from './fleet.ts';
import { statusOf, startTestBroker, type Received, type Recorder, type TestBroker } from './test-broker.ts';

const logger = pino({ level: 'silent' });
const plan = planFleet({ sites: 2, seed: 7 });
const NOON = Date.UTC(2024, 5, 21, 12);

let test: TestBroker;
let devices: Array<SimDeviceSpec & { secret: string }>;
let fleet: Fleet | undefined;
/** How far the fleet's clock runs ahead of the wall clock. */
let skewMs: number;
const clock = (): number => Date.now() + skewMs;

beforeEach(async () => {
  test = await startTestBroker();
  devices = plan.devices.map((device) => ({ ...device, secret: generateSecret() }));
  for (const device of devices) test.secrets.set(device.id, device.secret);
  skewMs = 0;
  fleet = undefined;
});

afterEach(async () => {
  await fleet?.stop();
  await test.close();
});

async function start(overrides: Partial<FleetOptions> = {}): Promise<Fleet> {
  fleet = await startFleet({ mqttUrl: test.mqttUrl, devices, seed: 7, speed: 100, telemetryIntervalMs: 2_000, startTimeMs: NOON, clock, logger, ...overrides });
  return fleet;
}

async function sendCommand(client: MqttClient, deviceId: string, body: { id?: string; type: string; params: Record<string, unknown>; expiresAt: number }): Promise<string> {
  const id = body.id ?? randomUUID();
  await client.publishAsync(deviceTopic(deviceId, 'commands'), JSON.stringify({ ...body, id }), { qos: 1 });
  return id;
}

function decodedAck(message: Received): Ack {
  const decoded = decodeAck(message.payload);
  if (!decoded.ok) throw new Error(`invalid ack: ${decoded.detail}`);
  return decoded.value;
}

const acksOf = (recorder: Recorder, deviceId: string, commandId: string): Ack[] =>
  recorder.of(deviceId, 'acks').map(decodedAck).filter((ack) => ack.commandId === commandId);

/** Position in the recorded stream of the first ack of `commandId` with `status`, -1 when none yet. */
function ackIndex(recorder: Recorder, deviceId: string, commandId: string, status: Ack['status'], nth = 0): number {
  let seen = 0;
  return recorder.messages.findIndex((m) => {
    if (m.deviceId !== deviceId || m.channel !== 'acks') return false;
    const ack = decodedAck(m);
    if (ack.commandId !== commandId || ack.status !== status) return false;
    return seen++ === nth;
  });
}

/** Statuses of a device recorded after position `from` of the stream (up to `to`, exclusive, when given). */
function statusesBetween(recorder: Recorder, deviceId: string, from: number, to = recorder.messages.length): Array<Record<string, unknown>> {
  return recorder.messages.slice(from + 1, to).filter((m) => m.deviceId === deviceId && m.channel === 'status').map(statusOf);
}

/**
 * Telemetry samples of a device recorded after position `from` of the
 * stream. Checks of a command's effect skip the first one: taken in the
 * same millisecond as the command, it shows the instant before it.
 */
function samplesAfter(recorder: Recorder, deviceId: string, from: number): TelemetrySample[] {
  return recorder.messages
    .slice(from + 1)
    .filter((m) => m.deviceId === deviceId && m.channel === 'telemetry')
    .flatMap((m) => {
      const decoded = decodeTelemetry(m.payload);
      if (!decoded.ok) throw new Error(`invalid telemetry: ${decoded.detail}`);
      return samplesOf(decoded.value);
    });
}

const lastStatus = (recorder: Recorder, deviceId: string): Record<string, unknown> | undefined => recorder.statusesOf(deviceId).at(-1);

describe('commands against a real broker', () => {
  it('setMode idle: 0 W until the expiry, then completed and back to self-consumption, as the status says', async () => {
    const { client, recorder } = await test.observe('vpp/v1/devices/+/#');
    await start();
    const battery = 'site-0001-battery';
    const expiresAt = clock() + 60_000;
    const id = await sendCommand(client, battery, { type: 'setMode', params: { mode: 'idle' }, expiresAt });

    await recorder.waitFor('accepted', () => ackIndex(recorder, battery, id, 'accepted') >= 0);
    const acceptedAt = ackIndex(recorder, battery, id, 'accepted');
    expect(acksOf(recorder, battery, id)).toEqual([{ commandId: id, status: 'accepted' }]);
    // The status saying so came just before the ack.
    expect(statusesBetween(recorder, battery, -1, acceptedAt).at(-1)).toEqual({
      online: true,
      firmware: 'sim-1.0.0',
      type: 'battery',
      mode: 'idle',
      setpointW: null,
      clippedBy: null,
      commandId: id,
      commandUntil: expiresAt,
    });
    await recorder.waitFor('four samples after the accept', () => samplesAfter(recorder, battery, acceptedAt).length >= 4);
    expect(samplesAfter(recorder, battery, acceptedAt).slice(1).every((s) => s.metrics.powerW === 0)).toBe(true);

    skewMs += 60_000;
    await recorder.waitFor('completed', () => ackIndex(recorder, battery, id, 'completed') >= 0);
    expect(acksOf(recorder, battery, id)).toEqual([
      { commandId: id, status: 'accepted' },
      { commandId: id, status: 'completed' },
    ]);
    expect(lastStatus(recorder, battery)).toMatchObject({ online: true, mode: 'selfConsumption', setpointW: null, commandId: null, commandUntil: null });
  });

  it('curtail: the inverter stays under the cap in its telemetry, says so in its status, and null lifts it at once', async () => {
    const { client, recorder } = await test.observe('vpp/v1/devices/+/#');
    await start();
    const solar = 'site-0001-solar';
    const capW = 200;
    await recorder.waitFor('noon output above the cap', () => recorder.samplesOf(solar).some((s) => s.metrics.powerW! > capW));
    const expiresAt = clock() + 600_000;
    const capId = await sendCommand(client, solar, { type: 'curtail', params: { maxPowerW: capW }, expiresAt });
    await recorder.waitFor('accepted', () => ackIndex(recorder, solar, capId, 'accepted') >= 0);
    const acceptedAt = ackIndex(recorder, solar, capId, 'accepted');
    expect(lastStatus(recorder, solar)).toEqual({ online: true, firmware: 'sim-1.0.0', type: 'solar', curtailW: capW, commandId: capId, commandUntil: expiresAt });
    await recorder.waitFor('five samples after the accept', () => samplesAfter(recorder, solar, acceptedAt).length >= 5);
    expect(samplesAfter(recorder, solar, acceptedAt).slice(1).every((s) => s.metrics.powerW! <= capW)).toBe(true);
    // The battery of the site is not commanded by the inverter's curtailment.
    expect(lastStatus(recorder, 'site-0001-battery')).toMatchObject({ mode: 'selfConsumption', commandId: null });

    const liftId = await sendCommand(client, solar, { type: 'curtail', params: { maxPowerW: null }, expiresAt });
    await recorder.waitFor('the lift completed', () => ackIndex(recorder, solar, liftId, 'completed') >= 0);
    expect(acksOf(recorder, solar, capId)).toEqual([
      { commandId: capId, status: 'accepted' },
      { commandId: capId, status: 'completed', reason: `superseded by ${liftId}` },
    ]);
    expect(acksOf(recorder, solar, liftId)).toEqual([{ commandId: liftId, status: 'completed', reason: CURTAILMENT_LIFTED_REASON }]);
    expect(lastStatus(recorder, solar)).toMatchObject({ curtailW: null, commandId: null, commandUntil: null });
    const liftedAt = ackIndex(recorder, solar, liftId, 'completed');
    await recorder.waitFor('output above the cap again', () => samplesAfter(recorder, solar, liftedAt).some((s) => s.metrics.powerW! > capW));
  });

  it('setPower beyond the power limit: accepted with applied, then the physics clips it further at the reserve; the retained status says so', async () => {
    const { client, recorder } = await test.observe('vpp/v1/devices/+/#');
    await start();
    const battery = 'site-0002-battery';
    const limitW = plan.siteParams.get('site-0002')!.battery.maxDischargeW;
    const expiresAt = clock() + 3_600_000;
    const id = await sendCommand(client, battery, { type: 'setPower', params: { powerW: 50_000 }, expiresAt });

    await recorder.waitFor('accepted', () => ackIndex(recorder, battery, id, 'accepted') >= 0);
    expect(acksOf(recorder, battery, id)).toEqual([
      { commandId: id, status: 'accepted', reason: `clipped to the power limit of ${limitW} W`, applied: { powerW: limitW } },
    ]);
    const acceptedAt = ackIndex(recorder, battery, id, 'accepted');
    expect(statusesBetween(recorder, battery, -1, acceptedAt).at(-1)).toEqual({
      online: true,
      firmware: 'sim-1.0.0',
      type: 'battery',
      mode: 'setpoint',
      setpointW: limitW,
      clippedBy: 'powerLimit',
      commandId: id,
      commandUntil: expiresAt,
    });

    // Ten wall minutes on (17 simulated hours): far more than any battery of the plan holds above its reserve at its limit.
    skewMs += 600_000;
    await recorder.waitFor('the status clipped at the reserve', () => lastStatus(recorder, battery)?.clippedBy === 'reserve');
    const drained = lastStatus(recorder, battery)!;
    expect(drained).toMatchObject({ mode: 'setpoint', setpointW: 0, commandId: id, commandUntil: expiresAt });
    const drainedAt = recorder.messages.length - 1;
    await recorder.waitFor('samples at the reserve', () => samplesAfter(recorder, battery, drainedAt).length >= 2);
    for (const sample of samplesAfter(recorder, battery, drainedAt)) {
      expect(sample.metrics.powerW).toBe(0);
      expect(sample.metrics.socPct).toBeCloseTo(sample.metrics.reservePct!, 1);
    }
    // Not re-acked: the ack said what was applied at the start; the status says the rest.
    expect(acksOf(recorder, battery, id)).toHaveLength(1);

    const late = await test.observe(deviceTopic(battery, 'status'));
    await late.recorder.waitFor('the retained status', () => late.recorder.of(battery, 'status').length > 0);
    const [retained] = late.recorder.of(battery, 'status');
    expect(retained!.retain).toBe(true);
    expect(statusOf(retained!)).toEqual(drained);
  });

  it('drops a setpoint after the connection was lost for longer than commandGraceMs, and says so once connected again', async () => {
    const { client, recorder } = await test.observe('vpp/v1/devices/+/#');
    const running = await start({ commandGraceMs: 10_000 });
    const battery = 'site-0001-battery';
    const id = await sendCommand(client, battery, { type: 'setPower', params: { powerW: -1_000 }, expiresAt: clock() + 3_600_000 });
    await recorder.waitFor('accepted', () => ackIndex(recorder, battery, id, 'accepted') >= 0);
    expect(lastStatus(recorder, battery)).toMatchObject({ mode: 'setpoint', setpointW: -1_000, commandId: id });

    running.setOffline(battery, true);
    await recorder.waitFor('the will', () => lastStatus(recorder, battery)?.online === false);
    const willAt = recorder.messages.length - 1;
    skewMs += 11_000;
    running.setOffline(battery, false);
    await recorder.waitFor('completed', () => ackIndex(recorder, battery, id, 'completed') >= 0);
    expect(acksOf(recorder, battery, id)).toEqual([
      { commandId: id, status: 'accepted' },
      { commandId: id, status: 'completed', reason: CONNECTION_LOST_REASON },
    ]);
    // Back online already on local control: no status since the will showed the setpoint.
    const since = statusesBetween(recorder, battery, willAt);
    expect(since.length).toBeGreaterThan(0);
    for (const status of since) expect(status).toMatchObject({ online: true, mode: 'selfConsumption', setpointW: null, commandId: null });

    // The platform resends it (it never saw the end): answered with that end, not run again.
    await sendCommand(client, battery, { id, type: 'setPower', params: { powerW: -1_000 }, expiresAt: clock() + 3_600_000 });
    await recorder.waitFor('the answer to the resend', () => ackIndex(recorder, battery, id, 'completed', 1) >= 0);
    expect(acksOf(recorder, battery, id).map((ack) => ack.status)).toEqual(['accepted', 'completed', 'completed']);
    expect(acksOf(recorder, battery, id)[2]).toEqual({ commandId: id, status: 'completed', reason: CONNECTION_LOST_REASON });
    expect(statusesBetween(recorder, battery, willAt).every((status) => status.commandId === null)).toBe(true);
  });

  it('keeps a command through a short disconnection and does not carry out a redelivery twice', async () => {
    const { client, recorder } = await test.observe('vpp/v1/devices/+/#');
    const running = await start();
    const battery = 'site-0002-battery';
    const expiresAt = clock() + 30_000;
    const body = { type: 'setMode', params: { mode: 'backup' }, expiresAt };
    const id = await sendCommand(client, battery, body);
    await recorder.waitFor('accepted', () => ackIndex(recorder, battery, id, 'accepted') >= 0);

    running.setOffline(battery, true);
    await recorder.waitFor('the will', () => lastStatus(recorder, battery)?.online === false);
    running.setOffline(battery, false);
    await recorder.waitFor('online again, still in backup', () => lastStatus(recorder, battery)?.online === true);
    expect(lastStatus(recorder, battery)).toMatchObject({ mode: 'backup', commandId: id, commandUntil: expiresAt });
    const reconnectedAt = recorder.messages.length - 1;

    // Redelivered while it runs: the same accepted, and no new start (a start would publish a status before its ack).
    await sendCommand(client, battery, { ...body, id });
    await recorder.waitFor('the second accepted', () => ackIndex(recorder, battery, id, 'accepted', 1) >= 0);
    expect(statusesBetween(recorder, battery, reconnectedAt, ackIndex(recorder, battery, id, 'accepted', 1))).toEqual([]);

    skewMs += 30_000;
    await recorder.waitFor('completed at the expiry', () => ackIndex(recorder, battery, id, 'completed') >= 0);
    const completedAt = ackIndex(recorder, battery, id, 'completed');
    expect(lastStatus(recorder, battery)).toMatchObject({ mode: 'selfConsumption', commandId: null });

    // Redelivered after it completed (and after its expiry, which alone would reject it): the completed answer, nothing run.
    await sendCommand(client, battery, { ...body, id });
    await recorder.waitFor('the second completed', () => ackIndex(recorder, battery, id, 'completed', 1) >= 0);
    expect(acksOf(recorder, battery, id)).toEqual([
      { commandId: id, status: 'accepted' },
      { commandId: id, status: 'accepted' },
      { commandId: id, status: 'completed' },
      { commandId: id, status: 'completed' },
    ]);
    expect(statusesBetween(recorder, battery, completedAt)).toEqual([]);
  });

  it('ends a command that expires while the device is offline at its expiry, acked completed on reconnect', async () => {
    const { client, recorder } = await test.observe('vpp/v1/devices/+/#');
    const running = await start();
    const battery = 'site-0001-battery';
    const id = await sendCommand(client, battery, { type: 'setMode', params: { mode: 'idle' }, expiresAt: clock() + 2_000 });
    await recorder.waitFor('accepted', () => ackIndex(recorder, battery, id, 'accepted') >= 0);

    running.setOffline(battery, true);
    await recorder.waitFor('the will', () => lastStatus(recorder, battery)?.online === false);
    // Past the expiry, well within the grace.
    skewMs += 5_000;
    running.setOffline(battery, false);
    await recorder.waitFor('completed', () => ackIndex(recorder, battery, id, 'completed') >= 0);
    expect(acksOf(recorder, battery, id)).toEqual([
      { commandId: id, status: 'accepted' },
      { commandId: id, status: 'completed' },
    ]);
    expect(lastStatus(recorder, battery)).toMatchObject({ online: true, mode: 'selfConsumption', commandId: null });
  });
});
