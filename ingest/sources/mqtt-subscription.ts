/**
 * Source: an MQTT subscription (ingest as its own process, any broker).
 *
 * A persistent session (clean: false) at QoS 1, so messages published while
 * ingest is down wait in the broker. PUBACK is sent only when the pipeline
 * acknowledges the message. MQTT.js sends a PUBACK as soon as
 * `handleMessage` calls back and handles one packet at a time, which would
 * either ack before the commit or allow one message per batch; so the source
 * calls back at once (letting the next packet in), suppresses MQTT.js's own
 * PUBACK, and writes the PUBACK itself on `ack()`. `handleMessage` withholds
 * its callback while `maxInflight` messages are unacknowledged: the broker
 * then stops sending, which is the backpressure.
 */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient, type Packet } from 'mqtt';
import { SERVICE_PERMISSIONS } from '../../protocol/index.ts';
import type { IngestCounters } from '../counters.ts';
import type { IngestSource } from '../types.ts';
import { SourceOutlet } from './outlet.ts';

export interface MqttSubscriptionOptions {
  url: string;
  username: string;
  password: string;
  clientId: string;
  maxInflight: number;
  counters: IngestCounters;
  clock: () => number;
  onError?: (error: Error) => void;
}

/** The private MQTT.js method every outgoing packet goes through. */
type SendPacket = (packet: Packet, cb?: () => void) => void;

export interface MqttSubscriptionSource extends IngestSource {
  readonly client: MqttClient;
  /** Disconnects (the session persists in the broker); call after the pipeline has drained. */
  disconnect(): Promise<void>;
}

export async function connectMqttSubscription(options: MqttSubscriptionOptions): Promise<MqttSubscriptionSource> {
  const clientOptions: IClientOptions = {
    clientId: options.clientId,
    username: options.username,
    password: options.password,
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 1_000,
    connectTimeout: 10_000,
  };
  const client = await mqtt.connectAsync(options.url, clientOptions);
  // Messages that arrive before the pipeline subscribes (a persistent
  // session delivers queued messages right after CONNACK) wait in the
  // outlet; the in-flight bound applies to them too.
  const outlet = new SourceOutlet(options.counters);
  // Reason for the cast: `_sendPacket` is private in MQTT.js's types; it is the
  // only place an automatic PUBACK can be held back.
  const internals = client as unknown as { _sendPacket: SendPacket };
  const sendPacket = internals._sendPacket.bind(client);
  internals._sendPacket = (packet, cb) => {
    if (packet.cmd === 'puback') {
      cb?.();
      return;
    }
    sendPacket(packet, cb);
  };

  let resume: (() => void) | undefined;

  client.handleMessage = (packet: IPublishPacket, callback) => {
    if (!outlet.open) {
      // Closing: leave the message unacknowledged for redelivery.
      callback();
      return;
    }
    const messageId = packet.messageId;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    outlet.hand({ topic: packet.topic, payload, clientId: null, retained: packet.retain, receivedAtMs: options.clock() }, () => {
      if (packet.qos > 0 && messageId !== undefined) sendPacket({ cmd: 'puback', messageId });
      if (resume && outlet.inflightCount < options.maxInflight) {
        const next = resume;
        resume = undefined;
        next();
      }
    });
    if (outlet.inflightCount < options.maxInflight) callback();
    else resume = () => callback();
  };
  if (options.onError) client.on('error', options.onError);

  // Device data, the broker's connection events and its start time: every
  // filter ingest's account may subscribe to.
  const filters = Object.fromEntries(SERVICE_PERMISSIONS['vpp-ingest'].subscribe.map((filter) => [filter, { qos: 1 as const }]));
  const granted = await client.subscribeAsync(filters);
  const refused = granted.filter((grant) => grant.qos === 128).map((grant) => grant.topic);
  if (refused.length > 0) {
    await client.endAsync(true);
    throw new Error(`the broker refused ingest's subscriptions to ${refused.join(', ')}`);
  }

  return {
    messages$: outlet.messages$,
    client,
    inflight: () => outlet.inflight(),
    close: () => outlet.close(),
    async disconnect() {
      await client.endAsync();
    },
  };
}
