/**
 * Load generator of the connections scenario, in its own process: tens of
 * thousands of simulated devices, each its own MQTT 3.1.1 connection
 * (connections-mqtt.ts over node:net), each behaving like device firmware:
 *
 * - CONNECT with client id = username = device id, its secret as password,
 *   keep-alive 60 s, and a retained QoS 1 last will `{"online": false}` on
 *   its status topic;
 * - after CONNACK: retained status `{"online": true, …}` at QoS 1 and a QoS 1
 *   subscription to its commands topic;
 * - one telemetry message every `telemetryIntervalMs` at QoS 1, at a phase of
 *   its own so that the fleet sends evenly, not in bursts; the PUBACK (sent
 *   by the platform after the store has committed) is timed against the
 *   publish, and a PUBACK that does not come within `pubackTimeoutMs` counts
 *   as a timeout;
 * - PINGREQ when it has sent nothing for most of the keep-alive.
 *
 * One timer drives every device (a wheel of `TICK_MS` slots over the
 * interval), so the process holds sockets and small records, not timers.
 * Client source addresses rotate over `localAddresses` (127.0.0.x), so no
 * single address runs out of ephemeral ports.
 *
 * Started by bench/scenarios/connections.ts with the settings as JSON in
 * argv[2]; driven over IPC (connections-ipc.ts).
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { deviceTopic, type DeviceType } from '../../protocol/index.ts';
import { Histogram } from '../harness/stats.ts';
import type { DeviceLogin, GeneratorCounters, GeneratorReply, GeneratorRequest, GeneratorSettings, LatencySummary } from './connections-ipc.ts';
import {
  DISCONNECT,
  PACKET,
  PINGREQ,
  PacketReader,
  encodeConnect,
  encodePuback,
  encodePublish,
  encodeSubscribe,
  readPacketId,
  type InboundPacket,
} from './connections-mqtt.ts';

const TICK_MS = 20;
const FIRMWARE = 'bench-1.0.0';
/** Packet id of the status publish; telemetry uses 2..65535. */
const STATUS_PACKET_ID = 1;
const SUBSCRIBE_PACKET_ID = 1;

const settings = JSON.parse(process.argv[2] ?? '{}') as GeneratorSettings;
if (!process.send || !settings.mqttPort) {
  process.stderr.write('connections-generator: run me through the connections scenario (IPC and settings needed)\n');
  process.exit(2);
}
const send = (reply: GeneratorReply | { type: 'progress'; counters: GeneratorCounters }): void => {
  process.send?.(reply);
};

const counters: GeneratorCounters = {
  connected: 0,
  connecting: 0,
  connectAttempts: 0,
  connectFailures: 0,
  connectionsLost: 0,
  telemetryPublished: 0,
  telemetryAcked: 0,
  pubackTimeouts: 0,
  slotsMissed: 0,
  pingsSent: 0,
  loopLagMaxMs: 0,
};
const latency = new Histogram();
const connectLatency = new Histogram();
let measuring = false;

type State = 'connecting' | 'connected' | 'closed';

/** One simulated device. Metric values follow slow waves of its own phase, within the catalogue's ranges. */
class Device {
  socket: Socket | undefined;
  state: State = 'closed';
  /** Closed by the generator itself (stop), so not counted as lost. */
  closing = false;
  seq = 0;
  lastSentMs = 0;
  nextPacketId = 2;
  /** Packet id -> publish time (performance.now()), for telemetry awaiting its PUBACK. */
  readonly inflight = new Map<number, number>();
  readonly reader = new PacketReader();
  readonly topic: Buffer;
  readonly phase: number;

  constructor(
    readonly login: DeviceLogin,
    readonly index: number,
  ) {
    this.topic = Buffer.from(deviceTopic(login.id, 'telemetry'));
    this.phase = (index * 0.618_033_988_75) % 1;
  }

  telemetry(nowMs: number): Buffer {
    const wave = Math.sin((nowMs / 3_600_000 + this.phase) * 2 * Math.PI);
    const ripple = Math.sin((nowMs / 60_000 + this.phase * 7) * 2 * Math.PI);
    const metrics = metricsOf(this.login.type, wave, ripple, this.index, nowMs);
    return Buffer.from(JSON.stringify({ ts: nowMs, seq: this.seq++, metrics }));
  }
}

