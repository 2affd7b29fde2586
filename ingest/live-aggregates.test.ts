/**
 * Live aggregates over virtual time (RxJS TestScheduler): devices drop out of
 * the coverage once they have not been heard from within the window, and
 * offline devices never count.
 */
import { map } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../store/index.ts';
import { Directory } from './directory.ts';
import { computeLiveAggregates, liveAggregates$ } from './live-aggregates.ts';
import { Twin } from './twin.ts';

describe('liveAggregates$', () => {
  let store: SqliteStore;
  beforeEach(() => {
    store = openSqliteStore({ file: ':memory:' });
    store.upsertSite({ id: 's1', region: 'north', name: 'one' });
    store.upsertSite({ id: 's2', region: 'south', name: 'two' });
    for (const [id, siteId] of [['a', 's1'], ['b', 's2'], ['c', 's2']] as const) {
      store.createDevice({ id, type: 'battery', siteId, secretHash: 'x' }, 0);
    }
  });
  afterEach(() => store.close());

  it('counts a device while it was heard from within the window', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ expectObservable }) => {
      const twin = new Twin();
      twin.applyTelemetry('a', [{ ts: 0, seq: 1, metrics: { powerW: 100, energyWh: 1, capacityWh: 2 } }], 0);
      twin.applyTelemetry('b', [{ ts: 0, seq: 1, metrics: { powerW: 50 } }], 3_000);
      twin.applyTelemetry('c', [{ ts: 0, seq: 1, metrics: { powerW: 7 } }], 3_000);
      twin.applyStatus('c', { online: false }, 3_500, false);
      const fleet$ = liveAggregates$({
        twin,
        directory: new Directory(store),
        clock: () => scheduler.now(),
        windowMs: 5_000,
        intervalMs: 1_000,
        scheduler,
      }).pipe(
        map((snapshots) => {
          const fleet = snapshots.find((s) => s.level === 'fleet')!;
          return `${fleet.coverage.devicesReporting}/${fleet.coverage.devicesTotal}:${fleet.metrics.batteryPowerW}`;
        }),
      );
      expectObservable(fleet$, '^ 9500ms !').toBe('1s a 999ms a 999ms a 999ms a 999ms a 999ms b 999ms b 999ms b 999ms c', {
        a: '2/3:150',
        b: '1/3:50',
        c: '0/3:0',
      });
    });
  });

  it('does not count a device that has connected but sent no telemetry yet', () => {
    const twin = new Twin();
    twin.applyPresence({ deviceId: 'a', connected: true, reason: 'connected', ts: 1_000, brokerStartedAtMs: 0 });
    twin.applyTelemetry('b', [{ ts: 1_000, seq: 1, metrics: { powerW: 50, energyWh: 5, capacityWh: 10 } }], 1_000);
    const snapshot = () => computeLiveAggregates({ twin, directory: new Directory(store), clock: () => 2_000, windowMs: 5_000 }).find((s) => s.level === 'fleet')!;
    expect(snapshot().coverage.devicesReporting).toBe(1);
    expect(snapshot().metrics.socPct).toBe(50);
    twin.applyTelemetry('a', [{ ts: 1_500, seq: 1, metrics: { powerW: 10, energyWh: 5, capacityWh: 30 } }], 1_500);
    expect(snapshot().coverage.devicesReporting).toBe(2);
    expect(snapshot().metrics.socPct).toBe(25);
  });

  it('reports every site and region, with zero coverage where nothing reports', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ expectObservable }) => {
      const ids$ = liveAggregates$({ twin: new Twin(), directory: new Directory(store), clock: () => scheduler.now(), windowMs: 5_000, intervalMs: 1_000, scheduler }).pipe(
        map((snapshots) => snapshots.map((s) => `${s.level}:${s.id}:${s.coverage.ratio}`).sort().join(',')),
      );
      expectObservable(ids$, '^ 1500ms !').toBe('1s a', { a: 'fleet:fleet:0,region:north:0,region:south:0,site:s1:0,site:s2:0' });
    });
  });
});
