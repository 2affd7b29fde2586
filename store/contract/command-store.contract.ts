/**
 * Contract of CommandStore, run by every implementation against a fresh,
 * empty store per test: creation and idempotency, the checks of what
 * callers pass, the lifecycle (sent, accepted, rejected, completed,
 * expired, failed) with its transitions, acks applied once and only from
 * the command's device, due commands and resends with their bounded
 * history, listing with filters and cursors, the latest command per device
 * and the counts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Ack } from '../../protocol/index.ts';
import { StoreError, type CommandStore, type NewCommand, type StoredCommand } from '../types.ts';
import type { OpenStore } from './open-store.ts';

/** When the commands below are created, unless a test says otherwise. */
const T0 = 1_000;
/** Their expiry. */
const EXPIRES = 100_000;
/** Transitions a command keeps at most (CommandStore.markSent). */
const TRANSITION_BOUND = 50;

/** A UUID that sorts by n, for tests that care about the order of ids. */
function uuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

function newCommand(n: number, values: Partial<NewCommand> = {}): NewCommand {
  return { id: uuid(n), deviceId: 'dev-1', type: 'setPower', params: { powerW: 3_000 }, expiresAtMs: EXPIRES, ...values };
}

function expectStoreError(fn: () => unknown, code: StoreError['code']): StoreError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StoreError);
  expect((caught as StoreError).code).toBe(code);
  return caught as StoreError;
}

const ack = (commandId: string, status: Ack['status'], extra: Pick<Ack, 'reason' | 'applied'> = {}): Ack => ({ commandId, status, ...extra });

