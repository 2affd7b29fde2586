/**
 * Shared fixtures of the broker tests: a Map-backed credentials port with
 * rotation, a settable clock, a broker on a free loopback port, MQTT.js
 * clients that are cleaned up after each test, and event waits with
 * timeouts.
 */
import type { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import mqtt, { ErrorWithSubackPacket, type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { SERVICE_PERMISSIONS, type ServiceAccount } from '../protocol/index.ts';
import { generateSecret, hashSecret } from '../store/credentials.ts';
import { startBroker, type Broker, type BrokerOptions } from './broker.ts';
import type { CredentialSource } from './authenticate.ts';
import type { BrokerTap, TappedPublish } from './tap.ts';

/** The registry's credentials, in memory: current and previous hash per device, grace periods, revocations. */
export class TestCredentials implements CredentialSource {
  private readonly devices = new Map<string, { current: string; previous?: { hash: string; validUntilMs: number } }>();
  private readonly revoked = new Set<string>();
  /** Device ids asked for, in order, by CONNECTs and rechecks. */
  readonly lookups: string[] = [];

  /** Registers a device and returns its secret. */
  add(deviceId: string): string {
    const secret = generateSecret();
    this.devices.set(deviceId, { current: hashSecret(secret) });
    return secret;
  }

  /** Gives the device a new secret; the old one stays accepted until `previousValidUntilMs`. */
  rotate(deviceId: string, previousValidUntilMs: number): string {
    const device = this.devices.get(deviceId);
    if (device === undefined) throw new Error(`unknown device ${deviceId}`);
    const secret = generateSecret();
    this.devices.set(deviceId, { current: hashSecret(secret), previous: { hash: device.current, validUntilMs: previousValidUntilMs } });
    return secret;
  }

  revoke(deviceId: string): void {
    this.revoked.add(deviceId);
  }

  getAcceptedSecretHashes(deviceId: string, nowMs: number): string[] {
    this.lookups.push(deviceId);
    const device = this.devices.get(deviceId);
    if (device === undefined || this.revoked.has(deviceId)) return [];
    const { current, previous } = device;
    return previous !== undefined && nowMs < previous.validUntilMs ? [current, previous.hash] : [current];
  }
}

/** A clock that moves only when told to. */
export class TestClock {
  constructor(public nowMs = 1_700_000_000_000) {}
  readonly now = (): number => this.nowMs;
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

export const SERVICE_SECRETS: Record<ServiceAccount, string> = {
  'vpp-ingest': generateSecret(),
  'vpp-control': generateSecret(),
  'vpp-observer': generateSecret(),
  'vpp-dispatch': generateSecret(),
};

export interface TestBed {
  broker: Broker;
  credentials: TestCredentials;
  /** Connects a registered device (client id = username = device id) and waits for CONNACK. */
  connectDevice(deviceId: string, secret: string, options?: IClientOptions): Promise<MqttClient>;
  /** Connects as a service account, with its fixed client id. */
  connectService(account: ServiceAccount, options?: IClientOptions): Promise<MqttClient>;
  /**
   * Connects with raw options and resolves with the client or rejects with
   * the CONNACK error. `prepare` sees the client before any packet arrives
   * (a persistent session's queued messages can follow the CONNACK at once).
   */
  connect(options: IClientOptions, prepare?: (client: MqttClient) => void): Promise<MqttClient>;
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

  const connect = async (clientOptions: IClientOptions, prepare?: (client: MqttClient) => void): Promise<MqttClient> => {
    const client = mqtt.connect(broker.url, {
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      protocolVersion: 4,
      ...clientOptions,
    });
    prepare?.(client);
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
        clientId: SERVICE_PERMISSIONS[account].clientId,
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

/**
 * A round trip on `client` (UNSUBSCRIBE, UNSUBACK), allowed to anyone and
 * without side effects: anything the broker wrote to, or read from, other
 * test connections before it has long arrived, so a negative check after it
 * is meaningful.
 */
export async function roundTrip(client: MqttClient): Promise<void> {
  await client.unsubscribeAsync('vpp/v1/round-trip');
}

/** A tap that accepts every publish at once and records it. */
export function recordingTap(): { tap: BrokerTap; tapped: TappedPublish[] } {
  const tapped: TappedPublish[] = [];
  return {
    tapped,
    tap: {
      onDevicePublish(message, done) {
        tapped.push(message);
        done();
      },
    },
  };
}
