/**
 * A store that stops taking writes (another process holds SQLite's write
 * lock), seen the way an operator sees it: `vpp up` keeps running, the
 * device gets no PUBACK (nothing is acknowledged that is not committed),
 * /healthz and /readyz turn 503 naming the stalled pipeline, and SIGTERM
 * still ends the process within its shutdown bound. Once the lock is gone
 * and the platform is started again, the device's resend is committed.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, eventually } from './support/platform.ts';
import { useProcessTestBed } from './support/process-bed.ts';
import { stopVpp } from './support/processes.ts';

describe('a stalled store', () => {
  const bed = useProcessTestBed();
  let lock: Database.Database | undefined;
  afterAll(() => lock?.close());

  it('is reported by health and readiness, acknowledges nothing, and does not hold up SIGTERM', { timeout: 90_000 }, async () => {
    const { env, mqttPort, httpPort } = await bed.env({ VPP_SIM_SITES: '0', VPP_INGEST_STALL_AFTER_MS: '1000', VPP_SHUTDOWN_TIMEOUT_MS: '2000' });
    const first = bed.spawn('up', env);
    await first.waitForOutput(/virtual power plant is up/);
    const base = `http://127.0.0.1:${httpPort}`;
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    await fetch(`${base}/api/v1/sites`, { method: 'POST', headers, body: JSON.stringify({ id: 'stall-site', region: 'north', name: 'Stall' }) });
    const created = await fetch(`${base}/api/v1/devices`, { method: 'POST', headers, body: JSON.stringify({ type: 'battery', siteId: 'stall-site' }) });
    const { id, secret } = (await created.json()) as { id: string; secret: string };
    await eventually(async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined), 15_000, 'ready');

    // Another process takes SQLite's write lock and keeps it.
    lock = new Database(join(bed.dataDir, 'vpp.db'));
    lock.exec('BEGIN IMMEDIATE');

    const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: id, username: id, password: secret, protocolVersion: 4, reconnectPeriod: 0 });
    device.on('error', () => undefined);
    let acknowledged = false;
    const ts = Date.now();
    device.publish(`vpp/v1/devices/${id}/telemetry`, JSON.stringify({ ts, seq: 1, metrics: { socPct: 50 } }), { qos: 1 }, (error) => {
      if (!error) acknowledged = true;
    });

    const health = await eventually(async () => {
      const response = await fetch(`${base}/healthz`);
      return response.status === 503 ? ((await response.json()) as { components: Record<string, { ok: boolean; detail?: string }>; pipeline?: { stalled?: boolean; inflight?: number } }) : undefined;
    }, 20_000, '/healthz to report the stall');
    expect(health.components.pipeline).toMatchObject({ ok: false });
    expect(health.components.pipeline!.detail).toMatch(/stalled/);
    // The telemetry and the device's connection event wait behind the lock.
    expect(health.pipeline).toMatchObject({ stalled: true, inflight: 2 });
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    expect(acknowledged).toBe(false);

    // SIGTERM while the write still cannot commit: the process ends within its bound.
    const stoppingAt = Date.now();
    expect(await stopVpp(first, 'SIGTERM', 30_000)).toBe(0);
    expect(Date.now() - stoppingAt).toBeLessThan(15_000);
    expect(acknowledged).toBe(false);
    device.end(true);

    // The lock goes; started again, the device's resend is committed and acknowledged.
    lock.exec('ROLLBACK');
    lock.close();
    lock = undefined;
    const second = bed.spawn('up', env);
    await second.waitForOutput(/virtual power plant is up/);
    const again = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: id, username: id, password: secret, protocolVersion: 4, reconnectPeriod: 0 });
    await again.publishAsync(`vpp/v1/devices/${id}/telemetry`, JSON.stringify({ ts, seq: 1, metrics: { socPct: 50 } }), { qos: 1 });
    await again.endAsync();
    const stored = (await (await fetch(`${base}/api/v1/devices/${id}/telemetry?resolution=raw&from=${ts}&to=${ts + 1}`, { headers })).json()) as { samples: unknown[] };
    expect(stored.samples).toHaveLength(1);
    expect(await stopVpp(second, 'SIGINT')).toBe(0);
  });
});
