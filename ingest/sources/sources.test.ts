/**
 * Both IngestSource implementations run the same contract suite on the
 * platform's broker over real sockets: the broker tap (one process, the
 * broker restarted with a new tap on the same port) and the persistent MQTT
 * subscription (a new session with the same client id).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { startBroker, type Broker } from '../../broker/index.ts';
import { generateSecret, hashSecret } from '../../store/credentials.ts';
import { IngestCounters } from '../counters.ts';
import type { InboundMessage, IngestSource } from '../types.ts';
import { createBrokerTapSource } from './broker-tap.ts';
import { connectMqttSubscription } from './mqtt-subscription.ts';
import { runIngestSourceContract, type SourceFixture } from './source.contract.ts';

const logger = pino({ level: 'silent' });
const DEVICE_SECRET = generateSecret();
const DEVICE_HASH = hashSecret(DEVICE_SECRET);
const INGEST_SECRET = generateSecret();
const credentials = { getAcceptedSecretHashes: (id: string) => (id === 'dev-1' || id === 'dev-2' ? [DEVICE_HASH] : []) };

function connectDevice(url: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId: 'dev-1', username: 'dev-1', password: DEVICE_SECRET, protocolVersion: 4, clean: false, reconnectPeriod: 0 });
}

/**
 * Records the device's telemetry. The broker's own messages (presence events,
 * its heartbeat) also come through the subscription; they are acknowledged
 * at once, as the pipeline would, so that the cases see the device's alone.
 */
/** A round trip through the broker: once it is back, whatever the broker sent this client before has arrived. */
async function roundTrip(client: MqttClient, filter: string, end = false): Promise<void> {
  await client.subscribeAsync(filter, { qos: 1 });
  if (end) await client.endAsync(true);
}

/** A second device, for a round trip through the broker while the first one's reads are paused. */
function connectDevice2(url: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId: 'dev-2', username: 'dev-2', password: DEVICE_SECRET, protocolVersion: 4, reconnectPeriod: 0 });
}

/** The device's PUBACKs: acknowledgements the broker sent it for its telemetry. */
function countDevicePubacks(device: MqttClient): () => number {
  let pubacks = 0;
  device.on('packetreceive', (packet) => {
    if (packet.cmd === 'puback') pubacks++;
  });
  return () => pubacks;
}

function observe(source: IngestSource): { received: InboundMessage[]; completed: () => boolean } {
  const received: InboundMessage[] = [];
  let done = false;
  source.messages$.subscribe({
    next: (m) => (m.topic.endsWith('/telemetry') ? received.push(m) : m.ack()),
    complete: () => (done = true),
  });
  return { received, completed: () => done };
}

const TOPIC = 'vpp/v1/devices/dev-1/telemetry';

runIngestSourceContract('broker tap', {
  // The broker stops reading a device's socket once the window is full;
  // publishes already in the chunk it read still reach the tap.
  exactBound: false,
  async start({ maxInflight }) {
    // What the device has sent and has no PUBACK for: it sends these again after reconnecting.
    const unacked = new Set<string>();
    const begin = async (port: number, previous?: MqttClient): Promise<SourceFixture> => {
      const source = createBrokerTapSource(new IngestCounters());
      const broker = await startBroker({
        host: '127.0.0.1',
        port,
        credentials,
        serviceAccounts: {},
        tap: source.tap,
        tapWindow: { maxPendingPerClient: maxInflight, maxPendingTotal: maxInflight },
        logger,
      });
      const seen = observe(source);
      previous?.end(true);
      const connected = await connectDevice(broker.url);
      const pubacks = countDevicePubacks(connected);
      const publish = (payload: string): void => {
        unacked.add(payload);
        connected.publishAsync(TOPIC, payload, { qos: 1 }).then(() => unacked.delete(payload), () => undefined);
      };
      for (const payload of [...unacked]) publish(payload);
      return {
        source,
        ...seen,
        device: connected,
        publish,
        // The tap's acknowledgement is the device's PUBACK.
        upstreamAcks: pubacks,
        // While the tap window is full the broker reads nothing more from the
        // device (not even a SUBSCRIBE): nothing else can arrive then.
        settle: async () => {
          if (broker.counters().tapPausedClients > 0) {
            // Reads are paused: give what is on the wire time to arrive, and the broker a chance to (wrongly) read it.
            await roundTrip(await connectDevice2(broker.url), 'vpp/v1/devices/dev-2/commands', true);
            return;
          }
          await roundTrip(connected, 'vpp/v1/devices/dev-1/commands');
        },
        async restart() {
          // As a crash: the tap's messages are never acknowledged; the broker goes away with them.
          source.close();
          await broker.close();
          return begin(broker.address.port, connected);
        },
        async close() {
          source.close();
          await broker.close();
          connected.end(true);
        },
      };
    };
    return begin(0);
  },
});

let subscriptionBroker: Broker;
beforeAll(async () => {
  subscriptionBroker = await startBroker({ host: '127.0.0.1', port: 0, credentials, serviceAccounts: { 'vpp-ingest': INGEST_SECRET }, logger });
});
afterAll(async () => {
  await subscriptionBroker.close();
});

runIngestSourceContract('persistent MQTT subscription', {
  exactBound: true,
  async start({ maxInflight }) {
    const device = await connectDevice(subscriptionBroker.url);
    const begin = async (): Promise<SourceFixture> => {
      const source = await connectMqttSubscription({
        url: subscriptionBroker.url,
        username: 'vpp-ingest',
        password: INGEST_SECRET,
        clientId: 'vpp-ingest',
        maxInflight,
        counters: new IngestCounters(),
        clock: Date.now,
      });
      const seen = observe(source);
      // The broker answers the device itself; the source's acknowledgement is its PUBACK to the broker.
      const telemetryIds = new Set<number>();
      let pubacks = 0;
      source.client.on('packetreceive', (packet) => {
        if (packet.cmd === 'publish' && packet.topic.endsWith('/telemetry') && packet.messageId !== undefined) telemetryIds.add(packet.messageId);
      });
      source.client.on('packetsend', (packet) => {
        if (packet.cmd === 'puback' && packet.messageId !== undefined && telemetryIds.delete(packet.messageId)) pubacks++;
      });
      return {
        source,
        ...seen,
        device,
        publish: (payload) => void device.publishAsync(TOPIC, payload, { qos: 1 }),
        upstreamAcks: () => pubacks,
        settle: () => roundTrip(source.client, 'vpp/v1/devices/+/telemetry'),
        async restart() {
          // The broker handles a client's packets concurrently and a PUBACK has
          // no reply: give the PUBACKs already sent time to be booked.
          await new Promise((r) => setTimeout(r, 200));
          // As a crash: the connection goes without acknowledging more; the session stays in the broker.
          source.close();
          source.client.stream.destroy();
          await source.client.endAsync(true);
          return begin();
        },
        async close() {
          source.close();
          // Leave no session behind for the next case: drain it, then end.
          for (const message of seen.received) message.ack();
          await source.disconnect();
          const cleaner = await mqtt.connectAsync(subscriptionBroker.url, { clientId: 'vpp-ingest', username: 'vpp-ingest', password: INGEST_SECRET, protocolVersion: 4, clean: true });
          await cleaner.endAsync();
          await device.endAsync(true);
          const deviceCleaner = await mqtt.connectAsync(subscriptionBroker.url, { clientId: 'dev-1', username: 'dev-1', password: DEVICE_SECRET, protocolVersion: 4, clean: true });
          await deviceCleaner.endAsync();
        },
      };
    };
    return begin();
  },
});
