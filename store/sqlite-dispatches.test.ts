/**
 * SqliteDispatches: the DispatchStore contract on real files, and what only
 * SQLite has: persistence across reopening (the loop resumes from it), two
 * processes on one file, lock timeouts, the bound as an option, the
 * schema's own checks, query plans, and the migration from version 5.
 */
import { describe, expect, it } from 'vitest';
import { describeDispatchStoreContract } from './contract/index.ts';
import { MAX_DISPATCH_SAMPLES, type NewDispatch } from './index.ts';
import { expectUnavailable, openTempStore, useStoreFiles, uuid } from './test-store-files.ts';

function newDispatch(n: number, values: Partial<NewDispatch> = {}): NewDispatch {
  return {
    id: uuid(n),
    target: { region: 'north' },
    powerW: 8_000,
    startAtMs: 10_000,
    durationMs: 3_600_000,
    allowPartial: true,
    plan: { feasible: true, availableW: 9_000, shortfallW: 0, marginW: 1_000, marginWh: 500, devicesUsed: 2, explanation: 'ok' },
    setpoints: { 'bat-1': 5_000, 'bat-2': 3_000 },
    ...values,
  };
}

const sample = (atMs: number) => ({ atMs, targetW: 8_000, measuredW: 7_900, confidence: 1, devicesReporting: 2 });

describeDispatchStoreContract('SqliteStore.dispatches', async (options) => {
  const { store, close } = await openTempStore('vpp-dispatches-', { dispatches: options });
  return { store: store.dispatches, close };
});

