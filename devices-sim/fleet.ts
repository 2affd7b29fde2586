/**
 * A running fleet of simulated devices: connects every device, then drives
 * all of them from one timer loop.
 *
 * Time: simulated time = startTimeMs + (wallNow - wallStart) × speed, where
 * wallStart is when `startFleet` was called. `telemetryIntervalMs` is in
 * simulated time, so devices send every telemetryIntervalMs / speed wall
 * milliseconds (at least MIN_REAL_INTERVAL_MS). Telemetry `ts` is the wall
 * clock: the platform treats samples as live data.
 *
 * Lifecycle: `startFleet` resolves once every device is connected, has
 * published its status and subscribed to its commands, or rejects with
 * SimError 'connect-failed' after closing every connection it opened.
 * `stop()` stops the loop and disconnects every device cleanly; the fleet
 * cannot be restarted.
 *
 * Commands: each device carries out its own (sim-device.ts, commands.ts);
 * the loop ends them at their expiry, or once a device has been offline for
 * `commandGraceMs`, and lets a battery following a setpoint republish its
 * status when the physics clips it.
 *
 * Faults (`injectFault`, `FleetOptions.faults`): kept by a FleetFaults
 * schedule that the same loop runs, on the same clock; see faults.ts for
 * their written form and fault-effects.ts for what they do to readings.
 */
import type { Logger } from 'pino';
import { SimError } from './errors.ts';
import { formatFaultSpec, quote, validateFaultSpec, MAX_FAULT_SPECS, type FaultKind, type FaultSpec } from './faults.ts';
import { FleetFaults, groupBySite, resolveFaultTarget } from './fleet-faults.ts';
import { DEFAULT_REGIONS, planSiteParams, type SimDeviceSpec, type SimSite } from './fleet-plan.ts';
import { deriveSeed, hashString } from './random.ts';
import { SimDevice, type FleetCounters, type SimDeviceContext } from './sim-device.ts';
import { simulatedTime } from './sim-time.ts';
import { SimulatedSite } from './site.ts';

export interface FleetOptions {
  mqttUrl: string;
  /** Devices with the secrets the platform issued for them. */
  devices: ReadonlyArray<SimDeviceSpec & { secret: string }>;
  /** Seed of the site parameters and of the devices' timing; the one given to planFleet. */
  seed: number;
  /** How many times faster than the wall clock the physics runs. */
  speed: number;
  /** Telemetry interval in simulated time. */
  telemetryIntervalMs: number;
  /** Simulated time at the start; the wall clock when absent. */
  startTimeMs?: number;
  /** Wall clock; Date.now when absent. */
  clock?: () => number;
  logger: Logger;
  /** QoS of telemetry; 1 when absent. Status and acks always use QoS 1. */
  qos?: 0 | 1;
  /**
   * Sites of the devices, for their regions (sun and climate). When absent,
   * a site id of planFleet's form `site-NNNN` gets the region planFleet gives
   * it with the default regions; any other id gets a region from its hash.
   */
  sites?: readonly SimSite[];
  /** Samples a device keeps while offline; 2000 when absent. */
  bufferLimit?: number;
  /** How long a device waits for its first connection; 10 s when absent. */
  connectTimeoutMs?: number;
  /** Devices connecting at the same time during start; 100 when absent. */
  connectConcurrency?: number;
  /**
   * Wall time a device's connection may be lost before it drops the command
   * in force and goes back to local control; 60 000 when absent.
   */
  commandGraceMs?: number;
  /**
   * Faults scheduled at start: each begins `startSeconds` after startFleet
   * was called (when the loop starts, if absent or already past) and ends at
   * `endSeconds` when given. At most MAX_FAULT_SPECS.
   */
  faults?: readonly FaultSpec[];
}

export interface FleetStats {
  /** Devices connected now. */
  connected: number;
  /** Telemetry samples delivered to the broker (a buffered batch counts its samples). */
  published: number;
  /** Samples held in offline buffers now. */
  buffered: number;
  /** Samples handed to MQTT and not yet acknowledged. */
  inFlight: number;
  /** Samples dropped from full buffers. */
  dropped: number;
  acksSent: number;
  commandsReceived: number;
  commandsIgnored: number;
  /** Connections lost other than by setOffline or stop. */
  connectionsLost: number;
  /** Sample slots skipped because the loop ran late (a sign of an overloaded machine). */
  missedSamples: number;
  /** Faults in force now (scheduled ones not yet begun are not counted). */
  faultsActive: number;
}

