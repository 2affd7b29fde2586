/**
 * The fleet's fault schedule: which faults are waiting for their start,
 * which are in force, on which devices, and until when. It owns no timer:
 * the fleet's single loop calls `runDue` and sleeps no longer than
 * `nextEventAtMs`, and every instant comes from the fleet's clock, so a
 * test that drives the clock drives the faults.
 *
 * Several faults of one kind and target may coexist (overlapping windows,
 * or one injected twice): each ends on its own, and a device shows the
 * kind while any fault covering it is in force.
 */
import type { Logger } from 'pino';
import type { DeviceType } from '../protocol/index.ts';
import { SimError } from './errors.ts';
import type { DeviceFaultState, Metrics } from './fault-effects.ts';
import {
  DEFAULT_RECONNECT_AFTER_SECONDS,
  MAX_FAULT_SPECS,
  faultAppliesTo,
  faultKey,
  formatFaultSpec,
  parseFaultSpec,
  validateFaultSpec,
  type FaultKind,
  type FaultSpec,
} from './faults.ts';
import type { OfflineReason } from './sim-device.ts';

/** Most faults scheduled or in force at once. */
export const MAX_FLEET_FAULTS = MAX_FAULT_SPECS;

/** What a fault target resolves against: a device's identity. */
export interface FaultTargetInfo {
  readonly id: string;
  readonly type: DeviceType;
  readonly siteId: string;
}

/** A device as the schedule acts on it. */
export interface FaultTargetDevice extends FaultTargetInfo {
  readonly faults: DeviceFaultState;
  setOffline(offline: boolean, reason: OfflineReason): void;
}

export type TargetResolution<T> =
  | { ok: true; devices: T[] }
  | { ok: false; code: 'invalid-options' | 'unknown-device'; problem: string };

/**
 * The devices a fault acts on: the device its target names, or every device
 * of the site its target names that the kind applies to (a device id wins
 * over a site id of the same name). A target naming nothing, or only
 * devices the kind does not apply to, is a problem.
 */
export function resolveFaultTarget<T extends FaultTargetInfo>(
  spec: Pick<FaultSpec, 'kind' | 'target'>,
  byId: ReadonlyMap<string, T>,
  bySite: ReadonlyMap<string, readonly T[]>,
): TargetResolution<T> {
  const device = byId.get(spec.target);
  if (device) {
    if (faultAppliesTo(spec.kind, device.type)) return { ok: true, devices: [device] };
    return { ok: false, code: 'invalid-options', problem: `${spec.kind} applies to batteries only; ${device.id} is a ${device.type}` };
  }
  const siteDevices = bySite.get(spec.target);
  if (!siteDevices) return { ok: false, code: 'unknown-device', problem: `${spec.target} is no simulated device or site` };
  const devices = siteDevices.filter((candidate) => faultAppliesTo(spec.kind, candidate.type));
  if (devices.length === 0) return { ok: false, code: 'invalid-options', problem: `site ${spec.target} has no device ${spec.kind} applies to (batteries only)` };
  return { ok: true, devices };
}

/** Devices grouped by site, for `resolveFaultTarget`. */
export function groupBySite<T extends FaultTargetInfo>(devices: Iterable<T>): Map<string, T[]> {
  const bySite = new Map<string, T[]>();
  for (const device of devices) {
    const list = bySite.get(device.siteId);
    if (list) list.push(device);
    else bySite.set(device.siteId, [device]);
  }
  return bySite;
}

