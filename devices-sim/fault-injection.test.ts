/**
 * Faults over real sockets: a two-site fleet against an aedes broker. The
 * fleet runs on a clock the test can move forward (`skewMs`), so faults
 * that last tens of seconds of wall time are checked in a fraction of one;
 * everything else waits for the observable event with a bounded timeout.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findAbsurdValue, type TelemetrySample } from '../protocol/index.ts';
import { generateSecret } from '../store/credentials.ts';
import { SimError } from './errors.ts';
import { appendFaultCommand, watchFaultFile } from './fault-file.ts';
import { planFleet, type SimDeviceSpec } from './fleet-plan.ts';
import { startFleet, type Fleet, type FleetOptions } from './fleet.ts';
import { poll, startTestBroker, type Recorder, type TestBroker } from './test-broker.ts';

const logger = pino({ level: 'silent' });
const plan = planFleet({ sites: 2, seed: 7 });
const NOON = Date.UTC(2024, 5, 21, 12);

let test: TestBroker;
let devices: Array<SimDeviceSpec & { secret: string }>;
let fleet: Fleet | undefined;
let dir: string | undefined;
let watcher: { stop(): void } | undefined;
/** How far the fleet's clock runs ahead of the wall clock. */
let skewMs: number;
const clock = (): number => Date.now() + skewMs;

beforeEach(async () => {
  test = await startTestBroker();
  devices = plan.devices.map((device) => ({ ...device, secret: generateSecret() }));
  for (const device of devices) test.secrets.set(device.id, device.secret);
  skewMs = 0;
  fleet = undefined;
  dir = undefined;
  watcher = undefined;
});

