import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { DeviceType } from '../protocol/index.ts';
import { SimError } from './errors.ts';
import { DeviceFaultState, type Metrics } from './fault-effects.ts';
import { FleetFaults, type FaultTargetDevice } from './fleet-faults.ts';
import type { OfflineReason } from './sim-device.ts';

const START = 1_700_000_000_000;
const logger = pino({ level: 'silent' });

class FakeDevice implements FaultTargetDevice {
  readonly faults = new DeviceFaultState();
  readonly offline: Array<[boolean, OfflineReason]> = [];
  constructor(
    readonly id: string,
    readonly type: DeviceType,
    readonly siteId: string,
  ) {}
  setOffline(offline: boolean, reason: OfflineReason): void {
    this.offline.push([offline, reason]);
  }
}

function rig() {
  const list = ['site-0001', 'site-0002'].flatMap((siteId) =>
    (['battery', 'solar', 'meter'] as const).map((type) => new FakeDevice(`${siteId}-${type}`, type, siteId)),
  );
  list.push(new FakeDevice('lonely-meter', 'meter', 'site-0003'));
  const devices = new Map(list.map((device) => [device.id, device]));
  const schedule = new FleetFaults({
    devices,
    wallStartMs: START,
    physicsReading: (device): Metrics => (device.type === 'battery' ? { socPct: 50, tempC: 20 } : { powerW: 1 }),
    logger,
  });
  return { schedule, device: (id: string) => devices.get(id)! };
}