export interface Fleet {
  /** Stops the loop and disconnects every device cleanly (retained offline status, then DISCONNECT). Idempotent. */
  stop(): Promise<void>;
  stats(): FleetStats;
  /**
   * Takes a device offline (connection dropped without DISCONNECT, so the
   * broker publishes its will; samples are buffered) or back online
   * (reconnects, flushes the buffer). Throws SimError 'unknown-device'.
   */
  setOffline(deviceId: string, offline: boolean): void;
  /**
   * Injects a fault, written (`overheat:site-0001@30-90`) or built. It is in
   * force at once unless its start is still ahead. Throws SimError
   * 'invalid-options' (bad spec, end already past, a kind the target's
   * devices do not have, too many faults, fleet stopped) or 'unknown-device'
   * (a target naming no simulated device or site), naming the problem.
   */
  injectFault(spec: FaultSpec | string): void;
  /**
   * Ends every fault of `kind` on `target` (exactly as it was given), in
   * force or scheduled. Returns false when there was none.
   */
  clearFault(kind: FaultKind, target: string): boolean;
  /** Faults in force now, as they were given. */
  activeFaults(): FaultSpec[];
}

/** Shortest wall-clock telemetry interval, whatever the speed. */
export const MIN_REAL_INTERVAL_MS = 5;
/** Default of `FleetOptions.commandGraceMs`. */
export const DEFAULT_COMMAND_GRACE_MS = 60_000;
/** The loop wakes at least this often, to end expired commands on time. */
const MAX_LOOP_SLEEP_MS = 250;
/**
 * Shortest sleep of the loop is a quarter of the interval, within these
 * bounds: each pass visits every device, so a fleet whose first samples are
 * spread over the interval is served in a few passes per interval rather
 * than one pass per device.
 */
const MIN_LOOP_SLEEP_BOUNDS_MS = { lower: 1, upper: 20 } as const;
const STOP_TIMEOUT_MS = 5_000;
const MAX_FAILURES_LISTED = 10;

function regionOfSiteId(siteId: string): string {
  const match = /^site-(\d+)$/.exec(siteId);
  const index = match ? Number(match[1]) - 1 : hashString(siteId);
  return DEFAULT_REGIONS[index % DEFAULT_REGIONS.length]!;
}

function validateOptions(options: FleetOptions): void {
  const problems: string[] = [];
  if (!(options.speed > 0) || !Number.isFinite(options.speed)) problems.push(`speed must be a positive number, got ${options.speed}`);
  if (!(options.telemetryIntervalMs > 0) || !Number.isFinite(options.telemetryIntervalMs)) {
    problems.push(`telemetryIntervalMs must be a positive number, got ${options.telemetryIntervalMs}`);
  }
  if (!Number.isInteger(options.seed)) problems.push(`seed must be an integer, got ${options.seed}`);
  if (options.qos !== undefined && options.qos !== 0 && options.qos !== 1) problems.push(`qos must be 0 or 1, got ${String(options.qos)}`);
  if (options.bufferLimit !== undefined && !(Number.isInteger(options.bufferLimit) && options.bufferLimit >= 0)) {
    problems.push(`bufferLimit must be a non-negative integer, got ${options.bufferLimit}`);
  }
  if (options.commandGraceMs !== undefined && !(Number.isFinite(options.commandGraceMs) && options.commandGraceMs >= 0)) {
    problems.push(`commandGraceMs must be a non-negative number, got ${options.commandGraceMs}`);
  }
  for (const name of ['connectTimeoutMs', 'connectConcurrency'] as const) {
    const value = options[name];
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) problems.push(`${name} must be a positive integer, got ${value}`);
  }
  const ids = new Set<string>();
  for (const device of options.devices) {
    if (ids.has(device.id)) problems.push(`device ${device.id} is listed twice`);
    ids.add(device.id);
  }
  problems.push(...faultProblems(options));
  if (problems.length > 0) throw new SimError('invalid-options', `invalid fleet options: ${problems.join('; ')}`);
}