afterEach(async () => {
  watcher?.stop();
  await fleet?.stop();
  await test.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(overrides: Partial<FleetOptions> = {}): Promise<Fleet> {
  fleet = await startFleet({ mqttUrl: test.mqttUrl, devices, seed: 7, speed: 100, telemetryIntervalMs: 2_000, startTimeMs: NOON, clock, logger, ...overrides });
  return fleet;
}

/** State of charge the physics gives, from the energy a battery reports (energyWh is never faulted). */
function physicsSocPct(sample: TelemetrySample): number {
  return (100 * sample.metrics.energyWh!) / sample.metrics.capacityWh!;
}

const after = (samples: TelemetrySample[], fromMs: number): TelemetrySample[] => samples.filter((s) => s.ts >= fromMs);
const isJumped = (s: TelemetrySample): boolean => Math.abs(s.metrics.socPct! - physicsSocPct(s)) > 10;
const isTrue = (s: TelemetrySample): boolean => Math.abs(s.metrics.socPct! - physicsSocPct(s)) < 0.1;

function otherDevicesSent(recorder: Recorder, except: string, count: number, sinceMs: number): boolean {
  return devices.filter((d) => d.id !== except).every((d) => after(recorder.samplesOf(d.id), sinceMs).length >= count);
}

describe('faults against a real broker', () => {
  it('silent: stops the telemetry, the status stays online, and sending resumes without a backlog after clearing', async () => {
    const { recorder } = await test.observe('vpp/v1/devices/+/#');
    const running = await start();
    const id = 'site-0001-solar';
    await recorder.waitFor('live samples', () => recorder.samplesOf(id).length >= 3);

    running.injectFault(`silent:${id}`);
    const silentFrom = clock();
    expect(running.activeFaults()).toEqual([{ kind: 'silent', target: id }]);
    expect(running.stats().faultsActive).toBe(1);
    // The rest of the fleet keeps sending: by the time each has sent five samples, the silent one would have too.
    await recorder.waitFor('five samples from every other device', () => otherDevicesSent(recorder, id, 5, silentFrom + 1));
    expect(after(recorder.samplesOf(id), silentFrom + 1)).toEqual([]);
    expect(running.stats()).toMatchObject({ connected: 6, buffered: 0 });
    expect(recorder.statusesOf(id).every((status) => status.online === true)).toBe(true);

    expect(running.clearFault('silent', id)).toBe(true);
    const clearedAt = clock();
    expect(running.clearFault('silent', id)).toBe(false);
    expect(running.stats().faultsActive).toBe(0);
    await recorder.waitFor('samples again', () => after(recorder.samplesOf(id), clearedAt).length >= 2);
    // Nothing was kept while silent: no samples batch, and seq carries on from where it stopped.
    expect(recorder.telemetryOf(id).some((payload) => 'samples' in payload)).toBe(false);
    const samples = recorder.samplesOf(id).sort((a, b) => a.seq - b.seq);
    samples.forEach((sample, index) => expect(sample.seq).toBe(index));
    const resumedAt = samples.findIndex((s) => s.ts >= clearedAt);
    expect(samples[resumedAt - 1]!.ts).toBeLessThanOrEqual(silentFrom);
    expect(recorder.statusesOf(id).every((status) => status.online === true)).toBe(true);
  });

  it('disconnect: the broker publishes the will, and the device comes back by itself after 30 s, or when cleared', async () => {
    const { recorder } = await test.observe('vpp/v1/devices/+/#');
    const running = await start();
    const id = 'site-0002-meter';
    await recorder.waitFor('live samples', () => recorder.samplesOf(id).length >= 2);

    running.injectFault(`disconnect:${id}`);
    await recorder.waitFor('the will', () => recorder.statusesOf(id).some((status) => status.online === false));
    expect(running.stats().connected).toBe(5);
    expect(running.activeFaults()).toEqual([{ kind: 'disconnect', target: id }]);
    await poll('samples in the buffer', () => running.stats().buffered >= 3);
    const telemetryBefore = recorder.of(id, 'telemetry').length;

    // Thirty seconds later on the fleet's clock, the device reconnects by itself.
    skewMs += 30_000;
    await recorder.waitFor('online again and the buffer flushed', () => {
      const statuses = recorder.statusesOf(id);
      return statuses.at(-1)?.online === true && recorder.telemetryOf(id).slice(telemetryBefore).some((payload) => 'samples' in payload);
    });
    expect(running.activeFaults()).toEqual([]);
    expect(running.stats().connected).toBe(6);

    // A whole site, held for ten minutes, back as soon as it is cleared.
    running.injectFault({ kind: 'disconnect', target: 'site-0001', reconnectAfterSeconds: 600 });
    const site = devices.filter((d) => d.siteId === 'site-0001').map((d) => d.id);
    const willsBefore = new Map(site.map((d) => [d, recorder.statusesOf(d).length]));
    await recorder.waitFor('the wills of the site', () => site.every((d) => recorder.statusesOf(d).slice(willsBefore.get(d)).some((s) => s.online === false)));
    expect(running.stats().connected).toBe(3);
    expect(running.clearFault('disconnect', 'site-0001')).toBe(true);
    await recorder.waitFor('the site online again', () => site.every((d) => recorder.statusesOf(d).at(-1)?.online === true));
    await poll('every device connected', () => running.stats().connected === 6);
  });

  it('overheat: the battery reading climbs past 60 °C and stays there, then returns to the physics', async () => {
    const { recorder } = await test.observe('vpp/v1/devices/+/telemetry');
    const running = await start();
    const id = 'site-0001-battery';
    await recorder.waitFor('live samples', () => recorder.samplesOf(id).length >= 2);
    const startC = recorder.samplesOf(id).at(-1)!.metrics.tempC!;
    expect(startC).toBeLessThan(45);

    running.injectFault('overheat:site-0001');
    expect(running.activeFaults()).toEqual([{ kind: 'overheat', target: 'site-0001' }]);
    skewMs += 10_000;
    const tenSecondsOn = clock();
    await recorder.waitFor('a reading ten seconds on', () => after(recorder.samplesOf(id), tenSecondsOn).length > 0);
    const climbing = after(recorder.samplesOf(id), tenSecondsOn)[0]!.metrics.tempC!;
    expect(climbing).toBeGreaterThan(startC + 5);
    expect(climbing).toBeLessThan(60);

    skewMs += 60_000;
    const hot = clock();
    await recorder.waitFor('three readings after the climb', () => after(recorder.samplesOf(id), hot).length >= 3);
    for (const sample of after(recorder.samplesOf(id), hot)) {
      expect(sample.metrics.tempC).toBeGreaterThan(60);
      expect(findAbsurdValue('battery', sample.metrics)).toBeUndefined();
    }
    // Only the battery: the site's inverter reports its own temperature.
    expect(after(recorder.samplesOf('site-0001-solar'), hot).every((s) => s.metrics.tempC! < 60)).toBe(true);

    expect(running.clearFault('overheat', 'site-0001')).toBe(true);
    const cleared = clock();
    await recorder.waitFor('a reading after clearing', () => after(recorder.samplesOf(id), cleared).length > 0);
    expect(after(recorder.samplesOf(id), cleared)[0]!.metrics.tempC).toBeLessThan(45);
  });

  it('applies and clears faults scheduled at start with @start-end', async () => {
    const { recorder } = await test.observe('vpp/v1/devices/+/telemetry');
    const battery = 'site-0002-battery';
    const meter = 'site-0001-meter';
    const before = clock();
    const running = await start({
      faults: [
        { kind: 'soc-jump', target: battery, startSeconds: 1, endSeconds: 3 },
        { kind: 'frozen', target: meter, startSeconds: 1, endSeconds: 3 },
      ],
    });
    const started = clock();
    // The window in fleet time: [wallStart + 1 s, wallStart + 3 s), wallStart between `before` and `started`.
    const surelyIn = { from: started + 1_000 + 50, to: before + 3_000 - 50 };
    await recorder.waitFor('true readings before the window', () => recorder.samplesOf(battery).some(isTrue));

    skewMs += 1_000;
    await recorder.waitFor('readings inside the window', () =>
      recorder.samplesOf(battery).some(isJumped) && after(recorder.samplesOf(meter), surelyIn.from).length >= 3,
    );
    expect(running.activeFaults()).toEqual([
      { kind: 'soc-jump', target: battery, startSeconds: 1, endSeconds: 3 },
      { kind: 'frozen', target: meter, startSeconds: 1, endSeconds: 3 },
    ]);
    expect(running.stats().faultsActive).toBe(2);

    skewMs += 2_000;
    const ended = clock();
    await recorder.waitFor('true readings after the window', () => after(recorder.samplesOf(battery), ended).some(isTrue));
    const inWindow = (samples: TelemetrySample[]) => samples.filter((s) => s.ts >= surelyIn.from && s.ts < surelyIn.to);
    expect(inWindow(recorder.samplesOf(battery)).every(isJumped)).toBe(true);
    const frozen = inWindow(recorder.samplesOf(meter));
    expect(frozen.length).toBeGreaterThanOrEqual(3);
    for (const sample of frozen) expect(sample.metrics).toEqual(frozen[0]!.metrics);
    // ts and seq go on while the values stand still.
    for (let i = 1; i < frozen.length; i++) {
      expect(frozen[i]!.seq).toBe(frozen[i - 1]!.seq + 1);
      expect(frozen[i]!.ts).toBeGreaterThan(frozen[i - 1]!.ts);
    }
    await recorder.waitFor('the meter moving again', () =>
      after(recorder.samplesOf(meter), ended).some((s) => JSON.stringify(s.metrics) !== JSON.stringify(frozen[0]!.metrics)),
    );
    expect(running.activeFaults()).toEqual([]);
    expect(running.stats().faultsActive).toBe(0);
  });

  it('refuses bad faults: in the options before connecting anything, and when injected', async () => {
    const failure = startFleet({
      mqttUrl: test.mqttUrl,
      devices,
      seed: 7,
      speed: 100,
      telemetryIntervalMs: 2_000,
      logger,
      faults: [
        { kind: 'overheat', target: 'site-0001-meter' },
        { kind: 'silent', target: 'site-0099' },
        { kind: 'frozen', target: 'site-0001', startSeconds: 5, endSeconds: 5 },
      ],
    });
    await expect(failure).rejects.toMatchObject({
      code: 'invalid-options',
      message: expect.stringMatching(/faults\[0\].*batteries only.*faults\[1\].*site-0099 is no simulated device or site.*faults\[2\]: end 5 is not after start 5/),
    });
    expect(test.broker.connectedClients).toBe(0);

    const running = await start();
    expect(() => running.injectFault('silent:site-0099')).toThrow(SimError);
    expect(() => running.injectFault('soc-jump:site-0001-solar')).toThrow(/batteries only/);
    expect(() => running.injectFault('melt:site-0001')).toThrow(/unknown kind "melt"/);
    expect(running.activeFaults()).toEqual([]);
  });

  it('runs the add and clear lines appended to the fault file, not the lines it held before', async () => {
    const { recorder } = await test.observe('vpp/v1/devices/+/telemetry');
    dir = mkdtempSync(join(tmpdir(), 'fault-injection-'));
    const file = join(dir, 'faults.log');
    writeFileSync(file, 'add silent:site-0001-meter\nadd disconnect:site-0002\n');
    const running = await start();
    watcher = watchFaultFile({ file, fleet: running, logger, pollMs: 10 });
    const watchedFrom = clock();

    await appendFaultCommand(file, 'add soc-jump:site-0001-battery');
    await poll('the appended fault in force', () => running.activeFaults().length > 0);
    expect(running.activeFaults()).toEqual([{ kind: 'soc-jump', target: 'site-0001-battery' }]);
    await recorder.waitFor('a jumped reading', () => after(recorder.samplesOf('site-0001-battery'), watchedFrom).some(isJumped));

    appendFileSync(file, '# done\nclear soc-jump:site-0001-battery\n');
    await poll('the fault cleared', () => running.activeFaults().length === 0);
    const cleared = clock();
    await recorder.waitFor('true readings again', () => after(recorder.samplesOf('site-0001-battery'), cleared).some(isTrue));
    // The lines from before the watcher never ran: the meter still talks, the second site never left.
    expect(after(recorder.samplesOf('site-0001-meter'), watchedFrom).length).toBeGreaterThan(0);
    expect(running.stats().connected).toBe(6);
  });
});