/** A spec as given (string or object), checked; throws SimError 'invalid-options' listing every problem. */
export function toFaultSpec(spec: FaultSpec | string): FaultSpec {
  if (typeof spec === 'string') {
    const parsed = parseFaultSpec(spec);
    if (!parsed.ok) throw new SimError('invalid-options', `invalid fault: ${parsed.problems.join('; ')}`);
    return parsed.value;
  }
  // Checked as an unknown shape: callers in plain JavaScript or reading JSON may pass anything.
  if (typeof spec !== 'object' || spec === null) throw new SimError('invalid-options', 'invalid fault: not a fault spec');
  const problems = validateFaultSpec(spec);
  if (problems.length > 0) throw new SimError('invalid-options', `invalid fault: ${problems.join('; ')}`);
  // A copy, so a caller changing its object later does not change the schedule.
  const copy: FaultSpec = { kind: spec.kind, target: spec.target };
  if (spec.startSeconds !== undefined) copy.startSeconds = spec.startSeconds;
  if (spec.endSeconds !== undefined) copy.endSeconds = spec.endSeconds;
  if (spec.reconnectAfterSeconds !== undefined) copy.reconnectAfterSeconds = spec.reconnectAfterSeconds;
  return copy;
}

interface FaultEntry<D> {
  id: number;
  key: string;
  spec: FaultSpec;
  devices: D[];
  /** Wall-clock start. */
  startAtMs: number;
  /** Wall-clock end; Infinity until cleared. A disconnect's own reconnect deadline is folded in when it starts. */
  endAtMs: number;
  active: boolean;
}

export interface FleetFaultsOptions<D extends FaultTargetDevice> {
  devices: ReadonlyMap<string, D>;
  /** Wall clock when the fleet started: `@seconds` count from here. */
  wallStartMs: number;
  /** The device's reading from the physics at a wall-clock instant (the site advanced to it). */
  physicsReading: (device: D, wallNowMs: number) => Metrics;
  logger: Logger;
}

export class FleetFaults<D extends FaultTargetDevice> {
  private readonly options: FleetFaultsOptions<D>;
  private readonly bySite: Map<string, D[]>;
  private readonly entries = new Map<number, FaultEntry<D>>();
  private nextId = 0;

  constructor(options: FleetFaultsOptions<D>) {
    this.options = options;
    this.bySite = groupBySite(options.devices.values());
  }

  /** Faults in force now. */
  get activeCount(): number {
    let count = 0;
    for (const entry of this.entries.values()) if (entry.active) count += 1;
    return count;
  }

  /** Specs of the faults in force now, in the order they were added. */
  active(): FaultSpec[] {
    return [...this.entries.values()].filter((entry) => entry.active).map((entry) => ({ ...entry.spec }));
  }

  /**
   * Adds a fault: in force at once when its start is absent or past, else
   * scheduled. Throws SimError 'invalid-options' (bad spec, end already
   * past, too many faults, kind not applicable) or 'unknown-device'.
   */
  inject(given: FaultSpec | string, wallNowMs: number): FaultSpec {
    const { spec, devices } = this.resolve(given);
    if (spec.endSeconds !== undefined && this.atMs(spec.endSeconds) <= wallNowMs) {
      const nowSeconds = (wallNowMs - this.options.wallStartMs) / 1_000;
      throw new SimError(
        'invalid-options',
        `fault ${formatFaultSpec(spec)}: ends ${spec.endSeconds} s after the fleet started, which has passed (now ${nowSeconds.toFixed(3)} s)`,
      );
    }
    this.add(spec, devices, wallNowMs);
    this.runDue(wallNowMs);
    return spec;
  }

  /**
   * Schedules a fault of the fleet's options (validated with them). Its
   * start counts from the fleet's start, and is at the fleet's start when
   * absent; one whose end has passed by the time the loop runs is dropped.
   * Throws like `inject` for a spec that was not validated.
   */
  schedule(given: FaultSpec): void {
    const { spec, devices } = this.resolve(given);
    this.add(spec, devices, this.options.wallStartMs);
  }

  /**
   * Ends every fault of `kind` on `target`, in force or scheduled. Returns
   * false when there was none.
   */
  clear(kind: FaultKind, target: string, wallNowMs: number): boolean {
    const key = faultKey(kind, target);
    let found = false;
    for (const entry of this.entries.values()) {
      if (entry.key !== key) continue;
      found = true;
      this.end(entry, wallNowMs, 'cleared');
    }
    return found;
  }

