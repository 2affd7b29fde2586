/**
 * The door's limits: how many connections a source address, and the broker
 * as a whole, may hold, and how failed authentications slow down and then
 * shut out the address and the device id they came from.
 *
 * - `ConnectionLimits` counts connections from their CONNECT (once admitted)
 *   until their socket closes. A CONNECT that is waiting out a delay holds
 *   its slot, so the per-address cap also bounds how many guesses one
 *   address can have in flight.
 * - `FailureThrottle` keeps, per key (a source address, a device id), the
 *   failures of the current window: a fixed window that starts with the
 *   key's first failure and lasts `failureWindowMs`. After n failures in the
 *   window the next CONNECT's answer waits
 *   `n <= freeFailures ? 0 : min(maxFailureDelayMs, failureDelayMs × 2^(n − freeFailures − 1))`
 *   (defaults: 0, 0, 0, then 100 ms, 200 ms, … 3.2 s, 5 s);
 *   at the limit, CONNECTs are refused without checking the secret until the
 *   window ends. State is a Map in least-recently-failed order, pruned of
 *   ended windows on a timer and capped at `maxTrackedKeys` (the least
 *   recently failed key is evicted first).
 */
import type { MutableBrokerCounters } from './counters.ts';

export interface ThrottleOptions {
  /** Connections (admitted CONNECTs whose socket is still open) from one source address; default 1,000 (a site or NAT holds many devices). */
  maxConnectionsPerAddress?: number;
  /**
   * Whether connections from the machine itself (loopback: the platform's
   * own services, a simulated fleet run beside it) are left out of the
   * per-address cap; they still count against the total. Default true.
   */
  exemptLoopbackFromAddressCap?: boolean;
  /** Connections in total; default 100,000. */
  maxConnections?: number;
  /** Failures in a window after which the next CONNECT is still answered without delay; default 3. */
  freeFailures?: number;
  /** Delay after the first failure beyond `freeFailures`, doubling with each further one; default 100 ms. */
  failureDelayMs?: number;
  /** Longest delay; default 5,000 ms. */
  maxFailureDelayMs?: number;
  /** Failures of one device id in a window after which its CONNECTs are refused unchecked; default 20. */
  maxFailures?: number;
  /**
   * Failures from one source address in a window after which its CONNECTs
   * are refused unchecked; default 100. Higher than `maxFailures` because an
   * address can be a site's NAT: one device retrying with a revoked secret
   * locks out its own id after `maxFailures` (its refusals then stop
   * counting), without shutting the site's other devices out.
   */
  maxFailuresPerAddress?: number;
  /** Length of a key's failure window, from its first failure; default 60,000 ms. */
  failureWindowMs?: number;
  /** Addresses and ids tracked at most; the least recently failed is evicted. Default 100,000. */
  maxTrackedKeys?: number;
}

export type ThrottleLimits = Required<ThrottleOptions>;

export const THROTTLE_DEFAULTS: ThrottleLimits = {
  maxConnectionsPerAddress: 1_000,
  exemptLoopbackFromAddressCap: true,
  maxConnections: 100_000,
  freeFailures: 3,
  failureDelayMs: 100,
  maxFailureDelayMs: 5_000,
  maxFailures: 20,
  maxFailuresPerAddress: 100,
  failureWindowMs: 60_000,
  maxTrackedKeys: 100_000,
};

