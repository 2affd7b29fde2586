/**
 * The whole platform in one process, as `vpp up` runs it, with a small
 * simulated fleet at high time acceleration, over real sockets and a real
 * SQLite file: telemetry is stored, twins and live aggregates cover every
 * device, a device provisioned through the API can publish with a standard
 * MQTT client, bad input is dead-lettered, and shutdown flushes rollups.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../store/index.ts';
import { eventually, removeDir, startPlatform, type RunningPlatform } from './support/platform.ts';

const run = promisify(execFile);
const SITES = 6;

interface Snapshot {
  id: string;
  coverage: { devicesReporting: number; devicesTotal: number; ratio: number };
  metrics: { socPct: number | null; batteryPowerW: number; solarPowerW: number; loadW: number };
}

describe('the platform end to end', () => {
  let p: RunningPlatform;
  const mqttPort = () => p.broker.address.port;

  beforeAll(async () => {
    p = await startPlatform({ VPP_SIM_SITES: String(SITES), VPP_SIM_SPEED: '60', VPP_SIM_INTERVAL_MS: '10000', VPP_SIM_SEED: '7' });
  });
  afterAll(async () => {
    await p?.stop();
    if (p) removeDir(p.dataDir);
  });

  it('shows every region of the fleet with full coverage and state of charge', async () => {
    const fleet = await eventually(
      async () => {
        const body = (await (await p.api('/api/v1/fleet')).json()) as { fleet: Snapshot | null; regions: Snapshot[] };
        const full = body.fleet?.coverage.ratio === 1 && body.regions.length >= 3 && body.regions.every((r) => r.coverage.ratio === 1);
        return full ? body : undefined;
      },
      20_000,
      'full fleet coverage',
    );
    expect(fleet.fleet!.coverage).toEqual({ devicesReporting: SITES * 3, devicesTotal: SITES * 3, ratio: 1 });
    for (const region of fleet.regions) {
      expect(region.metrics.socPct).toBeGreaterThanOrEqual(0);
      expect(region.metrics.socPct).toBeLessThanOrEqual(100);
      expect(region.metrics.loadW).toBeGreaterThan(0);
    }
    expect(fleet.regions.reduce((n, r) => n + r.coverage.devicesTotal, 0)).toBe(SITES * 3);
  });

  it('stores telemetry and keeps a twin of every simulated device', async () => {
    const { items: list } = (await (await p.api('/api/v1/devices')).json()) as { items: { id: string }[] };
    expect(list).toHaveLength(SITES * 3);
    for (const { id } of list) {
      const twin = (await (await p.api(`/api/v1/devices/${id}`)).json()) as { online: boolean; metrics: Record<string, number> };
      expect(twin.online, id).toBe(true);
      expect(Object.keys(twin.metrics), id).toContain('powerW');
      const samples = await eventually(async () => {
        const body = (await (await p.api(`/api/v1/devices/${id}/telemetry?resolution=raw`)).json()) as { samples: { seq: number }[] };
        return body.samples.length >= 3 ? body.samples : undefined;
      }, 10_000, `3 samples of ${id}`);
      const seqs = samples.map((s) => s.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
  });

  it('lets a device provisioned through the API publish with a standard MQTT client', async () => {
    const created = await p.api('/api/v1/devices', { method: 'POST', body: JSON.stringify({ type: 'battery', siteId: 'site-0001' }) });
    expect(created.status).toBe(201);
    const { id, secret } = (await created.json()) as { id: string; secret: string };
    const ts = Date.now();
    const payload = JSON.stringify({ ts, seq: 1, metrics: { socPct: 55.5, powerW: 1200 } });
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort()), '-V', 'mqttv311', '-q', '1', '-i', id, '-u', id, '-P', secret, '-t', `vpp/v1/devices/${id}/telemetry`, '-m', payload]);
    const body = (await (await p.api(`/api/v1/devices/${id}/telemetry?resolution=raw&metric=socPct`)).json()) as {
      samples: { ts: number; seq: number; metrics: Record<string, number> }[];
    };
    // QoS 1: mosquitto_pub exits after the PUBACK, which the platform sends only after the commit.
    expect(body.samples).toEqual([{ ts, seq: 1, metrics: { socPct: 55.5 } }]);
  });

  it('refuses a device with a wrong secret', async () => {
    const error = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort()), '-V', 'mqttv311', '-q', '1', '-i', 'site-0001-battery', '-u', 'site-0001-battery', '-P', 'not-the-secret', '-t', 'vpp/v1/devices/site-0001-battery/telemetry', '-m', '{}']).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error).toBeDefined();
    expect(error!.stderr).toMatch(/not authori[sz]ed|bad user ?name or password/i);
  });

  it('does not let a device publish as another or subscribe to its commands', async () => {
    const created = await p.api('/api/v1/devices', { method: 'POST', body: JSON.stringify({ type: 'meter', siteId: 'site-0002' }) });
    const { id, secret } = (await created.json()) as { id: string; secret: string };
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort()}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, protocolVersion: 4 });
    try {
      // MQTT 3.1.1 SUBACK return code 0x80: failure (MQTT-3.9.3); MQTT.js rejects with the packet.
      const refused = await client.subscribeAsync('vpp/v1/devices/site-0002-battery/commands', { qos: 1 }).then(
        () => undefined,
        (error: { packet?: { granted?: number[] } }) => error,
      );
      expect(refused?.packet?.granted).toEqual([128]);
      const own = await client.subscribeAsync(`vpp/v1/devices/${id}/commands`, { qos: 1 });
      expect(own[0]?.qos).toBe(1);
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      const ts = Date.now() - 123;
      client.publish('vpp/v1/devices/site-0002-battery/telemetry', JSON.stringify({ ts, seq: 1, metrics: { powerW: 1 } }), { qos: 1 });
      await closed;
      const body = (await (await p.api(`/api/v1/devices/site-0002-battery/telemetry?resolution=raw`)).json()) as { samples: { ts: number }[] };
      expect(body.samples.map((s) => s.ts)).not.toContain(ts);
    } finally {
      await client.endAsync(true);
    }
  });

  it('dead-letters malformed payloads by reason while good ones from the same device land', async () => {
    const created = await p.api('/api/v1/devices', { method: 'POST', body: JSON.stringify({ type: 'solar', siteId: 'site-0003' }) });
    const { id, secret } = (await created.json()) as { id: string; secret: string };
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort()}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, protocolVersion: 4 });
    const topic = `vpp/v1/devices/${id}/telemetry`;
    const now = Date.now();
    const bad: Array<[string, string]> = [
      ['not-json', '{"ts": 1, '],
      ['schema', JSON.stringify({ ts: now, metrics: { powerW: 1 } })],
      ['absurd-value', JSON.stringify({ ts: now, seq: 2, metrics: { powerW: 9e9 } })],
      ['future-timestamp', JSON.stringify({ ts: now + 3_600_000, seq: 3, metrics: { powerW: 1 } })],
    ];
    for (const [, payload] of bad) await client.publishAsync(topic, payload, { qos: 1 });
    await client.publishAsync(topic, JSON.stringify({ ts: now, seq: 4, metrics: { powerW: 2500 } }), { qos: 1 });
    await client.endAsync();

    const letters = (await (await p.api('/api/v1/dead-letters?limit=50')).json()) as {
      items: { topic: string; reason: string; payload: { encoding: string; data: string } }[];
      countsByReason: Record<string, number>;
    };
    const mine = letters.items.filter((l) => l.topic === topic);
    expect(mine.map((l) => l.reason).sort()).toEqual(bad.map(([reason]) => reason).sort());
    expect(mine.find((l) => l.reason === 'not-json')?.payload).toMatchObject({ encoding: 'utf8', data: '{"ts": 1, ' });
    for (const [reason] of bad) expect(letters.countsByReason[reason]).toBeGreaterThanOrEqual(1);
    const counters = p.ingest.ingest.counters.snapshot();
    for (const [reason] of bad) expect(counters[`rejected.${reason}`]).toBeGreaterThanOrEqual(1);

    const body = (await (await p.api(`/api/v1/devices/${id}/telemetry?resolution=raw`)).json()) as { samples: { ts: number; metrics: Record<string, number> }[] };
    expect(body.samples).toEqual([expect.objectContaining({ ts: now, metrics: { powerW: 2500 } })]);
  });

  it('answers health checks and serves its OpenAPI document', async () => {
    const health = await eventually(async () => {
      const res = await fetch(`${p.control.url}/healthz`);
      return res.status === 200 ? ((await res.json()) as { ok: boolean }) : undefined;
    }, 10_000, 'healthy');
    expect(health.ok).toBe(true);
    const doc = (await (await fetch(`${p.control.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/fleet', '/api/v1/devices', '/api/v1/devices/{id}/telemetry']));
  });

  it('flushes rollups for devices, sites, regions and the fleet when it stops', async () => {
    await p.stop();
    const store = openSqliteStore({ file: join(p.dataDir, 'vpp.db') });
    try {
      const range = { fromMs: Date.now() - 3_600_000, toMs: Date.now() + 60_000, bucketMs: 60_000 };
      const device = await store.queryRollups({ kind: 'device', entityId: 'site-0001-battery', ...range });
      expect(device.map((r) => r.metric)).toEqual(expect.arrayContaining(['powerW', 'socPct']));
      const site = await store.queryRollups({ kind: 'site', entityId: 'site-0001', ...range, metrics: ['batteryPowerW'] });
      expect(site.length).toBeGreaterThan(0);
      const fleet = await store.queryRollups({ kind: 'fleet', entityId: 'fleet', ...range, metrics: ['socPct'] });
      expect(fleet.length).toBeGreaterThan(0);
      expect(fleet.at(-1)!.devicesTotal).toBeGreaterThanOrEqual(SITES * 3);
      const regions = new Set(store.listSites().map((s) => s.region));
      for (const region of regions) {
        const rows = await store.queryRollups({ kind: 'region', entityId: region, ...range, metrics: ['loadW'] });
        expect(rows.length, region).toBeGreaterThan(0);
      }
    } finally {
      await store.close();
    }
  });
});
