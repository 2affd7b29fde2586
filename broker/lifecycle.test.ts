import { connect as connectTcp } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startBroker, type Broker } from './broker.ts';
import { nextEvent, startTestBed, SERVICE_SECRETS, TestCredentials, type TestBed } from './test-helpers.ts';

const logger = pino({ level: 'silent' });

describe('broker lifecycle', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  it('reports every invalid option at once', async () => {
    // As a caller without the static types could pass them.
    const serviceAccounts: Record<string, string> = { 'vpp-ingest': '', 'vpp-ops': 'secret' };
    const started = startBroker({
      host: '127.0.0.1',
      port: -1,
      credentials: new TestCredentials(),
      serviceAccounts,
      maxPacketBytes: 1.5,
      tapWindow: { maxPendingPerClient: 0 },
      credentialRecheckMs: 0,
      heartbeatIntervalMs: 2.5,
      logger,
    });
    await expect(started).rejects.toMatchObject({ name: 'BrokerError', code: 'invalid-options' });
    const message = await started.catch((err: Error) => err.message);
    for (const part of [
      'port',
      'maxPacketBytes',
      'tapWindow.maxPendingPerClient',
      'credentialRecheckMs',
      'heartbeatIntervalMs',
      'service account vpp-ingest has an empty secret',
      'unknown service account "vpp-ops"',
    ]) {
      expect(message).toContain(part);
    }
  });

  it('fails with listen-failed when the port is taken', async () => {
    const first = await startBroker({ host: '127.0.0.1', port: 0, credentials: new TestCredentials(), serviceAccounts: SERVICE_SECRETS, logger });
    cleanups.push(() => first.close());
    await expect(
      startBroker({ host: '127.0.0.1', port: first.address.port, credentials: new TestCredentials(), serviceAccounts: SERVICE_SECRETS, logger }),
    ).rejects.toMatchObject({ code: 'listen-failed' });
  });

  it('serves on the port it reports and closes connected and half-open clients', async () => {
    const bed: TestBed = await startTestBed();
    cleanups.push(() => bed.close());
    const broker: Broker = bed.broker;
    expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.address.port}`);
    expect(broker.address.port).toBeGreaterThan(0);

    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const silent = connectTcp(broker.address.port, broker.address.host);
    await nextEvent(silent, 'connect');
    const deviceClosed = nextEvent(device, 'close');
    const silentClosed = nextEvent(silent, 'close');

    await broker.close();
    await Promise.all([deviceClosed, silentClosed]);
    await broker.close();
    expect(broker.counters().socketsOpened).toBe(2);
  });
});