  /** Starts and ends the faults due at `wallNowMs`. */
  runDue(wallNowMs: number): void {
    for (const entry of this.entries.values()) {
      if (!entry.active && entry.startAtMs <= wallNowMs) {
        if (entry.endAtMs <= wallNowMs) {
          this.entries.delete(entry.id);
          this.options.logger.warn({ fault: formatFaultSpec(entry.spec) }, 'fault ended before it could start; skipped');
          continue;
        }
        this.start(entry, wallNowMs);
      }
      if (entry.active && entry.endAtMs <= wallNowMs) this.end(entry, wallNowMs, 'ended');
    }
  }

  /** Wall-clock time of the next start or end; Infinity when nothing is scheduled. */
  nextEventAtMs(): number {
    let next = Infinity;
    for (const entry of this.entries.values()) next = Math.min(next, entry.active ? entry.endAtMs : entry.startAtMs);
    return next;
  }

  /** The checked spec and the devices it acts on; throws SimError like `inject`. */
  private resolve(given: FaultSpec | string): { spec: FaultSpec; devices: D[] } {
    const spec = toFaultSpec(given);
    const resolved = resolveFaultTarget(spec, this.options.devices, this.bySite);
    if (!resolved.ok) throw new SimError(resolved.code, `fault ${formatFaultSpec(spec)}: ${resolved.problem}`);
    return { spec, devices: resolved.devices };
  }

  private atMs(seconds: number): number {
    return this.options.wallStartMs + seconds * 1_000;
  }

  private add(spec: FaultSpec, devices: D[], wallNowMs: number): void {
    if (this.entries.size >= MAX_FLEET_FAULTS) {
      throw new SimError('invalid-options', `fault ${formatFaultSpec(spec)}: ${MAX_FLEET_FAULTS} faults are scheduled or in force already`);
    }
    const id = this.nextId++;
    this.entries.set(id, {
      id,
      key: faultKey(spec.kind, spec.target),
      spec,
      devices,
      startAtMs: spec.startSeconds === undefined ? wallNowMs : this.atMs(spec.startSeconds),
      endAtMs: spec.endSeconds === undefined ? Infinity : this.atMs(spec.endSeconds),
      active: false,
    });
  }

  private start(entry: FaultEntry<D>, wallNowMs: number): void {
    entry.active = true;
    const { kind } = entry.spec;
    if (kind === 'disconnect') {
      // The device comes back by itself after a while, or earlier when cleared.
      const afterS = entry.spec.reconnectAfterSeconds ?? DEFAULT_RECONNECT_AFTER_SECONDS;
      entry.endAtMs = Math.min(entry.endAtMs, wallNowMs + afterS * 1_000);
    }
    for (const device of entry.devices) {
      const started = device.faults.add(kind, entry.id, () => this.options.physicsReading(device, wallNowMs), wallNowMs);
      if (started && kind === 'disconnect') device.setOffline(true, 'fault');
    }
    this.options.logger.info(
      { fault: formatFaultSpec(entry.spec), devices: entry.devices.map((device) => device.id) },
      'fault in force',
    );
  }

  private end(entry: FaultEntry<D>, wallNowMs: number, how: 'cleared' | 'ended'): void {
    this.entries.delete(entry.id);
    if (!entry.active) {
      this.options.logger.info({ fault: formatFaultSpec(entry.spec) }, 'scheduled fault cancelled');
      return;
    }
    const { kind } = entry.spec;
    for (const device of entry.devices) {
      const ended = device.faults.remove(kind, entry.id);
      if (ended && kind === 'disconnect') device.setOffline(false, 'fault');
    }
    const afterSeconds = (wallNowMs - this.options.wallStartMs) / 1_000;
    this.options.logger.info({ fault: formatFaultSpec(entry.spec), afterSeconds }, how === 'cleared' ? 'fault cleared' : 'fault ended');
  }
}
