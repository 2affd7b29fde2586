import { Readable } from 'node:stream';
import type { AedesPublishPacket } from 'aedes';
import { describe, expect, it } from 'vitest';
import { createBrokerPersistence, RetainedIndex } from './retained-index.ts';
import { matchesFilter } from './topic-filter.ts';

function retained(topic: string, payload: string): AedesPublishPacket {
  return { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: true, dup: false, brokerId: 'b', brokerCounter: 1 };
}

const topics = (packets: Iterable<AedesPublishPacket>): string[] => [...packets].map((p) => p.topic);
const matches = (filter: string, topic: string): boolean => matchesFilter(filter.split('/'), topic);

describe('retained message index', () => {
  it('matches topic filters as MQTT-4.7 says', () => {
    expect(matches('vpp/v1/devices/+/status', 'vpp/v1/devices/bat-1/status')).toBe(true);
    expect(matches('vpp/v1/devices/+/status', 'vpp/v1/devices/bat-1/telemetry')).toBe(false);
    expect(matches('vpp/v1/devices/+/status', 'vpp/v1/devices/status')).toBe(false);
    expect(matches('vpp/v1/fleet/#', 'vpp/v1/fleet')).toBe(true);
    expect(matches('vpp/v1/fleet/#', 'vpp/v1/fleet/regions/north')).toBe(true);
    expect(matches('vpp/v1/fleet/#', 'vpp/v1/fleetx')).toBe(false);
    expect(matches('vpp/+', 'vpp/v1/fleet')).toBe(false);
    expect(matches('#', 'vpp/v1/fleet')).toBe(true);
    // MQTT-4.7.2-1: a leading wildcard does not reach $ topics.
    expect(matches('#', '$SYS/broker/clients')).toBe(false);
    expect(matches('+/broker/clients', '$SYS/broker/clients')).toBe(false);
    expect(matches('$SYS/#', '$SYS/broker/clients')).toBe(true);
  });

  it('answers exact and wildcard filters, each message once, and forgets a topic on an empty payload', () => {
    const index = new RetainedIndex();
    index.store(retained('vpp/v1/devices/bat-1/status', '{"online":true}'));
    index.store(retained('vpp/v1/devices/bat-2/status', '{"online":true}'));
    index.store(retained('vpp/v1/fleet', '{"powerW":1}'));

    expect(topics(index.match(['vpp/v1/devices/bat-1/status']))).toEqual(['vpp/v1/devices/bat-1/status']);
    expect(topics(index.match(['vpp/v1/devices/bat-3/status']))).toEqual([]);
    expect(topics(index.match(['vpp/v1/devices/+/status', 'vpp/v1/devices/bat-1/status'])).sort()).toEqual([
      'vpp/v1/devices/bat-1/status',
      'vpp/v1/devices/bat-2/status',
    ]);

    index.store(retained('vpp/v1/devices/bat-1/status', ''));
    expect(index.size).toBe(2);
    expect(topics(index.match(['vpp/v1/devices/+/status']))).toEqual(['vpp/v1/devices/bat-2/status']);
  });

  it('keeps a copy, so a later change to the stored packet object does not alter it', () => {
    const index = new RetainedIndex();
    const packet = retained('vpp/v1/devices/bat-1/status', '{"online":true}');
    index.store(packet);
    packet.topic = 'elsewhere';
    expect(topics(index.match(['vpp/v1/devices/bat-1/status']))).toEqual(['vpp/v1/devices/bat-1/status']);
  });

  it('serves retained messages through the persistence streams aedes reads', async () => {
    const persistence = createBrokerPersistence();
    await (persistence.storeRetained as unknown as (p: AedesPublishPacket) => Promise<void>)(retained('vpp/v1/devices/bat-1/status', 'on'));
    await new Promise<void>((resolve, reject) =>
      persistence.storeRetained(retained('vpp/v1/devices/bat-2/status', 'on'), (err) => (err ? reject(err) : resolve())),
    );
    const read = async (stream: Readable): Promise<string[]> => topics(await stream.toArray());
    expect(await read(persistence.createRetainedStream('vpp/v1/devices/bat-2/status'))).toEqual(['vpp/v1/devices/bat-2/status']);
    expect((await read(persistence.createRetainedStreamCombi(['vpp/v1/devices/+/status']))).sort()).toEqual([
      'vpp/v1/devices/bat-1/status',
      'vpp/v1/devices/bat-2/status',
    ]);
  });
});
