import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REVOCATIONS_TOPIC, aggregateTopic, encodeJson, serviceHealthTopic } from '../protocol/index.ts';
import { createLiveView } from './live-view.ts';
import { createMqttRevocations, feedLiveView } from './mqtt.ts';
import { T0, makeSnapshot } from './test-fixtures.ts';

let broker: Aedes;
let server: net.Server;
let url: string;
const clients: MqttClient[] = [];

beforeEach(async () => {
  broker = await Aedes.createBroker();
  server = net.createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await new Promise<void>((resolve) => broker.close(() => resolve()));
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function connect(clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { clientId, reconnectPeriod: 0 });
  clients.push(client);
  return client;
}

/** Resolves when `check` passes, polling on the event loop; fails after `timeoutMs`. */
async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('feedLiveView', () => {
  it('gets retained aggregates at subscribe time and live ones afterwards', async () => {
    const ingest = await connect('vpp-ingest');
    await ingest.publishAsync(aggregateTopic('fleet', 'fleet'), encodeJson(makeSnapshot('fleet', 'fleet', T0, { devicesReporting: 1, devicesTotal: 2 })), { qos: 1, retain: true });

    const control = await connect('vpp-control');
    const live = createLiveView();
    const unsubscribe = await feedLiveView(control, live);
    await waitFor(() => live.getAggregate('fleet', 'fleet') !== undefined);
    expect(live.getAggregate('fleet', 'fleet')?.coverage.ratio).toBe(0.5);

    await ingest.publishAsync(aggregateTopic('region', 'north'), encodeJson(makeSnapshot('region', 'north', T0, { devicesReporting: 2, devicesTotal: 2 })), { qos: 1, retain: true });
    await ingest.publishAsync(serviceHealthTopic('vpp-ingest'), encodeJson({ service: 'vpp-ingest', ts: T0, ok: true, counters: {} }), { qos: 1, retain: true });
    await waitFor(() => live.getAggregate('region', 'north') !== undefined && live.getServiceHealth('vpp-ingest') !== undefined);

    await unsubscribe();
    await ingest.publishAsync(aggregateTopic('site', 's1'), encodeJson(makeSnapshot('site', 's1', T0, { devicesReporting: 1, devicesTotal: 1 })), { qos: 1 });
    // A round trip on the control client proves the broker had its chance to deliver.
    await control.publishAsync('vpp/v1/platform/ping', 'x', { qos: 1 });
    expect(live.getAggregate('site', 's1')).toBeUndefined();
  });
});

describe('createMqttRevocations', () => {
  it('publishes the device id on the revocations topic at QoS 1', async () => {
    const listener = await connect('listener');
    const received: Array<{ topic: string; payload: string; qos: number }> = [];
    listener.on('message', (topic, payload, packet) => received.push({ topic, payload: payload.toString(), qos: packet.qos }));
    await listener.subscribeAsync(REVOCATIONS_TOPIC, { qos: 1 });

    const control = await connect('vpp-control');
    await createMqttRevocations(control).revokeDevice('bat-1');
    await waitFor(() => received.length === 1);
    expect(received[0]).toEqual({ topic: REVOCATIONS_TOPIC, payload: '{"deviceId":"bat-1"}', qos: 1 });
  });

  it('rejects when the client cannot deliver', async () => {
    const control = await connect('vpp-control');
    await control.endAsync(true);
    await expect(createMqttRevocations(control).revokeDevice('bat-1')).rejects.toThrow();
  });
});
