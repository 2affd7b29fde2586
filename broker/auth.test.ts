import { afterEach, describe, expect, it } from 'vitest';
import { deviceTopic } from '../protocol/index.ts';
import { SERVICE_SECRETS, startTestBed, type TestBed } from './test-helpers.ts';

describe('broker authentication', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  it('accepts a device with its own secret and client id', async () => {
    bed = await startTestBed();
    const secret = bed.credentials.add('bat-1');
    const client = await bed.connectDevice('bat-1', secret);
    expect(client.connected).toBe(true);
    expect(bed.broker.counters()).toMatchObject({ connectionsAccepted: 1, clientsConnected: 1, connectionsRefused: 0 });
  });

  it('accepts a device id of 64 characters as client id', async () => {
    bed = await startTestBed();
    const deviceId = `d${'x'.repeat(63)}`;
    const secret = bed.credentials.add(deviceId);
    const client = await bed.connectDevice(deviceId, secret);
    expect(client.connected).toBe(true);
  });

  it('refuses a wrong secret with CONNACK 4', async () => {
    bed = await startTestBed();
    bed.credentials.add('bat-1');
    const other = bed.credentials.add('bat-2');
    await expect(bed.connectDevice('bat-1', other)).rejects.toMatchObject({ code: 4 });
    expect(bed.broker.counters()).toMatchObject({
      connectionsRefused: 1,
      connectionsRefusedBadSecret: 1,
      connectionsAccepted: 0,
    });
  });

  it('refuses an unknown device with CONNACK 4', async () => {
    bed = await startTestBed();
    const secret = bed.credentials.add('bat-1');
    await expect(bed.connectDevice('bat-9', secret)).rejects.toMatchObject({ code: 4 });
    expect(bed.broker.counters().connectionsRefusedUnknownDevice).toBe(1);
  });

  it('refuses a revoked device with CONNACK 4', async () => {
    bed = await startTestBed();
    const secret = bed.credentials.add('bat-1');
    bed.credentials.revoke('bat-1');
    await expect(bed.connectDevice('bat-1', secret)).rejects.toMatchObject({ code: 4 });
    expect(bed.broker.counters().connectionsRefusedUnknownDevice).toBe(1);
  });

  it('refuses missing credentials with CONNACK 4', async () => {
    bed = await startTestBed();
    bed.credentials.add('bat-1');
    await expect(bed.connect({ clientId: 'bat-1' })).rejects.toMatchObject({ code: 4 });
    await expect(bed.connect({ clientId: 'bat-1', username: 'bat-1' })).rejects.toMatchObject({ code: 4 });
    expect(bed.broker.counters()).toMatchObject({ connectionsRefused: 2, connectionsRefusedMissingCredentials: 2 });
  });

  it('refuses a device whose client id differs from its username with CONNACK 2', async () => {
    bed = await startTestBed();
    const secret = bed.credentials.add('bat-1');
    await expect(bed.connectDevice('bat-1', secret, { clientId: 'bat-1-b' })).rejects.toMatchObject({ code: 2 });
    expect(bed.broker.counters().connectionsRefusedClientIdRejected).toBe(1);
  });

  it("refuses a will on another device's topic with CONNACK 5", async () => {
    bed = await startTestBed();
    const secret = bed.credentials.add('bat-1');
    bed.credentials.add('bat-2');
    const will = { topic: deviceTopic('bat-2', 'status'), payload: Buffer.from('{"online":false}'), qos: 1 as const, retain: true };
    await expect(bed.connectDevice('bat-1', secret, { will })).rejects.toMatchObject({ code: 5 });
    expect(bed.broker.counters().connectionsRefusedWillNotAuthorized).toBe(1);
  });

  it('accepts a service account with its own secret and refuses it with a wrong one', async () => {
    bed = await startTestBed();
    const service = await bed.connectService('vpp-ingest');
    expect(service.connected).toBe(true);
    await expect(
      bed.connect({ clientId: 'vpp-control', username: 'vpp-control', password: 'not-the-secret' }),
    ).rejects.toMatchObject({ code: 4 });
    // Each account has its own secret: one account's does not open another.
    await expect(
      bed.connect({ clientId: 'vpp-control', username: 'vpp-control', password: SERVICE_SECRETS['vpp-ingest'] }),
    ).rejects.toMatchObject({ code: 4 });
    expect(bed.broker.counters()).toMatchObject({ connectionsAccepted: 1, connectionsRefusedBadSecret: 2 });
  });

  it('refuses a service account on any client id but its own with CONNACK 2', async () => {
    bed = await startTestBed();
    const secret = bed.credentials.add('bat-1');
    const device = await bed.connectDevice('bat-1', secret);
    await expect(bed.connectService('vpp-control', { clientId: 'bat-1' })).rejects.toMatchObject({ code: 2 });
    await expect(bed.connectService('vpp-control', { clientId: 'vpp-control-2' })).rejects.toMatchObject({ code: 2 });
    await expect(bed.connectService('vpp-control', { clientId: 'vpp-ingest' })).rejects.toMatchObject({ code: 2 });
    expect(device.connected).toBe(true);
    expect(bed.broker.counters().connectionsRefusedClientIdRejected).toBe(3);
    const control = await bed.connectService('vpp-control');
    expect(control.connected).toBe(true);
  });

  it('refuses a service account it was not given, like an unknown device, without asking the registry', async () => {
    bed = await startTestBed({ serviceAccounts: { 'vpp-ingest': SERVICE_SECRETS['vpp-ingest'] } });
    await expect(bed.connectService('vpp-control')).rejects.toMatchObject({ code: 4 });
    await expect(
      bed.connect({ clientId: 'vpp-ops', username: 'vpp-ops', password: SERVICE_SECRETS['vpp-control'] }),
    ).rejects.toMatchObject({ code: 4 });
    expect(bed.broker.counters()).toMatchObject({ connectionsRefusedUnknownDevice: 2, connectionsAccepted: 0 });
    // 'vpp-ops' is a valid device id and was looked up as one; a service account name never is.
    expect(bed.credentials.lookups).toEqual(['vpp-ops']);
  });

  it('refuses with CONNACK 3 when the credentials port fails', async () => {
    bed = await startTestBed({
      credentials: {
        getAcceptedSecretHashes() {
          throw new Error('registry unavailable');
        },
      },
    });
    await expect(bed.connect({ clientId: 'bat-1', username: 'bat-1', password: 'x' })).rejects.toMatchObject({ code: 3 });
    expect(bed.broker.counters().connectionsRefusedServerError).toBe(1);
  });

  it('lets a reconnecting device take over its own session', async () => {
    bed = await startTestBed();
    const secret = bed.credentials.add('bat-1');
    const first = await bed.connectDevice('bat-1', secret);
    const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    const second = await bed.connectDevice('bat-1', secret);
    await firstClosed;
    expect(second.connected).toBe(true);
    expect(bed.broker.counters()).toMatchObject({ connectionsAccepted: 2, clientsConnected: 1 });
  });
});
