/**
 * Storage ports. Every implementation runs the contract suites in
 * store/contract/ (embedded SQLite now; InfluxDB for telemetry later).
 *
 * The registry, twin and dead-letter stores are synchronous: they are small,
 * always embedded, and read on hot paths (the broker authenticates against
 * the registry). The telemetry store is asynchronous because production
 * implementations talk to a server.
 */
import type { DeviceType } from '../protocol/index.ts';

export interface Site {
  id: string;
  region: string;
  name: string;
}

export interface DeviceRecord {
  id: string;
  type: DeviceType;
  siteId: string;
  createdAtMs: number;
  /** Set when the device was revoked; a revoked device cannot connect. */
  revokedAtMs: number | null;
}

export interface NewDevice {
  id: string;
  type: DeviceType;
  siteId: string;
  /** Hash of the device secret (see store/credentials.ts); the secret itself is never stored. */
  secretHash: string;
}

/** Devices, sites and their credentials. */
export interface Registry {
  /** Creates or updates a site. */
  upsertSite(site: Site): void;
  getSite(id: string): Site | undefined;
  listSites(): Site[];
  /** Creates a device. Throws StoreError 'conflict' if the id exists, 'not-found' if the site does not. */
  createDevice(device: NewDevice, nowMs: number): DeviceRecord;
  /**
   * Replaces a device's secret hash at once: no grace for the old secret,
   * and a grace period in progress ends (the secret being replaced may be
   * the one that leaked). Never lifts a revocation: a revoked device stays
   * revoked whatever provisions it again. Throws 'not-found'.
   */
  resetDeviceSecret(id: string, secretHash: string): void;
  /**
   * Gives a device a new secret hash; the current one stays accepted while
   * the time is before `previousValidUntilMs` (the grace period, exclusive
   * end), then only the new one is. Rotating again during a grace period
   * replaces the previous hash with the then-current one (only one previous
   * secret is ever accepted). Throws 'not-found' for an unknown device,
   * 'conflict' for a revoked one, 'invalid' when previousValidUntilMs is not
   * an integer.
   */
  rotateDeviceSecret(id: string, secretHash: string, previousValidUntilMs: number): void;
  getDevice(id: string): DeviceRecord | undefined;
  /**
   * The secret hashes a device may connect with at `nowMs`: the current one
   * first, then the previous one while `nowMs < previousValidUntilMs`. Empty
   * for an unknown or revoked device. The broker calls it on every CONNECT,
   * so it must stay one keyed lookup.
   */
  getAcceptedSecretHashes(id: string, nowMs: number): string[];
  listDevices(filter?: { siteId?: string }): DeviceRecord[];
  /** Marks a device revoked; false when it does not exist or is already revoked. */
  revokeDevice(id: string, nowMs: number): boolean;
  /** Number of active devices per site, per region and in the fleet, for coverage. */
  countActiveDevices(): DeviceCounts;
  /**
   * A token that changes whenever the registry may have changed, also through
   * another process (it may change when nothing did). Lets readers skip
   * reloading an unchanged registry.
   */
  changeToken(): string;
}

export interface DeviceCounts {
  fleet: number;
  bySite: Map<string, number>;
  byRegion: Map<string, number>;
}

/** One stored telemetry sample. Writes are idempotent on (deviceId, ts). */
export interface TelemetryPoint {
  deviceId: string;
  ts: number;
  seq: number;
  metrics: Record<string, number>;
}

export type EntityKind = 'device' | 'site' | 'region' | 'fleet';

/**
 * A 1-minute (or coarser, when read back) summary of one metric of one
 * entity. For devices, count is the number of samples; for aggregates
 * (site/region/fleet) the values are sums over devices of each device's
 * per-minute mean (power adds up across devices) unless the metric is a
 * percentage, where they are means, and coverage says how many devices
 * reported out of how many exist.
 */
export interface Rollup {
  kind: EntityKind;
  entityId: string;
  metric: string;
  bucketStartMs: number;
  min: number;
  max: number;
  mean: number;
  last: number;
  count: number;
  /** Devices that reported in the bucket (aggregates only; 1 for a device). */
  devicesReporting: number;
  /** Active devices that exist under the entity (aggregates only; 1 for a device). */
  devicesTotal: number;
}

export interface TelemetryQuery {
  deviceId: string;
  fromMs: number;
  /** Exclusive. */
  toMs: number;
  /** Only these metrics; all when absent. */
  metrics?: string[];
  limit: number;
}

export interface RollupQuery {
  kind: EntityKind;
  entityId: string;
  fromMs: number;
  /** Exclusive. */
  toMs: number;
  metrics?: string[];
  /** Bucket width of the answer, a multiple of 60 000 ms; coarser buckets merge 1-minute rollups. */
  bucketMs: number;
}

export interface WriteResult {
  /** inserted[i] is false when points[i] was already stored (a redelivery). */
  inserted: boolean[];
}

