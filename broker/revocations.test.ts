import { afterEach, describe, expect, it } from 'vitest';
import { REVOCATIONS_TOPIC, allDevicesFilter, deviceTopic } from '../protocol/index.ts';
import { parseRevocation } from './revocations.ts';
import { collectMessages, nextEvent, startTestBed, subscribeGranted, waitUntil, type TestBed } from './test-helpers.ts';

describe('broker revocations', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  it('disconnects a device revoked on the revocations topic, publishing its will, and refuses it afterwards', async () => {
    bed = await startTestBed();
    const secret = bed.credentials.add('bat-1');
    const will = { topic: deviceTopic('bat-1', 'status'), payload: Buffer.from('{"online":false}'), qos: 1 as const, retain: true };
    const device = await bed.connectDevice('bat-1', secret, { will });
    const bystander = await bed.connectDevice('bat-2', bed.credentials.add('bat-2'));
    const control = await bed.connectService('vpp-control');
    const ingest = await bed.connectService('vpp-ingest');
    const statuses = collectMessages(ingest);
    await subscribeGranted(ingest, allDevicesFilter('status'));

    const closed = nextEvent(device, 'close');
    bed.credentials.revoke('bat-1');
    await control.publishAsync(REVOCATIONS_TOPIC, JSON.stringify({ deviceId: 'bat-1' }), { qos: 1 });
    await closed;
    await waitUntil(() => statuses.length === 1, 'the will of the revoked device was published');
    expect(statuses[0]).toMatchObject({ topic: deviceTopic('bat-1', 'status'), payload: '{"online":false}' });
    expect(bystander.connected).toBe(true);
    expect(bed.broker.counters()).toMatchObject({ revocationsReceived: 1, devicesDisconnected: 1, revocationsInvalid: 0 });

    await expect(bed.connectDevice('bat-1', secret)).rejects.toMatchObject({ code: 4 });
  });

  it('counts malformed revocations and revocations of devices that are not connected', async () => {
    bed = await startTestBed();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const control = await bed.connectService('vpp-control');
    await control.publishAsync(REVOCATIONS_TOPIC, 'not json', { qos: 1 });
    await control.publishAsync(REVOCATIONS_TOPIC, '{"deviceId":"bad/id"}', { qos: 1 });
    await control.publishAsync(REVOCATIONS_TOPIC, '{"deviceId":"bat-9"}', { qos: 1 });
    await waitUntil(() => bed.broker.counters().revocationsReceived === 3, 'the broker saw the revocations');
    expect(bed.broker.counters()).toMatchObject({ revocationsInvalid: 2, devicesDisconnected: 0 });
    expect(device.connected).toBe(true);
  });

  it('disconnects a device through disconnectDevice, but never a service', async () => {
    bed = await startTestBed();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    await bed.connectService('vpp-ingest');
    const closed = nextEvent(device, 'close');
    expect(bed.broker.disconnectDevice('bat-1')).toBe(true);
    await closed;
    expect(bed.broker.disconnectDevice('bat-1')).toBe(false);
    expect(bed.broker.disconnectDevice('vpp-ingest')).toBe(false);
    expect(bed.broker.counters()).toMatchObject({ devicesDisconnected: 1, clientsConnected: 1 });
  });
});

describe('parseRevocation', () => {
  it('reads a valid device id and nothing else', () => {
    expect(parseRevocation(Buffer.from('{"deviceId":"bat-1"}'))).toBe('bat-1');
    expect(parseRevocation(Buffer.from('{"deviceId":""}'))).toBeUndefined();
    expect(parseRevocation(Buffer.from('{"deviceId":7}'))).toBeUndefined();
    expect(parseRevocation(Buffer.from('["bat-1"]'))).toBeUndefined();
    expect(parseRevocation(Buffer.from('null'))).toBeUndefined();
  });
});
