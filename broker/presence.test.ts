import { connect as connectTcp } from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import {
  PRESENCE_FILTER,
  PresenceEventCheck,
  deviceTopic,
  parsePresenceTopic,
  type PresenceEvent,
} from '../protocol/index.ts';
import {
  SERVICE_SECRETS,
  TestClock,
  nextEvent,
  roundTrip,
  startTestBed,
  subscribeGranted,
  waitUntil,
  type TestBed,
} from './test-helpers.ts';

/** Presence events as received over MQTT, checked against the schema and their topic. */
function collectPresence(client: MqttClient): PresenceEvent[] {
  const events: PresenceEvent[] = [];
  client.on('message', (topic, payload, packet) => {
    const event: unknown = JSON.parse(payload.toString('utf8'));
    if (!PresenceEventCheck.Check(event)) throw new Error(`not a presence event: ${payload.toString('utf8')}`);
    if (parsePresenceTopic(topic) !== event.deviceId) throw new Error(`event of ${event.deviceId} on ${topic}`);
    if (packet.retain) throw new Error('presence events are not retained');
    events.push(event);
  });
  return events;
}

const summary = (events: readonly PresenceEvent[]): string[] =>
  events.map((event) => `${event.deviceId} ${event.connected ? 'up' : 'down'} ${event.reason}`);

