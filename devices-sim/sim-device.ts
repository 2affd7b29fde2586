/**
 * One simulated device: its own MQTT connection and credentials, its
 * telemetry counter and offline buffer, and the command in force. It does
 * not own a timer: the fleet's single loop calls `checkCommand`,
 * `takeSample` and `reportControl`, so thousands of devices cost one timer.
 *
 * Delivery: a sample is handed to MQTT when the device is connected,
 * otherwise kept in a bounded buffer (oldest dropped first). Samples handed
 * to MQTT stay "in flight" until the broker acknowledges them (QoS 1) or
 * they are written (QoS 0); if the connection is dropped first they go back
 * into the buffer, so a sample can be sent twice but is not lost while the
 * buffer has room (the platform stores idempotently on device and ts). On
 * every (re)connect the device publishes its retained status, subscribes to
 * its commands, and flushes the buffer as `{"samples": [...]}` messages.
 *
 * Commands (see commands.ts): one runs at a time per device, a newer one
 * supersedes it. The device republishes its retained status, with what it
 * does (reported-control.ts), whenever that changes. A command ends at its
 * expiry, or once the connection has been lost for `commandGraceMs`: a
 * device that cannot hear the platform goes back to local control rather
 * than follow an old plan indefinitely.
 */
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { deviceTopic, encodeJson, type Ack, type DeviceType } from '../protocol/index.ts';
import { encodeBatch, splitIntoBatches, type EncodedSample } from './batches.ts';
import { CommandLedger, commandEndsAtMs, decideCommand, dueCommandEnd, type ControlChange } from './commands.ts';
import { DeviceFaultState } from './fault-effects.ts';
import type { SimDeviceSpec } from './fleet-plan.ts';
import { controlStatus, setpointChanged, type SetpointReading } from './reported-control.ts';
import { LOCAL_CONTROL, type SimulatedSite } from './site.ts';

export const SIM_FIRMWARE = 'sim-1.0.0';
const OFFLINE_STATUS = '{"online":false}';
/** Acks kept while disconnected, sent on reconnect. */
const PENDING_ACKS_KEPT = 64;

/** Counters shared by the devices of a fleet; the fleet reads them for `stats()`. */
export interface FleetCounters {
  connected: number;
  /** Samples acknowledged by the broker (QoS 1) or written to the socket (QoS 0). */
  published: number;
  /** Samples dropped because a device's buffer was full. */
  dropped: number;
  acksSent: number;
  commandsReceived: number;
  /** Command payloads without a usable id, which cannot be acknowledged. */
  commandsIgnored: number;
  /** Connections lost other than by `setOffline` or `stop`. */
  connectionsLost: number;
}

export interface SimDeviceContext {
  mqttUrl: string;
  qos: 0 | 1;
  bufferLimit: number;
  reconnectPeriodMs: number;
  connectTimeoutMs: number;
  keepaliveS: number;
  counters: FleetCounters;
  /** Wall clock: telemetry `ts` and command expiry. */
  clock: () => number;
  /** Simulated time for a wall-clock instant. */
  toSimulatedTime: (wallMs: number) => number;
  /** Wall time the connection may be lost before the command in force is dropped. */
  commandGraceMs: number;
  /** Shortest wall time between two statuses published for a change of the physics alone (the telemetry interval). */
  statusIntervalMs: number;
  logger: Logger;
}

type PendingSample = EncodedSample;

/**
 * Why a device is kept offline: by the operator (`setOffline`) or by a
 * `disconnect` fault. It stays offline while either holds, so clearing one
 * does not bring back a device the other still keeps away.
 */
