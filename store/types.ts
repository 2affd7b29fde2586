/**
 * Storage ports. Every implementation runs the contract suites in
 * store/contract/ (SQLite for everything, or InfluxDB for telemetry and rollups: influx-telemetry.ts).
 *
 * The registry, twin and dead-letter stores are synchronous: they are small,
 * always embedded, and read on hot paths (the broker authenticates against
 * the registry). The telemetry store is asynchronous because production
 * implementations talk to a server.
 */
import type {
  Ack,
  Alert,
  AlertEvent,
  AlertSeverity,
  AlertState,
  AlertSubjectKind,
  AlertTransition,
  CommandState,
  CommandType,
  DispatchState,
  DispatchTarget,
  DeviceType,
} from '../protocol/index.ts';

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

/** One metric's rollups as one array per field: index i of every array is bucket i, in time order. */
export interface RollupColumns {
  metric: string;
  bucketStartMs: number[];
  min: number[];
  max: number[];
  mean: number[];
  last: number[];
  count: number[];
  devicesReporting: number[];
  devicesTotal: number[];
}

/** Rollups (in metric, time order) as columns per metric; what implementations without a faster path answer queryRollupColumns with. */
export function rollupsToColumns(rollups: readonly Rollup[]): RollupColumns[] {
  const out: RollupColumns[] = [];
  let columns: RollupColumns | undefined;
  for (const r of rollups) {
    if (columns?.metric !== r.metric) {
      columns = { metric: r.metric, bucketStartMs: [], min: [], max: [], mean: [], last: [], count: [], devicesReporting: [], devicesTotal: [] };
      out.push(columns);
    }
    columns.bucketStartMs.push(r.bucketStartMs);
    columns.min.push(r.min);
    columns.max.push(r.max);
    columns.mean.push(r.mean);
    columns.last.push(r.last);
    columns.count.push(r.count);
    columns.devicesReporting.push(r.devicesReporting);
    columns.devicesTotal.push(r.devicesTotal);
  }
  return out;
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
  /**
   * The same rollups as columns, one entry per metric in metric order: what
   * charts read, built without an object per bucket where the
   * implementation can (a site's day at one minute is ten thousand buckets).
   */
  queryRollupColumns(query: RollupQuery): Promise<RollupColumns[]>;
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
 * What a rule says about one subject at one time. `fire`: the condition
 * started to hold (after its duration); `clear`: it stopped holding (past
 * its hysteresis). A rule sends fire and clear alternately per subject.
 */
export interface RuleSignal {
  ruleId: string;
  severity: AlertSeverity;
  subjectKind: AlertSubjectKind;
  subjectId: string;
  signal: 'fire' | 'clear';
  atMs: number;
  /** The filled-in summary (fire only; kept from the alert on clear). */
  summary: string;
  value: number | null;
  labels: Record<string, string>;
  /**
   * Flapping window: a fire within this long after the alert was resolved
   * reopens it; a rule's resolution is told to integrations only once it has
   * held this long (a reopening within it cancels that, so integrations see
   * neither).
   */
  flapWindowMs: number;
}

/**
 * What a rule remembers about one subject between evaluations, so that a
 * restart neither forgets since when a condition holds nor fires twice.
 * A subject with no record is idle (condition not holding).
 */
export interface RuleSubjectState {
  ruleId: string;
  subjectId: string;
  /** pending: the condition holds but not yet for its duration; active: it fired and has not cleared. */
  status: 'pending' | 'active';
  /** Since when the condition has held. */
  sinceMs: number;
  /** Rule-specific memory (e.g. the last value and its time for a frozen-value rule); at most 1 KiB as JSON. */
  data: Record<string, number | string | boolean | null>;
}

export interface RuleSubjectKey {
  ruleId: string;
  subjectId: string;
}

export interface AlertQuery {
  state?: AlertState | 'open';
  severity?: AlertSeverity;
  subjectId?: string;
  ruleId?: string;
  limit: number;
  /** Newest first by id; pass the smallest id of a page for the next one. */
  beforeId?: string;
}

export interface AlertWithTransitions extends Alert {
  /** Oldest first. */
  transitions: AlertTransition[];
}

/**
 * Alerts, their transitions, rule state and the notification outbox, kept
 * together so that one transaction stores a rule's decision, the alert's
 * transition and what integrations must be told: a crash keeps all or none.
 *
 * Lifecycle, enforced here whoever calls (ingest's rules, control's
 * operators, another process): at most one open alert per (rule, subject);
 * firing → acknowledged → resolved, or firing → resolved; a resolved alert
 * that fires again within its flapping window is reopened (the same id).
 */
export interface AlertStore {
  /**
   * Applies signals in order and saves or deletes rule subject states, in
   * one transaction. For each signal:
   * - fire, no open alert: reopens the latest alert of (rule, subject) when
   *   it was resolved less than flapWindowMs before atMs (transition
   *   `reopened`, told to integrations only if its resolution was told),
   *   else opens a new one (`fired`);
   * - fire, an open alert: nothing (it is already open);
   * - clear, an open alert: resolves it by `rule` (`resolved`, told to
   *   integrations once flapWindowMs has passed without a reopening);
   * - clear, no open alert (an operator resolved it): nothing.
   * Returns the transitions stored, oldest first.
   *
   * `save` is applied before `remove`, so a key in both ends removed (idle).
   * The two lists do not tell which came last; when a key changed more than
   * once, pass only its final state. Ending idle is the safe side of a
   * wrong guess: a condition must then hold its whole duration again, where
   * a stale saved state could fire early or never.
   */
  applyRuleResults(input: { signals: readonly RuleSignal[]; save?: readonly RuleSubjectState[]; remove?: readonly RuleSubjectKey[] }): AlertEvent[];
  /** Every saved rule subject state (read at start). */
  loadRuleStates(): RuleSubjectState[];
  /**
   * firing → acknowledged. Throws 'not-found'; 'conflict' when the alert is
   * already acknowledged or resolved. Told to integrations at once.
   */
  acknowledgeAlert(id: string, input: { actor: string; note: string | null; atMs: number }): AlertEvent;
  /**
   * Open → resolved by an operator, with a reason. Throws 'not-found';
   * 'conflict' when already resolved. Told to integrations at once. The rule
   * keeps its state: the condition must clear and hold again to raise an
   * alert again.
   */
  resolveAlert(id: string, input: { actor: string; reason: string; atMs: number }): AlertEvent;
  getAlert(id: string): AlertWithTransitions | undefined;
  /** Newest first (by id). */
  listAlerts(query: AlertQuery): Alert[];
  /** Open alerts (firing or acknowledged), newest first. */
  listOpenAlerts(): Alert[];
  countOpenAlerts(): { bySeverity: Record<AlertSeverity, number>; byState: Record<'firing' | 'acknowledged', number> };
  /**
   * Transitions stored after `afterSeq`, told to integrations or not, oldest
   * first, at most `limit`, each with the alert as it was right after it:
   * what a live view follows. Transitions pruned with old alerts are gone.
   */
  transitionsAfter(afterSeq: number, limit: number): AlertEvent[];
  /** The seq of the newest transition stored, 0 when there is none. */
  latestTransitionSeq(): number;
}

/** One notification of one transition to one integration. */
export interface Delivery {
  id: number;
  integration: string;
  event: AlertEvent;
  attempts: number;
  /** Not delivered before this time (backoff, Retry-After). */
  nextAttemptAtMs: number;
  lastError: string | null;
}

export type DeliveryState = 'pending' | 'delivered' | 'dead';

/**
 * The notification outbox. Transitions that integrations must be told
 * become deliveries, one per matching integration (routing is the
 * notifier's), and each delivery is retried until it succeeds or runs out of
 * attempts. A delivery is handed out only when every earlier delivery of the
 * same alert to the same integration is delivered or dead, so each
 * integration hears an alert's transitions in order.
 */
export interface AlertOutbox {
  /**
   * Transitions to be told and not routed yet, oldest first: told at once,
   * or a rule's resolution whose flapping window has passed by nowMs
   * without a reopening.
   */
  transitionsToRoute(nowMs: number, limit: number): AlertEvent[];
  /**
   * Creates the deliveries of transitions (none when no integration
   * matches) and marks them routed, in one transaction; a transition already
   * routed is skipped, so routing twice creates nothing twice.
   */
  routeTransitions(routes: readonly { seq: number; integrations: readonly string[] }[], nowMs: number): void;
  /** Pending deliveries due at nowMs, each the first pending one of its (alert, integration), oldest first. */
  dueDeliveries(nowMs: number, limit: number): Delivery[];
  markDelivered(id: number, atMs: number): void;
  /** Records a failed attempt: retried at nextAttemptAtMs, or dead when it is null. */
  markFailed(id: number, input: { atMs: number; error: string; nextAttemptAtMs: number | null }): void;
  /** Deliveries by integration and state. */
  countDeliveries(): Record<string, Record<DeliveryState, number>>;
  /** The earliest time a pending delivery or a held resolution becomes due, null when none. */
  nextDueAtMs(): number | null;
}

/** One step of a command's life, with the time it happened (platform clock). */
export interface CommandTransition {
  state: CommandState;
  atMs: number;
  /** The device's reason (rejected, completed), why it expired or failed, or what a resend was. */
  detail: string | null;
}

export interface StoredCommand {
  /** A UUID, also what the device acknowledges. */
  id: string;
  deviceId: string;
  type: CommandType;
  params: Record<string, unknown>;
  state: CommandState;
  createdAtMs: number;
  expiresAtMs: number;
  /** Publishes so far (the first send and every resend). */
  attempts: number;
  /** When the next (re)send is due while pending or sent; null otherwise. */
  nextAttemptAtMs: number | null;
  /** The device's reason on rejected or completed. */
  reason: string | null;
  /** What the device says it applied, when it differs from what was asked (Ack.applied). */
  applied: Record<string, number | string | null> | null;
  /** The dispatch this command belongs to, if any. */
  dispatchId: string | null;
  /** Oldest first. */
  transitions: CommandTransition[];
}

export interface NewCommand {
  id: string;
  deviceId: string;
  type: CommandType;
  params: Record<string, unknown>;
  expiresAtMs: number;
  dispatchId?: string | null;
  /**
   * With a key, creating is idempotent per (device, key): the same key and
   * the same `requestHash` return the command made the first time; the same
   * key with another hash is a 'conflict'.
   */
  idempotencyKey?: string | null;
  requestHash?: string | null;
}

export interface CommandQuery {
  deviceId?: string;
  state?: CommandState;
  dispatchId?: string;
  /** 1 to 1 000; 'invalid' otherwise. */
  limit: number;
  /**
   * Newest first; pass the last command's cursor of a page for the next page.
   * Opaque; a string the store did not return is 'invalid'.
   */
  before?: string;
}

/**
 * The command queue. Every command has a known fate: the store keeps its
 * state and every transition, so a restart picks up every unfinished
 * command, and an ack is applied once (a repeat, or one for a final state,
 * changes nothing).
 */
export interface CommandStore {
  /**
   * Stores a new command, pending, due at once (nextAttemptAtMs = nowMs).
   * Returns `created: false` with the existing command for a repeated
   * idempotency key with the same request; throws 'conflict' for the key
   * with another request, or an id that exists; 'invalid' for times that
   * are not integers or an expiry not after nowMs.
   */
  createCommand(command: NewCommand, nowMs: number): { command: StoredCommand; created: boolean };
  getCommand(id: string): StoredCommand | undefined;
  /** Newest first (by creation, then id); `next` is the cursor of the next page, null on the last. */
  listCommands(query: CommandQuery): { commands: StoredCommand[]; next: string | null };
  /**
   * Pending or sent commands whose next attempt is due at nowMs and whose
   * expiry has not passed, oldest first.
   */
  dueCommands(nowMs: number, limit: number): StoredCommand[];
  /**
   * Records a publish: attempts + 1, pending → sent (a resend stays sent,
   * with a transition saying which attempt), next attempt at
   * nextAttemptAtMs. Nothing happens when the command is no longer pending
   * or sent (an ack won the race) and it returns undefined, as for an
   * unknown id; otherwise returns the command as stored after the call.
   * A command keeps at most 50 transitions however often it is resent:
   * past a bound, a resend updates the latest `sent` transition instead of
   * adding one (`attempts` still counts every publish).
   */
  markSent(id: string, input: { atMs: number; nextAttemptAtMs: number }): StoredCommand | undefined;
  /**
   * Applies a device's ack, once: accepted (from pending or sent),
   * rejected (from pending or sent), completed (from pending, sent or
   * accepted: a short command may complete before its accepted ack
   * arrives). An ack from another device than the command's, for an unknown
   * command, or that does not move the state forward changes nothing and
   * returns undefined; otherwise returns the command after it.
   */
  applyAck(deviceId: string, ack: Ack, atMs: number): StoredCommand | undefined;
  /**
   * Pending or sent commands whose expiry has passed → expired; accepted
   * commands past their expiry by more than `completionGraceMs` (the
   * completion ack never came) → completed, with a detail saying so.
   * Returns the commands changed.
   */
  expireCommands(nowMs: number, completionGraceMs: number): StoredCommand[];
  /** Pending or sent → failed, with the reason (tries spent). Undefined when it was no longer pending or sent. */
  failCommand(id: string, input: { atMs: number; reason: string }): StoredCommand | undefined;
  /** The newest command (by creation, then id, as listCommands orders them) of each of these devices that has one: what the twin shows as desired. */
  latestCommandPerDevice(deviceIds: readonly string[]): Map<string, StoredCommand>;
  /** Commands by state. */
  countCommands(): Record<CommandState, number>;
}

/** What the allocation could do when the dispatch was planned (see dispatch/allocator.ts). */
export interface DispatchPlanRecord {
  feasible: boolean;
  availableW: number;
  shortfallW: number;
  marginW: number;
  marginWh: number;
  devicesUsed: number;
  /** The plan in plain words, for operators. */
  explanation: string;
}

export interface StoredDispatch {
  /** A UUID. */
  id: string;
  target: DispatchTarget;
  /** Positive: deliver to the grid; negative: absorb. */
  powerW: number;
  startAtMs: number;
  durationMs: number;
  state: DispatchState;
  allowPartial: boolean;
  createdAtMs: number;
  /** The plan made at creation. */
  plan: DispatchPlanRecord;
  /** What each dispatched battery is asked now (device id → W); the loop keeps it current. */
  setpoints: Record<string, number>;
  /** When the control loop last ran for it. */
  lastLoopAtMs: number | null;
  /** Why it was cancelled or failed. */
  reason: string | null;
  /** When it reached its current state. */
  updatedAtMs: number;
}

export interface NewDispatch {
  id: string;
  target: DispatchTarget;
  powerW: number;
  startAtMs: number;
  durationMs: number;
  allowPartial: boolean;
  plan: DispatchPlanRecord;
  setpoints: Record<string, number>;
}

/** One reading of the control loop: target against measured, for charts and for energy delivered. */
export interface DispatchSample {
  atMs: number;
  targetW: number;
  /** Sum of the measured power of the dispatched batteries that report. */
  measuredW: number;
  /** Share of the target backed by devices that accepted and report (0..1). */
  confidence: number;
  devicesReporting: number;
}

/**
 * Dispatches, their current setpoints and their tracking samples. The loop
 * resumes from here after a restart: which dispatches are running, what
 * each battery was asked, when the loop last ran.
 */
export interface DispatchStore {
  /** Stores a new dispatch, `scheduled` (its start may be now). Throws 'conflict' for an existing id, 'invalid' for bad figures. */
  createDispatch(dispatch: NewDispatch, nowMs: number): StoredDispatch;
  getDispatch(id: string): StoredDispatch | undefined;
  /** Newest first (by creation, then id); `next` is the cursor of the next page, null on the last. */
  listDispatches(query: { state?: DispatchState; limit: number; before?: string }): { dispatches: StoredDispatch[]; next: string | null };
  /** Dispatches the loop must run at nowMs: scheduled ones whose start has come, and active ones. */
  runningDispatches(nowMs: number): StoredDispatch[];
  /**
   * Updates what the loop decided, in one transaction: state (forward only:
   * scheduled → active → completed, either → cancelled or failed; 'conflict'
   * otherwise), setpoints, lastLoopAtMs, reason. Returns the dispatch after it.
   */
  updateDispatch(
    id: string,
    change: { state?: DispatchState; setpoints?: Record<string, number>; lastLoopAtMs?: number; reason?: string | null },
    nowMs: number,
  ): StoredDispatch;
  /** Appends a sample; at most MAX_DISPATCH_SAMPLES are kept per dispatch (the oldest go first). */
  addDispatchSample(id: string, sample: DispatchSample): void;
  /** Samples in time order, at most `limit`, from `fromMs` when given. */
  listDispatchSamples(id: string, query: { fromMs?: number; limit: number }): DispatchSample[];
}

/**
 * Operator roles, each including the one before: a viewer reads everything
 * but secrets and the audit log; an operator also sends commands,
 * dispatches and acknowledges and resolves alerts; an admin also
 * provisions, revokes and rotates devices, manages tokens and sites, and
 * reads the audit log.
 */
export const OPERATOR_ROLES = ['viewer', 'operator', 'admin'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export function roleAtLeast(role: OperatorRole, needed: OperatorRole): boolean {
  return OPERATOR_ROLES.indexOf(role) >= OPERATOR_ROLES.indexOf(needed);
}

/** Characters of a token name (UTF-16 units), which the audit log shows as the actor. */
export const MAX_TOKEN_NAME_CHARS = 64;

/** An API token as listed: never the token itself (only its hash is stored). */
export interface ApiToken {
  /** A UUID. */
  id: string;
  /** Unique among tokens that are not revoked; shown in the audit log. */
  name: string;
  role: OperatorRole;
  createdAtMs: number;
  /** Last successful use (kept at most to the minute, so reads do not write on every request). */
  lastUsedAtMs: number | null;
  expiresAtMs: number | null;
  revokedAtMs: number | null;
}

/** Whether a token may be used at nowMs: not revoked and not expired. */
export function isTokenActive(token: Pick<ApiToken, 'revokedAtMs' | 'expiresAtMs'>, nowMs: number): boolean {
  return token.revokedAtMs === null && (token.expiresAtMs === null || token.expiresAtMs > nowMs);
}

export interface TokenStore {
  /**
   * Stores a token by the hash of its secret (`hashTokenSecret(token)`:
   * SHA-256, lowercase hex; the token itself is never stored). Throws
   * 'conflict' when a token that is not revoked (expired or not) has the
   * name, or any token has the id or the secret hash; 'invalid' for a bad
   * id (a UUID), name (1..64 printable characters), role, secret hash or
   * times (expiry not after nowMs), writing nothing.
   */
  createToken(input: { id: string; name: string; role: OperatorRole; secretHash: string; expiresAtMs: number | null }, nowMs: number): ApiToken;
  /**
   * The active token (not revoked, and not expired at nowMs: expiresAtMs >
   * nowMs) whose secret hashes to `secretHash` (hashTokenSecret),
   * undefined otherwise. Records the use (at most once a minute per token,
   * so a burst of requests writes once). One keyed lookup: it runs on
   * every request.
   */
  authenticate(secretHash: string, nowMs: number): ApiToken | undefined;
  /** Every token, newest first, revoked ones included. */
  listTokens(): ApiToken[];
  /** The token with this id, revoked or expired ones included (see isTokenActive); undefined when unknown. Records no use. */
  getToken(id: string): ApiToken | undefined;
  /** Revokes at once; false when unknown or already revoked. */
  revokeToken(id: string, nowMs: number): boolean;
}

/** One state-changing call, or one refused call, as the audit log keeps it. */
export interface AuditRecord {
  atMs: number;
  /** The token's name (`bootstrap` for the configured admin token), null when no valid token was given. */
  actor: string | null;
  role: OperatorRole | null;
  /** The caller's address. */
  address: string;
  /** `METHOD /route/pattern`, e.g. `POST /api/v1/devices/:id/commands`. */
  action: string;
  /** The id the call acts on, when it has one (device, alert, dispatch, token). */
  target: string | null;
  /** A summary of the body with secrets removed, at most 1 KiB as JSON (a store cuts a longer one, see SqliteAudit). */
  summary: Record<string, unknown> | null;
  /** The HTTP status answered. */
  status: number;
  /** `ok`, `refused` (401, 403, 429) or `failed` (any other 4xx/5xx). */
  outcome: 'ok' | 'refused' | 'failed';
}

export interface StoredAuditRecord extends AuditRecord {
  id: number;
}

/** Append-only: nothing edits or deletes a record but retention. */
export interface AuditStore {
  appendAudit(records: readonly AuditRecord[]): void;
  /** Newest first; `beforeId` pages. Times: from inclusive, to exclusive. */
  listAudit(query: { actor?: string; action?: string; target?: string; fromMs?: number; toMs?: number; limit: number; beforeId?: number }): StoredAuditRecord[];
  /** Deletes records older than the retention; returns how many. */
  pruneAudit(nowMs: number, retentionMs: number): number;
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
