/**
 * Test kit for fleet tests over real sockets: an aedes broker on a free
 * loopback port with username/password authentication, observer clients
 * that record what the devices publish, and bounded waits for what they
 * record. Used by tests only.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { connectAsync, type MqttClient } from 'mqtt';
import { decodeStatus, decodeTelemetry, parseDeviceTopic, samplesOf, type TelemetryPayload, type TelemetrySample } from '../protocol/index.ts';

export const WAIT_MS = 10_000;
const OBSERVER = 'observer';
const OBSERVER_SECRET = 'observer-secret';

export interface Received {
  topic: string;
  deviceId: string;
  channel: string;
  payload: Buffer;
  retain: boolean;
}

/** Records every message an observer client receives and lets tests wait for a condition on them. */
export class Recorder {
  readonly messages: Received[] = [];
  private waiters: Array<() => void> = [];

  add(message: Received): void {
    this.messages.push(message);
    for (const wake of [...this.waiters]) wake();
  }

  of(deviceId: string, channel: string): Received[] {
    return this.messages.filter((m) => m.deviceId === deviceId && m.channel === channel);
  }

  telemetryOf(deviceId: string): TelemetryPayload[] {
    return this.of(deviceId, 'telemetry').map((m) => {
      const decoded = decodeTelemetry(m.payload);
      if (!decoded.ok) throw new Error(`invalid telemetry from ${deviceId}: ${decoded.detail}`);
      return decoded.value;
    });
  }

  samplesOf(deviceId: string): TelemetrySample[] {
    return this.telemetryOf(deviceId).flatMap(samplesOf);
  }

  statusesOf(deviceId: string): Array<Record<string, unknown>> {
    return this.of(deviceId, 'status').map((m) => statusOf(m));
  }

  /** Resolves once `condition` holds, checked now and after every message; rejects after WAIT_MS. */
  waitFor(description: string, condition: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        let done: boolean;
        try {
          done = condition();
        } catch (err) {
          finish();
          reject(err as Error);
          return;
        }
        if (done) {
          finish();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out waiting for ${description}`));
      }, WAIT_MS);
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }
}

export function statusOf(message: Received): Record<string, unknown> {
  const decoded = decodeStatus(message.payload);
  if (!decoded.ok) throw new Error(`invalid status: ${decoded.detail}`);
  return decoded.value;
}

/** Polls a condition that no message signals (fleet or broker state) every few milliseconds; rejects after WAIT_MS. */
export async function poll(description: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface TestBroker {
  broker: Aedes;
  mqttUrl: string;
  /** Accepted credentials: username → password. Add device secrets before they connect. */
  secrets: Map<string, string>;
  /** Connects an observer subscribed to `filter`, recording what it receives. */
  observe(filter: string): Promise<{ client: MqttClient; recorder: Recorder }>;
  close(): Promise<void>;
}

export async function startTestBroker(): Promise<TestBroker> {
  const secrets = new Map([[OBSERVER, OBSERVER_SECRET]]);
  const broker = await Aedes.createBroker({
    authenticate: (_client, username, password, done) => {
      const expected = username === undefined ? undefined : secrets.get(username);
      done(null, expected !== undefined && password?.toString() === expected);
    },
  });
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const mqttUrl = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const observers: MqttClient[] = [];
  return {
    broker,
    mqttUrl,
    secrets,
    async observe(filter) {
      const client = await connectAsync(mqttUrl, {
        clientId: `${OBSERVER}-${observers.length}`,
        username: OBSERVER,
        password: OBSERVER_SECRET,
        reconnectPeriod: 0,
      });
      observers.push(client);
      const recorder = new Recorder();
      client.on('message', (topic, payload, packet) => {
        const parsed = parseDeviceTopic(topic);
        recorder.add({ topic, deviceId: parsed?.deviceId ?? '', channel: parsed?.channel ?? '', payload, retain: packet.retain });
      });
      await client.subscribeAsync(filter, { qos: 1 });
      return { client, recorder };
    },
    async close() {
      await Promise.all(observers.map((client) => client.endAsync(true)));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
