import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateSecret } from '../store/credentials.ts';
import {
  METRICS,
  decodeAck,
  deviceTopic,
  findAbsurdValue,
  parseDeviceTopic,
  samplesOf,
} from '../protocol/index.ts';
import { SimError } from './errors.ts';
import { planFleet, type SimDeviceSpec } from './fleet-plan.ts';
import { startFleet, type Fleet, type FleetOptions } from './fleet.ts';
import { poll, Recorder, statusOf, WAIT_MS } from './test-broker.ts';

const OBSERVER = 'observer';
const logger = pino({ level: 'silent' });
const plan = planFleet({ sites: 2, seed: 7 });
const NOON = Date.UTC(2024, 5, 21, 12);

let broker: Aedes;
let server: Server;
let mqttUrl: string;
let secrets: Map<string, string>;
let devices: Array<SimDeviceSpec & { secret: string }>;
let observers: MqttClient[];
let fleet: Fleet | undefined;

beforeEach(async () => {
  secrets = new Map([[OBSERVER, 'observer-secret']]);
  devices = plan.devices.map((device) => ({ ...device, secret: generateSecret() }));
  for (const device of devices) secrets.set(device.id, device.secret);
  broker = await Aedes.createBroker({
    authenticate: (_client, username, password, done) => {
      const expected = username === undefined ? undefined : secrets.get(username);
      done(null, expected !== undefined && password?.toString() === expected);
    },
  });
  server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  mqttUrl = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  observers = [];
  fleet = undefined;
});