function metricsOf(type: DeviceType, wave: number, ripple: number, index: number, nowMs: number): Record<string, number> {
  const round1 = (x: number): number => Math.round(x * 10) / 10;
  switch (type) {
    case 'battery': {
      const capacityWh = 5_000 + (index % 16) * 1_000;
      const socPct = round1(55 + 35 * wave);
      return {
        powerW: Math.round(3_000 * ripple),
        socPct,
        energyWh: Math.round((capacityWh * socPct) / 100),
        capacityWh,
        tempC: round1(24 + 6 * wave),
        reservePct: 10 + (index % 5) * 5,
      };
    }
    case 'solar': {
      const powerW = Math.max(0, Math.round(6_000 * wave + 400 * ripple));
      const secondsToday = (nowMs % 86_400_000) / 1_000;
      return { powerW, energyTodayWh: Math.round(secondsToday * 0.9), tempC: round1(30 + 15 * Math.max(0, wave)) };
    }
    case 'meter': {
      const loadW = Math.round(600 + 400 * (1 + ripple));
      return { powerW: Math.round(loadW - 3_000 * Math.max(0, wave)), loadW, voltageV: round1(230 + 4 * ripple) };
    }
  }
}

let devices: Device[] = [];
let nextToConnect = 0;

/** The wheel: slot i holds the devices whose telemetry falls in [i·TICK_MS, (i+1)·TICK_MS) of every interval. */
const slotCount = Math.max(1, Math.round(settings.telemetryIntervalMs / TICK_MS));
const slots: Device[][] = Array.from({ length: slotCount }, () => []);
const epochMs = performance.now();
let lastSlotTick = Math.floor((performance.now() - epochMs) / TICK_MS);

function summarize(histogram: Histogram): LatencySummary {
  return histogram.summary();
}

function onPacket(device: Device, packet: InboundPacket, resolveConnect: (ok: boolean) => void): void {
  switch (packet.type) {
    case PACKET.connack:
      resolveConnect(packet.body[1] === 0);
      return;
    case PACKET.puback: {
      const packetId = readPacketId(packet);
      const sentAt = device.inflight.get(packetId);
      if (sentAt === undefined) return; // the status publish, or an ack after its timeout
      device.inflight.delete(packetId);
      counters.telemetryAcked += 1;
      if (measuring) latency.record(performance.now() - sentAt);
      return;
    }
    case PACKET.publish: {
      // A command; firmware would act on it. QoS 1 needs a PUBACK.
      const qos = (packet.flags >> 1) & 3;
      if (qos > 0) device.socket?.write(encodePuback(readPacketId(packet)));
      return;
    }
    default:
      return; // SUBACK, PINGRESP
  }
}

