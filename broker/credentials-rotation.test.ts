import { afterEach, describe, expect, it } from 'vitest';
import type { PresenceEvent } from '../protocol/index.ts';
import { nextEvent, startTestBed, TestClock, waitUntil, type TestBed } from './test-helpers.ts';

const GRACE_MS = 60_000;

describe('broker secret rotation', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  /** Resolves once the broker has run a whole credential recheck that started after this call. */
  async function afterNextRecheck(): Promise<void> {
    const runs = bed.broker.counters().credentialRechecks;
    await waitUntil(() => bed.broker.counters().credentialRechecks >= runs + 2, 'a full credential recheck ran');
  }

  it('accepts the previous secret only during its grace period, and the new one from the start', async () => {
    const clock = new TestClock();
    bed = await startTestBed({ clock: clock.now });
    const oldSecret = bed.credentials.add('bat-1');
    const newSecret = bed.credentials.rotate('bat-1', clock.nowMs + GRACE_MS);

    const onOld = await bed.connectDevice('bat-1', oldSecret);
    expect(onOld.connected).toBe(true);
    await onOld.endAsync();
    const onNew = await bed.connectDevice('bat-1', newSecret);
    await onNew.endAsync();

    clock.advance(GRACE_MS);
    await expect(bed.connectDevice('bat-1', oldSecret)).rejects.toMatchObject({ code: 4 });
    expect(bed.broker.counters()).toMatchObject({ connectionsAccepted: 2, connectionsRefusedBadSecret: 1 });
    expect((await bed.connectDevice('bat-1', newSecret)).connected).toBe(true);
  });

  it('closes a connection once the grace period of its secret ends, and keeps the others', async () => {
    const clock = new TestClock();
    const events: PresenceEvent[] = [];
    bed = await startTestBed({ clock: clock.now, credentialRecheckMs: 10, onPresence: (event) => events.push(event) });
    const oldSecret = bed.credentials.add('bat-1');
    bed.credentials.rotate('bat-1', clock.nowMs + GRACE_MS);
    const onOldSecret = await bed.connectDevice('bat-1', oldSecret);
    bed.credentials.add('bat-2');
    const rotatedSecret = bed.credentials.rotate('bat-2', clock.nowMs + GRACE_MS);
    const onNewSecret = await bed.connectDevice('bat-2', rotatedSecret);
    const neverRotated = await bed.connectDevice('bat-3', bed.credentials.add('bat-3'));
    const service = await bed.connectService('vpp-ingest');

    await afterNextRecheck();
    expect(onOldSecret.connected).toBe(true);

    const closed = nextEvent(onOldSecret, 'close');
    clock.advance(GRACE_MS);
    await closed;
    await afterNextRecheck();
    expect([onNewSecret.connected, neverRotated.connected, service.connected]).toEqual([true, true, true]);
    expect(bed.broker.counters()).toMatchObject({ devicesDisconnectedSecretExpired: 1, clientsConnected: 3 });
    expect(events.filter((event) => !event.connected)).toEqual([
      { deviceId: 'bat-1', connected: false, reason: 'secret-expired', ts: clock.nowMs, brokerStartedAtMs: bed.broker.startedAtMs },
    ]);
  });

  it("closes a revoked device's connection on the next recheck, with reason 'revoked'", async () => {
    const events: PresenceEvent[] = [];
    bed = await startTestBed({ credentialRecheckMs: 10, onPresence: (event) => events.push(event) });
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const bystander = await bed.connectDevice('bat-2', bed.credentials.add('bat-2'));

    const closed = nextEvent(device, 'close');
    bed.credentials.revoke('bat-1');
    await closed;
    await waitUntil(() => events.length === 3, 'the presence event of the revoked device');
    expect(events[2]).toMatchObject({ deviceId: 'bat-1', connected: false, reason: 'revoked' });
    expect(bystander.connected).toBe(true);
    expect(bed.broker.counters().devicesDisconnectedSecretExpired).toBe(1);
  });

  it('keeps every connection while the registry cannot be read', async () => {
    let failing = false;
    bed = await startTestBed({ credentialRecheckMs: 10 });
    const credentials = bed.credentials;
    const device = await bed.connectDevice('bat-1', credentials.add('bat-1'));
    const getAccepted = credentials.getAcceptedSecretHashes.bind(credentials);
    credentials.getAcceptedSecretHashes = (deviceId, nowMs) => {
      if (failing) throw new Error('registry unavailable');
      return getAccepted(deviceId, nowMs);
    };

    failing = true;
    await waitUntil(() => bed.broker.counters().credentialRecheckFailures >= 2, 'rechecks failed');
    expect(device.connected).toBe(true);
    expect(bed.broker.counters().devicesDisconnectedSecretExpired).toBe(0);
  });

  it('reads the registry, per run, for every device on a grace secret and only a slice of the others, round robin', async () => {
    const clock = new TestClock();
    bed = await startTestBed({ clock: clock.now, credentialRecheckMs: 10, credentialRecheckSlice: 1 });
    const credentials = bed.credentials;
    for (const id of ['bat-1', 'bat-2', 'bat-3']) await bed.connectDevice(id, credentials.add(id));
    const oldSecret = credentials.add('bat-4');
    credentials.rotate('bat-4', clock.nowMs + GRACE_MS);
    await bed.connectDevice('bat-4', oldSecret);

    const readsByRun = new Map<number, string[]>();
    const getAccepted = credentials.getAcceptedSecretHashes.bind(credentials);
    credentials.getAcceptedSecretHashes = (deviceId, nowMs) => {
      const run = bed.broker.counters().credentialRechecks;
      readsByRun.set(run, [...(readsByRun.get(run) ?? []), deviceId]);
      return getAccepted(deviceId, nowMs);
    };
    const first = bed.broker.counters().credentialRechecks + 1;
    await waitUntil(() => bed.broker.counters().credentialRechecks >= first + 7, 'eight rechecks ran');
    const runs = Array.from({ length: 6 }, (_, i) => readsByRun.get(first + i) ?? []);
    for (const reads of runs) {
      expect(reads[0]).toBe('bat-4');
      expect(reads).toHaveLength(2);
    }
    // Over three runs in a row, each device on its current secret was read once.
    expect(runs.slice(0, 3).map((reads) => reads[1]).sort()).toEqual(['bat-1', 'bat-2', 'bat-3']);
  });
});