function thrown(run: () => void): SimError {
  try {
    run();
  } catch (err) {
    if (err instanceof SimError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('FleetFaults', () => {
  it('puts a fault in force at once, on every device of a site the kind applies to', () => {
    const { schedule, device } = rig();
    schedule.inject('overheat:site-0001', START + 5_000);
    expect(device('site-0001-battery').faults.has('overheat')).toBe(true);
    expect(device('site-0001-solar').faults.has('overheat')).toBe(false);
    schedule.inject({ kind: 'frozen', target: 'site-0002' }, START + 5_000);
    for (const type of ['battery', 'solar', 'meter']) expect(device(`site-0002-${type}`).faults.has('frozen')).toBe(true);
    expect(schedule.active()).toEqual([
      { kind: 'overheat', target: 'site-0001' },
      { kind: 'frozen', target: 'site-0002' },
    ]);
    expect(schedule.activeCount).toBe(2);
    expect(schedule.nextEventAtMs()).toBe(Infinity);
  });

  it('starts and ends a scheduled fault on the clock it is given, counting from the fleet start', () => {
    const { schedule, device } = rig();
    const meter = device('site-0001-meter');
    schedule.inject('silent:site-0001-meter@10-20.5', START + 1_000);
    expect(meter.faults.has('silent')).toBe(false);
    expect(schedule.activeCount).toBe(0);
    expect(schedule.nextEventAtMs()).toBe(START + 10_000);
    schedule.runDue(START + 9_999);
    expect(meter.faults.has('silent')).toBe(false);
    schedule.runDue(START + 10_000);
    expect(meter.faults.has('silent')).toBe(true);
    expect(schedule.active()).toEqual([{ kind: 'silent', target: 'site-0001-meter', startSeconds: 10, endSeconds: 20.5 }]);
    expect(schedule.nextEventAtMs()).toBe(START + 20_500);
    schedule.runDue(START + 20_500);
    expect(meter.faults.has('silent')).toBe(false);
    expect(schedule.active()).toEqual([]);
  });

  it('schedules the fleet options faults from the fleet start, and drops one whose end passed before the loop ran', () => {
    const { schedule, device } = rig();
    schedule.schedule({ kind: 'silent', target: 'site-0001-solar' });
    schedule.schedule({ kind: 'frozen', target: 'site-0001-solar', startSeconds: 0, endSeconds: 1 });
    schedule.runDue(START + 2_000);
    expect(schedule.active()).toEqual([{ kind: 'silent', target: 'site-0001-solar' }]);
    expect(device('site-0001-solar').faults.has('frozen')).toBe(false);
  });

  it('takes a device offline for a disconnect and brings it back after reconnectAfterSeconds, or when cleared', () => {
    const { schedule, device } = rig();
    const solar = device('site-0002-solar');
    schedule.inject({ kind: 'disconnect', target: 'site-0002-solar', reconnectAfterSeconds: 5 }, START);
    expect(solar.offline).toEqual([[true, 'fault']]);
    expect(schedule.nextEventAtMs()).toBe(START + 5_000);
    schedule.runDue(START + 5_000);
    expect(solar.offline).toEqual([
      [true, 'fault'],
      [false, 'fault'],
    ]);
    expect(schedule.activeCount).toBe(0);

    // Default 30 s; an earlier end wins; clearing wins over both.
    schedule.inject('disconnect:site-0002-solar', START + 10_000);
    expect(schedule.nextEventAtMs()).toBe(START + 40_000);
    schedule.inject('disconnect:site-0002-meter@10-12', START + 10_000);
    expect(schedule.nextEventAtMs()).toBe(START + 12_000);
    expect(schedule.clear('disconnect', 'site-0002-solar', START + 11_000)).toBe(true);
    expect(solar.offline.at(-1)).toEqual([false, 'fault']);
    expect(schedule.clear('disconnect', 'site-0002-solar', START + 11_000)).toBe(false);
  });

  it('keeps a kind in force while any fault covering the device is, and clears by kind and target as given', () => {
    const { schedule, device } = rig();
    const battery = device('site-0001-battery');
    schedule.inject('disconnect:site-0001', START);
    schedule.inject('disconnect:site-0001-battery', START);
    expect(battery.offline).toEqual([[true, 'fault']]);
    expect(schedule.clear('disconnect', 'site-0001', START + 1_000)).toBe(true);
    // Still held by the device's own fault; its site mates are back.
    expect(battery.faults.has('disconnect')).toBe(true);
    expect(battery.offline).toEqual([[true, 'fault']]);
    expect(device('site-0001-meter').offline.at(-1)).toEqual([false, 'fault']);
    expect(schedule.clear('disconnect', 'site-0001-battery', START + 1_000)).toBe(true);
    expect(battery.offline.at(-1)).toEqual([false, 'fault']);
  });

  it('cancels a scheduled fault on clear', () => {
    const { schedule, device } = rig();
    schedule.inject('frozen:site-0001-meter@60', START);
    expect(schedule.clear('frozen', 'site-0001-meter', START + 1_000)).toBe(true);
    schedule.runDue(START + 61_000);
    expect(device('site-0001-meter').faults.has('frozen')).toBe(false);
    expect(schedule.nextEventAtMs()).toBe(Infinity);
  });

  it('refuses, naming the problem: unknown targets, kinds a device lacks, bad specs, ends already past', () => {
    const { schedule } = rig();
    expect(thrown(() => schedule.inject('silent:site-0099', START))).toMatchObject({
      code: 'unknown-device',
      message: 'fault silent:site-0099: site-0099 is no simulated device or site',
    });
    expect(thrown(() => schedule.inject('overheat:site-0001-solar', START))).toMatchObject({
      code: 'invalid-options',
      message: 'fault overheat:site-0001-solar: overheat applies to batteries only; site-0001-solar is a solar',
    });
    expect(thrown(() => schedule.inject('soc-jump:site-0003', START))).toMatchObject({
      code: 'invalid-options',
      message: expect.stringMatching(/site site-0003 has no device soc-jump applies to/),
    });
    expect(thrown(() => schedule.inject('melt:x@y', START))).toMatchObject({
      code: 'invalid-options',
      message: expect.stringMatching(/unknown kind "melt".*bad seconds "y"/),
    });
    expect(thrown(() => schedule.inject({ kind: 'silent', target: 'lonely-meter', reconnectAfterSeconds: 3 }, START))).toMatchObject({
      code: 'invalid-options',
      message: 'invalid fault: reconnectAfterSeconds applies to disconnect only',
    });
    expect(thrown(() => schedule.inject('silent:lonely-meter@1-2', START + 3_000))).toMatchObject({
      code: 'invalid-options',
      message: expect.stringMatching(/ends 2 s after the fleet started, which has passed \(now 3\.000 s\)/),
    });
    expect(schedule.activeCount).toBe(0);
  });

  it('bounds how many faults it holds', () => {
    const { schedule } = rig();
    for (let i = 0; i < 1_000; i++) schedule.inject(`silent:lonely-meter@${1_000 + i}`, START);
    expect(thrown(() => schedule.inject('silent:lonely-meter', START))).toMatchObject({ code: 'invalid-options', message: expect.stringMatching(/1000 faults/) });
  });
});
