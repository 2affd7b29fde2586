/**
 * Delivery guarantee across a crash: `vpp up` is killed (SIGKILL) while a
 * device publishes at QoS 1, and started again on the same data folder.
 * Every message the broker acknowledged before the crash is in the store;
 * the device, shown offline until it reconnects, then resends what was not
 * acknowledged and nothing is stored twice. A SIGINT afterwards shuts down
 * cleanly with exit code 0.
 */
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { openSqliteStore } from '../store/index.ts';
import { ADMIN_TOKEN, eventually } from './support/platform.ts';
import { useProcessTestBed } from './support/process-bed.ts';
import { stopVpp } from './support/processes.ts';

const MESSAGES = 4_000;

describe('crash recovery', () => {
  const bed = useProcessTestBed();

  it("loses no acknowledged message when the process is killed mid-stream", { timeout: 120_000 }, async () => {
    const { env, mqttPort, httpPort } = await bed.env({
      VPP_SIM_SITES: '0',
      // Small, slow batches: the kill lands while many messages are in flight.
      VPP_INGEST_BATCH_MESSAGES: '50',
      VPP_INGEST_BATCH_DELAY_MS: '20',
    });
    const first = bed.spawn('up', env);
    await first.waitForOutput(/virtual power plant is up/);

    const api = `http://127.0.0.1:${httpPort}/api/v1`;
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    expect((await fetch(`${api}/sites`, { method: 'POST', headers, body: JSON.stringify({ id: 'crash-site', region: 'north', name: 'Crash test' }) })).status).toBe(201);
    const created = await fetch(`${api}/devices`, { method: 'POST', headers, body: JSON.stringify({ type: 'battery', siteId: 'crash-site' }) });
    const { id, secret } = (await created.json()) as { id: string; secret: string };

    const baseTs = Date.now() - 60_000;
    const tsOf = (i: number) => baseTs + i;
    const acked = new Set<number>();
    const connect = (): Promise<MqttClient> =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, protocolVersion: 4 });
    const publishAll = (client: MqttClient, indexes: number[]) => {
      for (const i of indexes) {
        const payload = JSON.stringify({ ts: tsOf(i), seq: i, metrics: { socPct: 50, powerW: i % 5000 } });
        client.publish(`vpp/v1/devices/${id}/telemetry`, payload, { qos: 1 }, (error) => {
          if (!error) acked.add(i);
        });
      }
    };

    const client = await connect();
    client.on('error', () => undefined);
    publishAll(client, Array.from({ length: MESSAGES }, (_, i) => i));
    await eventually(() => (acked.size >= MESSAGES / 8 ? true : undefined), 20_000, 'first acknowledgements');
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    client.end(true);
    const ackedBeforeCrash = new Set(acked);
    expect(ackedBeforeCrash.size).toBeLessThan(MESSAGES);

    const second = bed.spawn('up', env);
    await second.waitForOutput(/virtual power plant is up/);
    // The device was connected when the process died and has not come back:
    // the new broker run has no connection of it, so it is offline.
    const twinAfterRestart = await eventually(async () => {
      const twin = (await (await fetch(`${api}/devices/${id}`, { headers })).json()) as { online: boolean; presence: string };
      return twin.presence === 'offline' ? twin : undefined;
    }, 5_000, 'the device offline after the restart');
    expect(twinAfterRestart.online).toBe(false);
    const store = openSqliteStore({ file: join(bed.dataDir, 'vpp.db') });
    try {
      const stored = await store.queryTelemetry({ deviceId: id, fromMs: baseTs, toMs: baseTs + MESSAGES, limit: MESSAGES * 2 });
      const storedIndexes = new Set(stored.map((point) => point.ts - baseTs));
      const lost = [...ackedBeforeCrash].filter((i) => !storedIndexes.has(i));
      expect(lost).toEqual([]);

      // The device resends everything it has no PUBACK for; duplicates are ignored.
      const resend = Array.from({ length: MESSAGES }, (_, i) => i).filter((i) => !ackedBeforeCrash.has(i));
      const again = await connect();
      publishAll(again, resend);
      await eventually(() => (acked.size === MESSAGES ? true : undefined), 30_000, 'all acknowledgements after restart');
      await again.endAsync();
      const all = await store.queryTelemetry({ deviceId: id, fromMs: baseTs, toMs: baseTs + MESSAGES, limit: MESSAGES * 2 });
      expect(all).toHaveLength(MESSAGES);
      expect(new Set(all.map((point) => point.seq)).size).toBe(MESSAGES);
    } finally {
      await store.close();
    }

    expect(await stopVpp(second, 'SIGINT')).toBe(0);
    expect(second.output()).not.toMatch(/"level":(50|60)/);
  });
});
