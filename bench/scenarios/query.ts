/**
 * query: the history queries the dashboard makes, through the control API
 * (`buildControlApp(...).inject`, so routing, validation, the store's query
 * and response serialization all count; no socket), on a store filled with
 * a fleet's data as the platform would have stored it (see
 * bench/load/query-fill.ts): by default 1,000 sites (3,000 devices), one day
 * of raw telemetry at a 10-second interval, one day of 1-minute rollups and
 * 30 days of 15-minute and 1-hour rollups.
 *
 * Filling takes minutes, so the filled file is cached under the OS temp
 * folder, keyed by the schema version and the fill parameters, and reused
 * when present; the scenario's bound is longer when it has to fill.
 *
 * A site's day at 1 minute is also asked in both forms, points and
 * columns (`format=columns`), over real HTTP: the app listens on loopback and
 * the scenario fetches, alternating the forms, so the socket, the bytes
 * sent and the client's read count too.
 *
 * Arguments: `sites=`, `reps=` (measured requests per query), `refill=1`
 * (ignore the cache).
 */
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildControlApp, createLiveView } from '../../control/index.ts';
import { aggregateTopic, encodeJson, type AggregateSnapshot } from '../../protocol/index.ts';
import { SCHEMA_VERSION, openSqliteStore } from '../../store/index.ts';
import { Histogram, round } from '../harness/stats.ts';
import type { Row, Scenario, ScenarioContext, ScenarioResult, Target } from '../harness/scenario.ts';
import type { FillParams } from '../load/query-fill.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const DAY_MS = 86_400_000;
const TARGET_P99_MS = 50;
const DEFAULT_SITES = 1_000;
const DEFAULT_REPS = 100;
const WARMUP_REPS = 5;
/** The dashboard asks "up to now"; now is off the bucket grid, as it usually is. */
const NOW_OFFSET_MS = 443_000;
const ADMIN_TOKEN = 'bench-admin-token-0123456789';
const BOUND_WITH_CACHE_MS = 300_000;
const BOUND_WHEN_FILLING_MS = 900_000;

function fillParams(sites: number): FillParams {
  // A fixed end (a June day) so a cached fill matches the queries of any later run.
  return { sites, seed: 1, endMs: Date.UTC(2024, 5, 15), intervalMs: 10_000, rawDays: 1, rollupDays: 30 };
}

function cacheDirOf(params: FillParams): string {
  const key = `v${SCHEMA_VERSION}-${params.sites}sites-seed${params.seed}-${params.endMs}-${params.intervalMs}ms-${params.rawDays}d-${params.rollupDays}d`;
  return join(tmpdir(), 'vpp-bench-query-cache', key);
}

function isCached(sites = DEFAULT_SITES): boolean {
  return existsSync(join(cacheDirOf(fillParams(sites)), 'vpp.db'));
}

