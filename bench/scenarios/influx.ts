/**
 * influx: telemetry written the way ingest's batch writer writes it (a
 * batch of samples from many devices, each write awaited, because devices
 * are acknowledged only after it) into InfluxDB 1.x and VictoriaMetrics
 * through the InfluxDB store (store/influx-telemetry.ts), with the embedded
 * SQLite store as the peer, in the same run on the same machine.
 *
 * Stores, each fresh, one after the other:
 * - InfluxDB: what VPP_STORE=influxdb does, idempotence included: a
 *   sample not later than what its device has stored is looked up first
 *   (one InfluxQL request per batch; here only at a device's first sight);
 * - InfluxDB without the lookup (`reads: 'none'`): what the lookup costs;
 * - InfluxDB given its batches again (all stored, as after a crash): the
 *   lookup at its most expensive;
 * - VictoriaMetrics (InfluxDB line protocol on /write; no lookup, it has no
 *   InfluxQL);
 * - SQLite: the embedded store in a file of the work folder.
 * The servers are Debian's (scripts/install-deps.sh), started on free
 * loopback ports with their data in temporary folders.
 *
 * Figures: points/s and metric values/s committed (a write resolved, so the
 * server confirmed it), write latency per batch, CPU of this process and of
 * the server.
 *
 * Arguments: `devices=` (5 000), `batch=` (points per write, 5 000),
 * `warmup=` and `measure=` (seconds per store, 3 and 10).
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { InfluxTelemetry, logInfluxClientTo, openSqliteStore, type DeviceDescription, type TelemetryPoint, type TelemetryStore } from '../../store/index.ts';
import { startInfluxd, startVictoriaMetrics } from '../../test/support/influx-servers.ts';
import { numberArg } from '../harness/args.ts';
import { processCpuMs } from '../harness/process-stats.ts';
import { Histogram, round } from '../harness/stats.ts';
import type { Row, Scenario, ScenarioContext } from '../harness/scenario.ts';

const TYPES = ['battery', 'solar', 'meter'] as const;
const REGIONS = ['north', 'south', 'east', 'west'];
/** Device time between a device's samples, as the simulator sends them. */
const SAMPLE_INTERVAL_MS = 10_000;

interface Parameters {
  devices: number;
  batch: number;
  warmupMs: number;
  measureMs: number;
}

/** Metrics like the simulator's: six per sample, varying. */
function metricsOf(type: (typeof TYPES)[number], i: number, round: number): Record<string, number> {
  const x = (i * 7 + round * 13) % 1000;
  if (type === 'battery') return { powerW: x * 3.5 - 1700, socPct: (x % 100) + 0.5, tempC: 20 + (x % 15) / 2, voltageV: 230 + (x % 7) / 10, energyWh: 10_000 + x, frequencyHz: 50 + (x % 5) / 100 };
  if (type === 'solar') return { powerW: x * 4, energyWh: 20_000 + x, voltageV: 231 + (x % 9) / 10, tempC: 30 + (x % 20) / 2, irradianceWm2: x, frequencyHz: 50 };
  return { gridW: x * 2 - 1000, loadW: x + 300, energyImportWh: 5_000 + x, energyExportWh: 1_000 + x, voltageV: 229.5, frequencyHz: 49.99 };
}

interface Measured {
  pointsPerSec: number;
  valuesPerSec: number;
  latency: ReturnType<Histogram['summary']>;
  clientCpuCores: number;
  serverCpuCores: number;
}

/**
 * Writes batches back to back: warm-up, then the measured window. With
 * `redeliver`, the measured window sends again what the warm-up wrote
 * (every point already stored, as after a crash): it measures finding
 * duplicates, and points/s counts points checked.
 */
async function measure(
  store: TelemetryStore,
  params: Parameters,
  serverPid: number | undefined,
  context: ScenarioContext,
  label: string,
  redeliver = false,
): Promise<Measured> {
  const devices = Array.from({ length: params.devices }, (_, i) => ({ id: `bench-${TYPES[i % 3]}-${i}`, type: TYPES[i % 3]! }));
  // Device time starts a day back and advances one sample interval per round of the fleet.
  const startMs = Math.floor(Date.now() / 60_000) * 60_000 - 86_400_000;
  let next = 0;
  const batchOf = (): TelemetryPoint[] => {
    const points: TelemetryPoint[] = [];
    for (let k = 0; k < params.batch; k++, next++) {
      const i = next % devices.length;
      const round = Math.floor(next / devices.length);
      const device = devices[i]!;
      points.push({ deviceId: device.id, ts: startMs + round * SAMPLE_INTERVAL_MS + (i % 1000), seq: round, metrics: metricsOf(device.type, i, round) });
    }
    return points;
  };
  const warmupEnd = Date.now() + params.warmupMs;
  while (Date.now() < warmupEnd) await store.writeTelemetry(batchOf());
  const written = next;
  if (redeliver) next = 0;
  const latency = new Histogram();
  let points = 0;
  let values = 0;
  const cpu = process.cpuUsage();
  const serverCpu = serverPid === undefined ? undefined : processCpuMs(serverPid);
  const t0 = performance.now();
  let lastProgress = t0;
  while (performance.now() - t0 < params.measureMs) {
    if (redeliver && next + params.batch > written) next = 0;
    const batch = batchOf();
    const began = performance.now();
    const result = await store.writeTelemetry(batch);
    latency.record(performance.now() - began);
    for (let k = 0; k < batch.length; k++) {
      if (result.inserted[k] === redeliver) throw new Error(`${label}: point ${k} of a batch reported ${redeliver ? 'new' : 'stored'}`);
      points++;
      for (const _ in batch[k]!.metrics) values++;
    }
    if (performance.now() - lastProgress > 1_000) {
      lastProgress = performance.now();
      context.progress(`${label}: ${Math.round(points / ((lastProgress - t0) / 1000)).toLocaleString('en-US')} points/s`);
    }
  }
  const elapsedMs = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  const serverUsed = serverPid === undefined || serverCpu === undefined ? undefined : (processCpuMs(serverPid) ?? serverCpu) - serverCpu;
  return {
    pointsPerSec: points / (elapsedMs / 1000),
    valuesPerSec: values / (elapsedMs / 1000),
    latency: latency.summary(),
    clientCpuCores: (used.user + used.system) / 1000 / elapsedMs,
    serverCpuCores: serverUsed === undefined ? Number.NaN : serverUsed / elapsedMs,
  };
}

