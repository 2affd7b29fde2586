/**
 * The parts as separate processes (`vpp broker`, `vpp ingest`, `vpp control`,
 * `vpp sim`), meeting only at the broker and the SQLite file, as the compose
 * file runs them: the fleet shows up with full coverage through the MQTT
 * ingest source, health covers all parts, and revoking a device through the
 * API disconnects it from a broker in another process.
 */
import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, eventually } from './support/platform.ts';
import { useProcessTestBed } from './support/process-bed.ts';
import { stopVpp } from './support/processes.ts';

const SITES = 4;

describe('separate processes', () => {
  const bed = useProcessTestBed();

  it('run the platform together through the broker and the store', { timeout: 120_000 }, async () => {
    const { env: base, mqttPort, httpPort } = await bed.env({
      VPP_INGEST_SECRET: 'separate-processes-ingest-secret',
      VPP_CONTROL_SECRET: 'separate-processes-control-secret',
      VPP_SIM_SITES: String(SITES),
      VPP_SIM_SPEED: '60',
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

    const api = (path: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${httpPort}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const fleet = await eventually(async () => {
      const body = (await (await api('/api/v1/fleet')).json()) as { fleet: { coverage: { ratio: number; devicesTotal: number } } | null };
      return body.fleet?.coverage.ratio === 1 ? body.fleet : undefined;
    }, 30_000, 'full coverage through the MQTT source');
    expect(fleet.coverage.devicesTotal).toBe(SITES * 3);

    const health = await eventually(async () => {
      const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      return res.status === 200 ? ((await res.json()) as { components: Record<string, { ok: boolean }> }) : undefined;
    }, 10_000, 'healthy');
    expect(Object.keys(health.components).sort()).toEqual(['broker', 'pipeline', 'store']);

    const samples = await eventually(async () => {
      const body = (await (await api('/api/v1/devices/site-0002-solar/telemetry?resolution=raw')).json()) as { samples: unknown[] };
      return body.samples.length > 0 ? body.samples : undefined;
    }, 10_000, 'stored telemetry');
    expect(samples.length).toBeGreaterThan(0);

    // Revoked in control's process, disconnected by the broker's, and shown offline by ingest's
    // from the broker's presence event.
    expect((await api('/api/v1/devices/site-0001-meter', { method: 'DELETE' })).status).toBe(204);
    await eventually(async () => {
      const res = await api('/api/v1/devices/site-0001-meter');
      const twin = (await res.json()) as { online?: boolean; presence?: string };
      return twin.online === false && twin.presence === 'offline' ? twin : undefined;
    }, 15_000, 'revoked device offline');

    for (const p of [sim, control, ingest, broker]) expect(await stopVpp(p, 'SIGTERM')).toBe(0);
  });
});
