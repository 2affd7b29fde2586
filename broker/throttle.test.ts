import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker } from './broker.ts';
import { ConnectionLimits, THROTTLE_DEFAULTS, type ThrottleOptions } from './throttle.ts';
import { nextEvent, roundTrip, SERVICE_SECRETS, startTestBed, TestClock, TestCredentials, waitUntil, type TestBed } from './test-helpers.ts';

// Every test client comes from 127.0.0.1: one source address.
describe('broker throttle', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  const start = async (throttle: ThrottleOptions, clock = new TestClock()): Promise<TestClock> => {
    bed = await startTestBed({ throttle, clock: clock.now });
    return clock;
  };
  const wrongSecret = (deviceId: string): Promise<unknown> =>
    expect(bed.connectDevice(deviceId, 'not-the-secret')).rejects.toMatchObject({ code: 4 });
  /** Milliseconds from connecting until the CONNACK refusal arrives. */
  const timedWrongSecret = async (deviceId: string): Promise<number> => {
    const startedAt = performance.now();
    await wrongSecret(deviceId);
    return performance.now() - startedAt;
  };

  it('refuses a CONNECT beyond the per-address cap with CONNACK 3, and a disconnect frees a slot', async () => {
    // The test clients come from loopback, which is exempt by default: count it here.
    await start({ maxConnectionsPerAddress: 3, exemptLoopbackFromAddressCap: false });
    const devices = [];
    for (const id of ['bat-1', 'bat-2', 'bat-3']) devices.push(await bed.connectDevice(id, bed.credentials.add(id)));
    const fourth = bed.credentials.add('bat-4');
    const lookups = bed.credentials.lookups.length;
    await expect(bed.connectDevice('bat-4', fourth)).rejects.toMatchObject({ code: 3 });
    // Refused before authentication: the registry was not asked.
    expect(bed.credentials.lookups).toHaveLength(lookups);
    expect(bed.broker.counters()).toMatchObject({
      connectionsRefusedTooManyPerAddress: 1,
      connectionsRefused: 1,
      clientsConnected: 3,
    });

    const closed = nextEvent(devices[0]!, 'close');
    await devices[0]!.endAsync();
    await closed;
    await waitUntil(() => bed.broker.counters().clientsConnected === 2, 'the broker saw the disconnect');
    const client = await bed.connectDevice('bat-4', fourth);
    expect(client.connected).toBe(true);
  });

  it('refuses a CONNECT beyond the total cap with CONNACK 3', async () => {
    await start({ maxConnections: 2 });
    await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    await bed.connectService('vpp-ingest');
    await expect(bed.connectDevice('bat-2', bed.credentials.add('bat-2'))).rejects.toMatchObject({ code: 3 });
    expect(bed.broker.counters()).toMatchObject({ connectionsRefusedTooMany: 1, connectionsRefusedTooManyPerAddress: 0 });
  });

  it('answers repeated wrong secrets ever later, then refuses the id unchecked until its window ends', async () => {
    const clock = await start({ freeFailures: 2, failureDelayMs: 60, maxFailureDelayMs: 100, maxFailures: 6, failureWindowMs: 60_000 });
    const secret = bed.credentials.add('bat-1');
    const other = bed.credentials.add('bat-2');

    const elapsed: number[] = [];
    for (let attempt = 1; attempt <= 6; attempt++) elapsed.push(await timedWrongSecret('bat-1'));
    // Failures before each attempt 0..5: answered after 0, 0, 0 (the free ones), 60, 100 (120 capped), 100 ms.
    expect(elapsed[3]).toBeGreaterThanOrEqual(60);
    expect(elapsed[4]).toBeGreaterThanOrEqual(100);
    expect(elapsed[5]).toBeGreaterThanOrEqual(100);
    expect(bed.broker.counters()).toMatchObject({ connectionsRefusedBadSecret: 6, connectionsDelayed: 3 });

    // Six failures: locked out. Neither a guess nor the right secret is checked.
    const lookups = bed.credentials.lookups.length;
    await wrongSecret('bat-1');
    await expect(bed.connectDevice('bat-1', secret)).rejects.toMatchObject({ code: 4 });
    expect(bed.credentials.lookups).toHaveLength(lookups);
    expect(bed.broker.counters()).toMatchObject({ connectionsRefusedThrottled: 2, connectionsRefusedBadSecret: 6 });

    // Per id: another device at the same address still connects (the address has 6 of its 100).
    expect((await bed.connectDevice('bat-2', other)).connected).toBe(true);

    // The window ends with the broker clock.
    clock.advance(60_000);
    expect((await bed.connectDevice('bat-1', secret)).connected).toBe(true);
  });

  it('refuses every CONNECT from an address that used up its failures, whatever the id, until the window ends', async () => {
    const clock = await start({ freeFailures: 10, maxFailuresPerAddress: 4, maxFailures: 100, failureWindowMs: 30_000 });
    const secret = bed.credentials.add('bat-1');
    // Four ids, one failure each: no id is near its limit, the address is at its own.
    for (const id of ['bat-1', 'bat-2', 'nobody-1', 'nobody-2']) await wrongSecret(id);
    expect(bed.broker.counters()).toMatchObject({ connectionsRefusedBadSecret: 1, connectionsRefusedUnknownDevice: 3 });

    const lookups = bed.credentials.lookups.length;
    await expect(bed.connectDevice('bat-1', secret)).rejects.toMatchObject({ code: 4 });
    await expect(bed.connectService('vpp-ingest')).rejects.toMatchObject({ code: 4 });
    expect(bed.credentials.lookups).toHaveLength(lookups);
    expect(bed.broker.counters().connectionsRefusedThrottled).toBe(2);

    clock.advance(29_999);
    await expect(bed.connectDevice('bat-1', secret)).rejects.toMatchObject({ code: 4 });
    clock.advance(1);
    expect((await bed.connectDevice('bat-1', secret)).connected).toBe(true);
  });

  it("clears the id's failures on a successful CONNECT, but not the address's", async () => {
    await start({ freeFailures: 10, maxFailures: 3, maxFailuresPerAddress: 5 });
    const secret = bed.credentials.add('bat-1');
    await wrongSecret('bat-1');
    await wrongSecret('bat-1');
    await bed.connectDevice('bat-1', secret);
    await wrongSecret('bat-1');
    await wrongSecret('bat-1');
    // Four failures of bat-1, but only two since its last success: under its limit of 3.
    expect((await bed.connectDevice('bat-1', secret)).connected).toBe(true);
    expect(bed.broker.counters().connectionsRefusedThrottled).toBe(0);

    // The address kept all four; a fifth, from another id, reaches its limit.
    await wrongSecret('nobody');
    await expect(bed.connectDevice('bat-1', secret)).rejects.toMatchObject({ code: 4 });
    expect(bed.broker.counters().connectionsRefusedThrottled).toBe(1);
  });

  it('keeps at most maxTrackedKeys keys, evicting the least recently failed, not the busy address', async () => {
    await start({ maxTrackedKeys: 10, freeFailures: 1_000, maxFailures: 1_000, maxFailuresPerAddress: 30 });
    const secret = bed.credentials.add('bat-1');
    for (let i = 0; i < 30; i++) {
      await wrongSecret(`nobody-${i}`);
      expect(bed.broker.counters().throttleTrackedKeys).toBeLessThanOrEqual(10);
    }
    // 31 keys (the address and 30 ids) in a map of 10.
    expect(bed.broker.counters()).toMatchObject({ throttleTrackedKeys: 10, throttleKeysEvicted: 21 });
    // The address failed most recently every time, so it was kept: its 30 failures lock it.
    await expect(bed.connectDevice('bat-1', secret)).rejects.toMatchObject({ code: 4 });
    expect(bed.broker.counters().connectionsRefusedThrottled).toBe(1);
  });

  it('drops ended windows on a timer', async () => {
    const clock = await start({ failureWindowMs: 50, freeFailures: 10 });
    await wrongSecret('nobody-1');
    await wrongSecret('nobody-2');
    expect(bed.broker.counters().throttleTrackedKeys).toBe(3);
    clock.advance(50);
    await waitUntil(() => bed.broker.counters().throttleTrackedKeys === 0, 'the pruning timer ran');
  });

  it('serves other clients while it delays a CONNECT', async () => {
    await start({ freeFailures: 0, failureDelayMs: 5_000, maxFailureDelayMs: 5_000 });
    const service = await bed.connectService('vpp-control');
    // The address's first failure: from now on every CONNECT from it waits 5 s.
    await wrongSecret('nobody');
    let answered = false;
    const guess = bed.connectDevice('nobody', 'guess').finally(() => {
      answered = true;
    });
    guess.catch(() => undefined);
    await waitUntil(() => bed.broker.counters().connectionsDelayed === 1, 'the guess is being delayed');
    // The connected service gets its answers meanwhile.
    await roundTrip(service);
    expect(answered).toBe(false);
    // close() cancels the delayed answer; the guess's connection is closed unanswered.
    await bed.broker.close();
    await expect(guess).rejects.toThrow();
    expect(bed.broker.counters()).toMatchObject({ connectionsRefusedUnknownDevice: 1, connectionsRefused: 1 });
  });

  it('leaves connections from this machine out of the per-address cap by default, not out of the total', async () => {
    await start({ maxConnectionsPerAddress: 2, maxConnections: 3 });
    for (const id of ['bat-1', 'bat-2', 'bat-3']) await bed.connectDevice(id, bed.credentials.add(id));
    await expect(bed.connectDevice('bat-4', bed.credentials.add('bat-4'))).rejects.toMatchObject({ code: 3 });
    expect(bed.broker.counters()).toMatchObject({ connectionsRefusedTooManyPerAddress: 0, connectionsRefusedTooMany: 1, clientsConnected: 3 });
  });
});