function describeBenchDevice(deviceId: string): DeviceDescription | undefined {
  const match = /^bench-(battery|solar|meter)-(\d+)$/.exec(deviceId);
  if (!match) return undefined;
  const i = Number(match[2]);
  const site = Math.floor(i / 3);
  return { type: match[1] as DeviceDescription['type'], siteId: `site-${site}`, region: REGIONS[site % REGIONS.length]! };
}

const scenario: Scenario = {
  name: 'influx',
  description: 'telemetry batches written with ack after write into InfluxDB 1.x and VictoriaMetrics (the InfluxDB store), against the SQLite store',
  maxDurationMs: (args) => 60_000 + 5 * (numberArg(args, 'warmup', 3) + numberArg(args, 'measure', 10)) * 1_500,
  async run(context) {
    const { args, workDir, progress } = context;
    const params: Parameters = {
      devices: numberArg(args, 'devices', 5_000),
      batch: numberArg(args, 'batch', 5_000),
      warmupMs: numberArg(args, 'warmup', 3) * 1_000,
      measureMs: numberArg(args, 'measure', 10) * 1_000,
    };
    logInfluxClientTo(pino({ enabled: false }));
    const rows: Row[] = [];
    const row = (store: string, m: Measured): Row => ({
      store,
      'points/s': round(m.pointsPerSec),
      'values/s': round(m.valuesPerSec),
      'write p50 ms': round(m.latency.p50, 1),
      'write p99 ms': round(m.latency.p99, 1),
      'client CPU cores': round(m.clientCpuCores, 2),
      'server CPU cores': round(m.serverCpuCores, 2),
    });

    progress('starting influxd');
    const influxd = await startInfluxd();
    try {
      for (const [label, reads] of [
        ['InfluxDB (duplicates found, as VPP_STORE=influxdb)', 'influxql'],
        ['InfluxDB (no duplicate check)', 'none'],
      ] as const) {
        const database = await influxd.createDatabase(`bench_${reads}`);
        const store = new InfluxTelemetry({ url: influxd.url, bucket: database, describeDevice: describeBenchDevice, reads });
        try {
          rows.push(row(`${label} ${influxd.version}`, await measure(store, params, influxd.pid, context, label)));
        } finally {
          await store.close();
        }
      }
      const database = await influxd.createDatabase('bench_redelivery');
      const store = new InfluxTelemetry({ url: influxd.url, bucket: database, describeDevice: describeBenchDevice });
      try {
        rows.push(row(`InfluxDB, redelivered batches (lookup finds all) ${influxd.version}`, await measure(store, params, influxd.pid, context, 'InfluxDB redelivery', true)));
      } finally {
        await store.close();
      }
    } finally {
      await influxd.stop();
    }

    progress('starting victoria-metrics');
    const vm = await startVictoriaMetrics();
    try {
      const store = new InfluxTelemetry({ url: vm.url, bucket: 'vpp', describeDevice: describeBenchDevice, reads: 'none' });
      try {
        rows.push(row('VictoriaMetrics (write only)', await measure(store, params, vm.pid, context, 'VictoriaMetrics')));
      } finally {
        await store.close();
      }
    } finally {
      await vm.stop();
    }

    const sqlite = openSqliteStore({ file: join(workDir, 'vpp.db') });
    try {
      rows.push(row('SQLite store (embedded, in process)', await measure(sqlite, params, undefined, context, 'SQLite')));
    } finally {
      await sqlite.close();
    }

    return {
      parameters: { ...params, metricsPerPoint: 6 },
      rows,
      targets: [],
      notes: [
        'Each write is awaited before the next, as ingest commits a batch before acknowledging its messages: a store with more parallelism would need several writers.',
        'InfluxDB (duplicates found) is what VPP_STORE=influxdb runs: a sample not later than what its device has stored is looked up first (one InfluxQL request per batch), which keeps a redelivered (device, ts) from being counted twice; live telemetry, in time order, needs it only at a device\'s first sight. "No duplicate check" shows what it costs then; "redelivered batches" shows it at its most expensive.',
        "SQLite's server CPU column is empty: it runs in this process, so its CPU is the client's.",
        'Redelivered batches: every point already stored (as after a crash); points/s counts points checked, none written.',
      ],
    };
  },
};

export default scenario;
