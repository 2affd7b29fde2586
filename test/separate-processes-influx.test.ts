/**
 * The production topology without Docker: `vpp broker`, `vpp ingest`, `vpp
 * control` and `vpp sim` as separate processes with `VPP_STORE=influxdb`
 * against a real InfluxDB (Debian's influxd 1.6, on a free loopback port).
 * Telemetry and rollups go to InfluxDB and nowhere else; the registry and
 * twins stay in SQLite; the API reads history back from InfluxDB.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, eventually } from './support/platform.ts';
import { startInfluxd, type RunningInfluxd } from './support/influx-servers.ts';
import { useProcessTestBed } from './support/process-bed.ts';

const SITES = 3;

describe('separate processes on InfluxDB', () => {
  const bed = useProcessTestBed();
  let influx: RunningInfluxd;
  beforeAll(async () => {
    influx = await startInfluxd();
  });
  afterAll(async () => {
    await influx?.stop();
  });

  it('store telemetry in InfluxDB only, and the API reads it back from there', { timeout: 120_000 }, async () => {
    const database = await influx.createDatabase('vpp');
    const { env: base, mqttPort, httpPort } = await bed.env({
      VPP_INGEST_SECRET: 'influx-processes-ingest-secret',
      VPP_CONTROL_SECRET: 'influx-processes-control-secret',
      VPP_SIM_SITES: String(SITES),
      VPP_SIM_INTERVAL_MS: '1000',
      VPP_STORE: 'influxdb',
      VPP_INFLUX_URL: influx.url,
      VPP_INFLUX_BUCKET: database,
      VPP_LOG_LEVEL: 'info',
    });
    const env = { ...base, VPP_MQTT_URL: `mqtt://127.0.0.1:${mqttPort}` };
    const broker = bed.spawn('broker', env);
    await broker.waitForOutput(/broker listening/);
    const ingest = bed.spawn('ingest', env);
    const control = bed.spawn('control', env);
    await Promise.all([ingest.waitForOutput(/ingest running/), control.waitForOutput(/control API listening/)]);
    const sim = bed.spawn('sim', env);
    await sim.waitForOutput(/simulated fleet connected/);

    const api = async <T>(path: string): Promise<T> => (await fetch(`http://127.0.0.1:${httpPort}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json() as Promise<T>;
    await eventually(async () => {
      const body = await api<{ fleet: { coverage: { ratio: number } } | null }>('/api/v1/fleet');
      return body.fleet?.coverage.ratio === 1 ? true : undefined;
    }, 30_000, 'full coverage');

    // Through the API, read from InfluxDB.
    const samples = await eventually(async () => {
      const body = await api<{ samples: Array<{ ts: number; seq: number; metrics: Record<string, number> }> }>('/api/v1/devices/site-0002-battery/telemetry?resolution=raw');
      return body.samples.length >= 3 ? body.samples : undefined;
    }, 20_000, 'stored battery samples');
    expect(samples[0]!.metrics.socPct).toBeGreaterThanOrEqual(0);

    // In InfluxDB itself: the battery measurement, tagged with the device's site and region.
    const query = async (q: string) => {
      const response = await fetch(`${influx.url}/query?${new URLSearchParams({ db: database, q, epoch: 'ms' })}`);
      return (await response.json()) as { results: Array<{ series?: Array<{ columns: string[]; values: unknown[][]; tags?: Record<string, string> }> }> };
    };
    const counted = await query(`SELECT count("seq") FROM "battery" WHERE "device" = 'site-0002-battery' GROUP BY "site", "region"`);
    const series = counted.results[0]!.series!;
    expect(series).toHaveLength(1);
    expect(series[0]!.tags).toEqual({ site: 'site-0002', region: expect.any(String) as string });
    expect(Number(series[0]!.values[0]![1])).toBeGreaterThanOrEqual(samples.length);

    // SQLite keeps the registry and the twins, and no sample.
    const sqlite = new Database(join(bed.dataDir, 'vpp.db'), { readonly: true, fileMustExist: true });
    try {
      expect(sqlite.prepare('SELECT COUNT(*) FROM devices').pluck().get()).toBe(SITES * 3);
      expect(sqlite.prepare('SELECT COUNT(*) FROM telemetry').pluck().get()).toBe(0);
      expect(sqlite.prepare('SELECT COUNT(*) FROM telemetry_recent').pluck().get()).toBe(0);
    } finally {
      sqlite.close();
    }
  });
});
