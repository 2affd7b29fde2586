/**
 * The bare subscriber, run as a child process: one MQTT.js connection
 * subscribed to every device's telemetry, counting messages and doing
 * nothing else with them. It is the ceiling the ingest scenario compares
 * with (what one Node MQTT subscriber can receive at all) and the receiver
 * in the broker comparison.
 *
 * Latency (receive time − the payload's `ts`, both on this machine's clock)
 * is read from the payload's leading `{"ts":<digits>` without parsing the
 * JSON, so measuring costs almost nothing, and kept as a per-millisecond
 * histogram.
 *
 *   parent                                       child
 *   connect {url, qos, username?, password?} →
 *                                           ←    connected
 *   reset                                    →   zeroes the window's count and histogram
 *                                           ←    reset {atMs}
 *   snapshot                                 →
 *                                           ←    snapshot {window}
 *   (every 250 ms)                          ←    stats {received, atMs, cpuMs}
 *   close                                    →   disconnects, exits
 */
import mqtt, { type MqttClient } from 'mqtt';

export type SinkCommand =
  | { kind: 'connect'; url: string; qos: 0 | 1; filter: string; username?: string; password?: string; clientId?: string }
  | { kind: 'reset' }
  | { kind: 'snapshot' }
  | { kind: 'close' };

export interface SinkWindow {
  /** Messages received since the last reset. */
  received: number;
  sinceMs: number;
  atMs: number;
  /** Receive time − ts, ms. */
  latencyMs: { count: number; p50: number; p90: number; p99: number; max: number };
}

export type SinkReport =
  | { kind: 'connected' }
  | { kind: 'reset'; atMs: number }
  | { kind: 'snapshot'; window: SinkWindow }
  | { kind: 'stats'; received: number; atMs: number; cpuMs: number }
  | { kind: 'error'; message: string };

const MAX_LATENCY_MS = 120_000;
const buckets = new Uint32Array(MAX_LATENCY_MS + 1);
let received = 0;
let windowReceived = 0;
let windowSince = Date.now();
let client: MqttClient | undefined;

function send(report: SinkReport): void {
  process.send?.(report);
}

/** The `ts` of a payload that starts with `{"ts":`, or -1. */
function leadingTs(payload: Buffer): number {
  // '{"ts":' is 6 bytes: 0x7b 0x22 0x74 0x73 0x22 0x3a
  if (payload.length < 7 || payload[0] !== 0x7b || payload[2] !== 0x74 || payload[3] !== 0x73 || payload[5] !== 0x3a) return -1;
  let ts = 0;
  for (let i = 6; i < payload.length && i < 26; i++) {
    const digit = payload[i]! - 0x30;
    if (digit < 0 || digit > 9) break;
    ts = ts * 10 + digit;
  }
  return ts;
}

function onMessage(_topic: string, payload: Buffer): void {
  const now = Date.now();
  received++;
  windowReceived++;
  const ts = leadingTs(payload);
  if (ts > 0) buckets[Math.max(0, Math.min(MAX_LATENCY_MS, now - ts))]!++;
}

function percentiles(): SinkWindow['latencyMs'] {
  let count = 0;
  for (const n of buckets) count += n;
  const at = (p: number): number => {
    if (count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * count));
    let seen = 0;
    for (let ms = 0; ms < buckets.length; ms++) {
      seen += buckets[ms]!;
      if (seen >= rank) return ms;
    }
    return MAX_LATENCY_MS;
  };
  return { count, p50: at(50), p90: at(90), p99: at(99), max: at(100) };
}

async function handle(command: SinkCommand): Promise<void> {
  switch (command.kind) {
    case 'connect': {
      // One subscription at a time: a new QoS replaces the old connection.
      await client?.endAsync(true).catch(() => undefined);
      client = await mqtt.connectAsync(command.url, {
        clientId: command.clientId ?? `bench-sink-${process.pid}`,
        ...(command.username === undefined ? {} : { username: command.username, password: command.password ?? '' }),
        protocolVersion: 4,
        clean: true,
        keepalive: 60,
        reconnectPeriod: 0,
      });
      client.on('message', onMessage);
      await client.subscribeAsync(command.filter, { qos: command.qos });
      send({ kind: 'connected' });
      return;
    }
    case 'reset':
      buckets.fill(0);
      windowReceived = 0;
      windowSince = Date.now();
      send({ kind: 'reset', atMs: windowSince });
      return;
    case 'snapshot':
      send({ kind: 'snapshot', window: { received: windowReceived, sinceMs: windowSince, atMs: Date.now(), latencyMs: percentiles() } });
      return;
    case 'close':
      await client?.endAsync(true).catch(() => undefined);
      process.disconnect?.();
      process.exit(0);
  }
}

process.on('message', (command: SinkCommand) => {
  handle(command).catch((error: unknown) => send({ kind: 'error', message: (error as Error).stack ?? String(error) }));
});
process.on('disconnect', () => process.exit(0));
setInterval(() => {
  const cpu = process.cpuUsage();
  send({ kind: 'stats', received, atMs: Date.now(), cpuMs: Math.round((cpu.user + cpu.system) / 1000) });
}, 250);
