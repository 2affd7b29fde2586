/**
 * The command sender on a real SQLite queue, driven cycle by cycle with a
 * controlled clock (no sleeping): a command reaches a connected device at
 * once, waits (without spending a try) while its device is offline and goes
 * out when it comes back, is resent with backoff until answered, fails
 * after its tries, expires, and applies acks once; a sender started again
 * on the same file picks up what the first left unfinished.
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeCommand, encodeJson, type Ack } from '../protocol/index.ts';
import { openSqliteStore, type DeviceState, type Presence, type SqliteStore } from '../store/index.ts';
import { nextRetryDelayMs, startCommandSender, type CommandSender, type CommandSenderSettings } from './command-sender.ts';

const SETTINGS: Partial<CommandSenderSettings> = { pollMs: 3_600_000, firstRetryMs: 1_000, maxRetryMs: 8_000, maxAttempts: 4, completionGraceMs: 5_000 };

describe('command sender', () => {
  let store: SqliteStore;
  let nowMs: number;
  let published: Array<{ topic: string; payload: Buffer }>;
  let failPublish: boolean;
  const senders: CommandSender[] = [];

  beforeEach(() => {
    store = openSqliteStore({ file: ':memory:' });
    store.upsertSite({ id: 's1', region: 'north', name: 'One' });
    store.createDevice({ id: 'bat-1', type: 'battery', siteId: 's1', secretHash: 'h' }, 0);
    nowMs = 1_000_000;
    published = [];
    failPublish = false;
  });
  afterEach(async () => {
    for (const sender of senders.splice(0)) await sender.stop();
    store.close();
  });

  function start(): CommandSender {
    const sender = startCommandSender({
      commands: store.commands,
      twins: store,
      publish: async (topic, payload) => {
        if (failPublish) throw new Error('broker gone');
        published.push({ topic, payload });
      },
      clock: () => nowMs,
      logger: pino({ level: 'silent' }),
      settings: SETTINGS,
    });
    senders.push(sender);
    return sender;
  }
  const setPresence = (presence: Presence) => {
    const state: DeviceState = { deviceId: 'bat-1', lastTs: null, lastSeenMs: null, lastSeq: null, metrics: {}, presence, presenceSinceMs: nowMs, status: null };
    store.saveDeviceStates([state]);
  };
  const create = (ttlMs = 60_000) =>
    store.commands.createCommand({ id: randomUUID(), deviceId: 'bat-1', type: 'setPower', params: { powerW: 2000 }, expiresAtMs: nowMs + ttlMs }, nowMs).command;
  const ack = (commandId: string, status: Ack['status'], extra: Partial<Ack> = {}) => encodeJson({ commandId, status, ...extra });

  it('sends a command to a connected device at once, as the wire contract says, and applies its acks once', async () => {
    setPresence('online');
    const sender = start();
    const command = create();
    await sender.cycleNow();
    expect(published).toHaveLength(1);
    expect(published[0]!.topic).toBe('vpp/v1/devices/bat-1/commands');
    const decoded = decodeCommand(published[0]!.payload);
    expect(decoded.ok && decoded.value).toEqual({ id: command.id, type: 'setPower', params: { powerW: 2000 }, expiresAt: command.expiresAtMs });
    expect(store.commands.getCommand(command.id)).toMatchObject({ state: 'sent', attempts: 1, nextAttemptAtMs: nowMs + 1_000 });

    sender.handleAck('bat-1', ack(command.id, 'accepted', { applied: { powerW: 1500 }, reason: 'clipped' }));
    sender.handleAck('bat-1', ack(command.id, 'accepted'));
    sender.handleAck('bat-2', ack(command.id, 'completed'));
    sender.handleAck('bat-1', Buffer.from('{"commandId": 3}'));
    expect(store.commands.getCommand(command.id)).toMatchObject({ state: 'accepted', applied: { powerW: 1500 }, nextAttemptAtMs: null });
    sender.handleAck('bat-1', ack(command.id, 'completed'));
    expect(store.commands.getCommand(command.id)!.transitions.map((t) => t.state)).toEqual(['pending', 'sent', 'accepted', 'completed']);
    expect(sender.counters()).toMatchObject({ sent: 1, acksApplied: 2, acksIgnored: 2, acksInvalid: 1 });
    // Accepted and completed: never sent again.
    nowMs += 30_000;
    await sender.cycleNow();
    expect(published).toHaveLength(1);
  });

  it('holds a command while its device is offline, spending no try, and sends it when the device is back', async () => {
    setPresence('offline');
    const sender = start();
    const command = create();
    await sender.cycleNow();
    nowMs += 10_000;
    await sender.cycleNow();
    expect(published).toEqual([]);
    expect(store.commands.getCommand(command.id)).toMatchObject({ state: 'pending', attempts: 0 });
    expect(sender.counters().heldForOfflineDevice).toBe(2);
    setPresence('stale');
    await sender.cycleNow();
    expect(published).toHaveLength(1);
    expect(store.commands.getCommand(command.id)).toMatchObject({ state: 'sent', attempts: 1 });
  });

  it('resends an unanswered command with doubling backoff, then fails it after its tries', async () => {
    setPresence('online');
    const sender = start();
    const command = create(3_600_000);
    await sender.cycleNow();
    const sentAt: number[] = [nowMs];
    for (let attempt = 1; attempt < 4; attempt++) {
      // Not before its backoff.
      nowMs += nextRetryDelayMs(attempt, { firstRetryMs: 1_000, maxRetryMs: 8_000 }) - 1;
      await sender.cycleNow();
      expect(published).toHaveLength(attempt);
      nowMs += 1;
      await sender.cycleNow();
      expect(published).toHaveLength(attempt + 1);
      sentAt.push(nowMs);
    }
    expect(sentAt.map((t, i) => (i === 0 ? 0 : t - sentAt[i - 1]!))).toEqual([0, 1_000, 2_000, 4_000]);
    nowMs += 8_000;
    await sender.cycleNow();
    expect(store.commands.getCommand(command.id)).toMatchObject({ state: 'failed', attempts: 4 });
    expect(sender.counters()).toMatchObject({ sent: 1, resent: 3, failed: 1 });
  });

  it('expires a command its device never accepted, and completes an accepted one whose completion never came', async () => {
    setPresence('offline');
    const sender = start();
    const waiting = create(5_000);
    setPresence('online');
    const running = create(5_000);
    await sender.cycleNow();
    sender.handleAck('bat-1', ack(running.id, 'accepted'));
    setPresence('offline');
    // `waiting` was sent too (the device was online); answer neither further.
    nowMs += 5_000;
    await sender.cycleNow();
    expect(store.commands.getCommand(waiting.id)!.state).toBe('expired');
    expect(store.commands.getCommand(running.id)!.state).toBe('accepted');
    nowMs += 5_000;
    await sender.cycleNow();
    expect(store.commands.getCommand(running.id)).toMatchObject({ state: 'completed' });
    expect(sender.counters()).toMatchObject({ expired: 1, completedWithoutAck: 1 });
  });

  it('keeps a command due when the broker refuses the publish, and sends it at the next cycle', async () => {
    setPresence('online');
    const sender = start();
    const command = create();
    failPublish = true;
    await sender.cycleNow();
    expect(store.commands.getCommand(command.id)).toMatchObject({ state: 'pending', attempts: 0 });
    failPublish = false;
    await sender.cycleNow();
    expect(store.commands.getCommand(command.id)).toMatchObject({ state: 'sent', attempts: 1 });
    expect(sender.counters().publishFailures).toBe(1);
  });

  it('picks up after a restart: a second sender on the same queue resends what was unanswered and nothing that was', async () => {
    setPresence('online');
    const first = start();
    const answered = create();
    const unanswered = create();
    await first.cycleNow();
    first.handleAck('bat-1', ack(answered.id, 'accepted'));
    await first.stop();
    published = [];
    const second = start();
    nowMs += 1_000;
    await second.cycleNow();
    expect(published.map((m) => (decodeCommand(m.payload) as { ok: true; value: { id: string } }).value.id)).toEqual([unanswered.id]);
  });
});
