/**
 * Messages between the connections scenario and its two child processes:
 * the system under test (connections-sut.ts) and the device generator
 * (connections-generator.ts). Every request carries an id; the child answers
 * with a reply of the same id. Children also push unsolicited progress.
 */
import type { DeviceType } from '../../protocol/index.ts';

export interface DeviceLogin {
  id: string;
  type: DeviceType;
  secret: string;
}

/** What the system-under-test process measures of itself. */
export interface SutSample {
  atMs: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  /** process.cpuUsage() since the process started, microseconds. */
  cpuUserUs: number;
  cpuSystemUs: number;
  openFds: number;
  clientsConnected: number;
  connectionsAccepted: number;
  connectionsRefused: number;
  clientErrors: number;
  publishesReceived: number;
  tapPausedClients: number;
  samplesCommitted: number;
  statusMessages: number;
  ingestInflight: number;
  rejected: number;
  writeFailures: number;
}

export type SutRequest =
  | { id: number; type: 'start' }
  /** Registers `count` more devices and writes their logins to `file` as JSON. */
  | { id: number; type: 'provision'; count: number; file: string }
  /** `gc`: run a full collection first (the process runs with --expose-gc). */
  | { id: number; type: 'sample'; gc: boolean }
  | { id: number; type: 'stop' };

export type SutReply =
  | { id: number; type: 'started'; mqttHost: string; mqttPort: number; fdLimit: number }
  | { id: number; type: 'provisioned'; count: number; durationMs: number }
  | { id: number; type: 'sampled'; sample: SutSample }
  | { id: number; type: 'stopped' }
  | { id: number; type: 'failed'; message: string };

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Generator counters, cumulative since the generator started. */
export interface GeneratorCounters {
  /** Gauge: connections with a CONNACK 0 and an open socket. */
  connected: number;
  /** Gauge: sockets opened, CONNACK not yet received. */
  connecting: number;
  connectAttempts: number;
  /** CONNACK with a refusal, connect timeout or socket error before CONNACK. */
  connectFailures: number;
  /** Connections that ended after their CONNACK without the generator closing them. */
  connectionsLost: number;
  telemetryPublished: number;
  telemetryAcked: number;
  /** Telemetry without a PUBACK within the timeout. */
  pubackTimeouts: number;
  /** Scheduler slots skipped because the generator's loop fell behind a whole interval. */
  slotsMissed: number;
  pingsSent: number;
  /** Worst lateness of the generator's scheduler tick since the last measured window began (ms). */
  loopLagMaxMs: number;
}

export type GeneratorRequest =
  | { id: number; type: 'load'; file: string }
  /** Opens connections until `target` are connected or attempted; replies when the ramp ends. */
  | { id: number; type: 'ramp'; target: number; concurrency: number }
  /** Starts a measured window: latency recorded from now on. */
  | { id: number; type: 'measure-start' }
  | { id: number; type: 'measure-end' }
  | { id: number; type: 'stop' };

export type GeneratorReply =
  | { id: number; type: 'loaded'; devices: number }
  | { id: number; type: 'ramped'; connected: number; failed: number; durationMs: number; connectLatency: LatencySummary }
  | { id: number; type: 'measure-started' }
  | { id: number; type: 'measured'; counters: GeneratorCounters; latency: LatencySummary; durationMs: number }
  | { id: number; type: 'stopped'; counters: GeneratorCounters }
  | { id: number; type: 'failed'; message: string };

export interface GeneratorProgress {
  type: 'progress';
  counters: GeneratorCounters;
}

export interface GeneratorSettings {
  mqttHost: string;
  mqttPort: number;
  /** Client source addresses, round robin (127.0.0.x). */
  localAddresses: string[];
  telemetryIntervalMs: number;
  keepAliveS: number;
  connectTimeoutMs: number;
  pubackTimeoutMs: number;
}
