import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { aggregateTopic, allDevicesFilter, deviceTopic } from '../protocol/index.ts';
import type { TappedPublish } from './tap.ts';
import { collectMessages, nextEvent, recordingTap, roundTrip, startTestBed, subscribeGranted, waitUntil, type TestBed } from './test-helpers.ts';

/** A tap that holds every publish until the test releases it. */
function createHoldingTap() {
  const held: Array<{ message: TappedPublish; done: (err?: Error) => void }> = [];
  return {
    held,
    tap: {
      onDevicePublish(message: TappedPublish, done: (err?: Error) => void) {
        held.push({ message, done });
      },
    },
    payloads: () => held.map((entry) => entry.message.payload.toString('utf8')),
  };
}

/**
 * Publishes at QoS 0 and resolves once MQTT.js has written the packet to its
 * socket (a QoS 1 publish may wait in MQTT.js' own store first), so that a
 * later round trip on another connection orders after it.
 */
function writeQoS0(client: MqttClient, topic: string, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.publish(topic, payload, { qos: 0 }, (err) => (err ? reject(err) : resolve()));
  });
}

describe('broker tap', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  it('holds the PUBACK and the routing of a QoS 1 telemetry publish until the tap is done', async () => {
    const holding = createHoldingTap();
    bed = await startTestBed({ tap: holding.tap, clock: () => 1_700_000_000_000 });
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const subscriber = await bed.connectService('vpp-ingest');
    const routed = collectMessages(subscriber);
    await subscribeGranted(subscriber, allDevicesFilter('telemetry'));

    const events: string[] = [];
    const puback = device
      .publishAsync(deviceTopic('bat-1', 'telemetry'), '{"ts":1,"seq":1,"metrics":{"socPct":50}}', { qos: 1 })
      .then(() => events.push('puback'));
    await waitUntil(() => holding.held.length === 1, 'the tap got the publish');
    events.push('tapped');
    expect(holding.held[0]!.message).toEqual({
      deviceId: 'bat-1',
      topic: deviceTopic('bat-1', 'telemetry'),
      channel: 'telemetry',
      payload: Buffer.from('{"ts":1,"seq":1,"metrics":{"socPct":50}}'),
      qos: 1,
      retain: false,
      isWill: false,
      receivedAtMs: 1_700_000_000_000,
    });

    await roundTrip(subscriber);
    expect(events).toEqual(['tapped']);
    expect(routed).toEqual([]);
    expect(bed.broker.counters().tapPending).toBe(1);

    events.push('done');
    holding.held[0]!.done();
    await puback;
    expect(events).toEqual(['tapped', 'done', 'puback']);
    await waitUntil(() => routed.length === 1, 'the subscriber got the publish');
    expect(bed.broker.counters()).toMatchObject({ tapHandedOver: 1, tapPending: 0, tapRefused: 0 });
  });

  it('closes the connection without PUBACK and does not route a publish the tap refuses', async () => {
    const holding = createHoldingTap();
    bed = await startTestBed({ tap: holding.tap });
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const subscriber = await bed.connectService('vpp-ingest');
    const routed = collectMessages(subscriber);
    await subscribeGranted(subscriber, 'vpp/v1/devices/+/telemetry');

    let acknowledged = false;
    device.publish(deviceTopic('bat-1', 'telemetry'), '{}', { qos: 1 }, () => {
      acknowledged = true;
    });
    await waitUntil(() => holding.held.length === 1, 'the tap got the publish');
    const closed = nextEvent(device, 'close');
    holding.held[0]!.done(new Error('store unavailable'));
    await closed;

    await roundTrip(subscriber);
    expect(acknowledged).toBe(false);
    expect(routed).toEqual([]);
    expect(bed.broker.counters()).toMatchObject({ tapRefused: 1, tapPending: 0 });
  });

  it('taps status publishes but not acks, and nothing that services publish', async () => {
    const { tap, tapped } = recordingTap();
    bed = await startTestBed({ tap });
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const service = await bed.connectService('vpp-ingest');
    const routed = collectMessages(service);
    await subscribeGranted(service, allDevicesFilter('status'));
    await subscribeGranted(service, allDevicesFilter('telemetry'));

    await device.publishAsync(deviceTopic('bat-1', 'status'), '{"online":true}', { qos: 1, retain: true });
    await device.publishAsync(deviceTopic('bat-1', 'acks'), '{"commandId":"c1","status":"accepted"}', { qos: 1 });
    await service.publishAsync(aggregateTopic('fleet', ''), '{"from":"service"}', { qos: 1, retain: true });
    await device.publishAsync(deviceTopic('bat-1', 'telemetry'), '{"from":"device"}', { qos: 0 });

    await waitUntil(() => routed.length === 2, 'status and telemetry were routed');
    expect(tapped.map((m) => [m.channel, m.payload.toString('utf8'), m.retain, m.qos])).toEqual([
      ['status', '{"online":true}', true, 1],
      ['telemetry', '{"from":"device"}', false, 0],
    ]);
    expect(bed.broker.counters()).toMatchObject({ publishesReceived: 4, tapHandedOver: 2 });
  });

  it("stops reading a device's socket while its window of publishes waits for the tap", async () => {
    const holding = createHoldingTap();
    bed = await startTestBed({ tap: holding.tap, tapWindow: { maxPendingPerClient: 1 } });
    const busy = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const other = await bed.connectDevice('bat-2', bed.credentials.add('bat-2'));
    const service = await bed.connectService('vpp-control');

    busy.publish(deviceTopic('bat-1', 'telemetry'), 'first', { qos: 1 });
    await waitUntil(() => holding.held.length === 1, 'the tap got the first publish');
    await writeQoS0(busy, deviceTopic('bat-1', 'telemetry'), 'second');
    other.publish(deviceTopic('bat-2', 'telemetry'), 'other', { qos: 1 });
    await waitUntil(() => holding.held.length === 2, 'the other device was not held up');
    await roundTrip(service);
    expect(holding.payloads()).toEqual(['first', 'other']);
    expect(bed.broker.counters()).toMatchObject({ tapPausedClients: 2, tapReadPauses: 2 });

    holding.held[0]!.done();
    await waitUntil(() => holding.held.length === 3, 'the busy device was read again');
    expect(holding.payloads()).toEqual(['first', 'other', 'second']);
    for (const entry of holding.held.slice(1)) entry.done();
    await waitUntil(() => bed.broker.counters().tapPending === 0, 'the tap is drained');
    expect(bed.broker.counters().tapPausedClients).toBe(0);
    expect(busy.connected && other.connected).toBe(true);
  });

  it('stops reading publishing devices while the total window is full', async () => {
    const holding = createHoldingTap();
    bed = await startTestBed({ tap: holding.tap, tapWindow: { maxPendingPerClient: 100, maxPendingTotal: 2 } });
    const first = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const second = await bed.connectDevice('bat-2', bed.credentials.add('bat-2'));
    const service = await bed.connectService('vpp-control');

    first.publish(deviceTopic('bat-1', 'telemetry'), 'a', { qos: 1 });
    await waitUntil(() => holding.held.length === 1, 'the tap got a');
    second.publish(deviceTopic('bat-2', 'telemetry'), 'b', { qos: 1 });
    await waitUntil(() => holding.held.length === 2, 'the tap got b');
    await writeQoS0(second, deviceTopic('bat-2', 'telemetry'), 'b2');
    await roundTrip(service);
    expect(holding.payloads()).toEqual(['a', 'b']);

    holding.held[0]!.done();
    await waitUntil(() => holding.held.length === 3, 'bat-2 was read again');
    expect(holding.payloads()).toEqual(['a', 'b', 'b2']);
  });
});
