/**
 * Load generator, run as a child process (`fork` with `--import tsx`): one
 * MQTT.js connection per device, each publishing realistic telemetry of its
 * device type (the protocol's metric catalogue, values in range) with `ts`
 * = send time in ms and an increasing `seq`, at QoS 0 or 1.
 *
 * Driven over IPC (see PublisherCommand / PublisherReport):
 *
 *   parent                          child
 *   connect {url, devices, …}  →
 *                              ←    connected {connected, failed, ms}
 *   run {qos, ratePerSec, window} → publishes until pause
 *                              ←    stats, every second
 *   rate {ratePerSec}          →    changes the rate of a fixed-rate run
 *   pause                      →    stops, waits (bounded) for acknowledgements
 *                              ←    paused {stats}
 *   close                      →    disconnects, exits
 *
 * `ratePerSec` > 0 sends at that total rate, spread round robin over the
 * connections (and `rate` changes it); 0 sends as fast as the window allows. `window` bounds the
 * publishes of one connection that are not yet finished: at QoS 1 those
 * without PUBACK (a device's outbox), at QoS 0 those not yet written to the
 * socket (TCP backpressure). A publish that the window does not allow is
 * not sent late in a burst: at a fixed rate it is counted as `behind`.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { DeviceType } from '../../protocol/index.ts';

export interface PublisherDevice {
  id: string;
  type: DeviceType;
  /** Absent for an anonymous broker (Mosquitto in the comparison). */
  secret?: string;
}

export type PublisherCommand =
  | {
      kind: 'connect';
      url: string;
      devices: PublisherDevice[];
      /** Devices connect this many at a time. */
      connectConcurrency?: number;
      /** Publish a retained `{"online": true}` status and set the will, as devices do. */
      announceStatus?: boolean;
    }
  | { kind: 'run'; qos: 0 | 1; ratePerSec: number; window: number }
  /** Changes the rate of a fixed-rate run (a controller in the parent keeps a backlog bounded). */
  | { kind: 'rate'; ratePerSec: number }
  | { kind: 'pause'; drainTimeoutMs?: number }
  | { kind: 'close' };

export interface PublisherStats {
  /** Milliseconds since the epoch when the stats were taken. */
  atMs: number;
  connected: number;
  sent: number;
  /** QoS 1: PUBACKs received; QoS 0: publishes written to the socket. */
  acked: number;
  /** Publishes sent and not yet acked. */
  pending: number;
  /** Publishes a fixed rate asked for that the window did not allow. */
  behind: number;
  errors: number;
  /** Generator process CPU time (user + system) in ms since it started. */
  cpuMs: number;
}

export type PublisherReport =
  | { kind: 'connected'; connected: number; failed: number; ms: number; firstError?: string }
  /** Every STATS_INTERVAL_MS. */
  | { kind: 'stats'; stats: PublisherStats }
  | { kind: 'paused'; stats: PublisherStats; drained: boolean }
  | { kind: 'error'; message: string };

export const STATS_INTERVAL_MS = 250;

interface Connection {
  client: MqttClient;
  topic: string;
  nextPayload: (ts: number, seq: number) => string;
  seq: number;
  /** Writes are idempotent on (device, ts): a device never stamps two samples with the same ms. */
  lastTs: number;
  pending: number;
}

/** Payload writers per device type: template strings, so generation costs little next to MQTT. */
function payloadWriter(type: DeviceType, index: number): (ts: number, seq: number) => string {
  const phase = (index * 0.37) % (2 * Math.PI);
  const wave = (seq: number) => Math.sin(phase + seq / 60);
  const round1 = (v: number) => Math.round(v * 10) / 10;
  switch (type) {
    case 'battery': {
      const capacityWh = 10_000 + (index % 5) * 2_500;
      return (ts, seq) => {
        const w = wave(seq);
        const socPct = round1(50 + 40 * w);
        return `{"ts":${ts},"seq":${seq},"metrics":{"powerW":${Math.round(-4_000 * w)},"socPct":${socPct},"energyWh":${Math.round((capacityWh * socPct) / 100)},"capacityWh":${capacityWh},"tempC":${round1(25 + 5 * w)},"reservePct":20}}`;
      };
    }
    case 'solar':
      return (ts, seq) => {
        const w = Math.abs(wave(seq));
        return `{"ts":${ts},"seq":${seq},"metrics":{"powerW":${Math.round(6_000 * w)},"energyTodayWh":${12_000 + seq},"tempC":${round1(30 + 10 * w)}}}`;
      };
    case 'meter':
      return (ts, seq) => {
        const w = wave(seq);
        return `{"ts":${ts},"seq":${seq},"metrics":{"powerW":${Math.round(2_000 * w)},"loadW":${Math.round(1_500 + 1_000 * Math.abs(w))},"voltageV":${round1(230 + 4 * w)}}}`;
      };
  }
}

