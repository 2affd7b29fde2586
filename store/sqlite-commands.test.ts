/**
 * SqliteCommands: the CommandStore contract on real files, and what only
 * SQLite has: persistence across reopening, two processes on one file, lock
 * timeouts, pruning, the exact shape of the transition bound, the schema's
 * own guard of one command per (device, idempotency key), query plans, and
 * the migration from version 4.
 */
import { describe, expect, it } from 'vitest';
import type { Ack } from '../protocol/index.ts';
import { describeCommandStoreContract } from './contract/index.ts';
import { MAX_TRANSITIONS_PER_COMMAND, type NewCommand } from './index.ts';
import { expectUnavailable, openTempStore, useStoreFiles, uuid } from './test-store-files.ts';

function newCommand(n: number, values: Partial<NewCommand> = {}): NewCommand {
  return { id: uuid(n), deviceId: 'dev-1', type: 'setPower', params: { powerW: 3_000 }, expiresAtMs: 100_000, ...values };
}

const ack = (commandId: string, status: Ack['status'], extra: Pick<Ack, 'reason' | 'applied'> = {}): Ack => ({ commandId, status, ...extra });

describeCommandStoreContract('SqliteStore.commands', async () => {
  const { store, close } = await openTempStore('vpp-commands-');
  return { store: store.commands, close };
});