describe('SqliteDispatches on a file', () => {
  const { open, reopen, countRows, writeRaw, expectWritesUnavailableWhileLocked, explain, planOf, createAtVersion, expectCurrentVersion } = useStoreFiles<
    'dispatches' | 'dispatch_samples'
  >('vpp-dispatches-');

  it('keeps dispatches after close and reopen: a running one is still running, with its setpoints, last loop and samples', async () => {
    const first = open();
    first.dispatches.createDispatch(newDispatch(1), 5_000);
    const active = first.dispatches.updateDispatch(uuid(1), { state: 'active', setpoints: { 'bat-1': 4_500, 'bat-3': 3_500 }, lastLoopAtMs: 10_000 }, 10_000);
    const scheduled = first.dispatches.createDispatch(newDispatch(2, { startAtMs: 20_000, target: { siteIds: ['site-1'] } }), 5_000);
    first.dispatches.createDispatch(newDispatch(3), 5_000);
    const cancelled = first.dispatches.updateDispatch(uuid(3), { state: 'cancelled', reason: 'operator' }, 6_000);
    first.dispatches.addDispatchSample(uuid(1), sample(10_000));

    const second = await reopen(first);
    expect(second.dispatches.runningDispatches(15_000)).toEqual([active]);
    expect(second.dispatches.runningDispatches(20_000)).toEqual([active, scheduled]);
    expect(second.dispatches.getDispatch(uuid(1))?.setpoints).toEqual({ 'bat-1': 4_500, 'bat-3': 3_500 });
    expect(second.dispatches.getDispatch(uuid(3))).toEqual(cancelled);
    expect(second.dispatches.listDispatchSamples(uuid(1), { limit: 10 })).toEqual([sample(10_000)]);
    // The lifecycle goes on where it was.
    expect(() => second.dispatches.updateDispatch(uuid(3), { state: 'active' }, 20_000)).toThrow(expect.objectContaining({ code: 'conflict' }));
    expect(second.dispatches.updateDispatch(uuid(1), { state: 'completed' }, 20_000)).toMatchObject({ state: 'completed', updatedAtMs: 20_000 });
  });

  it('lets a second store on the same file (like another process) cancel a dispatch the first one then sees, and refuse a step back', () => {
    const control = open();
    const dispatcher = open();
    control.dispatches.createDispatch(newDispatch(1), 5_000);
    dispatcher.dispatches.updateDispatch(uuid(1), { state: 'active' }, 10_000);
    const cancelled = control.dispatches.updateDispatch(uuid(1), { state: 'cancelled', reason: 'operator' }, 11_000);
    expect(dispatcher.dispatches.runningDispatches(12_000)).toEqual([]);
    // A loop tick that was in flight cannot bring it back.
    expect(() => dispatcher.dispatches.updateDispatch(uuid(1), { state: 'completed' }, 12_000)).toThrow(expect.objectContaining({ code: 'conflict' }));
    expect(dispatcher.dispatches.getDispatch(uuid(1))).toEqual(cancelled);
  });

  it('fails dispatch writes with unavailable while another connection holds the write lock, writing nothing, and writes once it is released', () => {
    const store = open({ busyTimeoutMs: 50 });
    store.dispatches.createDispatch(newDispatch(1), 5_000);
    const writes: Record<string, () => unknown> = {
      createDispatch: () => store.dispatches.createDispatch(newDispatch(2), 5_000),
      updateDispatch: () => store.dispatches.updateDispatch(uuid(1), { state: 'active' }, 10_000),
      addDispatchSample: () => store.dispatches.addDispatchSample(uuid(1), sample(10_000)),
    };
    expectWritesUnavailableWhileLocked(writes, () => {
      // Readers go on in WAL mode.
      expect(store.dispatches.runningDispatches(10_000)).toHaveLength(1);
    });
    expect(countRows('dispatches')).toBe(1);
    expect(countRows('dispatch_samples')).toBe(0);
    for (const write of Object.values(writes)) write();
    expect(store.dispatches.runningDispatches(10_000).map((d) => [d.id, d.state])).toEqual([
      [uuid(1), 'active'],
      [uuid(2), 'scheduled'],
    ]);
    expect(countRows('dispatch_samples')).toBe(1);
  });

  it('shares the store’s connection: closing the store makes dispatch calls unavailable', async () => {
    const store = open();
    store.dispatches.createDispatch(newDispatch(1), 5_000);
    await store.close();
    expectUnavailable(
      () => store.dispatches.getDispatch(uuid(1)),
      () => store.dispatches.createDispatch(newDispatch(2), 5_000),
      () => store.dispatches.runningDispatches(10_000),
    );
  });

  it(`keeps ${MAX_DISPATCH_SAMPLES} samples per dispatch by default and refuses a bound that is not a positive integer`, () => {
    expect(open().dispatches.maxSamplesPerDispatch).toBe(MAX_DISPATCH_SAMPLES);
    expect(MAX_DISPATCH_SAMPLES).toBe(10_000);
    for (const maxSamplesPerDispatch of [0, -1, 1.5, Number.NaN]) {
      expect(() => open({ dispatches: { maxSamplesPerDispatch } })).toThrow(expect.objectContaining({ code: 'invalid' }));
    }
  });

  it('refuses an unknown state and a sample of no dispatch in the schema itself', () => {
    open().dispatches.createDispatch(newDispatch(1), 5_000);
    writeRaw((raw) => {
      expect(() => raw.prepare("UPDATE dispatches SET state = 'paused'").run()).toThrow(/CHECK constraint failed/);
      expect(() => raw.prepare(`INSERT INTO dispatch_samples VALUES ('${uuid(9)}', 1, 1, 1, 1, 1)`).run()).toThrow(/FOREIGN KEY constraint failed/);
    });
  });

  it('uses its indexes for running dispatches, samples and listing, without sorting', () => {
    const store = open();
    const plan = (name: string, ...params: unknown[]) => planOf(store.dispatches, name, ...params);

    expect(plan('running', 1)).toMatch(/dispatches USING INDEX dispatches_running/);
    expect(plan('running', 1)).not.toMatch(/TEMP B-TREE/);
    expect(plan('samples', 'x', 1, 10)).toMatch(/SEARCH dispatch_samples USING PRIMARY KEY \(dispatch_id=\? AND at_ms>\?\)/);
    expect(plan('trimSamples', { dispatchId: 'x', keep: 5 })).toMatch(/SEARCH dispatch_samples USING PRIMARY KEY \(dispatch_id=\? AND at_ms<\?\)/);
    expect(plan('trimSamples', { dispatchId: 'x', keep: 5 })).not.toMatch(/SCAN/);

    const columns = 'SELECT id FROM dispatches';
    const order = 'ORDER BY created_at_ms DESC, id DESC LIMIT 10';
    const list = (where: string, ...params: unknown[]) => explain(`${columns} ${where} ${order}`, ...params);
    expect(list('')).toMatch(/SCAN dispatches USING (COVERING )?INDEX dispatches_created/);
    expect(list('WHERE (created_at_ms, id) < (?, ?)', 5, 'x')).toMatch(/SEARCH dispatches USING (COVERING )?INDEX dispatches_created/);
    expect(list('WHERE state = ? AND (created_at_ms, id) < (?, ?)', 'active', 5, 'x')).toMatch(/INDEX dispatches_state \(state=\? AND \(created_at_ms,id\)<\(\?,\?\)\)/);
    for (const where of ['', 'WHERE state = ?']) expect(list(where, ...(where === '' ? [] : ['x']))).not.toMatch(/TEMP B-TREE/);
  });

  it('migrates a version 5 file with data to version 6, keeping its data and adding empty dispatch tables', () => {
    createAtVersion(5, (raw) => {
      raw.prepare("INSERT INTO sites VALUES ('site-1', 'north', 'One')").run();
      raw.prepare("INSERT INTO devices (id, type, site_id, secret_hash, created_at_ms) VALUES ('bat-1', 'battery', 'site-1', 'h1', 1000)").run();
      raw
        .prepare(
          `INSERT INTO commands (id, device_id, type, params, state, created_at_ms, expires_at_ms, attempts, next_attempt_at_ms, dispatch_id)
           VALUES ('${uuid(7)}', 'bat-1', 'setPower', '{"powerW":5000}', 'pending', 1000, 90000, 0, 1000, '${uuid(1)}')`,
        )
        .run();
      raw.prepare(`INSERT INTO command_transitions VALUES ('${uuid(7)}', 1, 'pending', 1000, NULL)`).run();
    });

    const store = open();
    expectCurrentVersion(6);
    expect(store.getAcceptedSecretHashes('bat-1', 2_000)).toEqual(['h1']);
    expect(store.commands.listCommands({ dispatchId: uuid(1), limit: 10 }).commands.map((c) => c.id)).toEqual([uuid(7)]);
    expect(store.dispatches.listDispatches({ limit: 10 })).toEqual({ dispatches: [], next: null });
    expect(store.dispatches.runningDispatches(Number.MAX_SAFE_INTEGER)).toEqual([]);

    const created = store.dispatches.createDispatch(newDispatch(1), 5_000);
    expect(store.dispatches.runningDispatches(10_000)).toEqual([created]);
    store.dispatches.addDispatchSample(uuid(1), sample(10_000));
    expect(countRows('dispatch_samples')).toBe(1);
  });
});