const connections: Connection[] = [];
let sent = 0;
let acked = 0;
let behind = 0;
let errors = 0;
let running = false;
let qos: 0 | 1 = 1;
let windowSize = 100;
let ratePerSec = 0;
let runStartedAt = 0;
let sentAtRunStart = 0;
let behindCredit = 0;
let cursor = 0;
let tickTimer: NodeJS.Timeout | undefined;

function send(report: PublisherReport): void {
  process.send?.(report);
}

function stats(): PublisherStats {
  const cpu = process.cpuUsage();
  return {
    atMs: Date.now(),
    connected: connections.filter((c) => c.client.connected).length,
    sent,
    acked,
    pending: connections.reduce((sum, c) => sum + c.pending, 0),
    behind,
    errors,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  };
}

/** Whether the connection's window has room: QoS 1 counts unacknowledged publishes, QoS 0 the socket's backpressure. */
function hasRoom(connection: Connection): boolean {
  if (!connection.client.connected) return false;
  return qos === 1 ? connection.pending < windowSize : !connection.client.stream.writableNeedDrain;
}

function publishOne(connection: Connection): void {
  sent++;
  const seq = ++connection.seq;
  const ts = Math.max(Date.now(), connection.lastTs + 1);
  connection.lastTs = ts;
  const payload = connection.nextPayload(ts, seq);
  if (qos === 0) {
    // Handed to the socket (TCP backpressure is checked in hasRoom): counted as done.
    connection.client.publish(connection.topic, payload, { qos: 0 });
    acked++;
    return;
  }
  connection.pending++;
  connection.client.publish(connection.topic, payload, { qos: 1 }, (error) => {
    connection.pending--;
    if (error) errors++;
    else acked++;
    if (running && ratePerSec === 0) scheduleRefill(connection);
  });
}

/**
 * As fast as possible: fills a connection's window, later (never from
 * inside a publish callback, which may run synchronously). At QoS 0 the
 * window is the socket buffer: refilled on 'drain', or on the next turn
 * of the event loop if it did not fill.
 */
const toRefill = new Set<Connection>();
let refillScheduled = false;
function scheduleRefill(connection: Connection): void {
  toRefill.add(connection);
  if (refillScheduled) return;
  refillScheduled = true;
  setImmediate(refill);
}

function refill(): void {
  refillScheduled = false;
  const batch = [...toRefill];
  toRefill.clear();
  for (const connection of batch) {
    if (!running || ratePerSec !== 0) return;
    let burst = 0;
    // A burst leaves in one write (a device flushing its outbox), not three per message.
    connection.client.stream.cork();
    while (burst < windowSize && hasRoom(connection)) {
      publishOne(connection);
      burst++;
    }
    connection.client.stream.uncork();
    if (qos === 0 && connection.client.connected) {
      if (connection.client.stream.writableNeedDrain) connection.client.stream.once('drain', () => running && scheduleRefill(connection));
      else scheduleRefill(connection);
    }
  }
}

/** Fixed rate: every tick sends what is due since the run started, round robin. */
function tick(): void {
  if (!running) return;
  const due = Math.floor(((Date.now() - runStartedAt) * ratePerSec) / 1000) - (sent - sentAtRunStart) - behindCredit;
  // Never more than 100 ms' worth at once, so a stalled generator does not burst.
  let toSend = Math.min(due, Math.ceil(ratePerSec / 10));
  if (due > toSend) {
    behind += due - toSend;
    behindCredit += due - toSend;
  }
  let skipped = 0;
  // What one tick sends to a connection leaves in one write.
  const corked = new Set<Connection>();
  while (toSend > 0 && skipped < connections.length) {
    const connection = connections[cursor]!;
    cursor = (cursor + 1) % connections.length;
    if (!hasRoom(connection)) {
      skipped++;
      continue;
    }
    skipped = 0;
    if (!corked.has(connection)) {
      connection.client.stream.cork();
      corked.add(connection);
    }
    publishOne(connection);
    toSend--;
  }
  for (const connection of corked) connection.client.stream.uncork();
  if (toSend > 0) {
    behind += toSend;
    behindCredit += toSend;
  }
}

