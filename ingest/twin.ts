/**
 * The digital twin: latest known state of every device, in memory, loaded
 * from the twin store at start. The pipeline applies accepted messages to it
 * and the batch writer saves the states that changed in the same batch as the
 * telemetry, so what the store says is never older than what was acknowledged.
 */
import type { Status, TelemetrySample } from '../protocol/index.ts';
import type { DeviceState } from '../store/types.ts';

export class Twin {
  private readonly states = new Map<string, DeviceState>();
  private dirty = new Set<string>();

  constructor(initial: readonly DeviceState[] = []) {
    for (const state of initial) this.states.set(state.deviceId, state);
  }

  private stateOf(deviceId: string): DeviceState {
    let state = this.states.get(deviceId);
    if (!state) {
      state = { deviceId, lastTs: null, lastSeenMs: null, lastSeq: null, metrics: {}, online: false, status: null };
      this.states.set(deviceId, state);
    }
    return state;
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
    // A device that sends telemetry is connected, whatever its last status said.
    state.online = true;
    this.dirty.add(deviceId);
  }

  applyStatus(deviceId: string, status: Status, receivedAtMs: number): void {
    const state = this.stateOf(deviceId);
    state.online = status.online;
    state.status = status;
    if (status.online) state.lastSeenMs = receivedAtMs;
    this.dirty.add(deviceId);
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

  /** Copies of the states changed since the last call (for saving), and clears the mark. */
  takeDirty(): DeviceState[] {
    const out: DeviceState[] = [];
    for (const id of this.dirty) {
      const state = this.states.get(id);
      if (state) out.push({ ...state, metrics: { ...state.metrics } });
    }
    this.dirty = new Set();
    return out;
  }
}