afterEach(async () => {
  await fleet?.stop();
  await Promise.all(observers.map((client) => client.endAsync(true)));
  await new Promise<void>((resolve) => broker.close(() => resolve()));
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function observe(filter: string): Promise<{ client: MqttClient; recorder: Recorder }> {
  const client = await connectAsync(mqttUrl, { clientId: `${OBSERVER}-${observers.length}`, username: OBSERVER, password: 'observer-secret', reconnectPeriod: 0 });
  observers.push(client);
  const recorder = new Recorder();
  client.on('message', (topic, payload, packet) => {
    const parsed = parseDeviceTopic(topic);
    recorder.add({ topic, deviceId: parsed?.deviceId ?? '', channel: parsed?.channel ?? '', payload, retain: packet.retain });
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, recorder };
}

async function start(overrides: Partial<FleetOptions> = {}): Promise<Fleet> {
  fleet = await startFleet({ mqttUrl, devices, seed: 7, speed: 100, telemetryIntervalMs: 2_000, startTimeMs: NOON, logger, ...overrides });
  return fleet;
}

describe('startFleet against a real broker', () => {
  it('publishes valid telemetry on each device topic, retained status online, and offline after stop', async () => {
    const { recorder } = await observe('vpp/v1/devices/+/#');
    const running = await start();
    expect(running.stats().connected).toBe(6);

    await recorder.waitFor('three samples from every device', () => devices.every((d) => recorder.of(d.id, 'telemetry').length >= 3));
    for (const device of devices) {
      const payloads = recorder.telemetryOf(device.id);
      const samples = payloads.flatMap(samplesOf);
      expect(payloads.every((p) => !('samples' in p))).toBe(true);
      for (let i = 1; i < samples.length; i++) {
        expect(samples[i]!.seq).toBe(samples[i - 1]!.seq + 1);
        expect(samples[i]!.ts).toBeGreaterThan(samples[i - 1]!.ts);
      }
      for (const sample of samples) {
        expect(Object.keys(sample.metrics).sort()).toEqual(Object.keys(METRICS[device.type]).sort());
        expect(findAbsurdValue(device.type, sample.metrics)).toBeUndefined();
        // ts is the wall clock, not the simulated noon.
        expect(Math.abs(sample.ts - Date.now())).toBeLessThan(WAIT_MS);
      }
      if (device.type === 'solar') expect(samples.at(-1)!.metrics.powerW).toBeGreaterThan(0);
    }

    // A late subscriber sees every device's retained status: online.
    const late = await observe('vpp/v1/devices/+/status');
    await late.recorder.waitFor('retained status of every device', () => devices.every((d) => late.recorder.of(d.id, 'status').length > 0));
    for (const device of devices) {
      const [message] = late.recorder.of(device.id, 'status');
      expect(message!.retain).toBe(true);
      // What the device does: local control, no command.
      const control = {
        battery: { mode: 'selfConsumption', setpointW: null, clippedBy: null, commandId: null, commandUntil: null },
        solar: { curtailW: null, commandId: null, commandUntil: null },
        meter: {},
      }[device.type];
      expect(statusOf(message!)).toEqual({ online: true, firmware: 'sim-1.0.0', type: device.type, ...control });
    }

    await running.stop();
    expect(running.stats().connected).toBe(0);
    await poll('the broker to see every device leave', () => broker.connectedClients === observers.length);
    // A marker through the broker after the devices left: anything the broker
    // published for them (a will) has reached the observer before it.
    await observers[0]!.publishAsync(deviceTopic('marker', 'status'), '{"online":true}', { qos: 1 });
    await recorder.waitFor('the marker', () => recorder.of('marker', 'status').length === 1);
    for (const device of devices) {
      const offline = recorder.of(device.id, 'status').filter((m) => statusOf(m).online === false);
      // Exactly one offline status: the device's own, not also a will.
      expect(offline).toHaveLength(1);
    }
    const after = await observe('vpp/v1/devices/+/status');
    await after.recorder.waitFor('retained offline status of every device', () => devices.every((d) => after.recorder.of(d.id, 'status').length > 0));
    for (const device of devices) expect(statusOf(after.recorder.of(device.id, 'status')[0]!)).toEqual({ online: false });
  });

  it('buffers while offline and flushes the buffer in one samples message on reconnect', async () => {
    const { recorder } = await observe('vpp/v1/devices/+/#');
    const running = await start();
    const deviceId = 'site-0002-solar';
    await recorder.waitFor('live samples', () => recorder.of(deviceId, 'telemetry').length >= 3);

    running.setOffline(deviceId, true);
    await recorder.waitFor('the will', () => recorder.of(deviceId, 'status').some((m) => statusOf(m).online === false));
    expect(running.stats().connected).toBe(5);
    await poll('samples in the buffer', () => running.stats().buffered >= 5);
    const countBefore = recorder.of(deviceId, 'telemetry').length;

    running.setOffline(deviceId, false);
    await recorder.waitFor('a samples message and live samples after it', () => {
      const payloads = recorder.telemetryOf(deviceId).slice(countBefore);
      const batchAt = payloads.findIndex((p) => 'samples' in p);
      return batchAt >= 0 && payloads.length - batchAt > 2;
    });
    const statuses = recorder.of(deviceId, 'status').map(statusOf);
    expect(statuses.at(-1)).toMatchObject({ online: true });

    const all = recorder.telemetryOf(deviceId);
    const batches = all.filter((p) => 'samples' in p);
    expect(batches).toHaveLength(1);
    const batch = samplesOf(batches[0]!);
    expect(batch.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < batch.length; i++) expect(batch[i]!.seq).toBe(batch[i - 1]!.seq + 1);
    // Nothing lost: live samples, the batch and the live samples after it
    // cover every seq (a sample in flight when the link dropped may come twice).
    const seqs = new Set(all.flatMap(samplesOf).map((s) => s.seq));
    const maxSeq = Math.max(...seqs);
    for (let seq = 0; seq <= maxSeq; seq++) expect(seqs.has(seq), `seq ${seq}`).toBe(true);
    const liveBefore = all.slice(0, countBefore).flatMap(samplesOf);
    expect(liveBefore.every((s) => s.seq < batch.at(-1)!.seq)).toBe(true);
    expect(batch[0]!.seq).toBeLessThanOrEqual(liveBefore.at(-1)!.seq + 1);
    const afterBatch = all.slice(all.indexOf(batches[0]!) + 1).flatMap(samplesOf);
    expect(afterBatch[0]!.seq).toBe(batch.at(-1)!.seq + 1);
    // No other device buffered anything.
    for (const device of devices.filter((d) => d.id !== deviceId)) {
      expect(recorder.telemetryOf(device.id).some((p) => 'samples' in p)).toBe(false);
    }
    expect(running.stats().buffered).toBe(0);
    expect(running.stats().connected).toBe(6);
    expect(() => running.setOffline('no-such-device', true)).toThrow(SimError);
  });

  it('accepts setPower, follows it, and completes it at expiry; rejects an expired command', async () => {
    const { client, recorder } = await observe('vpp/v1/devices/+/#');
    const running = await start();
    const batteryId = 'site-0001-battery';
    const commandId = randomUUID();
    const sentAt = Date.now();
    await client.publishAsync(
      deviceTopic(batteryId, 'commands'),
      JSON.stringify({ id: commandId, type: 'setPower', params: { powerW: -1_500 }, expiresAt: sentAt + 1_500 }),
      { qos: 1 },
    );
    const acks = () => recorder.of(batteryId, 'acks').map((m) => {
      const decoded = decodeAck(m.payload);
      if (!decoded.ok) throw new Error(`invalid ack: ${decoded.detail}`);
      return decoded.value;
    });
    await recorder.waitFor('accepted', () => acks().some((a) => a.commandId === commandId && a.status === 'accepted'));
    const acceptedAtCount = recorder.of(batteryId, 'telemetry').length;
    await recorder.waitFor('the battery at the setpoint', () =>
      recorder.telemetryOf(batteryId).slice(acceptedAtCount).flatMap(samplesOf).some((s) => s.metrics.powerW === -1_500),
    );
    await recorder.waitFor('completed', () => acks().some((a) => a.commandId === commandId && a.status === 'completed'));
    expect(Date.now()).toBeGreaterThanOrEqual(sentAt + 1_500);
    expect(acks().map((a) => a.status)).toEqual(['accepted', 'completed']);

    const expiredId = randomUUID();
    await client.publishAsync(
      deviceTopic(batteryId, 'commands'),
      JSON.stringify({ id: expiredId, type: 'setPower', params: { powerW: 1_000 }, expiresAt: Date.now() - 1 }),
      { qos: 1 },
    );
    await recorder.waitFor('rejected', () => acks().some((a) => a.commandId === expiredId));
    expect(acks().find((a) => a.commandId === expiredId)).toEqual({ commandId: expiredId, status: 'rejected', reason: 'expired' });
    expect(running.stats().commandsReceived).toBe(2);
    expect(running.stats().acksSent).toBe(3);
  });

  it('rejects start listing the devices that could not connect, and leaves no connection behind', async () => {
    const wrong = devices.map((d) => (d.id === 'site-0001-meter' ? { ...d, secret: 'wrong' } : d));
    const failure = await startFleet({ mqttUrl, devices: wrong, seed: 7, speed: 10, telemetryIntervalMs: 1_000, logger }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(SimError);
    expect((failure as SimError).code).toBe('connect-failed');
    expect((failure as SimError).message).toContain('1 of 6 devices failed to connect: site-0001-meter');
    await poll('every connection closed', () => broker.connectedClients === 0);
  });

  it('reports every invalid option at once, before connecting anything', async () => {
    const twice = [devices[0]!, devices[0]!];
    const failure = startFleet({ mqttUrl, devices: twice, seed: 7, speed: 0, telemetryIntervalMs: -1, logger });
    await expect(failure).rejects.toMatchObject({ code: 'invalid-options', message: expect.stringMatching(/speed.*telemetryIntervalMs.*listed twice/) });
    expect(broker.connectedClients).toBe(0);
  });
});