/** Opens one device's connection; resolves true on CONNACK 0. */
function connectDevice(device: Device): Promise<boolean> {
  counters.connectAttempts += 1;
  counters.connecting += 1;
  const localAddress = settings.localAddresses[device.index % settings.localAddresses.length];
  const startedAt = performance.now();
  return new Promise<boolean>((resolve) => {
    let settled = false;
    const socket = connect({ host: settings.mqttHost, port: settings.mqttPort, ...(localAddress ? { localAddress } : {}), noDelay: true });
    device.socket = socket;
    device.state = 'connecting';
    const timer = setTimeout(() => finish(false), settings.connectTimeoutMs);
    function finish(ok: boolean): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      counters.connecting -= 1;
      if (!ok) {
        counters.connectFailures += 1;
        device.state = 'closed';
        socket.destroy();
        resolve(false);
        return;
      }
      connectLatency.record(performance.now() - startedAt);
      counters.connected += 1;
      device.state = 'connected';
      const statusTopic = Buffer.from(deviceTopic(device.login.id, 'status'));
      const status = Buffer.from(JSON.stringify({ online: true, firmware: FIRMWARE, type: device.login.type }));
      socket.write(encodePublish(statusTopic, status, 1, true, STATUS_PACKET_ID));
      socket.write(encodeSubscribe(deviceTopic(device.login.id, 'commands'), 1, SUBSCRIBE_PACKET_ID));
      device.lastSentMs = performance.now();
      slots[device.index % slotCount]!.push(device);
      resolve(true);
    }
    socket.on('connect', () => {
      socket.write(
        encodeConnect({
          clientId: device.login.id,
          username: device.login.id,
          password: device.login.secret,
          keepAliveS: settings.keepAliveS,
          will: { topic: deviceTopic(device.login.id, 'status'), payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
        }),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      const ok = device.reader.push(chunk, (packet) => onPacket(device, packet, finish));
      if (!ok) socket.destroy();
    });
    socket.on('error', () => {
      // 'close' follows; a failure before CONNACK is counted by finish().
    });
    socket.on('close', () => {
      finish(false);
      if (device.state === 'connected') {
        counters.connected -= 1;
        if (!device.closing) counters.connectionsLost += 1;
      }
      device.state = 'closed';
      device.inflight.clear();
      device.socket = undefined;
    });
  });
}

async function ramp(target: number, concurrency: number): Promise<{ connected: number; failed: number; durationMs: number }> {
  const t0 = performance.now();
  const failuresBefore = counters.connectFailures;
  const end = Math.min(target, devices.length);
  await new Promise<void>((resolve) => {
    let active = 0;
    const pump = (): void => {
      while (active < concurrency && nextToConnect < end) {
        const device = devices[nextToConnect++]!;
        active += 1;
        void connectDevice(device).then(() => {
          active -= 1;
          pump();
        });
      }
      if (active === 0 && nextToConnect >= end) resolve();
    };
    pump();
  });
  return { connected: counters.connected, failed: counters.connectFailures - failuresBefore, durationMs: Math.round(performance.now() - t0) };
}

function publishTelemetry(device: Device, nowMs: number): void {
  const socket = device.socket;
  if (device.state !== 'connected' || socket === undefined) return;
  let packetId = device.nextPacketId;
  device.nextPacketId = packetId >= 65_535 ? 2 : packetId + 1;
  if (device.inflight.has(packetId)) packetId = device.nextPacketId++; // a slow ack still holds it
  const sentAt = performance.now();
  device.inflight.set(packetId, sentAt);
  device.lastSentMs = sentAt;
  counters.telemetryPublished += 1;
  socket.write(encodePublish(device.topic, device.telemetry(nowMs), 1, false, packetId));
}

/** Runs the slots that fell due since the last tick; a whole interval behind is skipped, not sent in a burst. */
function tick(): void {
  const now = performance.now();
  const current = Math.floor((now - epochMs) / TICK_MS);
  const lateMs = now - epochMs - current * TICK_MS;
  if (current - lastSlotTick > 1) counters.loopLagMaxMs = Math.max(counters.loopLagMaxMs, (current - lastSlotTick - 1) * TICK_MS + lateMs);
  let from = lastSlotTick + 1;
  if (current - from >= slotCount) {
    counters.slotsMissed += current - from - slotCount + 1;
    from = current - slotCount + 1;
  }
  const wallMs = Date.now();
  for (let t = from; t <= current; t++) {
    for (const device of slots[t % slotCount]!) publishTelemetry(device, wallMs);
  }
  lastSlotTick = current;
}

/** Keep-alive and PUBACK timeouts, once a second over all devices. */
function sweep(): void {
  const now = performance.now();
  const pingAfterMs = settings.keepAliveS * 1_000 * 0.75;
  for (const device of devices) {
    if (device.state !== 'connected') continue;
    for (const [packetId, sentAt] of device.inflight) {
      if (now - sentAt > settings.pubackTimeoutMs) {
        device.inflight.delete(packetId);
        counters.pubackTimeouts += 1;
      }
    }
    if (now - device.lastSentMs > pingAfterMs) {
      device.socket?.write(PINGREQ);
      device.lastSentMs = now;
      counters.pingsSent += 1;
    }
  }
  send({ type: 'progress', counters: { ...counters } });
}

const tickTimer = setInterval(tick, TICK_MS);
const sweepTimer = setInterval(sweep, 1_000);
let measureStartedAt = 0;

async function stop(): Promise<GeneratorCounters> {
  clearInterval(tickTimer);
  clearInterval(sweepTimer);
  const open = devices.filter((d) => d.socket !== undefined);
  await new Promise<void>((resolve) => {
    let left = open.length;
    if (left === 0) resolve();
    const bound = setTimeout(resolve, 10_000);
    for (const device of open) {
      device.closing = true;
      device.socket!.once('close', () => {
        if (--left === 0) {
          clearTimeout(bound);
          resolve();
        }
      });
      device.socket!.end(DISCONNECT);
    }
  });
  return { ...counters };
}

async function handle(request: GeneratorRequest): Promise<GeneratorReply> {
  switch (request.type) {
    case 'load': {
      const logins = JSON.parse(readFileSync(request.file, 'utf8')) as DeviceLogin[];
      devices = devices.concat(logins.map((login, i) => new Device(login, devices.length + i)));
      return { id: request.id, type: 'loaded', devices: devices.length };
    }
    case 'ramp': {
      connectLatency.reset();
      const result = await ramp(request.target, request.concurrency);
      return { id: request.id, type: 'ramped', ...result, connectLatency: summarize(connectLatency) };
    }
    case 'measure-start':
      latency.reset();
      counters.loopLagMaxMs = 0;
      measuring = true;
      measureStartedAt = performance.now();
      return { id: request.id, type: 'measure-started' };
    case 'measure-end':
      measuring = false;
      return {
        id: request.id,
        type: 'measured',
        counters: { ...counters },
        latency: summarize(latency),
        durationMs: Math.round(performance.now() - measureStartedAt),
      };
    case 'stop':
      return { id: request.id, type: 'stopped', counters: await stop() };
  }
}

process.on('message', (message: GeneratorRequest) => {
  handle(message).then(
    (reply) => {
      send(reply);
      if (reply.type === 'stopped') process.disconnect();
    },
    (error: unknown) => send({ id: message.id, type: 'failed', message: (error as Error).stack ?? String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));