async function connectAll(command: Extract<PublisherCommand, { kind: 'connect' }>): Promise<void> {
  const started = Date.now();
  let failed = 0;
  let firstError: string | undefined;
  const queue = command.devices.map((device, index) => ({ device, index }));
  const concurrency = command.connectConcurrency ?? 50;
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const { device, index } = next;
      const statusTopic = `vpp/v1/devices/${device.id}/status`;
      try {
        const client = await mqtt.connectAsync(command.url, {
          clientId: device.id,
          ...(device.secret === undefined ? {} : { username: device.id, password: device.secret }),
          protocolVersion: 4,
          clean: true,
          keepalive: 60,
          reconnectPeriod: 0,
          connectTimeout: 30_000,
          ...(command.announceStatus ? { will: { topic: statusTopic, payload: Buffer.from('{"online":false}'), qos: 1, retain: true } } : {}),
        });
        client.on('error', () => {
          errors++;
        });
        if (command.announceStatus) await client.publishAsync(statusTopic, '{"online":true,"firmware":"bench-1.0.0"}', { qos: 1, retain: true });
        connections.push({ client, topic: `vpp/v1/devices/${device.id}/telemetry`, nextPayload: payloadWriter(device.type, index), seq: 0, lastTs: 0, pending: 0 });
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, command.devices.length) }, worker));
  send({ kind: 'connected', connected: connections.length, failed, ms: Date.now() - started, ...(firstError ? { firstError } : {}) });
}

/** A new rate continues the run from now, without catching up on the old one. */
function changeRate(next: number): void {
  if (!running || ratePerSec === 0) return;
  ratePerSec = Math.max(1, next);
  runStartedAt = Date.now();
  sentAtRunStart = sent;
  behindCredit = 0;
}

function run(command: Extract<PublisherCommand, { kind: 'run' }>): void {
  qos = command.qos;
  windowSize = Math.max(1, command.window);
  ratePerSec = Math.max(0, command.ratePerSec);
  running = true;
  runStartedAt = Date.now();
  sentAtRunStart = sent;
  behindCredit = 0;
  if (ratePerSec === 0) {
    for (const connection of connections) scheduleRefill(connection);
  } else {
    tickTimer = setInterval(tick, 5);
  }
}

async function pause(drainTimeoutMs: number): Promise<void> {
  running = false;
  clearInterval(tickTimer);
  const deadline = Date.now() + drainTimeoutMs;
  while (connections.some((c) => c.pending > 0 || (c.client.connected && c.client.stream.writableLength > 0)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  send({ kind: 'paused', stats: stats(), drained: connections.every((c) => c.pending === 0) });
}

async function close(): Promise<void> {
  running = false;
  clearInterval(tickTimer);
  clearInterval(statsTimer);
  await Promise.all(connections.map((c) => c.client.endAsync(true).catch(() => undefined)));
  process.disconnect?.();
  process.exit(0);
}

process.on('message', (command: PublisherCommand) => {
  const handle = async (): Promise<void> => {
    switch (command.kind) {
      case 'connect':
        return connectAll(command);
      case 'run':
        return run(command);
      case 'rate':
        return changeRate(command.ratePerSec);
      case 'pause':
        return pause(command.drainTimeoutMs ?? 10_000);
      case 'close':
        return close();
    }
  };
  handle().catch((error: unknown) => send({ kind: 'error', message: (error as Error).stack ?? String(error) }));
});
// The parent going away ends the generator too: a benchmark must leave no load behind.
process.on('disconnect', () => process.exit(0));
const statsTimer = setInterval(() => send({ kind: 'stats', stats: stats() }), STATS_INTERVAL_MS);