/** Defaults filled in; problems appended to `problems` (prefixed `throttle.`). */
export function resolveThrottle(options: ThrottleOptions | undefined, problems: string[]): ThrottleLimits {
  const limits: ThrottleLimits = { ...THROTTLE_DEFAULTS };
  for (const [name, value] of Object.entries(options ?? {})) {
    if (!(name in THROTTLE_DEFAULTS)) {
      problems.push(`unknown option throttle.${name}`);
      continue;
    }
    if (value === undefined) continue;
    if (name === 'exemptLoopbackFromAddressCap') {
      if (typeof value !== 'boolean') problems.push(`throttle.${name} must be true or false, got ${String(value)}`);
      else limits.exemptLoopbackFromAddressCap = value;
      continue;
    }
    // freeFailures may be 0 (delay from the first failure); everything else is at least 1.
    const min = name === 'freeFailures' ? 0 : 1;
    if (!Number.isInteger(value) || (value as number) < min) {
      problems.push(`throttle.${name} must be an integer >= ${min}, got ${String(value)}`);
      continue;
    }
    limits[name as Exclude<keyof ThrottleLimits, 'exemptLoopbackFromAddressCap'>] = value as number;
  }
  if (limits.maxFailureDelayMs < limits.failureDelayMs) {
    problems.push(`throttle.maxFailureDelayMs (${limits.maxFailureDelayMs}) must be >= throttle.failureDelayMs (${limits.failureDelayMs})`);
  }
  return limits;
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export type Admission = 'admitted' | 'too-many-per-address' | 'too-many';

/** An address of this machine (after normalizeAddress). */
export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

export class ConnectionLimits {
  private readonly perAddress = new Map<string, number>();
  private readonly held = new WeakMap<object, string>();
  private total = 0;

  constructor(private readonly limits: Pick<ThrottleLimits, 'maxConnections' | 'maxConnectionsPerAddress' | 'exemptLoopbackFromAddressCap'>) {}

  /**
   * Takes a slot for `holder` (a client) from `address`, or says which cap
   * is reached (see exemptLoopbackFromAddressCap).
   */
  admit(holder: object, address: string): Admission {
    if (this.held.has(holder)) return 'admitted';
    const fromAddress = this.perAddress.get(address) ?? 0;
    const exempt = this.limits.exemptLoopbackFromAddressCap && isLoopback(address);
    if (fromAddress >= this.limits.maxConnectionsPerAddress && !exempt) return 'too-many-per-address';
    if (this.total >= this.limits.maxConnections) return 'too-many';
    this.perAddress.set(address, fromAddress + 1);
    this.total += 1;
    this.held.set(holder, address);
    return 'admitted';
  }

  /** Gives back `holder`'s slot, if it has one; call when its socket closes. */
  release(holder: object): void {
    const address = this.held.get(holder);
    if (address === undefined) return;
    this.held.delete(holder);
    this.total -= 1;
    const left = (this.perAddress.get(address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(address, left);
    else this.perAddress.delete(address);
  }

  get connections(): number {
    return this.total;
  }
}

/** Where a CONNECT comes from: its source address and, when it names one, the device id it claims. */
export interface ThrottleKeys {
  address: string;
  deviceId: string | undefined;
}

interface Window {
  startedAtMs: number;
  failures: number;
}

export class FailureThrottle {
  // Keys 'a:<address>' and 'd:<device id>'; Map order = least recently failed first.
  private readonly windows = new Map<string, Window>();
  private readonly pruneTimer: NodeJS.Timeout;

  constructor(
    private readonly limits: ThrottleLimits,
    private readonly clock: () => number,
    private readonly counters: MutableBrokerCounters,
  ) {
    this.pruneTimer = setInterval(() => this.prune(), limits.failureWindowMs).unref();
  }

  /** True while the address or the id has used up its failures for the window. */
  isLockedOut(keys: ThrottleKeys): boolean {
    return this.lockedOut(this.failuresOf(keys));
  }

  /** How long to hold the answer to a CONNECT from these keys: the longer of the two delays. */
  delayMs(keys: ThrottleKeys): number {
    const { address, device } = this.failuresOf(keys);
    return this.delayFor(Math.max(address, device));
  }

  /** isLockedOut and delayMs at once, reading the keys' windows once (what each CONNECT asks first). */
  check(keys: ThrottleKeys): { lockedOut: boolean; delayMs: number } {
    const failures = this.failuresOf(keys);
    if (this.lockedOut(failures)) return { lockedOut: true, delayMs: 0 };
    return { lockedOut: false, delayMs: this.delayFor(Math.max(failures.address, failures.device)) };
  }

  recordFailure(keys: ThrottleKeys): void {
    const now = this.clock();
    this.fail(addressKey(keys.address), now);
    if (keys.deviceId !== undefined) this.fail(deviceKey(keys.deviceId), now);
  }

  /** A successful CONNECT: the id's failures are forgotten (the address's are not). */
  succeeded(deviceId: string): void {
    this.windows.delete(deviceKey(deviceId));
    this.counters.throttleTrackedKeys = this.windows.size;
  }

  /** Drops the keys whose window has ended. */
  prune(): void {
    const now = this.clock();
    for (const [key, window] of this.windows) {
      if (this.ended(window, now)) this.windows.delete(key);
    }
    this.counters.throttleTrackedKeys = this.windows.size;
  }

  stop(): void {
    clearInterval(this.pruneTimer);
  }

  get size(): number {
    return this.windows.size;
  }

  /** Failures in the current windows of the address and of the id (0 without one). */
  private failuresOf(keys: ThrottleKeys): { address: number; device: number } {
    const now = this.clock();
    const address = this.current(addressKey(keys.address), now)?.failures ?? 0;
    const device = keys.deviceId === undefined ? 0 : (this.current(deviceKey(keys.deviceId), now)?.failures ?? 0);
    return { address, device };
  }

  private lockedOut(failures: { address: number; device: number }): boolean {
    return failures.address >= this.limits.maxFailuresPerAddress || failures.device >= this.limits.maxFailures;
  }

  private delayFor(failures: number): number {
    const { freeFailures, failureDelayMs, maxFailureDelayMs } = this.limits;
    if (failures <= freeFailures) return 0;
    // Capped before the power, so a large count does not overflow to Infinity.
    return Math.min(maxFailureDelayMs, failureDelayMs * 2 ** Math.min(failures - freeFailures - 1, 32));
  }

  private ended(window: Window, now: number): boolean {
    // A clock that went backwards ends the window too, rather than extending it.
    return now - window.startedAtMs >= this.limits.failureWindowMs || now < window.startedAtMs;
  }

  private current(key: string, now: number): Window | undefined {
    const window = this.windows.get(key);
    if (window === undefined || !this.ended(window, now)) return window;
    this.windows.delete(key);
    this.counters.throttleTrackedKeys = this.windows.size;
    return undefined;
  }

  private fail(key: string, now: number): void {
    const window = this.current(key, now);
    // Re-inserted at the end: the map stays in least-recently-failed order.
    this.windows.delete(key);
    this.windows.set(key, window === undefined ? { startedAtMs: now, failures: 1 } : { ...window, failures: window.failures + 1 });
    while (this.windows.size > this.limits.maxTrackedKeys) {
      const oldest = this.windows.keys().next();
      if (oldest.done === true) break;
      this.windows.delete(oldest.value);
      this.counters.throttleKeysEvicted += 1;
    }
    this.counters.throttleTrackedKeys = this.windows.size;
  }
}

const addressKey = (address: string): string => `a:${address}`;
const deviceKey = (deviceId: string): string => `d:${deviceId}`;
