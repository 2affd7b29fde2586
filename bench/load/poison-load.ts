/**
 * Load of the poison scenario (bench/scenarios/poison.ts), in a process of
 * its own: `node --import tsx bench/load/poison-load.ts '<LoadSpec JSON>'`.
 * It connects its devices and publishes until told 'stop' over IPC,
 * answering 'report' with what was sent and acknowledged since the last
 * report and, for the healthy fleet, the PUBACK latencies.
 *
 * - healthy: every device publishes QoS 1 telemetry, the fleet together at
 *   `options.rate` messages/s;
 * - *-poison: one device keeps `options.window` QoS 1 publishes
 *   outstanding, as fast as they are acknowledged, each hitting a bound.
 */
import mqtt from 'mqtt';
import type { DeviceCredential } from '../harness/platform.ts';
import { Histogram } from '../harness/stats.ts';

export type LoadRole = 'healthy' | 'small-poison' | 'large-poison' | 'mixed-poison';

export interface LoadSpec {
  role: LoadRole;
  url: string;
  devices: DeviceCredential[];
  options: Record<string, number>;
}

export interface PhaseReport {
  sent: number;
  acked: number;
  ackedBytes: number;
  p50: number;
  p99: number;
  max: number;
}

function poisonPayloads(role: Exclude<LoadRole, 'healthy'>, deviceId: string): Array<{ topic: string; payload: Buffer }> {
  const telemetry = `vpp/v1/devices/${deviceId}/telemetry`;
  const status = `vpp/v1/devices/${deviceId}/status`;
  if (role === 'mixed-poison') {
    return [
      { topic: telemetry, payload: Buffer.from('{"ts":') },
      { topic: status, payload: Buffer.from(`{"online":true,"x":${'['.repeat(50_000)}${']'.repeat(50_000)}}`) },
    ];
  }
  if (role === 'large-poison') {
    return [
      { topic: status, payload: Buffer.from(`{"online":true,"x":${'['.repeat(50_000)}${']'.repeat(50_000)}}`) },
      { topic: telemetry, payload: Buffer.alloc(200 * 1024, 'x') },
    ];
  }
  // One more name than the default cap of 64, on a device that has none.
  const tooManyMetrics = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`m${i}W`, i]));
  return [
    { topic: telemetry, payload: Buffer.from(`{"ts":${Date.now()},"seq":100000000000000000000,"metrics":{"socPct":50}}`) },
    { topic: telemetry, payload: Buffer.from(JSON.stringify({ ts: Date.now(), seq: 1, metrics: tooManyMetrics })) },
    { topic: telemetry, payload: Buffer.from('{"ts":') },
  ];
}

/** The load process: connects its devices and publishes until told to stop, answering 'report' with its latencies. */
async function runLoad(spec: LoadSpec): Promise<void> {
  const clients = await Promise.all(
    spec.devices.map((d) => mqtt.connectAsync(spec.url, { clientId: d.id, username: d.id, password: d.secret, protocolVersion: 4, reconnectPeriod: 500 })),
  );
  const latency = new Histogram();
  let sent = 0;
  let acked = 0;
  let ackedBytes = 0;
  let running = true;
  if (spec.role === 'healthy') {
    const perClientIntervalMs = (1000 * clients.length) / spec.options.rate!;
    clients.forEach((client, i) => {
      const deviceId = spec.devices[i]!.id;
      let seq = 0;
      const tick = (): void => {
        if (!running) return;
        const sentAt = performance.now();
        seq++;
        sent++;
        client.publish(`vpp/v1/devices/${deviceId}/telemetry`, JSON.stringify({ ts: Date.now(), seq, metrics: { powerW: seq % 5000, socPct: 50 } }), { qos: 1 }, (err) => {
          if (err) return;
          acked++;
          latency.record(performance.now() - sentAt);
        });
        setTimeout(tick, perClientIntervalMs);
      };
      setTimeout(tick, Math.random() * perClientIntervalMs);
    });
  } else {
    const client = clients[0]!;
    client.on('error', () => undefined);
    const payloads = poisonPayloads(spec.role, spec.devices[0]!.id);
    let outstanding = 0;
    let i = 0;
    const pump = (): void => {
      while (running && client.connected && outstanding < spec.options.window!) {
        const { topic, payload } = payloads[i++ % payloads.length]!;
        outstanding++;
        sent++;
        client.publish(topic, payload, { qos: 1 }, (err) => {
          outstanding--;
          setImmediate(pump);
          if (err) return;
          acked++;
          ackedBytes += payload.length;
        });
      }
    };
    client.on('connect', () => {
      outstanding = 0;
      pump();
    });
    pump();
  }
  process.on('message', (message) => {
    if (message === 'report') {
      const report: PhaseReport = { sent, acked, ackedBytes, ...latency.summary() };
      process.send!(report);
      latency.reset();
      sent = 0;
      acked = 0;
      ackedBytes = 0;
    } else if (message === 'stop') {
      running = false;
      void Promise.all(clients.map((c) => c.endAsync(true))).then(() => process.exit(0));
    }
  });
}

await runLoad(JSON.parse(process.argv[2]!) as LoadSpec);
