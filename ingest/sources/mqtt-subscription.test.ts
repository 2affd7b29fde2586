/**
 * The MQTT subscription source with the platform's broker, beyond the
 * source contract: what ingest needs from the broker's own messages. A
 * device with a last will is revoked; ingest's persistent session gets the
 * broker's 'revoked' presence event and the will.
 */
import mqtt from 'mqtt';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { startBroker } from '../../broker/index.ts';
import { decodePresenceEvent, parsePresenceTopic, type PresenceEvent } from '../../protocol/index.ts';
import { generateSecret, hashSecret } from '../../store/credentials.ts';
import { IngestCounters } from '../counters.ts';
import { connectMqttSubscription } from './mqtt-subscription.ts';

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

it("receives the broker's presence events and the will of a revoked device", async () => {
  const deviceSecret = generateSecret();
  const ingestSecret = generateSecret();
  const deviceHash = hashSecret(deviceSecret);
  const broker = await startBroker({
    host: '127.0.0.1',
    port: 0,
    credentials: { getAcceptedSecretHashes: (id: string) => (id === 'dev-1' ? [deviceHash] : []) },
    serviceAccounts: { 'vpp-ingest': ingestSecret },
    logger: pino({ level: 'silent' }),
  });
  const source = await connectMqttSubscription({
    url: broker.url,
    username: 'vpp-ingest',
    password: ingestSecret,
    clientId: 'vpp-ingest',
    maxInflight: 100,
    counters: new IngestCounters(),
    clock: Date.now,
  });
  const presence: PresenceEvent[] = [];
  const statuses: Array<{ payload: string; retained: boolean }> = [];
  source.messages$.subscribe((message) => {
    if (parsePresenceTopic(message.topic) !== undefined) {
      const decoded = decodePresenceEvent(message.payload);
      if (decoded.ok) presence.push(decoded.value);
    } else if (message.topic.endsWith('/status')) {
      statuses.push({ payload: message.payload.toString(), retained: message.retained });
    }
    message.ack();
  });
  try {
    const device = await mqtt.connectAsync(broker.url, {
      clientId: 'dev-1',
      username: 'dev-1',
      password: deviceSecret,
      protocolVersion: 4,
      reconnectPeriod: 0,
      will: { topic: 'vpp/v1/devices/dev-1/status', payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
    });
    await waitFor(() => presence.length === 1, 'the connected event');
    expect(broker.disconnectDevice('dev-1')).toBe(true);
    await waitFor(() => presence.length === 2 && statuses.length === 1, "the 'revoked' event and the will");
    expect(presence.map((e) => `${e.connected ? 'up' : 'down'} ${e.reason}`)).toEqual(['up connected', 'down revoked']);
    // A live will, not a retained copy replayed at subscription time.
    expect(statuses).toEqual([{ payload: '{"online":false}', retained: false }]);
    device.end(true);
  } finally {
    source.close();
    await source.disconnect();
    await broker.close();
  }
});
