/**
 * The digital twin: latest known state of every device, in memory, loaded
 * from the twin store at start. The pipeline applies accepted messages to it
 * and the batch writer saves the states of a batch's devices with the batch,
 * so what the store says is never older than what was acknowledged.
 *
 * Presence follows the broker's connection events, not the devices' own
 * word: a device is online from its connection's `connected` event until the
 * connection ends (or the broker restarts), and stale while connected but
 * silent for longer than the stale bound. Telemetry from a device whose
 * presence was never known also shows it connected (ingest missed the
 * event, e.g. on its first start beside a running broker). A status
 * `{"online": false}` published live (a last will) ends presence too; a
 * retained status replayed at subscription time changes nothing about it.
 *
 * State is keyed by device, so it can be partitioned by device id later.
 */
import type { Status, PresenceEvent, TelemetrySample } from '../protocol/index.ts';
import type { DeviceState, Presence } from '../store/types.ts';

export interface TwinOptions {
  /** Most distinct metric names one device may have; beyond it telemetry is refused (see wouldExceedMetrics). */
  maxMetricsPerDevice: number;
}

export class Twin {
  private readonly states = new Map<string, DeviceState>();
  private dirty = new Set<string>();
  private lastBrokerStartMs = -Infinity;

  constructor(
    initial: readonly DeviceState[] = [],
    private readonly options: TwinOptions = { maxMetricsPerDevice: Infinity },
  ) {
    for (const state of initial) this.states.set(state.deviceId, { ...state, metrics: { ...state.metrics } });
  }

  private stateOf(deviceId: string): DeviceState {
    let state = this.states.get(deviceId);
    if (!state) {
      state = {
        deviceId,
        lastTs: null,
        lastSeenMs: null,
        lastSeq: null,
        metrics: {},
        presence: 'offline',
        presenceSinceMs: null,
        status: null,
      };
      this.states.set(deviceId, state);
    }
    return state;
  }

  private setPresence(state: DeviceState, presence: Presence, sinceMs: number): void {
    if (state.presence === presence && state.presenceSinceMs !== null) return;
    state.presence = presence;
    state.presenceSinceMs = sinceMs;
    this.dirty.add(state.deviceId);
  }

  /**
   * True when the samples would take the device past the cap on distinct
   * metric names (names it already has do not count again). Runs for every
   * message: when every name is known, which is the usual case, it
   * allocates nothing.
   */
  wouldExceedMetrics(deviceId: string, samples: readonly TelemetrySample[]): boolean {
    const known = this.states.get(deviceId)?.metrics;
    let added: Set<string> | undefined;
    for (const sample of samples) {
      for (const name in sample.metrics) {
        if (known !== undefined && Object.hasOwn(known, name)) continue;
        (added ??= new Set()).add(name);
      }
    }
    if (added === undefined) return false;
    return (known === undefined ? 0 : Object.keys(known).length) + added.size > this.options.maxMetricsPerDevice;
  }

  /** Merges samples; metrics keep the value of the newest sample that carried them. */
  applyTelemetry(deviceId: string, samples: readonly TelemetrySample[], receivedAtMs: number): void {
    const state = this.stateOf(deviceId);
    for (const sample of samples) {
      if (state.lastTs !== null && sample.ts < state.lastTs) continue;
      state.lastTs = sample.ts;
      state.lastSeq = sample.seq;
      Object.assign(state.metrics, sample.metrics);
    }
    state.lastSeenMs = receivedAtMs;
    // Telemetry revives a stale device; an offline one only when its presence
    // was never known (ingest missed its connected event). After a disconnect
    // event, only a connected event brings it back: a sample delivered late
    // must not undo the disconnect.
    if (state.presence === 'stale' || (state.presence === 'offline' && state.presenceSinceMs === null)) {
      this.setPresence(state, 'online', receivedAtMs);
    }
    this.dirty.add(deviceId);
  }

  applyStatus(deviceId: string, status: Status, receivedAtMs: number, retained: boolean): void {
    const state = this.stateOf(deviceId);
    state.status = status;
    if (!retained && !status.online) this.setPresence(state, 'offline', receivedAtMs);
    this.dirty.add(deviceId);
  }

  /**
   * A connection event from the broker; one older than the current presence
   * is ignored. Its broker run counts as a broker start (which the broker's
   * heartbeat may not have told yet).
   */
  applyPresence(event: PresenceEvent): void {
    this.applyBrokerStart(event.brokerStartedAtMs);
    const state = this.stateOf(event.deviceId);
    if (state.presenceSinceMs !== null && event.ts < state.presenceSinceMs) return;
    if (event.connected) {
      this.setPresence(state, 'online', event.ts);
      state.lastSeenMs = Math.max(state.lastSeenMs ?? 0, event.ts);
    } else {
      this.setPresence(state, 'offline', event.ts);
    }
  }

  /**
   * The broker started at `startedAtMs`: every connection it had before is
   * gone, so devices not seen connecting since are offline. Repeated
   * heartbeats of the same broker run change nothing.
   */
  applyBrokerStart(startedAtMs: number): void {
    if (startedAtMs <= this.lastBrokerStartMs) return;
    this.lastBrokerStartMs = startedAtMs;
    for (const state of this.states.values()) {
      if (state.presence !== 'offline' && (state.presenceSinceMs ?? -Infinity) < startedAtMs) {
        this.setPresence(state, 'offline', startedAtMs);
      }
    }
  }

  /**
   * Marks online devices silent for longer than `staleAfterMs` stale (since
   * the moment they became so); returns how many changed.
   */
  markStale(nowMs: number, staleAfterMs: number): number {
    let changed = 0;
    for (const state of this.states.values()) {
      if (state.presence !== 'online') continue;
      const heardMs = Math.max(state.lastSeenMs ?? -Infinity, state.presenceSinceMs ?? -Infinity);
      if (heardMs >= nowMs - staleAfterMs) continue;
      this.setPresence(state, 'stale', Number.isFinite(heardMs) ? heardMs + staleAfterMs : nowMs);
      changed++;
    }
    return changed;
  }

  get(deviceId: string): DeviceState | undefined {
    return this.states.get(deviceId);
  }

  all(): IterableIterator<DeviceState> {
    return this.states.values();
  }

  forget(deviceId: string): void {
    this.states.delete(deviceId);
    this.dirty.delete(deviceId);
  }

  /** Puts back a device's state as stored (or forgets it), dropping what memory had on top. */
  restore(deviceId: string, stored: DeviceState | undefined): void {
    this.dirty.delete(deviceId);
    if (stored) this.states.set(deviceId, { ...stored, metrics: { ...stored.metrics } });
    else this.states.delete(deviceId);
  }

  /**
   * Copies of the states changed since they were last taken (for saving),
   * all of them or only those of `deviceIds`, and clears their marks.
   */
  takeDirty(deviceIds?: Iterable<string>): DeviceState[] {
    const out: DeviceState[] = [];
    const take = (id: string): void => {
      if (!this.dirty.delete(id)) return;
      const state = this.states.get(id);
      if (state) out.push({ ...state, metrics: { ...state.metrics } });
    };
    if (deviceIds === undefined) {
      const all = this.dirty;
      this.dirty = new Set();
      for (const id of all) {
        const state = this.states.get(id);
        if (state) out.push({ ...state, metrics: { ...state.metrics } });
      }
    } else {
      for (const id of deviceIds) take(id);
    }
    return out;
  }

  /** Marks states as changed again (their save failed and must be retried). */
  markDirty(deviceIds: Iterable<string>): void {
    for (const id of deviceIds) if (this.states.has(id)) this.dirty.add(id);
  }
}