function fill(dir: string, params: FillParams, context: ScenarioContext): Promise<number> {
  const partial = `${dir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  return new Promise((resolve, reject) => {
    const child = fork(join(here, '..', 'load', 'query-fill.ts'), [join(partial, 'vpp.db'), JSON.stringify(params)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let rows = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(0, context.deadline - Date.now() - 5_000));
    child.on('message', (message: { type: string; message?: string; rows?: number }) => {
      if (message.type === 'progress') context.progress(message.message ?? '');
      if (message.type === 'done') rows = message.rows ?? 0;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 || rows === 0) {
        reject(new Error(`fill process ended with ${signal ?? code} before finishing`));
        return;
      }
      rmSync(dir, { recursive: true, force: true });
      renameSync(partial, dir);
      writeFileSync(join(dir, 'fill.json'), `${JSON.stringify({ ...params, rows })}\n`);
      resolve(rows);
    });
  });
}

function fileSize(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

function snapshot(level: AggregateSnapshot['level'], id: string, ts: number, devices: number): AggregateSnapshot {
  return {
    level,
    id,
    ts,
    windowMs: 60_000,
    coverage: { devicesReporting: devices, devicesTotal: devices, ratio: 1 },
    metrics: {
      batteryPowerW: 1_200 * devices,
      solarPowerW: 900 * devices,
      gridPowerW: -300 * devices,
      loadW: 1_800 * devices,
      energyWh: 5_000 * devices,
      capacityWh: 10_000 * devices,
      socPct: 50,
    },
  };
}

interface QuerySpec {
  name: string;
  /** The request path of repetition i (spread over entities so no one series stays hot). */
  url(i: number): string;
  /** Points or items in a response. */
  count(body: unknown): number;
}

function countPoints(body: unknown): number {
  return (body as { series: Array<{ points: unknown[] }> }).series.reduce((sum, s) => sum + s.points.length, 0);
}

function countColumnPoints(body: unknown): number {
  return (body as { series: Array<{ ts: unknown[] }> }).series.reduce((sum, s) => sum + s.ts.length, 0);
}

interface HttpForm {
  name: string;
  format: 'points' | 'columns';
  count(body: unknown): number;
}

/** The two forms of a site's day at 1 minute, asked over HTTP. */
const HTTP_FORMS: readonly HttpForm[] = [
  { name: 'site 24 h @ 1 min, points, HTTP', format: 'points', count: countPoints },
  { name: 'site 24 h @ 1 min, columns, HTTP', format: 'columns', count: countColumnPoints },
];

/**
 * A site's day at 1 minute in both forms over real HTTP: request i of each
 * form asks the same site, the form that goes first alternating, so neither
 * gets the other's warm page cache more often.
 */
async function measureOverHttp(app: FastifyInstance, context: ScenarioContext, reps: number, url: (i: number) => string): Promise<Row[]> {
  const origin = await app.listen({ host: '127.0.0.1', port: 0 });
  const latency = HTTP_FORMS.map(() => new Histogram());
  const parse = HTTP_FORMS.map(() => new Histogram());
  const bytes = HTTP_FORMS.map(() => 0);
  const returned = HTTP_FORMS.map(() => 0);
  for (let i = 0; i < WARMUP_REPS + reps; i++) {
    if (Date.now() > context.deadline - 10_000) throw new Error('out of time while measuring over HTTP');
    const order = i % 2 === 0 ? [0, 1] : [1, 0];
    for (const f of order) {
      const form = HTTP_FORMS[f]!;
      const t0 = performance.now();
      const response = await fetch(`${origin}${url(i)}&format=${form.format}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      const body = Buffer.from(await response.arrayBuffer());
      const elapsedMs = performance.now() - t0;
      if (response.status !== 200) throw new Error(`${form.name}: HTTP ${response.status} ${body.toString('utf8', 0, 300)}`);
      const p0 = performance.now();
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      const parseMs = performance.now() - p0;
      if (i < WARMUP_REPS) continue;
      latency[f]!.record(elapsedMs);
      parse[f]!.record(parseMs);
      bytes[f] = body.length;
      returned[f] = form.count(parsed);
    }
  }
  return HTTP_FORMS.map((form, f) => {
    const s = latency[f]!.summary();
    context.progress(`${form.name}: p50 ${round(s.p50, 1)} ms, p99 ${round(s.p99, 1)} ms, ${bytes[f]} bytes`);
    return {
      query: form.name,
      reps: s.count,
      'p50 ms': round(s.p50, 2),
      'p99 ms': round(s.p99, 2),
      'max ms': round(s.max, 2),
      'points/items': returned[f]!,
      'response bytes': bytes[f]!,
      'client parse p50 ms': round(parse[f]!.summary().p50, 2),
    };
  });
}