/** Time series: raw telemetry and rollups. */
export interface TelemetryStore {
  /**
   * Stores points durably before resolving. Idempotent on (deviceId, ts): a
   * duplicate is not overwritten. Rejects the whole batch with 'invalid',
   * before writing any of it, when a point's ts or seq is not a safe integer
   * (e.g. seq = 1e20) or its metrics cannot be serialised.
   */
  writeTelemetry(points: readonly TelemetryPoint[]): Promise<WriteResult>;
  /** Upserts rollups on (kind, entityId, metric, bucketStartMs); a later write replaces an earlier one. */
  writeRollups(rollups: readonly Rollup[]): Promise<void>;
  /** Raw samples in time order, at most `limit`. */
  queryTelemetry(query: TelemetryQuery): Promise<TelemetryPoint[]>;
  /** Rollups in (metric, time) order. */
  queryRollups(query: RollupQuery): Promise<Rollup[]>;
  /** Resolves when the store can take writes; rejects with the reason otherwise. */
  checkHealth(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where a device stands, from the broker's connection events:
 * - online: connected, and heard from recently;
 * - stale: connected but silent for longer than the stale bound;
 * - offline: not connected (disconnected, will published, broker restarted,
 *   or never seen).
 */
export const PRESENCES = ['online', 'stale', 'offline'] as const;
export type Presence = (typeof PRESENCES)[number];

/** True while the device is connected: presence online or stale. */
export function isConnected(state: Pick<DeviceState, 'presence'>): boolean {
  return state.presence !== 'offline';
}

/** Latest known state of a device: its digital twin. */
export interface DeviceState {
  deviceId: string;
  /** Time of the newest sample (device clock). */
  lastTs: number | null;
  /** When the platform last heard from the device (platform clock). */
  lastSeenMs: number | null;
  lastSeq: number | null;
  /** Latest value of every metric ever reported. */
  metrics: Record<string, number>;
  /** Connected and heard from (online), connected but silent (stale), or not connected; see isConnected. */
  presence: Presence;
  /** Since when `presence` has held (platform clock), null when never known. */
  presenceSinceMs: number | null;
  /** The device's latest status message, as validated (known fields and bounded scalar extras only). */
  status: Record<string, unknown> | null;
}

export interface TwinStore {
  /**
   * Upserts whole states (the pipeline merges before writing). Throws
   * 'invalid', saving none of them, when a state's metrics or status cannot
   * be serialised (cyclic, absurdly deep, BigInt), a time or seq is not a
   * safe integer, or its presence is not one of PRESENCES.
   */
  saveDeviceStates(states: readonly DeviceState[]): void;
  getDeviceState(deviceId: string): DeviceState | undefined;
  listDeviceStates(deviceIds?: readonly string[]): DeviceState[];
}

export interface DeadLetter {
  receivedAtMs: number;
  topic: string;
  /** The MQTT client that published it, when known. */
  clientId: string | null;
  /** Machine-readable reason, e.g. 'not-json', 'schema', 'unknown-device', 'absurd-value', 'store-refused'. */
  reason: string;
  /** Human-readable detail; the store keeps at most its first 1,000 characters. */
  detail: string;
  /** The payload as received; the store keeps at most its first `maxPayloadBytes`. */
  payload: Buffer;
}

export interface StoredDeadLetter extends Omit<DeadLetter, 'payload'> {
  id: number;
  /** The stored (possibly truncated) payload. */
  payload: Buffer;
  /** Size of the payload as received, in bytes. */
  payloadBytes: number;
  /** SHA-256 of the payload as received, hex. */
  payloadSha256: string;
  /** True when `payload` holds only the first bytes of what was received. */
  truncated: boolean;
}

/** Bounds on what dead letters may occupy; bad input never fills the disk. */
export interface DeadLetterLimits {
  /** Stored bytes kept per payload; the rest is cut (size and hash of the whole are kept). */
  maxPayloadBytes: number;
  /**
   * Total bytes of stored letters (see storedDeadLetterBytes: payload, topic,
   * client id, reason and detail); beyond it the oldest letters are deleted,
   * at each add. The newest letter is always kept, so the total exceeds the
   * cap by at most one letter.
   */
  maxTotalBytes: number;
  /** Letters older than this are deleted by pruneDeadLetters. */
  retentionMs: number;
}

/**
 * What one stored letter counts against maxTotalBytes: its stored (cut)
 * payload and the UTF-8 bytes of its topic, client id, reason and detail.
 * Every field counts, so letters with empty payloads are bounded too.
 */
export function storedDeadLetterBytes(letter: Pick<DeadLetter, 'payload' | 'topic' | 'clientId' | 'reason' | 'detail'>): number {
  return (
    letter.payload.length +
    Buffer.byteLength(letter.topic) +
    Buffer.byteLength(letter.clientId ?? '') +
    Buffer.byteLength(letter.reason) +
    Buffer.byteLength(letter.detail)
  );
}

export interface DeadLetterStore {
  /** Stores the letters (truncated to the limits) and deletes the oldest beyond the total size cap. */
  addDeadLetters(letters: readonly DeadLetter[]): void;
  /**
   * Newest first; pass the smallest id of a page as `beforeId` for the next
   * page. With `maxBytes`, a letter is listed only while the stored payloads
   * listed, itself included, add up to at most `maxBytes`; the first letter
   * is listed whatever its size, so a page is never empty while letters
   * match.
   */
  listDeadLetters(query: { limit: number; reason?: string; beforeId?: number; maxBytes?: number }): StoredDeadLetter[];
  countDeadLettersByReason(): Record<string, number>;
  /** Deletes letters older than the retention; returns how many. */
  pruneDeadLetters(nowMs: number): number;
}

/**
 * - conflict, not-found: the request does not fit the stored state.
 * - unavailable: the store cannot serve anyone right now, whatever the
 *   request (busy, locked, disk full, I/O error, file cannot be opened or
 *   written, out of memory, connection closed, a damaged file); the same
 *   request may succeed later, so writers retry with backoff and never
 *   isolate a message for it.
 * - invalid: deterministic; the store refuses this request and will refuse
 *   it again (a value out of range, a constraint broken, a payload too big
 *   or that cannot be serialised, any error the store did not expect).
 *   Writers isolate the message that caused it and dead-letter it.
 */
export type StoreErrorCode = 'conflict' | 'not-found' | 'unavailable' | 'invalid';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}