export function describeCommandStoreContract(name: string, open: OpenStore<CommandStore>): void {
  describe(`CommandStore contract: ${name}`, () => {
    let commands: CommandStore;
    let close: () => Promise<void>;

    beforeEach(async () => {
      ({ store: commands, close } = await open());
    });

    afterEach(async () => {
      await close();
    });

    /** Creates a command that must be new. */
    function create(n: number, values: Partial<NewCommand> = {}, nowMs = T0): StoredCommand {
      const { command, created } = commands.createCommand(newCommand(n, values), nowMs);
      expect(created).toBe(true);
      return command;
    }

    function stateOf(id: string): string | undefined {
      return commands.getCommand(id)?.state;
    }

    const emptyCounts = { pending: 0, sent: 0, accepted: 0, rejected: 0, completed: 0, expired: 0, failed: 0 };

    describe('creation and idempotency', () => {
      it('stores a new command pending, due at once, with a pending transition at nowMs', () => {
        const { command, created } = commands.createCommand(newCommand(1, { dispatchId: 'dispatch-1', idempotencyKey: 'k', requestHash: 'h' }), T0);
        expect(created).toBe(true);
        expect(command).toEqual({
          id: uuid(1),
          deviceId: 'dev-1',
          type: 'setPower',
          params: { powerW: 3_000 },
          state: 'pending',
          createdAtMs: T0,
          expiresAtMs: EXPIRES,
          attempts: 0,
          nextAttemptAtMs: T0,
          reason: null,
          applied: null,
          dispatchId: 'dispatch-1',
          transitions: [{ state: 'pending', atMs: T0, detail: null }],
        });
        expect(commands.getCommand(uuid(1))).toEqual(command);
        expect(commands.dueCommands(T0, 10)).toEqual([command]);
        expect(commands.getCommand(uuid(2))).toBeUndefined();
        // Without the optional fields.
        expect(create(2, { deviceId: 'dev-2', type: 'curtail', params: { maxPowerW: null } })).toMatchObject({ dispatchId: null, params: { maxPowerW: null } });
      });

      it('returns the first command, created false, for a repeated idempotency key with the same request hash', () => {
        const first = create(1, { idempotencyKey: 'req-1', requestHash: 'sha256:abc' });
        const again = commands.createCommand(newCommand(2, { idempotencyKey: 'req-1', requestHash: 'sha256:abc', params: { powerW: 1 } }), T0 + 500);
        expect(again).toEqual({ command: first, created: false });
        expect(commands.getCommand(uuid(2))).toBeUndefined();

        // A key without a hash repeats with no hash.
        const unhashed = create(3, { idempotencyKey: 'req-2' });
        expect(commands.createCommand(newCommand(4, { idempotencyKey: 'req-2', requestHash: null }), T0)).toEqual({ command: unhashed, created: false });

        // Whatever became of the first command.
        commands.applyAck('dev-1', ack(uuid(1), 'rejected', { reason: 'busy' }), T0 + 600);
        expect(commands.createCommand(newCommand(5, { idempotencyKey: 'req-1', requestHash: 'sha256:abc' }), T0 + 700)).toMatchObject({
          command: { id: uuid(1), state: 'rejected' },
          created: false,
        });
        expect(commands.listCommands({ limit: 10 }).commands.map((c) => c.id)).toEqual([uuid(3), uuid(1)]);
      });

      it('refuses the key used with another request hash with conflict, saying so, and writes nothing', () => {
        create(1, { idempotencyKey: 'req-1', requestHash: 'h1' });
        const conflict = expectStoreError(() => commands.createCommand(newCommand(2, { idempotencyKey: 'req-1', requestHash: 'h2' }), T0), 'conflict');
        expect(conflict.message).toMatch(/idempotency key/);
        expect(conflict.message).toMatch(/another request/);
        expectStoreError(() => commands.createCommand(newCommand(3, { idempotencyKey: 'req-1' }), T0), 'conflict');
        expect(commands.getCommand(uuid(2))).toBeUndefined();
        expect(commands.getCommand(uuid(3))).toBeUndefined();
        expect(commands.countCommands()).toEqual({ ...emptyCounts, pending: 1 });
      });

      it('makes the same key on another device a different command', () => {
        const a = create(1, { idempotencyKey: 'req-1', requestHash: 'h1' });
        const b = create(2, { deviceId: 'dev-2', idempotencyKey: 'req-1', requestHash: 'h1' });
        expect(b.id).not.toBe(a.id);
        // And another hash on that device is no conflict with the first device's.
        expect(create(3, { deviceId: 'dev-3', idempotencyKey: 'req-1', requestHash: 'other' }).deviceId).toBe('dev-3');
        expect(commands.countCommands().pending).toBe(3);
      });

      it('refuses an id that exists with conflict', () => {
        create(1);
        expectStoreError(() => commands.createCommand(newCommand(1, { deviceId: 'dev-2' }), T0), 'conflict');
        expect(commands.getCommand(uuid(1))?.deviceId).toBe('dev-1');
      });

      it('refuses invalid input with invalid, saying what is wrong, and writes nothing', () => {
        const bad: Array<{ what: string; command: NewCommand; nowMs?: number; says: RegExp }> = [
          { what: 'id not a UUID', command: newCommand(1, { id: 'cmd-1' }), says: /id/ },
          { what: 'id empty', command: newCommand(1, { id: '' }), says: /id/ },
          { what: 'device empty', command: newCommand(1, { deviceId: '' }), says: /deviceId/ },
          { what: 'device too long', command: newCommand(1, { deviceId: 'd'.repeat(65) }), says: /deviceId/ },
          { what: 'type', command: newCommand(1, { type: 'explode' as NewCommand['type'] }), says: /type/ },
          { what: 'params array', command: newCommand(1, { params: [] as unknown as Record<string, unknown> }), says: /params/ },
          { what: 'params null', command: newCommand(1, { params: null as unknown as Record<string, unknown> }), says: /params/ },
          { what: 'params too big', command: newCommand(1, { params: { note: 'x'.repeat(4_100) } }), says: /params/ },
          { what: 'params BigInt', command: newCommand(1, { params: { powerW: 1n } }), says: /params/ },
          { what: 'expiry fractional', command: newCommand(1, { expiresAtMs: 5_000.5 }), says: /expiresAtMs/ },
          { what: 'expiry unsafe', command: newCommand(1, { expiresAtMs: 1e20 }), says: /expiresAtMs/ },
          { what: 'expiry at nowMs', command: newCommand(1, { expiresAtMs: T0 }), says: /expiresAtMs/ },
          { what: 'expiry before nowMs', command: newCommand(1, { expiresAtMs: T0 - 1 }), says: /expiresAtMs/ },
          { what: 'nowMs fractional', command: newCommand(1), nowMs: 1.5, says: /nowMs/ },
          { what: 'nowMs NaN', command: newCommand(1), nowMs: Number.NaN, says: /nowMs/ },
          { what: 'key empty', command: newCommand(1, { idempotencyKey: '' }), says: /idempotencyKey/ },
          { what: 'key too long', command: newCommand(1, { idempotencyKey: 'k'.repeat(256) }), says: /idempotencyKey/ },
          { what: 'hash too long', command: newCommand(1, { idempotencyKey: 'k', requestHash: 'h'.repeat(129) }), says: /requestHash/ },
        ];
        for (const { what, command, nowMs, says } of bad) {
          const error = expectStoreError(() => commands.createCommand(command, nowMs ?? T0), 'invalid');
          expect(error.message, what).toMatch(says);
        }
        // Every problem is listed at once.
        const many = expectStoreError(() => commands.createCommand(newCommand(1, { id: 'x', deviceId: '', expiresAtMs: 0 }), T0), 'invalid');
        expect(many.message).toMatch(/id/);
        expect(many.message).toMatch(/deviceId/);
        expect(many.message).toMatch(/expiresAtMs/);

        expect(commands.listCommands({ limit: 10 })).toEqual({ commands: [], next: null });
        expect(commands.countCommands()).toEqual(emptyCounts);
        expect(commands.dueCommands(Number.MAX_SAFE_INTEGER - 1, 10)).toEqual([]);

        // The bounds themselves pass.
        const params = { note: 'x'.repeat(4_096 - JSON.stringify({ note: '' }).length) };
        expect(Buffer.byteLength(JSON.stringify(params))).toBe(4_096);
        const longest = create(1, { deviceId: 'd'.repeat(64), params, idempotencyKey: 'k'.repeat(255), requestHash: 'h'.repeat(128), expiresAtMs: T0 + 1 });
        expect(commands.getCommand(longest.id)).toMatchObject({ deviceId: 'd'.repeat(64), params, expiresAtMs: T0 + 1 });
      });
    });

    describe('lifecycle', () => {
      it('runs pending → sent → accepted → completed, with a transition and its time at each step', () => {
        create(1);
        const sent = commands.markSent(uuid(1), { atMs: 1_100, nextAttemptAtMs: 6_100 });
        expect(sent).toMatchObject({ state: 'sent', attempts: 1, nextAttemptAtMs: 6_100 });
        const accepted = commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 1_200);
        expect(accepted).toMatchObject({ state: 'accepted', attempts: 1, nextAttemptAtMs: null, reason: null, applied: null });
        const completed = commands.applyAck('dev-1', ack(uuid(1), 'completed', { reason: 'done' }), 9_000);
        expect(completed).toEqual({
          id: uuid(1),
          deviceId: 'dev-1',
          type: 'setPower',
          params: { powerW: 3_000 },
          state: 'completed',
          createdAtMs: T0,
          expiresAtMs: EXPIRES,
          attempts: 1,
          nextAttemptAtMs: null,
          reason: 'done',
          applied: null,
          dispatchId: null,
          transitions: [
            { state: 'pending', atMs: T0, detail: null },
            { state: 'sent', atMs: 1_100, detail: 'attempt 1' },
            { state: 'accepted', atMs: 1_200, detail: null },
            { state: 'completed', atMs: 9_000, detail: 'done' },
          ],
        });
        expect(commands.getCommand(uuid(1))).toEqual(completed);
      });

      it('records a rejection with the device’s reason, which is final', () => {
        create(1);
        commands.markSent(uuid(1), { atMs: 1_100, nextAttemptAtMs: 6_100 });
        const rejected = commands.applyAck('dev-1', ack(uuid(1), 'rejected', { reason: 'backup reserve reached', applied: { powerW: 0 } }), 1_200);
        expect(rejected).toMatchObject({ state: 'rejected', reason: 'backup reserve reached', nextAttemptAtMs: null, applied: null });
        expect(rejected!.transitions.at(-1)).toEqual({ state: 'rejected', atMs: 1_200, detail: 'backup reserve reached' });
        // A rejection from pending too (the ack came before the send was recorded).
        create(2);
        expect(commands.applyAck('dev-1', ack(uuid(2), 'rejected'), 1_300)).toMatchObject({ state: 'rejected', reason: null });
        for (const status of ['accepted', 'completed', 'rejected'] as const) expect(commands.applyAck('dev-1', ack(uuid(1), status), 1_400)).toBeUndefined();
        expect(commands.getCommand(uuid(1))).toEqual(rejected);
      });

      it('completes straight from sent or pending (a short command), keeping the reason and what was applied', () => {
        create(1);
        commands.markSent(uuid(1), { atMs: 1_100, nextAttemptAtMs: 6_100 });
        const completed = commands.applyAck('dev-1', ack(uuid(1), 'completed', { reason: 'clipped to 5 kW', applied: { powerW: 5_000 } }), 1_150);
        expect(completed).toMatchObject({ state: 'completed', reason: 'clipped to 5 kW', applied: { powerW: 5_000 }, nextAttemptAtMs: null });
        expect(completed!.transitions.map((t) => t.state)).toEqual(['pending', 'sent', 'completed']);

        create(2);
        expect(commands.applyAck('dev-1', ack(uuid(2), 'completed'), 1_200)?.transitions.map((t) => t.state)).toEqual(['pending', 'completed']);
      });

      it('stores what an accepted ack says was applied, with its reason as the detail, and keeps it through a completion without it', () => {
        create(1);
        const accepted = commands.applyAck('dev-1', ack(uuid(1), 'accepted', { reason: 'clipped to the inverter limit', applied: { powerW: 5_000, mode: 'setpoint', note: null } }), 1_100);
        expect(accepted).toMatchObject({ state: 'accepted', applied: { powerW: 5_000, mode: 'setpoint', note: null }, reason: null });
        expect(accepted!.transitions.at(-1)).toEqual({ state: 'accepted', atMs: 1_100, detail: 'clipped to the inverter limit' });
        const completed = commands.applyAck('dev-1', ack(uuid(1), 'completed'), 2_000);
        expect(completed).toMatchObject({ state: 'completed', applied: { powerW: 5_000, mode: 'setpoint', note: null }, reason: null });
        // A completion that says otherwise wins.
        create(2);
        commands.applyAck('dev-1', ack(uuid(2), 'accepted', { applied: { powerW: 5_000 } }), 1_100);
        expect(commands.applyAck('dev-1', ack(uuid(2), 'completed', { applied: { powerW: 4_000 } }), 2_000)?.applied).toEqual({ powerW: 4_000 });
      });

      it('ignores a repeated ack and one that would move backwards, writing nothing', () => {
        create(1);
        const accepted = commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 1_100);
        expect(commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 1_200)).toBeUndefined();
        expect(commands.applyAck('dev-1', ack(uuid(1), 'rejected', { reason: 'late' }), 1_200)).toBeUndefined();
        expect(commands.getCommand(uuid(1))).toEqual(accepted);

        const completed = commands.applyAck('dev-1', ack(uuid(1), 'completed'), 2_000);
        for (const status of ['accepted', 'completed', 'rejected'] as const) {
          expect(commands.applyAck('dev-1', ack(uuid(1), status, { reason: 'again', applied: { powerW: 1 } }), 3_000)).toBeUndefined();
        }
        expect(commands.getCommand(uuid(1))).toEqual(completed);
        expect(completed!.transitions.map((t) => t.state)).toEqual(['pending', 'accepted', 'completed']);
      });

      it('ignores an ack from another device than the command’s, or for an unknown command', () => {
        const created = create(1);
        expect(commands.applyAck('dev-2', ack(uuid(1), 'accepted'), 1_100)).toBeUndefined();
        expect(commands.applyAck('dev-2', ack(uuid(1), 'completed'), 1_100)).toBeUndefined();
        expect(commands.applyAck('dev-1', ack(uuid(9), 'accepted'), 1_100)).toBeUndefined();
        expect(commands.applyAck('dev-1', ack('not-a-command', 'accepted'), 1_100)).toBeUndefined();
        expect(commands.getCommand(uuid(1))).toEqual(created);
        expect(commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 1_200)?.state).toBe('accepted');
      });

      it('fails a pending or sent command with the reason as its detail, and nothing else', () => {
        create(1);
        create(2);
        commands.markSent(uuid(2), { atMs: 1_100, nextAttemptAtMs: 2_000 });
        create(3);
        commands.applyAck('dev-1', ack(uuid(3), 'accepted'), 1_100);

        const failed = commands.failCommand(uuid(1), { atMs: 1_500, reason: 'no answer after 5 tries' });
        expect(failed).toMatchObject({ state: 'failed', nextAttemptAtMs: null, reason: null });
        expect(failed!.transitions.at(-1)).toEqual({ state: 'failed', atMs: 1_500, detail: 'no answer after 5 tries' });
        expect(commands.failCommand(uuid(2), { atMs: 1_600, reason: 'tries spent' })?.state).toBe('failed');
        expect(commands.failCommand(uuid(3), { atMs: 1_700, reason: 'x' })).toBeUndefined();
        expect(commands.failCommand(uuid(1), { atMs: 1_700, reason: 'again' })).toBeUndefined();
        expect(commands.failCommand(uuid(9), { atMs: 1_700, reason: 'unknown' })).toBeUndefined();
        expect(stateOf(uuid(3))).toBe('accepted');
        expect(commands.getCommand(uuid(1))).toEqual(failed);
        // Final: acks and sends change nothing.
        expect(commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 1_800)).toBeUndefined();
        expect(commands.markSent(uuid(1), { atMs: 1_800, nextAttemptAtMs: 2_800 })).toBeUndefined();
        expect(commands.getCommand(uuid(1))).toEqual(failed);
        expect(commands.dueCommands(1_800, 10).map((c) => c.id)).toEqual([]);
      });
    });

    describe('sending', () => {
      it('hands out pending and sent commands whose next attempt is due and expiry not passed, oldest next attempt first, limited', () => {
        create(1, {}, 1_000);
        create(2, { expiresAtMs: 3_000 }, 1_200);
        create(3, {}, 1_100);
        create(4, {}, 1_300);
        commands.markSent(uuid(4), { atMs: 1_300, nextAttemptAtMs: 5_000 });
        create(5, {}, 1_050);
        commands.applyAck('dev-1', ack(uuid(5), 'accepted'), 1_060);
        const ids = (nowMs: number, limit = 10) => commands.dueCommands(nowMs, limit).map((c) => c.id);

        expect(ids(999)).toEqual([]);
        expect(ids(1_000)).toEqual([uuid(1)]);
        expect(ids(2_000)).toEqual([uuid(1), uuid(3), uuid(2)]);
        expect(ids(2_000, 2)).toEqual([uuid(1), uuid(3)]);
        expect(ids(2_000, 0)).toEqual([]);
        // Not once expired (even before expireCommands ran), due again at its next attempt.
        expect(ids(3_000)).toEqual([uuid(1), uuid(3)]);
        expect(ids(4_999)).toEqual([uuid(1), uuid(3)]);
        expect(ids(5_000)).toEqual([uuid(1), uuid(3), uuid(4)]);
        // Ties on the next attempt go by id.
        commands.markSent(uuid(3), { atMs: 5_000, nextAttemptAtMs: 8_000 });
        commands.markSent(uuid(1), { atMs: 5_000, nextAttemptAtMs: 8_000 });
        expect(ids(7_999)).toEqual([uuid(4)]);
        commands.markSent(uuid(4), { atMs: 5_000, nextAttemptAtMs: 8_000 });
        expect(ids(8_000)).toEqual([uuid(1), uuid(3), uuid(4)]);
        // Not once accepted or final.
        commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 8_000);
        commands.applyAck('dev-1', ack(uuid(3), 'rejected'), 8_000);
        expect(ids(EXPIRES - 1)).toEqual([uuid(4)]);
        expect(ids(EXPIRES)).toEqual([]);
        expect(commands.dueCommands(8_000, 10)[0]).toEqual(commands.getCommand(uuid(4)));
      });

      it('counts attempts: the first send moves pending → sent, each resend adds a `sent` transition saying which attempt', () => {
        create(1);
        expect(commands.markSent(uuid(1), { atMs: 1_100, nextAttemptAtMs: 2_000 })).toMatchObject({ state: 'sent', attempts: 1, nextAttemptAtMs: 2_000 });
        const resent = commands.markSent(uuid(1), { atMs: 2_000, nextAttemptAtMs: 4_000 });
        expect(resent).toMatchObject({ state: 'sent', attempts: 2, nextAttemptAtMs: 4_000 });
        expect(commands.markSent(uuid(1), { atMs: 4_000, nextAttemptAtMs: 8_000 })?.transitions).toEqual([
          { state: 'pending', atMs: T0, detail: null },
          { state: 'sent', atMs: 1_100, detail: 'attempt 1' },
          { state: 'sent', atMs: 2_000, detail: 'attempt 2' },
          { state: 'sent', atMs: 4_000, detail: 'attempt 3' },
        ]);
        expect(commands.markSent(uuid(9), { atMs: 4_000, nextAttemptAtMs: 8_000 })).toBeUndefined();
      });

      it('changes nothing and returns undefined when the command is no longer pending or sent (an ack won the race)', () => {
        create(1);
        const accepted = commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 1_050);
        expect(commands.markSent(uuid(1), { atMs: 1_100, nextAttemptAtMs: 2_000 })).toBeUndefined();
        expect(commands.getCommand(uuid(1))).toEqual(accepted);
      });

      it(`keeps at most ${TRANSITION_BOUND} transitions however often a command is resent, and still records the acks`, () => {
        create(1);
        let at = T0;
        for (let attempt = 1; attempt <= 200; attempt++) commands.markSent(uuid(1), { atMs: (at += 100), nextAttemptAtMs: at + 100 });
        const resent = commands.getCommand(uuid(1))!;
        expect(resent.attempts).toBe(200);
        expect(resent.transitions.length).toBeLessThanOrEqual(TRANSITION_BOUND - 2);
        expect(resent.transitions.slice(0, 11)).toEqual([
          { state: 'pending', atMs: T0, detail: null },
          ...Array.from({ length: 10 }, (_, i) => ({ state: 'sent', atMs: T0 + 100 * (i + 1), detail: `attempt ${i + 1}` })),
        ]);
        // The latest transition accounts for the latest attempt.
        expect(resent.transitions.at(-1)).toMatchObject({ state: 'sent', atMs: at });
        expect(resent.transitions.at(-1)!.detail).toMatch(/\b200$/);

        commands.applyAck('dev-1', ack(uuid(1), 'accepted'), at + 1);
        const completed = commands.applyAck('dev-1', ack(uuid(1), 'completed'), at + 2)!;
        expect(completed.transitions.length).toBeLessThanOrEqual(TRANSITION_BOUND);
        expect(completed.transitions.slice(-2).map((t) => t.state)).toEqual(['accepted', 'completed']);
      });
    });

    describe('expiry', () => {
      it('expires pending and sent commands at their expiry with a transition at nowMs, not before', () => {
        create(1, { expiresAtMs: 5_000 });
        create(2, { expiresAtMs: 5_000 });
        commands.markSent(uuid(2), { atMs: 1_100, nextAttemptAtMs: 2_000 });
        create(3, { expiresAtMs: 6_000 });
        expect(commands.expireCommands(4_999, 0)).toEqual([]);

        const expired = commands.expireCommands(5_500, 0);
        expect(expired.map((c) => [c.id, c.state, c.nextAttemptAtMs, c.reason])).toEqual([
          [uuid(1), 'expired', null, null],
          [uuid(2), 'expired', null, null],
        ]);
        expect(expired[1]!.transitions.at(-1)).toEqual({ state: 'expired', atMs: 5_500, detail: 'expired before the device accepted it' });
        expect(commands.getCommand(uuid(2))).toEqual(expired[1]);
        expect(stateOf(uuid(3))).toBe('pending');
        expect(commands.expireCommands(5_500, 0)).toEqual([]);
        expect(commands.expireCommands(6_000, 0).map((c) => c.id)).toEqual([uuid(3)]);

        // Final: a late ack, a send or a failure changes nothing.
        expect(commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 6_100)).toBeUndefined();
        expect(commands.failCommand(uuid(1), { atMs: 6_100, reason: 'x' })).toBeUndefined();
        expect(commands.markSent(uuid(1), { atMs: 6_100, nextAttemptAtMs: 7_000 })).toBeUndefined();
        expect(stateOf(uuid(1))).toBe('expired');
      });

      it('completes an accepted command once its expiry plus the grace has passed, keeping what was applied', () => {
        create(1, { expiresAtMs: 5_000 });
        commands.applyAck('dev-1', ack(uuid(1), 'accepted', { applied: { powerW: 2_000 } }), 1_100);
        create(2, { expiresAtMs: 5_000 });
        commands.applyAck('dev-1', ack(uuid(2), 'accepted'), 1_100);
        commands.applyAck('dev-1', ack(uuid(2), 'completed', { reason: 'finished early' }), 2_000);

        expect(commands.expireCommands(5_000, 1_000)).toEqual([]);
        expect(commands.expireCommands(5_999, 1_000)).toEqual([]);
        const [completed, ...rest] = commands.expireCommands(6_000, 1_000);
        expect(rest).toEqual([]);
        expect(completed).toMatchObject({ id: uuid(1), state: 'completed', applied: { powerW: 2_000 }, reason: null, nextAttemptAtMs: null });
        expect(completed!.transitions.map((t) => [t.state, t.atMs, t.detail])).toEqual([
          ['pending', T0, null],
          ['accepted', 1_100, null],
          ['completed', 6_000, 'ran until its expiry; no completion ack came'],
        ]);
        expect(commands.getCommand(uuid(2))).toMatchObject({ state: 'completed', reason: 'finished early' });
        // The late completion ack changes nothing now.
        expect(commands.applyAck('dev-1', ack(uuid(1), 'completed'), 6_100)).toBeUndefined();
        expect(commands.expireCommands(10_000, 0)).toEqual([]);
      });

      it('expires and completes in one call, with a grace of 0 completing at the expiry itself', () => {
        create(1, { expiresAtMs: 5_000 });
        create(2, { expiresAtMs: 5_000 });
        commands.applyAck('dev-1', ack(uuid(2), 'accepted'), 1_100);
        expect(commands.expireCommands(5_000, 0).map((c) => [c.id, c.state])).toEqual([
          [uuid(1), 'expired'],
          [uuid(2), 'completed'],
        ]);
        expect(commands.countCommands()).toEqual({ ...emptyCounts, expired: 1, completed: 1 });
      });
    });

    describe('listing and counting', () => {
      it('lists newest first by creation then id, with filters, and pages with the cursor', () => {
        create(1, { deviceId: 'dev-1', dispatchId: 'd-1' }, 1_000);
        create(2, { deviceId: 'dev-2', dispatchId: 'd-1' }, 1_000);
        create(3, { deviceId: 'dev-1' }, 2_000);
        create(4, { deviceId: 'dev-2', dispatchId: 'd-2' }, 3_000);
        create(5, { deviceId: 'dev-1', dispatchId: 'd-1' }, 3_000);
        create(6, { deviceId: 'dev-3' }, 500);
        commands.applyAck('dev-1', ack(uuid(3), 'accepted'), 2_100);
        commands.applyAck('dev-2', ack(uuid(2), 'rejected'), 2_100);
        const list = (query: Omit<Parameters<CommandStore['listCommands']>[0], 'limit'>, limit = 10) => {
          const page = commands.listCommands({ limit, ...query });
          return { ids: page.commands.map((c) => Number(c.id.slice(-12))), next: page.next };
        };

        expect(list({})).toEqual({ ids: [5, 4, 3, 2, 1, 6], next: null });
        expect(list({ deviceId: 'dev-1' }).ids).toEqual([5, 3, 1]);
        expect(list({ state: 'pending' }).ids).toEqual([5, 4, 1, 6]);
        expect(list({ state: 'accepted' }).ids).toEqual([3]);
        expect(list({ dispatchId: 'd-1' }).ids).toEqual([5, 2, 1]);
        expect(list({ dispatchId: 'd-1', deviceId: 'dev-1', state: 'pending' }).ids).toEqual([5, 1]);
        expect(list({ deviceId: 'nobody' })).toEqual({ ids: [], next: null });
        // Full commands, as getCommand gives them.
        expect(commands.listCommands({ limit: 1, state: 'accepted' }).commands).toEqual([commands.getCommand(uuid(3))]);

        // Pages: ties on the creation time are split by id, nothing is repeated or skipped.
        const first = list({}, 2);
        expect(first.ids).toEqual([5, 4]);
        expect(first.next).toEqual(expect.any(String));
        const second = list({ before: first.next! }, 2);
        expect(second.ids).toEqual([3, 2]);
        const third = list({ before: second.next! }, 2);
        expect(third).toEqual({ ids: [1, 6], next: null });
        const byDevice = list({ deviceId: 'dev-1' }, 1);
        expect(list({ deviceId: 'dev-1', before: byDevice.next! }, 2)).toEqual({ ids: [3, 1], next: null });
        // An exactly full last page has no next.
        expect(list({ deviceId: 'dev-2' }, 2).next).toBeNull();
      });

      it('refuses a malformed cursor, a limit outside 1 to 1,000 and an unknown state with invalid', () => {
        create(1);
        create(2);
        const { next } = commands.listCommands({ limit: 1 });
        expect(next).not.toBeNull();
        for (const before of ['', 'not a cursor', 'abc', `${next}x`, next!.slice(1), Buffer.from('[1]').toString('base64url'), Buffer.from('["a","b"]').toString('base64url')]) {
          expectStoreError(() => commands.listCommands({ limit: 10, before }), 'invalid');
        }
        for (const limit of [0, -1, 1.5, 1_001, Number.NaN]) expectStoreError(() => commands.listCommands({ limit }), 'invalid');
        expect(commands.listCommands({ limit: 1_000 }).commands).toHaveLength(2);
        expectStoreError(() => commands.listCommands({ limit: 10, state: 'sleeping' as 'pending' }), 'invalid');
      });

      it('gives the newest command of each device asked for that has one', () => {
        create(1, { deviceId: 'dev-1' }, 1_000);
        create(2, { deviceId: 'dev-1' }, 3_000);
        create(3, { deviceId: 'dev-1' }, 2_000);
        create(4, { deviceId: 'dev-2' }, 1_000);
        create(5, { deviceId: 'dev-2' }, 1_000);
        create(6, { deviceId: 'dev-3' }, 9_000);
        commands.applyAck('dev-1', ack(uuid(2), 'rejected'), 3_100);

        const latest = commands.latestCommandPerDevice(['dev-1', 'dev-2', 'dev-unknown', 'dev-1']);
        expect([...latest.keys()].sort()).toEqual(['dev-1', 'dev-2']);
        // The newest by creation whatever its state; ties by id, as listCommands orders them.
        expect(latest.get('dev-1')).toEqual(commands.getCommand(uuid(2)));
        expect(latest.get('dev-2')?.id).toBe(uuid(5));
        expect(commands.latestCommandPerDevice([]).size).toBe(0);

        // A fleet-sized list.
        const many = Array.from({ length: 1_500 }, (_, i) => `other-${i}`);
        many[1_234] = 'dev-3';
        many[17] = 'dev-2';
        const found = commands.latestCommandPerDevice(many);
        expect([...found.keys()].sort()).toEqual(['dev-2', 'dev-3']);
        expect(found.get('dev-3')?.id).toBe(uuid(6));
      });

      it('counts commands by state, every state present', () => {
        expect(commands.countCommands()).toEqual(emptyCounts);
        for (let n = 1; n <= 7; n++) create(n, { expiresAtMs: n === 7 ? 2_000 : EXPIRES });
        commands.markSent(uuid(2), { atMs: 1_100, nextAttemptAtMs: 2_000 });
        commands.applyAck('dev-1', ack(uuid(3), 'accepted'), 1_100);
        commands.applyAck('dev-1', ack(uuid(4), 'rejected'), 1_100);
        commands.applyAck('dev-1', ack(uuid(5), 'completed'), 1_100);
        commands.failCommand(uuid(6), { atMs: 1_100, reason: 'x' });
        commands.expireCommands(2_000, 1_000_000);
        expect(commands.countCommands()).toEqual({ pending: 1, sent: 1, accepted: 1, rejected: 1, completed: 1, expired: 1, failed: 1 });
      });
    });
  });
}