export type OfflineReason = 'manual' | 'fault';

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} took longer than ${timeoutMs} ms`)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

export class SimDevice {
  readonly id: string;
  readonly type: DeviceType;
  readonly siteId: string;
  readonly site: SimulatedSite;
  /** Faults in force on this device; the fleet's fault schedule is their only writer. */
  readonly faults = new DeviceFaultState();
  /** Wall-clock time of the next sample; owned by the fleet loop. */
  nextSampleAtMs = 0;

  private readonly secret: string;
  private readonly context: SimDeviceContext;
  private readonly log: Logger;
  private readonly topics: { telemetry: string; status: string; commands: string; acks: string };
  private client: MqttClient | null = null;
  /** Bumped whenever a client is abandoned, so its late callbacks are ignored. */
  private generation = 0;
  private isConnected = false;
  private readonly offlineReasons = new Set<OfflineReason>();
  private stopped = false;
  private seq = 0;
  private lastTs = -1;
  private buffer: PendingSample[] = [];
  private readonly inFlight = new Map<number, PendingSample[]>();
  private nextInFlightKey = 0;
  private readonly commands = new CommandLedger();
  /** Wall-clock time the connection was lost, null while connected (and before the first connection). */
  private lostSinceMs: number | null = null;
  /** The setpoint last published in the status, null when none was. */
  private reportedSetpoint: SetpointReading | null = null;
  /** Wall-clock time of the last status published with what the device does. */
  private controlStatusAtMs = -Infinity;
  private pendingAcks: Ack[] = [];
  private onReady: (() => void) | null = null;

  constructor(spec: SimDeviceSpec & { secret: string }, site: SimulatedSite, context: SimDeviceContext) {
    this.id = spec.id;
    this.type = spec.type;
    this.siteId = spec.siteId;
    this.secret = spec.secret;
    this.site = site;
    this.context = context;
    this.log = context.logger.child({ deviceId: spec.id });
    this.topics = {
      telemetry: deviceTopic(spec.id, 'telemetry'),
      status: deviceTopic(spec.id, 'status'),
      commands: deviceTopic(spec.id, 'commands'),
      acks: deviceTopic(spec.id, 'acks'),
    };
  }

  get connected(): boolean {
    return this.isConnected;
  }

  get bufferedCount(): number {
    return this.buffer.length;
  }

  get inFlightCount(): number {
    let count = 0;
    for (const samples of this.inFlight.values()) count += samples.length;
    return count;
  }

  /** Wall-clock time the command in force ends unless something changes (its expiry, or the grace running out while offline), or undefined. */
  get nextCommandEventAtMs(): number | undefined {
    const command = this.commands.active;
    if (!command) return undefined;
    return commandEndsAtMs(command.expiresAtMs, this.lostSinceMs, this.context.commandGraceMs);
  }

  /**
   * Connects for the first time. Resolves once the device is connected, has
   * published its status and is subscribed to its commands; rejects on the
   * first connection error or after `connectTimeoutMs`, leaving no client.
   */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const client = this.openClient();
      const fail = (err: Error): void => {
        clearTimeout(timer);
        client.off('error', fail);
        this.onReady = null;
        this.abandonClient();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new Error(`not connected within ${this.context.connectTimeoutMs} ms`)),
        this.context.connectTimeoutMs,
      );
      client.once('error', fail);
      this.onReady = () => {
        clearTimeout(timer);
        client.off('error', fail);
        resolve();
      };
    });
  }

  /**
   * Takes one sample of the site's current state (the caller has advanced
   * the site), as the faults in force make the device report it, and sends
   * or buffers it. A `silent` device takes no sample at all: like a sensor
   * loop that hung, it neither sends nor buffers, and its seq does not move.
   */
  takeSample(): void {
    if (this.stopped || this.faults.has('silent')) return;
    const wallNowMs = this.context.clock();
    // Strictly increasing timestamps: the platform stores idempotently on (device, ts).
    const ts = Math.max(Math.floor(wallNowMs), this.lastTs + 1);
    this.lastTs = ts;
    const metrics = this.faults.read(this.site.readMetrics(this.type), wallNowMs);
    const sample: PendingSample = { seq: this.seq, json: JSON.stringify({ ts, seq: this.seq, metrics }) };
    this.seq += 1;
    if (!this.isConnected) {
      this.addToBuffer([sample]);
    } else if (this.buffer.length > 0) {
      this.addToBuffer([sample]);
      this.flushBuffer();
    } else {
      this.send(sample.json, [sample]);
    }
  }

  /**
   * Ends the command in force when its expiry has passed, or when the
   * connection has been lost for the grace: back to local control, ack
   * `completed` (held until connected), status republished.
   */
  checkCommand(wallNowMs: number): void {
    const command = this.commands.active;
    if (!command) return;
    const end = dueCommandEnd(command.expiresAtMs, wallNowMs, this.lostSinceMs, this.context.commandGraceMs);
    if (!end) return;
    const ack = this.commands.end(end.reason);
    // The site may have run past the end already (another device of the site sampled): the change applies from now.
    const endSimMs = Math.max(this.site.state.timeMs, this.context.toSimulatedTime(end.atMs));
    this.site.setControl(this.localControl(), endSimMs);
    this.publishStatus();
    if (ack) this.sendAck(ack);
  }

  /**
   * Republishes the status when the physics changed what a battery following
   * a setpoint actually does (the caller has just advanced the site): the
   * reason it is clipped changed, or the value moved by more than 1 % of the
   * power limit; at most once per telemetry interval.
   */
  reportControl(wallNowMs: number): void {
    if (!this.isConnected) return;
    const reading = this.setpointReading();
    const last = this.reportedSetpoint;
    if (!reading || !last) return;
    const { maxChargeW, maxDischargeW } = this.site.params.battery;
    if (!setpointChanged(last, reading, Math.max(maxChargeW, maxDischargeW))) return;
    if (wallNowMs - this.controlStatusAtMs < this.context.statusIntervalMs) return;
    this.publishStatus();
  }

  /**
   * `true`: drops the connection without DISCONNECT (the broker publishes the
   * will) and keeps sampling into the buffer. `false`: withdraws `reason`,
   * and reconnects when no other reason keeps the device offline.
   */
  setOffline(offline: boolean, reason: OfflineReason = 'manual'): void {
    if (this.stopped) return;
    const wasOffline = this.offlineReasons.size > 0;
    if (offline) this.offlineReasons.add(reason);
    else this.offlineReasons.delete(reason);
    const isOffline = this.offlineReasons.size > 0;
    if (isOffline === wasOffline) return;
    if (isOffline) {
      this.abandonClient();
    } else {
      this.openClient();
    }
  }

  /**
   * Leaves cleanly: publishes the retained offline status, waits for
   * outstanding acknowledgements, then sends DISCONNECT (so the broker does
   * not publish the will). Samples still buffered are discarded. A device
   * that is not connected just stops trying.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const client = this.client;
    if (!client) return;
    if (!this.isConnected) {
      this.abandonClient();
      return;
    }
    try {
      await withTimeout(client.publishAsync(this.topics.status, OFFLINE_STATUS, { qos: 1, retain: true }), timeoutMs, 'offline status');
      await withTimeout(client.endAsync(false), timeoutMs, 'disconnect');
      this.markDisconnected();
      this.client = null;
      this.generation += 1;
    } catch (err) {
      this.log.warn({ err }, 'clean disconnect failed; closing the connection');
      this.abandonClient();
    }
  }

  private openClient(): MqttClient {
    const generation = ++this.generation;
    const options: IClientOptions = {
      clientId: this.id,
      username: this.id,
      password: this.secret,
      clean: true,
      protocolVersion: 4,
      keepalive: this.context.keepaliveS,
      reconnectPeriod: this.context.reconnectPeriodMs,
      connectTimeout: this.context.connectTimeoutMs,
      // The device subscribes itself on every connect, in a fixed order after its status.
      resubscribe: false,
      will: { topic: this.topics.status, payload: Buffer.from(OFFLINE_STATUS), qos: 1, retain: true },
    };
    const client = connect(this.context.mqttUrl, options);
    const current = (): boolean => generation === this.generation;
    client.on('connect', () => {
      if (current()) this.handleConnect(client);
    });
    client.on('close', () => {
      if (!current() || !this.isConnected) return;
      this.markDisconnected();
      if (this.stopped) return;
      this.context.counters.connectionsLost += 1;
      this.log.debug('connection lost; MQTT reconnects');
    });
    client.on('message', (topic, payload) => {
      if (current() && topic === this.topics.commands) this.handleCommand(payload);
    });
    client.on('error', (err) => {
      // Connection errors are retried by MQTT.js; the first one fails `start`.
      if (current()) this.log.debug({ err }, 'MQTT client error');
    });
    this.client = client;
    return client;
  }

  private handleConnect(client: MqttClient): void {
    // Back only after the grace: the command ended when the grace ran out,
    // whether or not the loop got to it first. Checked while still counted
    // as offline, so its ack goes out with the held ones, after the status.
    this.checkCommand(this.context.clock());
    this.lostSinceMs = null;
    if (!this.isConnected) {
      this.isConnected = true;
      this.context.counters.connected += 1;
    }
    this.publishStatus();
    client.subscribe(this.topics.commands, { qos: 1 }, (err) => {
      if (err) {
        this.log.warn({ err }, 'subscribing to commands failed');
        return;
      }
      const ready = this.onReady;
      this.onReady = null;
      ready?.();
    });
    const acks = this.pendingAcks;
    this.pendingAcks = [];
    for (const ack of acks) this.publishAck(client, ack);
    this.flushBuffer();
  }

  private markDisconnected(): void {
    if (!this.isConnected) return;
    this.isConnected = false;
    this.context.counters.connected -= 1;
    this.lostSinceMs = this.context.clock();
  }

  /** Destroys the connection without DISCONNECT and returns in-flight samples to the buffer. */
  private abandonClient(): void {
    const client = this.client;
    this.client = null;
    this.generation += 1;
    this.markDisconnected();
    client?.end(true);
    const returned: PendingSample[] = [];
    for (const samples of this.inFlight.values()) returned.push(...samples);
    this.inFlight.clear();
    if (returned.length > 0) {
      this.addToBuffer(returned);
      this.buffer.sort((a, b) => a.seq - b.seq);
    }
  }

  private addToBuffer(samples: readonly PendingSample[]): void {
    this.buffer.push(...samples);
    const excess = this.buffer.length - this.context.bufferLimit;
    if (excess > 0) {
      this.buffer.splice(0, excess);
      this.context.counters.dropped += excess;
    }
  }

  /** Sends the buffer as `{"samples": [...]}` messages within the protocol's count and size limits. */
  private flushBuffer(): void {
    if (this.buffer.length === 0) return;
    const samples = this.buffer;
    this.buffer = [];
    for (const batch of splitIntoBatches(samples)) this.send(encodeBatch(batch), batch);
  }

  private send(payload: string, samples: PendingSample[]): void {
    const client = this.client;
    if (!client) {
      this.addToBuffer(samples);
      return;
    }
    const key = this.nextInFlightKey++;
    this.inFlight.set(key, samples);
    const generation = this.generation;
    client.publish(this.topics.telemetry, payload, { qos: this.context.qos }, (err) => {
      if (generation !== this.generation || !this.inFlight.delete(key)) return;
      if (err) {
        if (!this.stopped) this.addToBuffer(samples);
        return;
      }
      this.context.counters.published += samples.length;
    });
  }

  private handleCommand(payload: Buffer): void {
    this.context.counters.commandsReceived += 1;
    const wallNowMs = this.context.clock();
    const decision = decideCommand(payload, { type: this.type, battery: this.site.params.battery }, wallNowMs);
    if (decision.kind === 'ignore') {
      this.context.counters.commandsIgnored += 1;
      this.log.debug({ reason: decision.reason }, 'command without a usable id ignored');
      return;
    }
    const simNowMs = Math.max(this.site.state.timeMs, this.context.toSimulatedTime(wallNowMs));
    // At-least-once delivery: the ledger answers a redelivered id with the
    // state it reached, and does not carry it out again.
    const step = this.commands.receive(decision, simNowMs);
    if (step.kind === 'ack') {
      this.sendAck(step.ack);
      return;
    }
    if (step.superseded) this.sendAck(step.superseded);
    this.site.setControl(step.control, simNowMs);
    // The status goes out before the ack, so whoever sees the ack has the status that goes with it.
    this.publishStatus();
    this.sendAck(step.ack);
  }

  /** The control this device goes back to when no command runs: its own part of the site's local control. */
  private localControl(): ControlChange {
    return this.type === 'solar' ? { curtailW: LOCAL_CONTROL.curtailW } : { battery: LOCAL_CONTROL.battery };
  }

  /**
   * The setpoint the battery runs at, after clipping: the physics' power
   * once the site has run under the command; until then the setpoint given
   * to it. Null when the battery is not following a setpoint.
   */
  private setpointReading(): SetpointReading | null {
    const control = this.site.control.battery;
    const command = this.commands.active;
    if (this.type !== 'battery' || control.mode !== 'setpoint' || !command) return null;
    const startClip = command.clipped ? 'powerLimit' : null;
    const state = this.site.state;
    if (state.timeMs <= command.startedAtSimMs) return { setpointW: Math.round(control.powerW), clippedBy: startClip };
    // Rounded like the telemetry; `+ 0` turns a rounded -0 into 0.
    return { setpointW: Math.round(state.battery.powerW) + 0, clippedBy: state.battery.limit ?? startClip };
  }

  /** Publishes the retained online status with what the device does now; nothing while disconnected (the next connect publishes it). */
  private publishStatus(): void {
    const client = this.client;
    if (!client || !this.isConnected) return;
    const setpoint = this.setpointReading();
    const status = {
      online: true,
      firmware: SIM_FIRMWARE,
      type: this.type,
      ...controlStatus(this.type, this.site.control, this.commands.active, setpoint),
    };
    this.reportedSetpoint = setpoint;
    this.controlStatusAtMs = this.context.clock();
    client.publish(this.topics.status, JSON.stringify(status), { qos: 1, retain: true });
  }

  private sendAck(ack: Ack): void {
    const client = this.client;
    if (client && this.isConnected) {
      this.publishAck(client, ack);
      return;
    }
    this.pendingAcks.push(ack);
    if (this.pendingAcks.length > PENDING_ACKS_KEPT) this.pendingAcks.shift();
  }

  private publishAck(client: MqttClient, ack: Ack): void {
    this.context.counters.acksSent += 1;
    client.publish(this.topics.acks, encodeJson(ack), { qos: 1 });
  }
}
