import { connect as connectTcp } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { allDevicesFilter, deviceTopic } from '../protocol/index.ts';
import { collectMessages, nextEvent, startTestBed, subscribeGranted, waitUntil, type TestBed } from './test-helpers.ts';

const TOPIC = deviceTopic('bat-1', 'telemetry');
const LIMIT_BYTES = 1024;
/** Payload that makes a QoS 1 PUBLISH on TOPIC exactly LIMIT_BYTES long: 1 + 2 (Remaining Length) + 2 + topic + 2 (packet id). */
const PAYLOAD_AT_LIMIT = LIMIT_BYTES - (1 + 2 + 2 + TOPIC.length + 2);

describe('broker packet size limit', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  it('closes a connection that sends a packet over the limit and accepts the device again afterwards', async () => {
    bed = await startTestBed({ maxPacketBytes: LIMIT_BYTES });
    const secret = bed.credentials.add('bat-1');
    const observer = await bed.connectService('vpp-ingest');
    const routed = collectMessages(observer);
    await subscribeGranted(observer, allDevicesFilter('telemetry'));

    const device = await bed.connectDevice('bat-1', secret);
    await device.publishAsync(TOPIC, 'x'.repeat(PAYLOAD_AT_LIMIT), { qos: 1 });
    const closed = nextEvent(device, 'close');
    device.publish(TOPIC, 'y'.repeat(PAYLOAD_AT_LIMIT + 1), { qos: 1 });
    await closed;
    expect(bed.broker.counters().oversizedPackets).toBe(1);

    const again = await bed.connectDevice('bat-1', secret);
    await again.publishAsync(TOPIC, 'small', { qos: 1 });
    await waitUntil(() => routed.length === 2, 'the normal publishes were routed');
    expect(routed.map((m) => m.payload.length)).toEqual([PAYLOAD_AT_LIMIT, 'small'.length]);
    expect(bed.broker.counters().oversizedPackets).toBe(1);
  });

  it('closes the connection on the header alone, without waiting for the declared body', async () => {
    bed = await startTestBed();
    const socket = connectTcp(bed.broker.address.port, bed.broker.address.host);
    await nextEvent(socket, 'connect');
    const closed = nextEvent(socket, 'close');
    // CONNECT whose Remaining Length (varint 0x80 0xc2 0xd7 0x2f) says 100 000 000 bytes follow.
    socket.write(Buffer.from([0x10, 0x80, 0xc2, 0xd7, 0x2f]));
    await closed;
    expect(bed.broker.counters().oversizedPackets).toBe(1);
  });
});