describe('broker throttle options', () => {
  it('reports every invalid throttle and TLS option at once', async () => {
    const started = startBroker({
      host: '127.0.0.1',
      port: 0,
      credentials: new TestCredentials(),
      serviceAccounts: SERVICE_SECRETS,
      // As a caller without the static types could pass them.
      throttle: { maxConnections: 0, freeFailures: -1, failureDelayMs: 1.5, maxFailureDelayMs: 50, maxPerSecond: 3 } as ThrottleOptions,
      tls: { port: 70_000, cert: '', key: 'not a key' },
      logger: pino({ level: 'silent' }),
    });
    const message = await started.then(
      () => 'started',
      (err: Error) => err.message,
    );
    for (const part of [
      'throttle.maxConnections must be an integer >= 1',
      'throttle.freeFailures must be an integer >= 0',
      'throttle.failureDelayMs must be an integer >= 1',
      'unknown option throttle.maxPerSecond',
      'tls.port',
      'tls.cert is empty',
    ]) {
      expect(message).toContain(part);
    }
  });

  it('has the documented defaults', () => {
    expect(THROTTLE_DEFAULTS).toEqual({
      maxConnectionsPerAddress: 1_000,
      exemptLoopbackFromAddressCap: true,
      maxConnections: 100_000,
      freeFailures: 3,
      failureDelayMs: 100,
      maxFailureDelayMs: 5_000,
      maxFailures: 20,
      maxFailuresPerAddress: 100,
      failureWindowMs: 60_000,
      maxTrackedKeys: 100_000,
    });
  });

});

describe('connection limits', () => {
  it('caps each network address, and loopback only by the total', () => {
    const limits = new ConnectionLimits({ maxConnectionsPerAddress: 1, maxConnections: 4, exemptLoopbackFromAddressCap: true });
    expect(limits.admit({}, '192.0.2.7')).toBe('admitted');
    expect(limits.admit({}, '192.0.2.7')).toBe('too-many-per-address');
    expect(limits.admit({}, '198.51.100.1')).toBe('admitted');
    expect(limits.admit({}, '127.0.0.1')).toBe('admitted');
    expect(limits.admit({}, '::1')).toBe('admitted');
    expect(limits.admit({}, '127.0.0.1')).toBe('too-many');
  });
});