const scenario: Scenario = {
  name: 'query',
  description: 'dashboard history and latest-state queries through the control API on a filled 1,000-site store',
  maxDurationMs: (args) =>
    args.refill === '1' || !isCached(args.sites === undefined ? undefined : Number(args.sites)) ? BOUND_WHEN_FILLING_MS : BOUND_WITH_CACHE_MS,
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const sites = Number(context.args.sites ?? DEFAULT_SITES);
    const reps = Number(context.args.reps ?? DEFAULT_REPS);
    const params = fillParams(sites);
    const dir = cacheDirOf(params);
    const file = join(dir, 'vpp.db');
    const notes: string[] = [];
    let fillMs = 0;
    let reused = existsSync(file) && context.args.refill !== '1';
    if (reused) {
      context.progress(`reusing the filled store in ${dir}`);
    } else {
      context.progress(`filling ${dir} (this takes minutes; later runs reuse it)`);
      const t0 = performance.now();
      await fill(dir, params, context);
      fillMs = performance.now() - t0;
      reused = false;
    }
    const dbBytes = fileSize(file) + fileSize(`${file}-wal`);

    const store = openSqliteStore({ file, retention: { telemetryMs: params.rawDays * DAY_MS, rollups1mMs: params.rawDays * DAY_MS } });
    const live = createLiveView();
    const nowMs = params.endMs - NOW_OFFSET_MS;
    const siteList = store.listSites();
    const regions = [...new Set(siteList.map((s) => s.region))].sort();
    for (const site of siteList) live.apply(aggregateTopic('site', site.id), encodeJson(snapshot('site', site.id, nowMs, 3)));
    for (const region of regions) live.apply(aggregateTopic('region', region), encodeJson(snapshot('region', region, nowMs, 750)));
    live.apply(aggregateTopic('fleet', 'fleet'), encodeJson(snapshot('fleet', 'fleet', nowMs, 3 * sites)));
    const app = await buildControlApp({
      registry: store,
      telemetry: store,
      twins: store,
      deadLetters: store,
      live,
      revocations: { revokeDevice: async () => {} },
      health: { check: async () => ({ ok: true, components: {} }) },
      alerts: store.alerts,
      alertRules: { rules: [], routes: [] },
      onAlertTransition: () => undefined,
      commands: store.commands,
      onCommandCreated: () => undefined,
      dispatches: store.dispatches,
      tokens: store.tokens,
      audit: store.audit,
      dispatcher: {
        plan: () => {
          throw new Error('not measured here');
        },
        create: () => {
          throw new Error('not measured here');
        },
        cancel: () => {
          throw new Error('not measured here');
        },
      },
      secretGraceMs: 3_600_000,
      adminToken: ADMIN_TOKEN,
      // One token asks everything from one address, far beyond the per-minute limits an operator gets.
      access: { rateLimitPerMinute: 1_000_000, rateLimitPerAddressPerMinute: 1_000_000 },
      clock: () => nowMs,
      logger: pino({ level: 'silent' }),
    });
    await app.ready();

    const iso = (ms: number) => new Date(ms).toISOString();
    const range = (days: number) => `from=${iso(nowMs - days * DAY_MS)}&to=${iso(nowMs)}`;
    const siteId = (i: number) => siteList[(i * 37) % siteList.length]!.id;
    const queries: QuerySpec[] = [
      { name: 'site 24 h @ 1 min', url: (i) => `/api/v1/sites/${siteId(i)}/history?resolution=1m&${range(1)}`, count: countPoints },
      { name: 'region 7 d @ 15 min', url: (i) => `/api/v1/regions/${regions[i % regions.length]}/history?resolution=15m&${range(7)}`, count: countPoints },
      { name: 'fleet 7 d @ 15 min', url: () => `/api/v1/fleet/history?resolution=15m&${range(7)}`, count: countPoints },
      { name: 'latest of every site (GET /sites)', url: () => '/api/v1/sites', count: (b) => (b as { items: unknown[] }).items.length },
      {
        name: 'twin of every device (GET /devices)',
        url: () => `/api/v1/devices?limit=${Math.min(5_000, 3 * sites)}`,
        count: (b) => (b as { items: unknown[] }).items.length,
      },
      { name: 'device 24 h @ 5 min', url: (i) => `/api/v1/devices/${siteId(i)}-battery/telemetry?resolution=5m&${range(1)}`, count: countPoints },
      {
        name: 'site 24 h @ 1 min, columns',
        url: (i) => `/api/v1/sites/${siteId(i)}/history?resolution=1m&format=columns&${range(1)}`,
        count: countColumnPoints,
      },
      { name: 'every site, columns (GET /sites/overview)', url: () => '/api/v1/sites/overview', count: (b) => (b as { count: number }).count },
    ];

    const rows: Row[] = [];
    const targets: Target[] = [];
    try {
      for (const q of queries) {
        const histogram = new Histogram();
        let bytes = 0;
        let returned = 0;
        for (let i = 0; i < WARMUP_REPS + reps; i++) {
          if (Date.now() > context.deadline - 10_000) throw new Error(`out of time while measuring '${q.name}'`);
          const t0 = performance.now();
          const response = await app.inject({ method: 'GET', url: q.url(i), headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
          const elapsedMs = performance.now() - t0;
          if (response.statusCode !== 200) throw new Error(`${q.name}: HTTP ${response.statusCode} ${response.body.slice(0, 300)}`);
          if (i < WARMUP_REPS) continue;
          histogram.record(elapsedMs);
          bytes = response.rawPayload.length;
          returned = q.count(response.json());
        }
        const s = histogram.summary();
        context.progress(`${q.name}: p50 ${round(s.p50, 1)} ms, p99 ${round(s.p99, 1)} ms`);
        rows.push({ query: q.name, reps: s.count, 'p50 ms': round(s.p50, 2), 'p99 ms': round(s.p99, 2), 'max ms': round(s.max, 2), 'points/items': returned, 'response bytes': bytes });
        targets.push({ name: `${q.name} p99`, target: `≤ ${TARGET_P99_MS} ms`, measured: round(s.p99, 2), unit: 'ms', met: s.p99 <= TARGET_P99_MS });
      }
      rows.push(...(await measureOverHttp(app, context, reps, (i) => `/api/v1/sites/${siteId(i)}/history?resolution=1m&${range(1)}`)));
    } finally {
      await app.close();
      await store.close();
    }
    notes.push(
      reused ? `store reused from the cache ($TMPDIR/vpp-bench-query-cache/${basename(dir)})` : `store filled in ${round(fillMs / 1000, 1)} s and cached in $TMPDIR/vpp-bench-query-cache/${basename(dir)}`,
      `store on disk: ${round(dbBytes / 2 ** 30, 2)} GiB (db + wal)`,
      'latency is measured around app.inject (routing, validation, the store query and JSON serialization, without a socket), except in the HTTP rows',
      'the inject row of the columns form asks the sites the points row has just read (a warmer page cache); the HTTP rows, which alternate, compare the forms',
      'HTTP rows: the app listens on 127.0.0.1 and the scenario fetches with one keep-alive connection, the two forms alternating (and which goes first), from the request to the last byte of the body; client parse is JSON.parse of that body; bytes are the body as sent (no compression)',
      'older days exist only in the 15-minute and 1-hour tiers (the 1-minute tier is kept one day in this configuration), as after pruning',
    );
    return {
      parameters: { ...params, reps, warmupReps: WARMUP_REPS, nowMs, fillReused: reused, fillSeconds: round(fillMs / 1000, 1), dbBytes },
      rows,
      targets,
      notes,
    };
  },
};

export default scenario;
