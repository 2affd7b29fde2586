/**
 * Fills a store for the query scenario, run as its own process:
 * `node --import tsx bench/load/query-fill.ts <file> <json FillParams>`.
 * Reports `{ type: 'progress', message }` and finally `{ type: 'done', rows }`
 * over IPC.
 *
 * What it writes is what the platform would have stored for a fleet planned
 * by devices-sim (a battery, a solar inverter and a meter per site), running
 * with raw telemetry and 1-minute rollups kept for `rawDays` and coarse
 * tiers for `rollupDays`: the registry, a twin per device, raw samples at
 * `intervalMs` from the simulated physics for the last `rawDays` (the same
 * tables and JSON encoding as writeTelemetry, all compacted), 1-minute rollups
 * of those samples for devices, sites, regions and the fleet (the same rules
 * as ingest's rollup accumulator), and 15-minute and 1-hour buckets merged
 * from them as the store's tiers do. Older days exist only in the coarse
 * tiers, as after pruning; their values repeat the simulated day's with a
 * per-day weather factor on power, which changes values, not row counts or
 * key layout (what query cost depends on).
 *
 * It is a bulk load: the schema is created by openSqliteStore, then rows go
 * in through prepared statements on the same tables, in key order, in large
 * transactions, with journaling off until the end (the file is switched back
 * to WAL before it is handed over).
 */
import Database from 'better-sqlite3';
import { planFleet, SimulatedSite, type SimDeviceSpec } from '../../devices-sim/index.ts';
import type { DeviceType } from '../../protocol/index.ts';
import { openSqliteStore } from '../../store/index.ts';

export interface FillParams {
  sites: number;
  seed: number;
  /** End of the data (exclusive), a whole day; queries run as if it were now. */
  endMs: number;
  intervalMs: number;
  rawDays: number;
  rollupDays: number;
}

const MINUTE_MS = 60_000;
const QUARTER_MS = 15 * MINUTE_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** Device metric → aggregate metric, as ingest/aggregate-metrics.ts sums them. */
const AGGREGATED: Record<DeviceType, Record<string, string>> = {
  battery: { powerW: 'batteryPowerW', energyWh: 'energyWh', capacityWh: 'capacityWh' },
  solar: { powerW: 'solarPowerW' },
  meter: { powerW: 'gridPowerW', loadW: 'loadW' },
};
const SUMMED = ['batteryPowerW', 'capacityWh', 'energyWh', 'gridPowerW', 'loadW', 'solarPowerW'] as const;
/** Aggregate metrics in key order. */
const AGGREGATE_METRICS = ['batteryPowerW', 'capacityWh', 'energyWh', 'gridPowerW', 'loadW', 'socPct', 'solarPowerW'] as const;
const STATS = 4; // min, max, mean, last

function send(message: unknown): void {
  process.send?.(message);
}

/** A weather factor per day and entity, in [0.6, 1.15]. */
function dayFactor(day: number, salt: number): number {
  const x = Math.sin(day * 12.9898 + salt * 78.233) * 43758.5453;
  return 0.6 + 0.55 * (x - Math.floor(x));
}

