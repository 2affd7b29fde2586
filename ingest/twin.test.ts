/**
 * Presence in the twin tells the truth: connection events decide online and
 * offline, silence turns a connected device stale, a broker restart ends
 * every connection it had, and a retained status replayed at subscription
 * time changes nothing.
 */
import { describe, expect, it } from 'vitest';
import type { PresenceEvent } from '../protocol/index.ts';
import { Twin } from './twin.ts';

const BROKER_START = 1_000;
const event = (deviceId: string, connected: boolean, ts: number): PresenceEvent => ({
  deviceId,
  connected,
  reason: connected ? 'connected' : 'connection-lost',
  ts,
  brokerStartedAtMs: BROKER_START,
});
const sample = (ts: number) => [{ ts, seq: ts, metrics: { powerW: 1 } }];

describe('twin presence', () => {
  it('is online from the connected event and offline from the disconnect, with the time of each', () => {
    const twin = new Twin();
    twin.applyPresence(event('d1', true, 2_000));
    expect(twin.get('d1')).toMatchObject({ presence: 'online', presenceSinceMs: 2_000 });
    twin.applyPresence(event('d1', false, 5_000));
    expect(twin.get('d1')).toMatchObject({ presence: 'offline', presenceSinceMs: 5_000 });
  });

  it('ignores an event older than the presence it would change', () => {
    const twin = new Twin();
    twin.applyPresence(event('d1', true, 5_000));
    twin.applyPresence(event('d1', false, 4_000));
    expect(twin.get('d1')?.presence).toBe('online');
  });

  it('turns a connected device stale after silence, and online again on telemetry', () => {
    const twin = new Twin();
    twin.applyPresence(event('d1', true, 2_000));
    twin.applyTelemetry('d1', sample(3_000), 3_000);
    expect(twin.markStale(12_999, 10_000)).toBe(0);
    expect(twin.markStale(13_001, 10_000)).toBe(1);
    expect(twin.get('d1')).toMatchObject({ presence: 'stale', presenceSinceMs: 13_000 });
    twin.applyTelemetry('d1', sample(14_000), 14_000);
    expect(twin.get('d1')).toMatchObject({ presence: 'online', presenceSinceMs: 14_000 });
  });

  it('does not let a retained status replay say online or offline; a live will says offline', () => {
    const twin = new Twin();
    twin.applyPresence(event('d1', true, 2_000));
    twin.applyStatus('d1', { online: false }, 3_000, true);
    expect(twin.get('d1')?.presence).toBe('online');
    twin.applyStatus('d1', { online: false }, 4_000, false);
    expect(twin.get('d1')).toMatchObject({ presence: 'offline', presenceSinceMs: 4_000 });
    twin.applyStatus('d1', { online: true }, 5_000, true);
    expect(twin.get('d1')?.presence).toBe('offline');
  });

  it('sets every device connected before a broker start offline; devices that connected since stay online', () => {
    const twin = new Twin([
      { deviceId: 'old', lastTs: 1, lastSeenMs: 1, lastSeq: 1, metrics: {}, presence: 'online', presenceSinceMs: 500, status: null },
      { deviceId: 'quiet', lastTs: 1, lastSeenMs: 1, lastSeq: 1, metrics: {}, presence: 'stale', presenceSinceMs: 600, status: null },
    ]);
    twin.applyPresence(event('new', true, 1_500));
    twin.applyBrokerStart(1_000);
    expect(twin.get('old')).toMatchObject({ presence: 'offline', presenceSinceMs: 1_000 });
    expect(twin.get('quiet')).toMatchObject({ presence: 'offline', presenceSinceMs: 1_000 });
    expect(twin.get('new')?.presence).toBe('online');
    // The same broker's next heartbeat changes nothing.
    twin.applyPresence(event('old', true, 2_000));
    twin.applyBrokerStart(1_000);
    expect(twin.get('old')?.presence).toBe('online');
  });

  it('shows a device of unknown presence online on telemetry, but a late sample never undoes a disconnect', () => {
    const twin = new Twin();
    twin.applyTelemetry('d0', sample(1_000), 1_000);
    expect(twin.get('d0')).toMatchObject({ presence: 'online', presenceSinceMs: 1_000 });
    twin.applyPresence(event('d1', false, 5_000));
    twin.applyTelemetry('d1', sample(5_500), 5_500);
    expect(twin.get('d1')).toMatchObject({ presence: 'offline', presenceSinceMs: 5_000 });
    twin.applyPresence(event('d1', true, 6_000));
    expect(twin.get('d1')).toMatchObject({ presence: 'online', presenceSinceMs: 6_000 });
  });

  it('takes dirty states of given devices only, and marks failed saves dirty again', () => {
    const twin = new Twin();
    twin.applyTelemetry('a', sample(1), 1);
    twin.applyTelemetry('b', sample(1), 1);
    expect(twin.takeDirty(['a']).map((s) => s.deviceId)).toEqual(['a']);
    expect(twin.takeDirty().map((s) => s.deviceId)).toEqual(['b']);
    expect(twin.takeDirty()).toEqual([]);
    twin.markDirty(['a']);
    expect(twin.takeDirty().map((s) => s.deviceId)).toEqual(['a']);
  });
});