describe('SqliteCommands on a file', () => {
  const { open, reopen, countRows, writeRaw, expectWritesUnavailableWhileLocked, explain, planOf, createAtVersion, expectCurrentVersion } = useStoreFiles<
    'commands' | 'command_transitions'
  >('vpp-commands-');

  it('keeps every unfinished command after close and reopen: a pending one is still due, a sent one at its next attempt', async () => {
    const first = open();
    const pending = first.commands.createCommand(newCommand(1), 1_000).command;
    first.commands.createCommand(newCommand(2, { deviceId: 'dev-2', idempotencyKey: 'k', requestHash: 'h' }), 1_000);
    const sent = first.commands.markSent(uuid(2), { atMs: 1_100, nextAttemptAtMs: 5_000 });
    first.commands.createCommand(newCommand(3, { deviceId: 'dev-3' }), 1_000);
    const accepted = first.commands.applyAck('dev-3', ack(uuid(3), 'accepted', { applied: { powerW: 2_500 } }), 1_200);

    const second = await reopen(first);
    expect(second.commands.dueCommands(1_000, 10)).toEqual([pending]);
    expect(second.commands.dueCommands(5_000, 10)).toEqual([pending, sent]);
    expect(second.commands.getCommand(uuid(3))).toEqual(accepted);
    // Idempotency and the lifecycle go on where they were.
    expect(second.commands.createCommand(newCommand(4, { deviceId: 'dev-2', idempotencyKey: 'k', requestHash: 'h' }), 2_000)).toEqual({ command: sent, created: false });
    expect(second.commands.markSent(uuid(2), { atMs: 5_000, nextAttemptAtMs: 9_000 })?.transitions.at(-1)).toEqual({ state: 'sent', atMs: 5_000, detail: 'attempt 2' });
    expect(second.commands.applyAck('dev-3', ack(uuid(3), 'accepted'), 1_300)).toBeUndefined();
    expect(second.commands.countCommands()).toMatchObject({ pending: 1, sent: 1, accepted: 1 });
  });

  it('lets a second store on the same file (like another process) apply an ack the first one then sees, once', () => {
    const dispatcher = open();
    const ingest = open();
    dispatcher.commands.createCommand(newCommand(1, { idempotencyKey: 'k', requestHash: 'h' }), 1_000);
    dispatcher.commands.markSent(uuid(1), { atMs: 1_100, nextAttemptAtMs: 6_100 });

    const accepted = ingest.commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 1_200);
    expect(dispatcher.commands.getCommand(uuid(1))).toEqual(accepted);
    expect(dispatcher.commands.dueCommands(6_100, 10)).toEqual([]);
    // The duplicate of the same ack, delivered to the other process, changes nothing.
    expect(dispatcher.commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 1_250)).toBeUndefined();
    // A send the dispatcher had in flight finds the command accepted and leaves it.
    expect(dispatcher.commands.markSent(uuid(1), { atMs: 1_300, nextAttemptAtMs: 6_300 })).toBeUndefined();
    expect(ingest.commands.getCommand(uuid(1))).toEqual(accepted);
    // The idempotency key holds across processes.
    expect(ingest.commands.createCommand(newCommand(2, { idempotencyKey: 'k', requestHash: 'h' }), 1_400).created).toBe(false);
    expect(() => ingest.commands.createCommand(newCommand(3, { idempotencyKey: 'k', requestHash: 'other' }), 1_400)).toThrow(expect.objectContaining({ code: 'conflict' }));
    expect(ingest.commands.listCommands({ limit: 10 }).commands.map((c) => c.state)).toEqual(['accepted']);
  });

  it('fails command writes with unavailable while another connection holds the write lock, writing nothing, and writes once it is released', () => {
    const store = open({ busyTimeoutMs: 50 });
    store.commands.createCommand(newCommand(1, { expiresAtMs: 2_000 }), 1_000);
    store.commands.createCommand(newCommand(2), 1_000);
    store.commands.createCommand(newCommand(3), 1_000);
    const writes: Record<string, () => unknown> = {
      createCommand: () => store.commands.createCommand(newCommand(4), 1_000),
      markSent: () => store.commands.markSent(uuid(2), { atMs: 1_100, nextAttemptAtMs: 2_100 }),
      applyAck: () => store.commands.applyAck('dev-1', ack(uuid(3), 'accepted'), 1_100),
      expireCommands: () => store.commands.expireCommands(2_000, 0),
      failCommand: () => store.commands.failCommand(uuid(4), { atMs: 2_100, reason: 'tries spent' }),
      pruneCommands: () => store.commands.pruneCommands(3_000, 0),
    };
    expectWritesUnavailableWhileLocked(writes, () => {
      // Readers go on in WAL mode.
      expect(store.commands.countCommands().pending).toBe(3);
    });
    expect(countRows('command_transitions')).toBe(3);
    for (const write of Object.values(writes)) write();
    expect(store.commands.countCommands()).toMatchObject({ pending: 0, sent: 1, accepted: 1, expired: 0, failed: 0 });
    // The expired and the failed commands were pruned at once (retention 0).
    expect(countRows('commands')).toBe(2);
  });

  it('shares the store’s connection: closing the store makes command calls unavailable', async () => {
    const store = open();
    store.commands.createCommand(newCommand(1), 1_000);
    await store.close();
    expectUnavailable(
      () => store.commands.getCommand(uuid(1)),
      () => store.commands.createCommand(newCommand(2), 1_000),
      () => store.commands.countCommands(),
    );
  });

  it('refuses an ack that AckSchema refuses or whose applied is over 1 KiB, and times that are not integers, with invalid, writing nothing', () => {
    const store = open();
    store.commands.createCommand(newCommand(1), 1_000);
    const bad: unknown[] = [
      { commandId: uuid(1), status: 'done' },
      { commandId: uuid(1), status: 'accepted', reason: 'r'.repeat(257) },
      { commandId: uuid(1), status: 'accepted', applied: { ['k'.repeat(1_100)]: 1 } },
      { commandId: uuid(1), status: 'accepted', applied: { powerW: { nested: 1 } } },
      { commandId: uuid(1), status: 'accepted', extra: true },
      { commandId: '', status: 'accepted' },
      null,
    ];
    for (const value of bad) expect(() => store.commands.applyAck('dev-1', value as Ack, 1_100)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => store.commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 1.5)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => store.commands.markSent(uuid(1), { atMs: 1_100, nextAttemptAtMs: Number.NaN })).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => store.commands.failCommand(uuid(1), { atMs: 1e20, reason: 'x' })).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => store.commands.expireCommands(1_000, -1)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => store.commands.expireCommands(1_000.5, 0)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => store.commands.dueCommands(1_000, -1)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(store.commands.getCommand(uuid(1))).toMatchObject({ state: 'pending', transitions: [{ state: 'pending' }] });
    // A failure reason is cut to 1,000 characters.
    expect(store.commands.failCommand(uuid(1), { atMs: 1_100, reason: 'x'.repeat(1_500) })?.transitions.at(-1)?.detail).toBe('x'.repeat(1_000));
  });

  it(`keeps at most ${MAX_TRANSITIONS_PER_COMMAND} transitions: past the bound, resends rewrite the latest into "attempts K to N"`, () => {
    const store = open();
    store.commands.createCommand(newCommand(1), 1_000);
    const bound = MAX_TRANSITIONS_PER_COMMAND - 2;
    for (let attempt = 1; attempt <= bound - 1; attempt++) store.commands.markSent(uuid(1), { atMs: 1_000 + attempt, nextAttemptAtMs: 5_000 });
    let command = store.commands.getCommand(uuid(1))!;
    // pending + attempts 1 to 47, one row each.
    expect(command.transitions).toHaveLength(bound);
    expect(command.transitions.at(-1)).toEqual({ state: 'sent', atMs: 1_000 + bound - 1, detail: `attempt ${bound - 1}` });

    command = store.commands.markSent(uuid(1), { atMs: 2_000, nextAttemptAtMs: 5_000 })!;
    expect(command.transitions).toHaveLength(bound);
    expect(command.transitions.at(-1)).toEqual({ state: 'sent', atMs: 2_000, detail: `attempts ${bound - 1} to ${bound}` });
    for (let attempt = bound + 1; attempt <= 1_000; attempt++) store.commands.markSent(uuid(1), { atMs: 2_000 + attempt, nextAttemptAtMs: 5_000 });
    command = store.commands.getCommand(uuid(1))!;
    expect(command.attempts).toBe(1_000);
    expect(command.transitions).toHaveLength(bound);
    expect(command.transitions.at(-2)).toEqual({ state: 'sent', atMs: 1_000 + bound - 2, detail: `attempt ${bound - 2}` });
    expect(command.transitions.at(-1)).toEqual({ state: 'sent', atMs: 3_000, detail: `attempts ${bound - 1} to 1000` });

    store.commands.applyAck('dev-1', ack(uuid(1), 'accepted'), 3_001);
    command = store.commands.applyAck('dev-1', ack(uuid(1), 'completed'), 3_002)!;
    expect(command.transitions).toHaveLength(MAX_TRANSITIONS_PER_COMMAND);
    expect(countRows('command_transitions')).toBe(MAX_TRANSITIONS_PER_COMMAND);
  });

  it('prunes final commands whose last transition is older than the retention, with their transitions, and never an unfinished one', () => {
    const store = open();
    const { commands } = store;
    const create = (n: number, values: Partial<NewCommand>, nowMs: number) => commands.createCommand(newCommand(n, values), nowMs);
    // Old and final: rejected, completed, expired, failed.
    create(1, { idempotencyKey: 'k1', requestHash: 'h' }, 1_000);
    commands.applyAck('dev-1', ack(uuid(1), 'rejected'), 2_000);
    create(2, {}, 1_000);
    commands.applyAck('dev-1', ack(uuid(2), 'accepted'), 1_500);
    commands.applyAck('dev-1', ack(uuid(2), 'completed'), 2_000);
    create(3, { expiresAtMs: 2_000 }, 1_000);
    commands.expireCommands(2_000, 0);
    create(4, {}, 1_000);
    commands.failCommand(uuid(4), { atMs: 2_000, reason: 'tries spent' });
    // Old but unfinished: pending, sent, accepted (expireCommands has not run).
    create(5, { expiresAtMs: 3_000 }, 1_000);
    create(6, {}, 1_000);
    commands.markSent(uuid(6), { atMs: 1_100, nextAttemptAtMs: 9_000 });
    create(7, { expiresAtMs: 3_000 }, 1_000);
    commands.applyAck('dev-1', ack(uuid(7), 'accepted'), 1_100);
    // Created long ago, final only recently.
    create(8, {}, 1_000);
    commands.failCommand(uuid(8), { atMs: 50_000, reason: 'tries spent' });
    const transitionsBefore = countRows('command_transitions');

    expect(commands.pruneCommands(60_000, 10_000)).toBe(4);
    for (const n of [1, 2, 3, 4]) expect(commands.getCommand(uuid(n))).toBeUndefined();
    expect(commands.listCommands({ limit: 10 }).commands.map((c) => c.id).sort()).toEqual([uuid(5), uuid(6), uuid(7), uuid(8)]);
    // rejected 2, completed 3, expired 2, failed 2.
    expect(countRows('command_transitions')).toBe(transitionsBefore - 9);
    expect(commands.pruneCommands(60_000, 10_000)).toBe(0);
    // The final transition's time counts, not the creation's.
    expect(commands.pruneCommands(60_000, 10_001)).toBe(0);
    expect(commands.pruneCommands(60_001, 10_000)).toBe(1);
    expect(commands.pruneCommands(Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY)).toBe(0);
    expect(commands.pruneCommands(Number.MAX_SAFE_INTEGER - 1, 0)).toBe(0);
    expect(commands.countCommands()).toMatchObject({ pending: 1, sent: 1, accepted: 1 });

    // A pruned command's idempotency key is free again.
    expect(create(9, { idempotencyKey: 'k1', requestHash: 'other' }, 70_000).created).toBe(true);
    expect(() => commands.pruneCommands(1, -1)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => commands.pruneCommands(1.5, 10)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(() => commands.pruneCommands(1, Number.NaN)).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(commands.pruneCommands(400_000, 0.0123 * 86_400_000)).toBe(0);
  });

  it('prunes more commands than fit in one transaction', () => {
    const store = open();
    for (let n = 1; n <= 450; n++) {
      store.commands.createCommand(newCommand(n, { deviceId: `dev-${n % 7}` }), 1_000);
      store.commands.applyAck(`dev-${n % 7}`, ack(uuid(n), 'rejected'), 1_100);
    }
    expect(store.commands.pruneCommands(10_000, 1_000)).toBe(450);
    expect(countRows('commands')).toBe(0);
    expect(countRows('command_transitions')).toBe(0);
  });

  it('refuses a second command with the same (device, idempotency key) in the schema itself', () => {
    const store = open();
    store.commands.createCommand(newCommand(1, { idempotencyKey: 'k' }), 1_000);
    writeRaw((raw) => {
      const insert = raw.prepare(
        `INSERT INTO commands (id, device_id, type, params, state, created_at_ms, expires_at_ms, idempotency_key)
         VALUES (?, ?, 'setPower', '{}', 'pending', 1, 2, ?)`,
      );
      expect(() => insert.run(uuid(2), 'dev-1', 'k')).toThrow(/UNIQUE/);
      insert.run(uuid(3), 'dev-2', 'k');
      insert.run(uuid(4), 'dev-1', null);
      insert.run(uuid(5), 'dev-1', null);
      expect(() => raw.prepare("UPDATE commands SET state = 'lost' WHERE id = ?").run(uuid(3))).toThrow(/CHECK/);
    });
  });

  it('uses its indexes for due commands, expiry, idempotency, listing, the latest per device and pruning', () => {
    const store = open();
    const plan = (name: string, ...params: unknown[]) => planOf(store.commands, name, ...params);

    expect(plan('due', 1, 1, 10)).toMatch(/SEARCH commands USING INDEX commands_due \(next_attempt_at_ms<\?\)/);
    expect(plan('unacceptedExpired', 1)).not.toMatch(/TEMP B-TREE/);
    expect(plan('due', 1, 1, 10)).not.toMatch(/TEMP B-TREE/);
    expect(plan('unacceptedExpired', 1)).toMatch(/SEARCH commands USING INDEX commands_expiry \(expires_at_ms<\?\)/);
    expect(plan('acceptedOverdue', 1)).toMatch(/SEARCH commands USING INDEX commands_expiry \(expires_at_ms<\?\)/);
    expect(plan('byIdempotencyKey', 'd', 'k')).toMatch(/SEARCH commands USING INDEX commands_idempotency \(device_id=\? AND idempotency_key=\?\)/);
    expect(plan('transitionsOf', 'x')).toMatch(/SEARCH command_transitions USING PRIMARY KEY \(command_id=\?\)/);
    const latest = plan('latestOfDevices', '["d"]');
    expect(latest).toMatch(/USING (COVERING )?INDEX commands_device \(device_id=\?\)/);
    expect(latest).not.toMatch(/SCAN commands\b/);
    expect(plan('prunable', 1, 10)).toMatch(/SEARCH t USING INDEX command_transitions_final \(at_ms<\?\)/);

    // listCommands, by its filters, reads newest first along an index, without sorting.
    const columns = 'SELECT id FROM commands';
    const order = 'ORDER BY created_at_ms DESC, id DESC LIMIT 10';
    const list = (where: string, ...params: unknown[]) => explain(`${columns} ${where} ${order}`, ...params);
    expect(list('')).toMatch(/SCAN commands USING (COVERING )?INDEX commands_created/);
    expect(list('WHERE (created_at_ms, id) < (?, ?)', 5, 'x')).toMatch(/SEARCH commands USING (COVERING )?INDEX commands_created/);
    expect(list('WHERE device_id = ?', 'd')).toMatch(/INDEX commands_device \(device_id=\?\)/);
    expect(list('WHERE state = ? AND (created_at_ms, id) < (?, ?)', 'pending', 5, 'x')).toMatch(/INDEX commands_state \(state=\? AND \(created_at_ms,id\)<\(\?,\?\)\)/);
    expect(list('WHERE dispatch_id = ?', 'd')).toMatch(/INDEX commands_dispatch \(dispatch_id=\?\)/);
    for (const where of ['', 'WHERE device_id = ?', 'WHERE state = ?', 'WHERE dispatch_id = ?']) {
      expect(list(where, ...(where === '' ? [] : ['x']))).not.toMatch(/TEMP B-TREE/);
    }
  });

  it('migrates a version 4 file with data to version 5, keeping its data and adding empty command tables', () => {
    createAtVersion(4, (raw) => {
        raw.prepare("INSERT INTO sites VALUES ('site-1', 'north', 'One')").run();
      raw.prepare("INSERT INTO devices (id, type, site_id, secret_hash, created_at_ms) VALUES ('dev-1', 'battery', 'site-1', 'h1', 1000)").run();
      raw.prepare("INSERT INTO device_state (device_id, last_ts, last_seen_ms, last_seq, metrics, online, status, presence, presence_since_ms) VALUES ('dev-1', 5, 6, 7, '{\"socPct\":3}', 1, NULL, 'online', 4)").run();
      raw
        .prepare(
          `INSERT INTO alerts (rule_id, severity, subject_kind, subject_id, state, summary, value, labels, opened_at_ms, fired_at_ms)
           VALUES ('soc-low', 'warning', 'device', 'dev-1', 'firing', 'SoC low', 5, '{}', 1000, 1000)`,
        )
        .run();
    });

    const store = open();
    expectCurrentVersion(5);
    expect(store.getAcceptedSecretHashes('dev-1', 2_000)).toEqual(['h1']);
    expect(store.getDeviceState('dev-1')).toMatchObject({ presence: 'online', metrics: { socPct: 3 } });
    expect(store.alerts.listOpenAlerts()).toMatchObject([{ id: '1', subjectId: 'dev-1', state: 'firing' }]);
    expect(store.commands.listCommands({ limit: 10 })).toEqual({ commands: [], next: null });
    expect(store.commands.countCommands()).toEqual({ pending: 0, sent: 0, accepted: 0, rejected: 0, completed: 0, expired: 0, failed: 0 });

    const { command } = store.commands.createCommand(newCommand(1), 1_000);
    expect(store.commands.latestCommandPerDevice(['dev-1']).get('dev-1')).toEqual(command);
    expect(countRows('command_transitions')).toBe(1);
  });
});