function main(): void {
  const [file, json] = process.argv.slice(2);
  if (file === undefined || json === undefined) throw new Error('usage: query-fill.ts <file> <params>');
  const params = JSON.parse(json) as FillParams;
  const plan = planFleet({ sites: params.sites, seed: params.seed });
  const minutes = (params.rawDays * DAY_MS) / MINUTE_MS;
  const rawStartMs = params.endMs - params.rawDays * DAY_MS;
  const samplesPerMinute = MINUTE_MS / params.intervalMs;
  const olderDays = params.rollupDays - params.rawDays;

  // Schema and registry through the store itself.
  const store = openSqliteStore({ file });
  for (const site of plan.sites) store.upsertSite(site);
  for (const device of plan.devices) store.createDevice({ ...device, secretHash: 'bench-not-a-secret' }, rawStartMs);
  void store.close();

  const db = new Database(file);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('cache_size = -1000000');
  const insertRaw = db.prepare<[string, number, number, string]>('INSERT INTO telemetry (device_id, ts, seq, metrics) VALUES (?, ?, ?, ?)');
  const insertMinute = db.prepare<[string, string, string, number, number, number, number, number, number, number, number]>(
    'INSERT INTO rollups (kind, entity_id, metric, bucket_start_ms, min, max, mean, last, count, devices_reporting, devices_total) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const coarseSql = (table: string) =>
    db.prepare<[string, string, string, number, number, number, number, number, number, number, number, number, number]>(
      `INSERT INTO ${table} (kind, entity_id, metric, bucket_start_ms, min, max, mean, last, count, devices_reporting, devices_total, minutes, last_minute_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  const insertQuarter = coarseSql('rollups_15m');
  const insertHour = coarseSql('rollups_1h');
  const saveState = db.prepare<[string, number, number, number, string]>(
    'INSERT INTO device_state (device_id, last_ts, last_seen_ms, last_seq, metrics, online, status) VALUES (?, ?, ?, ?, ?, 1, \'{"online":true,"firmware":"1.4.2"}\')',
  );
  let rows = 0;

  /**
   * Writes one series: 1-minute rows of the raw days (stats[m*4 + s]), and
   * coarse buckets merged from them, preceded by the older days' coarse
   * buckets. `counts[m]` is the minute's count; coverage is constant.
   */
  function writeSeries(kind: string, entityId: string, metric: string, stats: Float64Array, counts: Float64Array, coverage: [number, number], scaled: boolean, salt: number): void {
    const [reporting, total] = coverage;
    const coarse = (widthMs: number, insert: typeof insertQuarter) => {
      const per = widthMs / MINUTE_MS;
      const buckets: number[][] = [];
      for (let b = 0; b < minutes / per; b++) {
        let min = Infinity;
        let max = -Infinity;
        let weighted = 0;
        let plain = 0;
        let count = 0;
        for (let m = b * per; m < (b + 1) * per; m++) {
          min = Math.min(min, stats[m * STATS]!);
          max = Math.max(max, stats[m * STATS + 1]!);
          weighted += stats[m * STATS + 2]! * counts[m]!;
          plain += stats[m * STATS + 2]!;
          count += counts[m]!;
        }
        const lastMinute = (b + 1) * per - 1;
        buckets.push([min, max, count > 0 ? weighted / count : plain / per, stats[lastMinute * STATS + 3]!, count, per, lastMinute]);
      }
      for (let day = olderDays; day >= 1; day--) {
        const f = scaled ? dayFactor(day, salt) : 1;
        buckets.forEach(([min, max, mean, last, count, n, lastMinute], b) => {
          const startMs = rawStartMs - day * DAY_MS + b * widthMs;
          insert.run(kind, entityId, metric, startMs, min! * f, max! * f, mean! * f, last! * f, count!, reporting, total, n!, rawStartMs - day * DAY_MS + lastMinute! * MINUTE_MS);
          rows++;
        });
      }
      buckets.forEach(([min, max, mean, last, count, n, lastMinute], b) => {
        insert.run(kind, entityId, metric, rawStartMs + b * widthMs, min!, max!, mean!, last!, count!, reporting, total, n!, rawStartMs + lastMinute! * MINUTE_MS);
        rows++;
      });
    };
    for (let m = 0; m < minutes; m++) {
      insertMinute.run(kind, entityId, metric, rawStartMs + m * MINUTE_MS, stats[m * STATS]!, stats[m * STATS + 1]!, stats[m * STATS + 2]!, stats[m * STATS + 3]!, counts[m]!, reporting, total);
      rows++;
    }
    coarse(QUARTER_MS, insertQuarter);
    coarse(HOUR_MS, insertHour);
  }

  // Aggregate sums per minute: per site (kept until the site pass) and per region and fleet.
  const regions = [...new Set(plan.sites.map((s) => s.region))].sort();
  const newAggregate = () => Object.fromEntries(SUMMED.map((m) => [m, new Float64Array(minutes * STATS)])) as Record<(typeof SUMMED)[number], Float64Array>;
  const siteSums = new Map<string, ReturnType<typeof newAggregate>>();
  const regionSums = new Map<string, ReturnType<typeof newAggregate>>(regions.map((r) => [r, newAggregate()]));
  const fleetSums = newAggregate();
  const devicesOf = new Map<string, SimDeviceSpec[]>();
  for (const d of plan.devices) devicesOf.set(d.siteId, [...(devicesOf.get(d.siteId) ?? []), d]);
  const fullCounts = new Float64Array(minutes).fill(samplesPerMinute);

  const t0 = performance.now();
  const writeDevices = db.transaction((siteIndex: number) => {
    const site = plan.sites[siteIndex]!;
    const sim = new SimulatedSite(plan.siteParams.get(site.id)!, rawStartMs - HOUR_MS);
    const devices = [...devicesOf.get(site.id)!].sort((a, b) => (a.id < b.id ? -1 : 1));
    const steps = minutes * samplesPerMinute;
    // Samples per device: metric → values per step.
    const series = new Map<string, Map<string, Float64Array>>(devices.map((d) => [d.id, new Map()]));
    const encoded = new Map<string, string[]>(devices.map((d) => [d.id, new Array<string>(steps)]));
    for (let k = 0; k < steps; k++) {
      sim.advanceTo(rawStartMs + k * params.intervalMs);
      for (const d of devices) {
        const metrics = sim.readMetrics(d.type);
        encoded.get(d.id)![k] = JSON.stringify(metrics);
        const perMetric = series.get(d.id)!;
        for (const name in metrics) {
          let values = perMetric.get(name);
          if (!values) perMetric.set(name, (values = new Float64Array(steps)));
          values[k] = metrics[name]!;
        }
      }
    }
    const sums = newAggregate();
    for (const d of devices) {
      const lines = encoded.get(d.id)!;
      for (let k = 0; k < steps; k++) insertRaw.run(d.id, rawStartMs + k * params.intervalMs, k, lines[k]!);
      rows += steps;
      saveState.run(d.id, rawStartMs + (steps - 1) * params.intervalMs, params.endMs - 1, steps - 1, lines[steps - 1]!);
      const perMetric = series.get(d.id)!;
      for (const metric of [...perMetric.keys()].sort()) {
        const values = perMetric.get(metric)!;
        const stats = new Float64Array(minutes * STATS);
        for (let m = 0; m < minutes; m++) {
          let min = Infinity;
          let max = -Infinity;
          let sum = 0;
          for (let j = 0; j < samplesPerMinute; j++) {
            const v = values[m * samplesPerMinute + j]!;
            if (v < min) min = v;
            if (v > max) max = v;
            sum += v;
          }
          stats.set([min, max, sum / samplesPerMinute, values[(m + 1) * samplesPerMinute - 1]!], m * STATS);
        }
        writeSeries('device', d.id, metric, stats, fullCounts, [1, 1], metric.endsWith('powerW') || metric === 'powerW', siteIndex);
        const target = AGGREGATED[d.type][metric] as (typeof SUMMED)[number] | undefined;
        if (target !== undefined) for (let i = 0; i < stats.length; i++) sums[target][i]! += stats[i]!;
      }
    }
    siteSums.set(site.id, sums);
    for (const into of [regionSums.get(site.region)!, fleetSums]) {
      for (const metric of SUMMED) for (let i = 0; i < minutes * STATS; i++) into[metric][i]! += sums[metric][i]!;
    }
  });
  for (let i = 0; i < plan.sites.length; i++) {
    writeDevices(i);
    if (i % 10 === 9) {
      const s = (performance.now() - t0) / 1000;
      send({ type: 'progress', message: `fill: devices of ${i + 1}/${plan.sites.length} sites, ${(rows / 1e6).toFixed(1)}M rows, ${Math.round(rows / s / 1000)}k rows/s` });
    }
  }

  /** Rollups of an aggregate entity from its per-minute sums, with socPct from summed energy and capacity. */
  const writeAggregate = (kind: string, id: string, sums: ReturnType<typeof newAggregate>, devices: number, salt: number) => {
    const counts = new Float64Array(minutes).fill(devices);
    for (const metric of AGGREGATE_METRICS) {
      if (metric === 'socPct') {
        const soc = new Float64Array(minutes * STATS);
        for (let m = 0; m < minutes; m++) {
          const capacity = sums.capacityWh[m * STATS + 2]!;
          const value = capacity > 0 ? (100 * sums.energyWh[m * STATS + 2]!) / capacity : 0;
          soc.fill(value, m * STATS, (m + 1) * STATS);
        }
        writeSeries(kind, id, metric, soc, counts, [devices, devices], false, salt);
      } else {
        writeSeries(kind, id, metric, sums[metric], counts, [devices, devices], metric !== 'capacityWh' && metric !== 'energyWh', salt);
      }
    }
  };
  db.transaction(() => {
    writeAggregate('fleet', 'fleet', fleetSums, plan.devices.length, 1);
    regions.forEach((region, i) => writeAggregate('region', region, regionSums.get(region)!, 3 * plan.sites.filter((s) => s.region === region).length, 2 + i));
  })();
  const writeSites = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const site = plan.sites[i]!;
      writeAggregate('site', site.id, siteSums.get(site.id)!, 3, 100 + i);
      siteSums.delete(site.id);
    }
  });
  for (let i = 0; i < plan.sites.length; i += 50) {
    writeSites(i, Math.min(plan.sites.length, i + 50));
    send({ type: 'progress', message: `fill: aggregates of ${Math.min(plan.sites.length, i + 50)}/${plan.sites.length} sites, ${(rows / 1e6).toFixed(1)}M rows` });
  }
  // Pruned as the platform's retention would have: the horizons say so.
  const horizon = db.prepare<[string, number]>('INSERT INTO rollup_horizons (tier, before_ms) VALUES (?, ?)');
  horizon.run('1m', rawStartMs);
  horizon.run('15m', params.endMs - params.rollupDays * DAY_MS);
  horizon.run('1h', params.endMs - params.rollupDays * DAY_MS);
  db.pragma('locking_mode = NORMAL');
  db.pragma('journal_mode = WAL');
  // Sampled statistics: a full ANALYZE would read the whole file.
  db.pragma('analysis_limit = 1000');
  db.exec('ANALYZE');
  db.close();
  send({ type: 'done', rows });
}

main();
