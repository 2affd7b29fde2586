/**
 * The MQTT adapter on a real broker (aedes over TCP on a loopback port) with
 * a real client (MQTT.js). It runs the parts of the Notifier contract that
 * apply to MQTT; the HTTP ones (status codes, Retry-After, the bounded
 * answer, redirects) have no MQTT counterpart: a PUBACK carries no status in
 * MQTT 3.1.1, and there is no answer body.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alertTopic, type AlertEvent } from '../protocol/index.ts';
import { buildMqttMessages, createMqttNotifier, type MqttPublish } from './mqtt.ts';
import { makeEvent } from './test-fixtures.ts';
import { waitFor } from './test-receiver.ts';

interface Broker {
  url: string;
  close(): Promise<void>;
}

async function startBroker(): Promise<Broker> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer((socket) => aedes.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const clients: MqttClient[] = [];
async function connect(url: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...options });
  clients.push(client);
  return client;
}

function publisherOf(client: MqttClient): MqttPublish {
  return async (topic, payload, options) => {
    await client.publishAsync(topic, payload, options);
  };
}

interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

async function subscriber(url: string, filter: string): Promise<{ received: Received[] }> {
  const client = await connect(url);
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) => received.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { received };
}

const eventIdOf = (message: Received): string => (JSON.parse(message.payload) as AlertEvent).eventId;
const signal = () => new AbortController().signal;

describe('MQTT notifier', () => {
  let broker: Broker;
  beforeEach(async () => {
    broker = await startBroker();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await broker.close();
  });

  it('builds the messages: an open transition retained; a resolution not retained, then an empty retained payload', () => {
    const topic = alertTopic('battery-overtemp', 'bat-0001');
    expect(buildMqttMessages(makeEvent('fired')).map((m) => ({ ...m, payload: m.payload.length }))).toEqual([{ topic, payload: expect.any(Number) as unknown, retain: true }]);
    const resolved = buildMqttMessages(makeEvent('resolved'));
    expect(resolved.map((m) => [m.topic, m.retain, m.payload.length === 0])).toEqual([
      [topic, false, false],
      [topic, true, true],
    ]);
    expect(JSON.parse(resolved[0]!.payload.toString())).toEqual({ eventId: '42-1', alert: makeEvent('resolved').alert, transition: makeEvent('resolved').transition });
  });

  it('names itself mqtt', () => {
    expect(createMqttNotifier({ publish: async () => undefined }).name).toBe('mqtt');
  });

  it('delivers a fired event: live subscribers get it, and later ones get it retained', async () => {
    const live = await subscriber(broker.url, 'vpp/v1/alerts/#');
    const publisher = await connect(broker.url);
    const notifier = createMqttNotifier({ publish: publisherOf(publisher) });
    const event = makeEvent('fired');
    expect(await notifier.deliver(event, signal())).toEqual({ ok: true });
    await waitFor(() => live.received.length === 1, 'the live message');
    expect(live.received[0]).toMatchObject({ topic: alertTopic('battery-overtemp', 'bat-0001'), retain: false });
    expect(eventIdOf(live.received[0]!)).toBe(event.eventId);

    const late = await subscriber(broker.url, 'vpp/v1/alerts/#');
    await waitFor(() => late.received.length === 1, 'the retained message');
    expect(late.received[0]!.retain).toBe(true);
    expect(eventIdOf(late.received[0]!)).toBe(event.eventId);
  });

  it('a resolution reaches live subscribers and clears the retained message', async () => {
    const publisher = await connect(broker.url);
    const notifier = createMqttNotifier({ publish: publisherOf(publisher) });
    await notifier.deliver(makeEvent('fired'), signal());
    const live = await subscriber(broker.url, 'vpp/v1/alerts/#');
    await waitFor(() => live.received.length === 1, 'the retained fired message');
    expect(await notifier.deliver(makeEvent('resolved', {}, 2), signal())).toEqual({ ok: true });
    await waitFor(() => live.received.length === 3, 'the resolution and the clearing');
    expect(live.received[1]).toMatchObject({ retain: false });
    expect(eventIdOf(live.received[1]!)).toBe('42-2');
    expect(live.received[2]).toMatchObject({ payload: '' });

    const late = await subscriber(broker.url, 'vpp/v1/alerts/#');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(late.received).toEqual([]);
  });

  it('a publish that fails is retryable', async () => {
    const notifier = createMqttNotifier({
      publish: async () => {
        throw new Error('client disconnecting');
      },
    });
    expect(await notifier.deliver(makeEvent('fired'), signal())).toMatchObject({ ok: false, retryable: true, detail: expect.stringContaining('client disconnecting') as unknown });
  });

  it('a broker that is gone (no PUBACK) is retryable once the signal aborts', async () => {
    const publisher = await connect(broker.url);
    await broker.close();
    broker = await startBroker(); // afterEach closes this one; the client stays cut off from the first
    await waitFor(() => !publisher.connected, 'the client to notice');
    const notifier = createMqttNotifier({ publish: publisherOf(publisher) });
    const startedMs = Date.now();
    const outcome = await notifier.deliver(makeEvent('fired'), AbortSignal.timeout(300));
    expect(outcome).toMatchObject({ ok: false, retryable: true });
    expect(Date.now() - startedMs).toBeLessThan(3_000);
  });
});
