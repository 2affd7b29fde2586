/**
 * A real Prometheus scrapes the platform, run in this process as `vpp up`
 * runs it, and the series read back through its HTTP API match what the
 * platform reports: MQTT connections (the simulated devices plus the
 * platform's own three), telemetry accepted, the pipeline running.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, removeDir, startPlatform, type RunningPlatform } from './support/platform.ts';
import { startPrometheus, type RunningPrometheus } from './support/prometheus.ts';

let running: RunningPlatform | undefined;
let prometheus: RunningPrometheus | undefined;

beforeAll(async () => {
  running = await startPlatform({ VPP_SIM_SITES: '3', VPP_SIM_INTERVAL_MS: '250' });
  prometheus = await startPrometheus([new URL(running.metrics.url).host]);
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  await running?.stop();
  if (running) removeDir(running.dataDir);
});

/** The single value of `promql` once `accept` takes it. */
async function valueOf(promql: string, accept: (value: number) => boolean): Promise<number> {
  return eventually(
    async () => {
      const result = await prometheus!.query(promql);
      return result.length === 1 && accept(result[0]!.value) ? result[0]!.value : undefined;
    },
    30_000,
    promql,
  );
}

it('scrapes the platform: the target is up', async () => {
  expect(await valueOf('up{job="vpp"}', (v) => v === 1)).toBe(1);
});

it('reads MQTT connections back: every simulated device plus ingest, dispatch and control', async () => {
  const devices = running!.sim!.devices;
  expect(devices).toBe(9);
  expect(await valueOf('vpp_broker_connections', (v) => v === devices + 3)).toBe(running!.broker.counters().clientsConnected);
});

it('reads accepted telemetry back, no more than the pipeline counted', async () => {
  const accepted = await valueOf('vpp_ingest_messages_accepted_total', (v) => v > 0);
  expect(accepted).toBeLessThanOrEqual(running!.ingest.ingest.counters.acceptedMessages);
  expect(await valueOf('vpp_ingest_running', () => true)).toBe(1);
  expect(await valueOf('sum(vpp_ingest_messages_rejected_total)', () => true)).toBeLessThanOrEqual(running!.ingest.ingest.counters.rejectedTotal());
});

it('reads refusals by reason back', async () => {
  // A device id nobody registered: refused as unknown-device.
  const mqtt = (await import('mqtt')).default;
  const client = mqtt.connect(running!.broker.url, { username: 'no-such-device', password: 'x'.repeat(20), clientId: 'no-such-device', reconnectPeriod: 0, protocolVersion: 4 });
  await new Promise<void>((resolve) => client.once('error', () => resolve()).once('close', () => resolve()));
  client.end(true);
  expect(await valueOf('vpp_broker_connections_refused_total{reason="unknown-device"}', (v) => v >= 1)).toBeGreaterThanOrEqual(1);
});