/** Problems of `options.faults`: each spec, and whether its target names devices the kind applies to. */
function faultProblems(options: FleetOptions): string[] {
  const faults = options.faults;
  if (faults === undefined) return [];
  if (!Array.isArray(faults)) return ['faults must be an array of fault specs'];
  if (faults.length > MAX_FAULT_SPECS) return [`faults has ${faults.length} specs, at most ${MAX_FAULT_SPECS}`];
  const byId = new Map(options.devices.map((device) => [device.id, device]));
  const bySite = groupBySite(options.devices);
  const problems: string[] = [];
  faults.forEach((spec: FaultSpec, index) => {
    const invalid = typeof spec === 'object' && spec !== null ? validateFaultSpec(spec) : ['not a fault spec'];
    if (invalid.length > 0) {
      problems.push(...invalid.map((problem) => `faults[${index}]: ${problem}`));
      return;
    }
    const resolved = resolveFaultTarget(spec, byId, bySite);
    if (!resolved.ok) problems.push(`faults[${index}] ${quote(formatFaultSpec(spec))}: ${resolved.problem}`);
  });
  return problems;
}

/** Runs `task` over `items` with at most `concurrency` tasks at a time. */
async function forEachLimited<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  validateOptions(options);
  const clock = options.clock ?? Date.now;
  const log = options.logger.child({ component: 'devices-sim' });
  const wallStartMs = clock();
  const startTimeMs = options.startTimeMs ?? wallStartMs;
  const toSimulatedTime = (wallMs: number): number => simulatedTime(wallMs, wallStartMs, startTimeMs, options.speed);
  const realIntervalMs = Math.max(MIN_REAL_INTERVAL_MS, options.telemetryIntervalMs / options.speed);

  const counters: FleetCounters = {
    connected: 0,
    published: 0,
    dropped: 0,
    acksSent: 0,
    commandsReceived: 0,
    commandsIgnored: 0,
    connectionsLost: 0,
  };
  let missedSamples = 0;

  const regionBySite = new Map((options.sites ?? []).map((site) => [site.id, site.region]));
  const sites = new Map<string, SimulatedSite>();
  const siteOf = (siteId: string): SimulatedSite => {
    let site = sites.get(siteId);
    if (!site) {
      const region = regionBySite.get(siteId) ?? regionOfSiteId(siteId);
      site = new SimulatedSite(planSiteParams(options.seed, { id: siteId, region }), startTimeMs);
      sites.set(siteId, site);
    }
    return site;
  };

  const devices = new Map<string, SimDevice>();
  for (const spec of options.devices) {
    // Each device gets its own reconnect period (2–4 s), so a fleet does not
    // reconnect in lock-step after a broker restart.
    const jitter = deriveSeed(options.seed, `reconnect:${spec.id}`) / 4_294_967_296;
    const context: SimDeviceContext = {
      mqttUrl: options.mqttUrl,
      qos: options.qos ?? 1,
      bufferLimit: options.bufferLimit ?? 2_000,
      reconnectPeriodMs: Math.round(2_000 + 2_000 * jitter),
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      keepaliveS: 30,
      counters,
      clock,
      toSimulatedTime,
      commandGraceMs: options.commandGraceMs ?? DEFAULT_COMMAND_GRACE_MS,
      statusIntervalMs: realIntervalMs,
      logger: log,
    };
    devices.set(spec.id, new SimDevice(spec, siteOf(spec.siteId), context));
  }

  const failures: Array<{ id: string; error: Error }> = [];
  await forEachLimited([...devices.values()], options.connectConcurrency ?? 100, async (device) => {
    try {
      await device.start();
    } catch (err) {
      failures.push({ id: device.id, error: err as Error });
    }
  });
  if (failures.length > 0) {
    await Promise.all([...devices.values()].map((device) => device.stop(STOP_TIMEOUT_MS)));
    const listed = failures.slice(0, MAX_FAILURES_LISTED).map(({ id, error }) => `${id}: ${error.message}`);
    const more = failures.length > MAX_FAILURES_LISTED ? `; and ${failures.length - MAX_FAILURES_LISTED} more` : '';
    throw new SimError(
      'connect-failed',
      `${failures.length} of ${devices.size} devices failed to connect: ${listed.join('; ')}${more}`,
      { cause: new AggregateError(failures.map((failure) => failure.error)) },
    );
  }

  // First samples spread over the first interval by a seeded offset.
  const loopStartMs = clock();
  for (const device of devices.values()) {
    const offset = deriveSeed(options.seed, `offset:${device.id}`) / 4_294_967_296;
    device.nextSampleAtMs = loopStartMs + offset * realIntervalMs;
  }

  const faults = new FleetFaults({
    devices,
    wallStartMs,
    physicsReading: (device, wallNowMs) => {
      device.site.advanceTo(toSimulatedTime(wallNowMs));
      return device.site.readMetrics(device.type);
    },
    logger: log,
  });
  for (const spec of options.faults ?? []) faults.schedule(spec);

  const minLoopSleepMs = Math.min(MIN_LOOP_SLEEP_BOUNDS_MS.upper, Math.max(MIN_LOOP_SLEEP_BOUNDS_MS.lower, realIntervalMs / 4));
  let timer: NodeJS.Timeout | undefined;
  /** Wall-clock time the pending timer fires at, so an earlier fault event can bring it forward. */
  let timerAtMs = Infinity;
  let running = true;
  const runLoop = (): void => {
    timer = undefined;
    timerAtMs = Infinity;
    if (!running) return;
    const wallNowMs = clock();
    const simNowMs = toSimulatedTime(wallNowMs);
    // Faults first, so a sample taken in this pass already shows (or no longer shows) them.
    faults.runDue(wallNowMs);
    let wakeAtMs = Math.min(wallNowMs + MAX_LOOP_SLEEP_MS, faults.nextEventAtMs());
    for (const device of devices.values()) {
      // Commands end before the sample, so a sample after expiry reflects local control.
      device.checkCommand(wallNowMs);
      if (device.nextSampleAtMs <= wallNowMs) {
        device.site.advanceTo(simNowMs);
        device.takeSample();
        // Right after the physics moved: whether what a setpoint really does changed enough to say so.
        device.reportControl(wallNowMs);
        device.nextSampleAtMs += realIntervalMs;
        if (device.nextSampleAtMs <= wallNowMs) {
          // Late by a whole interval: skip the missed slots rather than send a burst.
          const missed = Math.floor((wallNowMs - device.nextSampleAtMs) / realIntervalMs) + 1;
          missedSamples += missed;
          device.nextSampleAtMs += missed * realIntervalMs;
        }
      }
      wakeAtMs = Math.min(wakeAtMs, device.nextSampleAtMs, device.nextCommandEventAtMs ?? Infinity);
    }
    const sleepMs = Math.max(minLoopSleepMs, wakeAtMs - clock());
    timerAtMs = clock() + sleepMs;
    timer = setTimeout(runLoop, sleepMs);
  };
  /** Brings the loop forward when a fault was scheduled to start before the loop would next wake. */
  const wakeForFaults = (): void => {
    const nextAtMs = faults.nextEventAtMs();
    if (!running || !timer || nextAtMs >= timerAtMs) return;
    clearTimeout(timer);
    const sleepMs = Math.max(0, nextAtMs - clock());
    timerAtMs = clock() + sleepMs;
    timer = setTimeout(runLoop, sleepMs);
  };
  runLoop();
  log.info({ devices: devices.size, sites: sites.size, speed: options.speed, realIntervalMs }, 'fleet started');

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        running = false;
        if (timer) clearTimeout(timer);
        await Promise.all([...devices.values()].map((device) => device.stop(STOP_TIMEOUT_MS)));
        log.info({ published: counters.published, dropped: counters.dropped, acksSent: counters.acksSent }, 'fleet stopped');
      })();
      return stopping;
    },
    stats() {
      let buffered = 0;
      let inFlight = 0;
      for (const device of devices.values()) {
        buffered += device.bufferedCount;
        inFlight += device.inFlightCount;
      }
      return {
        connected: counters.connected,
        published: counters.published,
        buffered,
        inFlight,
        dropped: counters.dropped,
        acksSent: counters.acksSent,
        commandsReceived: counters.commandsReceived,
        commandsIgnored: counters.commandsIgnored,
        connectionsLost: counters.connectionsLost,
        missedSamples,
        faultsActive: faults.activeCount,
      };
    },
    setOffline(deviceId, offline) {
      const device = devices.get(deviceId);
      if (!device) throw new SimError('unknown-device', `no simulated device ${deviceId}`);
      device.setOffline(offline, 'manual');
    },
    injectFault(spec) {
      if (!running) throw new SimError('invalid-options', 'the fleet is stopped');
      faults.inject(spec, clock());
      wakeForFaults();
    },
    clearFault(kind, target) {
      if (!running) return false;
      return faults.clear(kind, target, clock());
    },
    activeFaults() {
      return faults.active();
    },
  };
}
