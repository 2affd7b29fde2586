/**
 * Contract of AuditStore, run by every implementation against a fresh,
 * empty store per test: appends keep their order and give records back
 * exactly, listing newest first with every filter combining and paging by
 * beforeId, the bounds on strings and summaries (cut, not refused), the
 * checks of what callers pass (nothing of a refused batch written), and
 * pruning by age.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, type AuditRecord, type AuditStore, type StoredAuditRecord } from '../types.ts';
import type { OpenStore } from './open-store.ts';

/** When the records below happen, unless a test says otherwise. */
const T0 = 1_000_000;
const DAY_MS = 86_400_000;
/** The bounds of AuditRecord, as the port states them. */
const SUMMARY_BYTES = 1_024;

function record(values: Partial<AuditRecord> = {}): AuditRecord {
  return {
    atMs: T0,
    actor: 'ci deploy',
    role: 'operator',
    address: '192.0.2.7',
    action: 'POST /api/v1/devices/:id/commands',
    target: 'bat-1',
    summary: { type: 'setPower', powerW: 3_000 },
    status: 202,
    outcome: 'ok',
    ...values,
  };
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

/** The record as stored, without its id. */
function withoutId({ id: _id, ...rest }: StoredAuditRecord): AuditRecord {
  return rest;
}

export function describeAuditStoreContract(name: string, open: OpenStore<AuditStore>): void {
  describe(`AuditStore contract: ${name}`, () => {
    let audit: AuditStore;
    let close: () => Promise<void>;

    beforeEach(async () => {
      ({ store: audit, close } = await open());
    });

    afterEach(async () => {
      await close();
    });

    const all = (query: Partial<Parameters<AuditStore['listAudit']>[0]> = {}) => audit.listAudit({ limit: 1_000, ...query });

    describe('appending', () => {
      it('gives every field back exactly, with ids increasing in append order, newest first', () => {
        const records: AuditRecord[] = [
          record(),
          record({ atMs: T0 + 1, actor: null, role: null, address: '2001:db8::1', action: 'POST /api/v1/tokens', target: null, summary: null, status: 401, outcome: 'refused' }),
          record({ atMs: T0 + 2, actor: 'bootstrap', role: 'admin', summary: { nested: { list: [1, 'two', null, true] }, text: 'Zoë 🔋' }, status: 500, outcome: 'failed' }),
          record({ atMs: T0 + 3, summary: {}, role: 'viewer', status: 403, outcome: 'refused' }),
        ];
        audit.appendAudit(records);
        const listed = all();
        expect(listed.map(withoutId)).toEqual([...records].reverse());
        const ids = listed.map((r) => r.id).reverse();
        for (const id of ids) expect(Number.isSafeInteger(id)).toBe(true);
        for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
      });

      it('keeps the order of appends across batches, even when their times disagree', () => {
        audit.appendAudit([record({ atMs: T0 + 50, target: 'a' }), record({ atMs: T0 + 10, target: 'b' })]);
        audit.appendAudit([record({ atMs: T0 + 5, target: 'c' })]);
        audit.appendAudit([]);
        audit.appendAudit([record({ atMs: T0 + 60, target: 'd' }), record({ atMs: T0 + 60, target: 'e' }), record({ atMs: T0 + 1, target: 'f' })]);
        expect(all().map((r) => r.target)).toEqual(['f', 'e', 'd', 'c', 'b', 'a']);
      });

      it('cuts strings to their bounds (address 64, action 128, target 128, actor 64), never inside a surrogate pair', () => {
        audit.appendAudit([
          record({ address: 'a'.repeat(65), action: 'P'.repeat(500), target: 't'.repeat(10_000), actor: 'n'.repeat(65) }),
          record({ address: 'a'.repeat(64), action: 'P'.repeat(128), target: 't'.repeat(128), actor: 'n'.repeat(64) }),
          // An emoji (two UTF-16 units) straddling each bound is dropped whole.
          record({ address: `${'a'.repeat(63)}🔋`, action: `${'P'.repeat(127)}🔋`, target: `${'t'.repeat(127)}🔋x`, actor: `${'n'.repeat(63)}🔋` }),
        ]);
        const [straddling, exact, long] = all();
        expect(long).toMatchObject({ address: 'a'.repeat(64), action: 'P'.repeat(128), target: 't'.repeat(128), actor: 'n'.repeat(64) });
        expect(exact).toMatchObject({ address: 'a'.repeat(64), action: 'P'.repeat(128), target: 't'.repeat(128), actor: 'n'.repeat(64) });
        expect(straddling).toMatchObject({ address: 'a'.repeat(63), action: 'P'.repeat(127), target: 't'.repeat(127), actor: 'n'.repeat(63) });
      });

      it(`keeps a summary of ${SUMMARY_BYTES} bytes as JSON exactly and cuts a longer one to its leading entries under _truncated`, () => {
        // {"a":"…"} is 8 bytes plus the string.
        const exact = { a: 'x'.repeat(SUMMARY_BYTES - 8) };
        expect(Buffer.byteLength(JSON.stringify(exact))).toBe(SUMMARY_BYTES);
        const over = { a: 'é'.repeat((SUMMARY_BYTES - 8) / 2), b: 1 };
        const long = { deviceId: 'bat-1', powerW: 3_000, notes: 'n'.repeat(5_000), after: 'kept? no: entries stop at the first that does not fit' };
        const huge = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i]));
        audit.appendAudit([record({ summary: exact }), record({ summary: over }), record({ summary: long }), record({ summary: huge })]);
        const [hugeStored, longStored, overStored, exactStored] = all().map((r) => r.summary);

        expect(exactStored).toEqual(exact);
        expect(overStored).toEqual({ _truncated: { bytes: Buffer.byteLength(JSON.stringify(over)), droppedKeys: 2 } });
        expect(longStored).toEqual({ _truncated: { bytes: Buffer.byteLength(JSON.stringify(long)), droppedKeys: 2 }, deviceId: 'bat-1', powerW: 3_000 });
        const hugeKept = Object.keys(hugeStored!).filter((k) => k !== '_truncated');
        expect(hugeKept.length).toBeGreaterThan(10);
        expect(hugeKept).toEqual(hugeKept.map((_, i) => `k${i}`));
        expect(hugeStored!._truncated).toEqual({ bytes: Buffer.byteLength(JSON.stringify(huge)), droppedKeys: 10_000 - hugeKept.length });
        for (const summary of [hugeStored, longStored, overStored]) expect(Buffer.byteLength(JSON.stringify(summary))).toBeLessThanOrEqual(SUMMARY_BYTES);
        // The next entry would not have fitted.
        expect(Buffer.byteLength(JSON.stringify({ ...hugeStored, [`k${hugeKept.length}`]: hugeKept.length }))).toBeGreaterThan(SUMMARY_BYTES);
      });

      it('stores a summary as JSON keeps it: undefined entries dropped, toJSON applied', () => {
        audit.appendAudit([record({ summary: { a: undefined, at: new Date(0), n: 1 } })]);
        expect(all()[0]!.summary).toEqual({ at: '1970-01-01T00:00:00.000Z', n: 1 });
      });

      it('refuses a batch with any malformed record with invalid, naming the record and field, and writes none of it', () => {
        const cyclic: Record<string, unknown> = { a: 1 };
        cyclic.self = cyclic;
        const bad: Array<{ what: string; value: AuditRecord; says: RegExp }> = [
          { what: 'atMs fractional', value: record({ atMs: T0 + 0.5 }), says: /atMs/ },
          { what: 'atMs unsafe', value: record({ atMs: 1e20 }), says: /atMs/ },
          { what: 'actor a number', value: record({ actor: 5 as unknown as string }), says: /actor/ },
          { what: 'role unknown', value: record({ role: 'root' as AuditRecord['role'] }), says: /role/ },
          { what: 'address null', value: record({ address: null as unknown as string }), says: /address/ },
          { what: 'action empty', value: record({ action: '' }), says: /action/ },
          { what: 'action missing', value: record({ action: undefined as unknown as string }), says: /action/ },
          { what: 'target a number', value: record({ target: 7 as unknown as string }), says: /target/ },
          { what: 'summary an array', value: record({ summary: [1, 2] as unknown as Record<string, unknown> }), says: /summary/ },
          { what: 'summary a string', value: record({ summary: 'x' as unknown as Record<string, unknown> }), says: /summary/ },
          { what: 'summary cyclic', value: record({ summary: cyclic }), says: /summary/ },
          { what: 'summary with a BigInt', value: record({ summary: { n: 1n } }), says: /summary/ },
          { what: 'status fractional', value: record({ status: 200.5 }), says: /status/ },
          { what: 'status 99', value: record({ status: 99 }), says: /status/ },
          { what: 'status 600', value: record({ status: 600 }), says: /status/ },
          { what: 'outcome unknown', value: record({ outcome: 'denied' as AuditRecord['outcome'] }), says: /outcome/ },
          { what: 'record null', value: null as unknown as AuditRecord, says: /record 1/ },
        ];
        for (const { what, value, says } of bad) {
          const error = expectStoreError(() => audit.appendAudit([record(), value, record()]), 'invalid');
          expect(error.message, what).toMatch(says);
          expect(error.message, what).toMatch(/record 1/);
        }
        const many = expectStoreError(() => audit.appendAudit([record({ atMs: 0.5 }), record({ status: 0, outcome: 'x' as AuditRecord['outcome'] })]), 'invalid');
        for (const says of [/record 0: atMs/, /record 1: status/, /record 1: outcome/]) expect(many.message).toMatch(says);
        expectStoreError(() => audit.appendAudit('x' as unknown as AuditRecord[]), 'invalid');
        expect(all()).toEqual([]);

        // The bounds themselves pass.
        audit.appendAudit([record({ status: 100, address: '' }), record({ status: 599, target: '' })]);
        expect(all().map((r) => r.status)).toEqual([599, 100]);
      });
    });

    describe('listing', () => {
      /** Twelve records over three actors, two actions, four targets and twelve times. */
      function seed(): StoredAuditRecord[] {
        const records = Array.from({ length: 12 }, (_, i) =>
          record({
            atMs: T0 + i * 1_000,
            actor: i % 4 === 3 ? null : ['alice', 'bob', 'ci'][i % 4]!,
            action: i % 2 === 0 ? 'POST /api/v1/devices/:id/commands' : 'DELETE /api/v1/devices/:id',
            target: i % 5 === 4 ? null : `bat-${i % 3}`,
          }),
        );
        audit.appendAudit(records);
        return all().reverse();
      }

      const ids = (records: StoredAuditRecord[]) => records.map((r) => r.id);
      /** The seeded records that pass `keep`, newest first. */
      const expected = (seeded: StoredAuditRecord[], keep: (r: StoredAuditRecord) => boolean) => ids(seeded.filter(keep).reverse());

      it('filters by actor, action, target and time, each alone and together', () => {
        const seeded = seed();
        expect(all({ actor: 'alice' })).toEqual(seeded.filter((r) => r.actor === 'alice').reverse());
        expect(ids(all({ actor: 'nobody' }))).toEqual([]);
        expect(ids(all({ action: 'DELETE /api/v1/devices/:id' }))).toEqual(expected(seeded, (r) => r.action === 'DELETE /api/v1/devices/:id'));
        expect(ids(all({ target: 'bat-1' }))).toEqual(expected(seeded, (r) => r.target === 'bat-1'));
        expect(ids(all({ fromMs: T0 + 3_000 }))).toEqual(expected(seeded, (r) => r.atMs >= T0 + 3_000));
        expect(ids(all({ toMs: T0 + 3_000 }))).toEqual(expected(seeded, (r) => r.atMs < T0 + 3_000));
        expect(ids(all({ fromMs: T0 + 3_000, toMs: T0 + 3_000 }))).toEqual([]);
        expect(ids(all({ fromMs: T0 + 3_000, toMs: T0 + 3_001 }))).toEqual([seeded[3]!.id]);

        const combined = all({ actor: 'alice', action: 'POST /api/v1/devices/:id/commands', target: 'bat-2', fromMs: T0 + 1_000, toMs: T0 + 9_000 });
        expect(ids(combined)).toEqual(
          expected(seeded, (r) => r.actor === 'alice' && r.action === 'POST /api/v1/devices/:id/commands' && r.target === 'bat-2' && r.atMs >= T0 + 1_000 && r.atMs < T0 + 9_000),
        );
        expect(combined.length).toBeGreaterThan(0);
        const ciTargets = all({ actor: 'ci', target: 'bat-0' });
        expect(ids(ciTargets)).toEqual(expected(seeded, (r) => r.actor === 'ci' && r.target === 'bat-0'));
      });

      it('finds a record by the long actor or target it was appended with, though that was cut', () => {
        audit.appendAudit([record({ actor: 'n'.repeat(100), target: 't'.repeat(300) }), record()]);
        expect(all({ actor: 'n'.repeat(100) })).toHaveLength(1);
        expect(all({ target: 't'.repeat(300) })).toHaveLength(1);
        expect(all({ target: 't'.repeat(128) })).toHaveLength(1);
      });

      it('pages newest first by beforeId, at most limit, with and without filters', () => {
        const seeded = seed();
        const newestFirst = ids([...seeded].reverse());
        const pages: number[][] = [];
        let beforeId: number | undefined;
        for (;;) {
          const page = audit.listAudit({ limit: 5, ...(beforeId === undefined ? {} : { beforeId }) });
          if (page.length === 0) break;
          pages.push(ids(page));
          beforeId = page.at(-1)!.id;
        }
        expect(pages.map((p) => p.length)).toEqual([5, 5, 2]);
        expect(pages.flat()).toEqual(newestFirst);

        const bob = expected(seeded, (r) => r.actor === 'bob');
        const first = audit.listAudit({ actor: 'bob', limit: 2 });
        expect(ids(first)).toEqual(bob.slice(0, 2));
        expect(ids(audit.listAudit({ actor: 'bob', limit: 2, beforeId: first.at(-1)!.id }))).toEqual(bob.slice(2, 4));
        expect(ids(audit.listAudit({ limit: 10, beforeId: seeded[0]!.id }))).toEqual([]);
        expect(ids(audit.listAudit({ limit: 1, beforeId: Number.MAX_SAFE_INTEGER }))).toEqual([newestFirst[0]]);
      });

      it('refuses a bad limit, filter or cursor with invalid', () => {
        seed();
        for (const limit of [0, -1, 1.5, 1_001, Number.NaN]) expectStoreError(() => audit.listAudit({ limit }), 'invalid');
        expect(audit.listAudit({ limit: 1_000 })).toHaveLength(12);
        for (const query of [{ fromMs: 1.5 }, { toMs: Number.NaN }, { beforeId: 1.5 }, { beforeId: 1e20 }, { actor: 5 as unknown as string }, { target: null as unknown as string }]) {
          expectStoreError(() => audit.listAudit({ limit: 10, ...query }), 'invalid');
        }
      });
    });

    describe('retention', () => {
      it('deletes records older than the retention, returns how many, and keeps ids increasing', () => {
        const times = [T0 - 3 * DAY_MS, T0 - 2 * DAY_MS - 1, T0 - 2 * DAY_MS, T0 - DAY_MS, T0];
        audit.appendAudit(times.map((atMs, i) => record({ atMs, target: `t${i}` })));
        const newest = all()[0]!.id;

        expect(audit.pruneAudit(T0, 2 * DAY_MS)).toBe(2);
        expect(all().map((r) => r.target)).toEqual(['t4', 't3', 't2']);
        expect(audit.pruneAudit(T0, 2 * DAY_MS)).toBe(0);
        expect(audit.pruneAudit(T0, Number.POSITIVE_INFINITY)).toBe(0);
        expect(audit.pruneAudit(T0 + 1, 0)).toBe(3);
        expect(all()).toEqual([]);

        // Ids are never reused, so a beforeId from before the prune still pages correctly.
        audit.appendAudit([record({ target: 'after' })]);
        expect(all()[0]!.id).toBeGreaterThan(newest);
        expect(audit.listAudit({ limit: 10, beforeId: newest + 1 })).toEqual([]);
      });

      it('refuses a bad time or retention with invalid, deleting nothing', () => {
        audit.appendAudit([record({ atMs: 0 })]);
        for (const [nowMs, retentionMs] of [
          [1.5, 0],
          [Number.NaN, 0],
          [T0, -1],
          [T0, 1.5],
          [T0, Number.NaN],
        ] as const) {
          expectStoreError(() => audit.pruneAudit(nowMs, retentionMs), 'invalid');
        }
        expect(all()).toHaveLength(1);
      });
    });
  });
}
