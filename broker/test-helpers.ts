/**
 * Shared fixtures of the broker tests: a Map-backed credentials port, a
 * broker on a free loopback port, MQTT.js clients that are cleaned up after
 * each test, and event waits with timeouts.
 */
import type { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import mqtt, { ErrorWithSubackPacket, type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { generateSecret, hashSecret } from '../store/credentials.ts';
import { startBroker, type Broker, type BrokerOptions } from './broker.ts';
import type { CredentialSource } from './authenticate.ts';

export class TestCredentials implements CredentialSource {
  private readonly hashes = new Map<string, string>();
  private readonly revoked = new Set<string>();

  /** Registers a device and returns its secret. */
  add(deviceId: string): string {
    const secret = generateSecret();
    this.hashes.set(deviceId, hashSecret(secret));
    return secret;
  }

  revoke(deviceId: string): void {
    this.revoked.add(deviceId);
  }

  getActiveSecretHash(deviceId: string): string | undefined {
    return this.revoked.has(deviceId) ? undefined : this.hashes.get(deviceId);
  }
}

export const SERVICE_SECRETS = { 'vpp-ingest': generateSecret(), 'vpp-control': generateSecret() };

export interface TestBed {
  broker: Broker;
  credentials: TestCredentials;
  /** Connects a registered device (client id = username = device id) and waits for CONNACK. */
  connectDevice(deviceId: string, secret: string, options?: IClientOptions): Promise<MqttClient>;
  /** Connects as a service account. */
  connectService(account: keyof typeof SERVICE_SECRETS, options?: IClientOptions): Promise<MqttClient>;
  /** Connects with raw options and resolves with the client or rejects with the CONNACK error. */
  connect(options: IClientOptions): Promise<MqttClient>;
  close(): Promise<void>;
}

export async function startTestBed(options: Partial<BrokerOptions> = {}): Promise<TestBed> {
  const credentials = new TestCredentials();
  const broker = await startBroker({
    host: '127.0.0.1',
    port: 0,
    credentials,
    serviceAccounts: SERVICE_SECRETS,
    logger: pino({ level: 'silent' }),
    ...options,
  });
  const clients: MqttClient[] = [];

  const connect = async (clientOptions: IClientOptions): Promise<MqttClient> => {
    const client = mqtt.connect(broker.url, {
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      protocolVersion: 4,
      ...clientOptions,
    });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => {
        // Without this, Nagle's algorithm holds a small packet back until the
        // broker ACKs the previous one, which tests that hold PUBACKs notice.
        if (client.stream instanceof Socket) client.stream.setNoDelay(true);
        resolve();
      });
      client.once('error', reject);
      client.once('close', () => reject(new Error('connection closed before CONNACK')));
    });
    return client;
  };

  return {
    broker,
    credentials,
    connect,
    connectDevice: (deviceId, secret, clientOptions = {}) =>
      connect({ clientId: deviceId, username: deviceId, password: secret, ...clientOptions }),
    connectService: (account, clientOptions = {}) =>
      connect({
        clientId: `${account}-${Math.random().toString(16).slice(2)}`,
        username: account,
        password: SERVICE_SECRETS[account],
        ...clientOptions,
      }),
    async close() {
      await Promise.all(clients.map((client) => client.endAsync(true)));
      await broker.close();
    },
  };
}

/** Resolves with the first emission of `event` (its arguments), rejects after `timeoutMs`. */
export function nextEvent<T extends unknown[] = unknown[]>(
  source: EventEmitter | MqttClient,
  event: string,
  timeoutMs = 10_000,
): Promise<T> {
  // MqttClient's typed emitter narrows event names; the runtime object is a Node EventEmitter.
  const emitter = source as EventEmitter;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`));
    }, timeoutMs);
    const onEvent = (...args: unknown[]): void => {
      clearTimeout(timer);
      resolve(args as T);
    };
    emitter.once(event, onEvent);
  });
}

/** Waits until `condition` holds, checking every few milliseconds; rejects after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Subscribes and returns the granted QoS per filter (128 = refused). */
export async function subscribeGranted(client: MqttClient, filter: string, qos: 0 | 1 = 1): Promise<number[]> {
  try {
    const granted = await client.subscribeAsync(filter, { qos });
    return granted.map((grant) => grant.qos);
  } catch (err) {
    // MQTT.js rejects when a filter was refused; the SUBACK rides on the error.
    if (err instanceof ErrorWithSubackPacket && Array.isArray(err.packet.granted)) {
      return err.packet.granted.map((grant) => (typeof grant === 'number' ? grant : (grant as { qos: number }).qos));
    }
    throw err;
  }
}

/** Collects messages received by `client` as `{ topic, payload, retain }`. */
export function collectMessages(client: MqttClient): Array<{ topic: string; payload: string; retain: boolean }> {
  const received: Array<{ topic: string; payload: string; retain: boolean }> = [];
  client.on('message', (topic, payload, packet) => {
    received.push({ topic, payload: payload.toString('utf8'), retain: packet.retain });
  });
  return received;
}
