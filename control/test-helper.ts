/**
 * Builds the control app for tests on a real SQLite store in a temp dir,
 * with a live view fed through apply(), a health check the test decides,
 * a revocation recorder and a settable clock.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { openSqliteStore } from '../store/index.ts';
import { buildControlApp } from './app.ts';
import type { HealthReport } from './deps.ts';
import { createLiveView, type FeedableLiveView } from './live-view.ts';
import { T0 } from './test-fixtures.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

export interface ControlTest {
  app: FastifyInstance;
  store: ReturnType<typeof openSqliteStore>;
  live: FeedableLiveView;
  /** What the next health check answers; a function to make it throw. */
  health: { report: HealthReport | (() => never) };
  revocations: { calls: string[]; fail: Error | null };
  clock: { nowMs: number };
  /** Injects with the admin token. */
  request(options: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function startControlTest(): Promise<ControlTest> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpp-control-'));
  const store = openSqliteStore({ file: path.join(dir, 'vpp.db') });
  const live = createLiveView();
  const health: ControlTest['health'] = { report: { ok: true, components: { store: { ok: true } } } };
  const revocations: ControlTest['revocations'] = { calls: [], fail: null };
  const clock = { nowMs: T0 };
  const app = await buildControlApp({
    registry: store,
    telemetry: store,
    twins: store,
    deadLetters: store,
    live,
    revocations: {
      async revokeDevice(deviceId) {
        revocations.calls.push(deviceId);
        if (revocations.fail) throw revocations.fail;
      },
    },
    health: {
      async check() {
        const report = health.report;
        return typeof report === 'function' ? report() : report;
      },
    },
    adminToken: ADMIN_TOKEN,
    clock: () => clock.nowMs,
    logger: pino({ level: 'silent' }),
  });
  return {
    app,
    store,
    live,
    health,
    revocations,
    clock,
    request: (options) => app.inject({ ...options, headers: { ...AUTH, ...options.headers } }),
    async close() {
      await app.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Creates a site and provisions devices through the API; returns their ids and secrets. */
export async function provisionDevices(
  t: ControlTest,
  site: { id: string; region: string; name?: string },
  devices: Array<{ id: string; type: 'battery' | 'solar' | 'meter' }>,
): Promise<Array<{ id: string; secret: string }>> {
  const siteResponse = await t.request({ method: 'POST', url: '/api/v1/sites', payload: { name: site.id, ...site } });
  if (siteResponse.statusCode >= 300) throw new Error(`site: ${siteResponse.statusCode} ${siteResponse.body}`);
  const out: Array<{ id: string; secret: string }> = [];
  for (const device of devices) {
    const response = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { ...device, siteId: site.id } });
    if (response.statusCode !== 201) throw new Error(`device: ${response.statusCode} ${response.body}`);
    out.push({ id: device.id, secret: (response.json() as { secret: string }).secret });
  }
  return out;
}
