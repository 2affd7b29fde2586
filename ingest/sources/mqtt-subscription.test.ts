/**
 * The MQTT subscription source against the platform's broker over real
 * sockets: PUBACK goes to the broker only on ack(), so what was not acked is
 * redelivered to the next session; and no more than maxInflight messages are
 * handed out unacknowledged.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startBroker, type Broker } from '../../broker/index.ts';
import { generateSecret, hashSecret } from '../../store/credentials.ts';
import { IngestCounters } from '../counters.ts';
import type { InboundMessage } from '../types.ts';
import { connectMqttSubscription, type MqttSubscriptionSource } from './mqtt-subscription.ts';

const SERVICE_SECRET = generateSecret();
const DEVICE = 'dev-1';
const DEVICE_SECRET = generateSecret();
const DEVICE_HASH = hashSecret(DEVICE_SECRET);

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('MQTT subscription source', () => {
  let broker: Broker;
  let device: MqttClient;
  const sources: MqttSubscriptionSource[] = [];

  beforeEach(async () => {
    broker = await startBroker({
      host: '127.0.0.1',
      port: 0,
      credentials: { getActiveSecretHash: (id) => (id === DEVICE ? DEVICE_HASH : undefined) },
      serviceAccounts: { 'vpp-ingest': SERVICE_SECRET },
      logger: pino({ level: 'silent' }),
    });
    device = await mqtt.connectAsync(broker.url, { clientId: DEVICE, username: DEVICE, password: DEVICE_SECRET, protocolVersion: 4 });
  });
  afterEach(async () => {
    for (const source of sources.splice(0)) {
      source.close();
      await source.disconnect();
    }
    await device.endAsync(true);
    await broker.close();
  });

  async function open(maxInflight: number) {
    const counters = new IngestCounters();
    const source = await connectMqttSubscription({
      url: broker.url,
      username: 'vpp-ingest',
      password: SERVICE_SECRET,
      clientId: 'vpp-ingest',
      maxInflight,
      counters,
      clock: Date.now,
    });
    sources.push(source);
    const received: InboundMessage[] = [];
    source.messages$.subscribe((message) => received.push(message));
    return { source, counters, received };
  }

  const publish = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await device.publishAsync(`vpp/v1/devices/${DEVICE}/telemetry`, JSON.stringify({ ts: i, seq: i, metrics: { powerW: i } }), { qos: 1 });
    }
  };

  it('redelivers to the next session exactly what was not acknowledged', async () => {
    const first = await open(100);
    await publish(5);
    await waitFor(() => first.received.length === 5, '5 messages');
    for (const message of first.received.slice(0, 3)) message.ack();
    expect(first.source.inflight().count).toBe(2);
    // Let the PUBACKs reach the broker before the session ends.
    await new Promise((r) => setTimeout(r, 200));
    first.source.close();
    await first.source.disconnect();
    sources.length = 0;

    const second = await open(100);
    await waitFor(() => second.received.length === 2, 'the 2 unacknowledged messages');
    const seqs = second.received.map((m) => (JSON.parse(m.payload.toString()) as { seq: number }).seq);
    expect(seqs).toEqual([3, 4]);
    await new Promise((r) => setTimeout(r, 200));
    expect(second.received).toHaveLength(2);
  });

  it('hands out at most maxInflight unacknowledged messages, then resumes on ack', async () => {
    const { received, source } = await open(3);
    await publish(8);
    await waitFor(() => received.length === 3, '3 messages');
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toHaveLength(3);
    received[0]!.ack();
    await waitFor(() => received.length === 4, 'a 4th message after one ack');
    await new Promise((r) => setTimeout(r, 100));
    expect(received).toHaveLength(4);
    await waitFor(() => {
      for (const message of received) message.ack();
      return received.length === 8;
    }, 'all 8 messages while acknowledging');
    for (const message of received) message.ack();
    expect(source.inflight()).toEqual({ count: 0, oldestReceivedAtMs: null });
  });
});
