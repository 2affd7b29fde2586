/**
 * The parts as separate processes (`vpp broker`, `vpp ingest`, `vpp control`,
 * `vpp sim`), meeting only at the broker and the SQLite file, as the compose
 * file runs them: the fleet shows up with full coverage through the MQTT
 * ingest source, health covers all parts, revoking a device through the
 * API disconnects it from a broker in another process, and an alert raised
 * by ingest's rules (a fault injected with `vpp fault` from yet another
 * process) is acknowledged through control, whose transition ingest's
 * notifier then publishes on MQTT.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import type { AlertEvent } from '../protocol/index.ts';
import { ADMIN_TOKEN, eventually } from './support/platform.ts';
import { useProcessTestBed } from './support/process-bed.ts';
import { stopVpp } from './support/processes.ts';

const SITES = 4;

describe('separate processes', () => {
  const bed = useProcessTestBed();

  it('run the platform together through the broker and the store', { timeout: 120_000 }, async () => {
    const rulesFile = join(bed.dataDir, 'rules.json');
    writeFileSync(rulesFile, JSON.stringify({ rules: [{ id: 'device-stale', severity: 'warning', subject: 'device', summary: '{subjectId} silent', stale: { forSeconds: 0 } }] }));
    const { env: base, mqttPort, httpPort } = await bed.env({
      VPP_INGEST_SECRET: 'separate-processes-ingest-secret',
      VPP_CONTROL_SECRET: 'separate-processes-control-secret',
      VPP_SIM_SITES: String(SITES),
      VPP_SIM_SPEED: '60',
      VPP_LOG_LEVEL: 'info',
      // A device silent for 2 s (two intervals of a second) is stale, and the stale rule fires at once.
      VPP_ALERT_RULES: rulesFile,
      VPP_DEVICE_INTERVAL_MS: '1000',
      VPP_STALE_AFTER_INTERVALS: '2',
      VPP_ALERT_STARTUP_GRACE_SECONDS: '0',
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

    // An alert across processes: the fault goes in through the fault file, the rule runs in
    // ingest, the operator acts through control, ingest's notifier publishes the transition.
    const observer = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
      username: 'vpp-observer',
      password: readFileSync(join(bed.dataDir, 'observer-secret'), 'utf8').trim(),
      clientId: 'vpp-observer',
      protocolVersion: 4,
    });
    const published: AlertEvent[] = [];
    observer.on('message', (_topic, payload) => {
      if (payload.length > 0) published.push(JSON.parse(payload.toString()) as AlertEvent);
    });
    await observer.subscribeAsync('vpp/v1/alerts/#', { qos: 1 });
    const fault = bed.spawn('fault', env, ['add', 'silent:site-0003-solar']);
    expect(await fault.exited).toBe(0);
    const alert = await eventually(async () => {
      const body = (await (await api('/api/v1/alerts?rule=device-stale&subject=site-0003-solar')).json()) as { alerts: Array<{ id: string; state: string }> };
      return body.alerts[0];
    }, 20_000, 'the stale alert, through control');
    expect(alert.state).toBe('firing');
    const ack = await fetch(`http://127.0.0.1:${httpPort}/api/v1/alerts/${alert.id}/ack`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'from another process' }),
    });
    expect(ack.status).toBe(200);
    await eventually(
      () => (published.some((e) => e.alert.id === alert.id && e.transition.kind === 'acknowledged') ? true : undefined),
      10_000,
      'the acknowledgement published by ingest',
    );
    expect(published.filter((e) => e.alert.id === alert.id).map((e) => e.transition.kind)).toEqual(['fired', 'acknowledged']);
    await observer.endAsync();

    for (const p of [sim, control, ingest, broker]) expect(await stopVpp(p, 'SIGTERM')).toBe(0);
  });
});