/** A CONNECT packet (MQTT 3.1.1, clean session) with username, password and keep-alive. */
function encodeConnect(clientId: string, username: string, password: string, keepAliveS: number): Buffer {
  const field = (text: string): Buffer => {
    const bytes = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const keepAlive = Buffer.alloc(2);
  keepAlive.writeUInt16BE(keepAliveS);
  // Protocol name and level 4; flags: user name, password, clean session.
  const body = Buffer.concat([field('MQTT'), Buffer.from([4, 0xc2]), keepAlive, field(clientId), field(username), field(password)]);
  if (body.length > 127) throw new Error('this encoder writes a one-byte Remaining Length only');
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

describe('broker presence events', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  /** Starts a broker whose events are collected in-process and by ingest over MQTT. */
  async function startWatched(clock = new TestClock()) {
    const inProcess: PresenceEvent[] = [];
    bed = await startTestBed({ clock: clock.now, onPresence: (event) => inProcess.push(event) });
    const ingest = await bed.connectService('vpp-ingest');
    const overMqtt = collectPresence(ingest);
    expect(await subscribeGranted(ingest, PRESENCE_FILTER)).toEqual([1]);
    return { inProcess, overMqtt, ingest, clock };
  }

  it('reports a device connecting and disconnecting cleanly, in-process and over MQTT, and no services', async () => {
    const { inProcess, overMqtt, clock } = await startWatched();
    const startedAtMs = clock.nowMs;
    expect(bed.broker.startedAtMs).toBe(startedAtMs);

    clock.advance(1_000);
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    expect(inProcess).toEqual([{ deviceId: 'bat-1', connected: true, reason: 'connected', ts: startedAtMs + 1_000, brokerStartedAtMs: startedAtMs }]);
    await bed.connectService('vpp-control');

    clock.advance(1_000);
    await device.endAsync();
    await waitUntil(() => overMqtt.length === 2, 'both events arrived over MQTT');
    expect(inProcess[1]).toEqual({ deviceId: 'bat-1', connected: false, reason: 'disconnected', ts: startedAtMs + 2_000, brokerStartedAtMs: startedAtMs });
    expect(overMqtt).toEqual(inProcess);
    expect(bed.broker.counters().presenceEvents).toBe(2);
  });

  it("reports a lost connection and a connection closed for a violation as 'connection-lost'", async () => {
    const { inProcess, overMqtt } = await startWatched();
    const secret = bed.credentials.add('bat-1');
    const dropped = await bed.connectDevice('bat-1', secret);
    dropped.stream.destroy();
    await waitUntil(() => inProcess.length === 2, 'the drop was reported');

    const violating = await bed.connectDevice('bat-1', secret);
    const closed = nextEvent(violating, 'close');
    violating.publish(deviceTopic('bat-2', 'telemetry'), '{}', { qos: 1 });
    await closed;
    await waitUntil(() => overMqtt.length === 4, 'all events arrived over MQTT');
    expect(summary(overMqtt)).toEqual([
      'bat-1 up connected',
      'bat-1 down connection-lost',
      'bat-1 up connected',
      'bat-1 down connection-lost',
    ]);
  });

  it("reports a keep-alive timeout as 'connection-lost'", async () => {
    const { inProcess } = await startWatched();
    const secret = bed.credentials.add('bat-1');
    const socket = connectTcp(bed.broker.address.port, bed.broker.address.host);
    await nextEvent(socket, 'connect');
    const connack = nextEvent<[Buffer]>(socket, 'data');
    socket.write(encodeConnect('bat-1', 'bat-1', secret, 1));
    expect([...(await connack)[0]]).toEqual([0x20, 0x02, 0x00, 0x00]);
    expect(summary(inProcess)).toEqual(['bat-1 up connected']);

    // The socket stays open and silent: the broker gives up after 1.5 keep-alive periods (MQTT-3.1.2-24).
    await nextEvent(socket, 'close', 5_000);
    expect(summary(inProcess)).toEqual(['bat-1 up connected', 'bat-1 down connection-lost']);
  });

  it('reports a takeover before the new connection, so the last word is connected', async () => {
    const { inProcess, overMqtt } = await startWatched();
    const secret = bed.credentials.add('bat-1');
    const first = await bed.connectDevice('bat-1', secret);
    const firstClosed = nextEvent(first, 'close');
    const second = await bed.connectDevice('bat-1', secret);
    await firstClosed;
    expect(second.connected).toBe(true);

    const expected = ['bat-1 up connected', 'bat-1 down taken-over', 'bat-1 up connected'];
    expect(summary(inProcess)).toEqual(expected);
    await waitUntil(() => overMqtt.length === 3, 'all events arrived over MQTT');
    expect(summary(overMqtt)).toEqual(expected);
  });

  it("reports a device closed by disconnectDevice as 'revoked'", async () => {
    const { inProcess, overMqtt } = await startWatched();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const closed = nextEvent(device, 'close');
    expect(bed.broker.disconnectDevice('bat-1')).toBe(true);
    await closed;
    await waitUntil(() => inProcess.length === 2, 'the revocation was reported');
    expect(summary(inProcess)).toEqual(['bat-1 up connected', 'bat-1 down revoked']);
    await waitUntil(() => overMqtt.length === 2, 'the revocation arrived over MQTT');
    expect(overMqtt).toEqual(inProcess);
  });

  it("reports 'broker-closing' for every connected device before the broker stops", async () => {
    const { inProcess, overMqtt, ingest } = await startWatched();
    await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    await bed.connectDevice('bat-2', bed.credentials.add('bat-2'));
    await waitUntil(() => overMqtt.length === 2, 'the connections arrived over MQTT');

    const ingestClosed = nextEvent(ingest, 'close');
    await bed.broker.close();
    await ingestClosed;
    const expected = ['bat-1 up connected', 'bat-2 up connected', 'bat-1 down broker-closing', 'bat-2 down broker-closing'];
    expect(summary(inProcess)).toEqual(expected);
    expect(summary(overMqtt)).toEqual(expected);
  });

  it('keeps the events for a persistent ingest session that was away', async () => {
    bed = await startTestBed();
    const session = { clean: false, clientId: 'vpp-ingest', username: 'vpp-ingest', password: SERVICE_SECRETS['vpp-ingest'] };
    const first = await bed.connect(session);
    await subscribeGranted(first, PRESENCE_FILTER);
    await first.endAsync();

    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    await device.endAsync();
    await waitUntil(() => bed.broker.counters().presenceEvents === 2, 'both events were built');

    let missed: PresenceEvent[] = [];
    const back = await bed.connect(session, (client) => {
      missed = collectPresence(client);
    });
    await waitUntil(() => missed.length === 2, 'the missed events arrived');
    await roundTrip(back);
    expect(summary(missed)).toEqual(['bat-1 up connected', 'bat-1 down disconnected']);
  });
});
