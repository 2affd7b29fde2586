/**
 * SqliteAudit: the AuditStore contract on real files, and what only SQLite
 * has: persistence across reopening, two processes appending to one file,
 * lock timeouts, pruning across several transactions, the append-only
 * trigger, query plans, and the migration from version 6.
 */
import { describe, expect, it } from 'vitest';
import { describeAuditStoreContract } from './contract/index.ts';
import { type AuditRecord } from './index.ts';
import { expectUnavailable, openTempStore, useStoreFiles } from './test-store-files.ts';

const T0 = 1_000_000;

function record(values: Partial<AuditRecord> = {}): AuditRecord {
  return {
    atMs: T0,
    actor: 'ci',
    role: 'admin',
    address: '192.0.2.7',
    action: 'POST /api/v1/tokens',
    target: null,
    summary: { name: 'deploy' },
    status: 201,
    outcome: 'ok',
    ...values,
  };
}

describeAuditStoreContract('SqliteStore.audit', async () => {
  const { store, close } = await openTempStore('vpp-audit-');
  return { store: store.audit, close };
});

describe('SqliteAudit on a file', () => {
  const { open, reopen, countRows, writeRaw, expectWritesUnavailableWhileLocked, explain, createAtVersion, expectCurrentVersion } = useStoreFiles<'audit_log'>('vpp-audit-');

  it('keeps records after close and reopen, and goes on with greater ids', async () => {
    const first = open();
    first.audit.appendAudit([record({ target: 'a' }), record({ target: 'b', summary: null })]);
    const listed = first.audit.listAudit({ limit: 10 });

    const second = await reopen(first);
    expect(second.audit.listAudit({ limit: 10 })).toEqual(listed);
    second.audit.appendAudit([record({ target: 'c' })]);
    const after = second.audit.listAudit({ limit: 10 });
    expect(after.map((r) => r.target)).toEqual(['c', 'b', 'a']);
    expect(after[0]!.id).toBeGreaterThan(listed[0]!.id);
  });

  it('lets two stores on the same file (like two processes) append, each seeing both in commit order', () => {
    const control = open();
    const cli = open();
    control.audit.appendAudit([record({ target: 'control-1' })]);
    cli.audit.appendAudit([record({ target: 'cli-1' }), record({ target: 'cli-2' })]);
    control.audit.appendAudit([record({ target: 'control-2' })]);
    const order = ['control-2', 'cli-2', 'cli-1', 'control-1'];
    expect(control.audit.listAudit({ limit: 10 }).map((r) => r.target)).toEqual(order);
    expect(cli.audit.listAudit({ limit: 10 }).map((r) => r.target)).toEqual(order);
    expect(cli.audit.pruneAudit(T0 + 1, 0)).toBe(4);
    expect(control.audit.listAudit({ limit: 10 })).toEqual([]);
  });

  it('fails appends and pruning with unavailable while another connection holds the write lock, writing nothing, and writes once it is released', () => {
    const store = open({ busyTimeoutMs: 50 });
    store.audit.appendAudit([record({ atMs: 0, target: 'old' })]);
    const writes: Record<string, () => unknown> = {
      appendAudit: () => store.audit.appendAudit([record({ target: 'x' }), record({ target: 'y' })]),
      pruneAudit: () => store.audit.pruneAudit(T0, 1_000),
    };
    expectWritesUnavailableWhileLocked(writes, () => {
      // Readers go on in WAL mode.
      expect(store.audit.listAudit({ limit: 10 })).toHaveLength(1);
    });
    expect(countRows('audit_log')).toBe(1);
    for (const write of Object.values(writes)) write();
    expect(store.audit.listAudit({ limit: 10 }).map((r) => r.target)).toEqual(['y', 'x']);
  });

  it('shares the store’s connection: closing the store makes audit calls unavailable', async () => {
    const store = open();
    await store.close();
    expectUnavailable(
      () => store.audit.appendAudit([record()]),
      () => store.audit.listAudit({ limit: 1 }),
      () => store.audit.pruneAudit(T0, 0),
    );
  });

  it('prunes many records across several transactions, keeping the newer ones', () => {
    const store = open();
    const old = Array.from({ length: 2_500 }, (_, i) => record({ atMs: i, target: `old-${i}` }));
    store.audit.appendAudit(old);
    store.audit.appendAudit([record({ atMs: T0, target: 'new' })]);
    expect(store.audit.pruneAudit(T0, 1)).toBe(2_500);
    expect(countRows('audit_log')).toBe(1);
    expect(store.audit.listAudit({ limit: 10 }).map((r) => r.target)).toEqual(['new']);
  });

  it('refuses to edit a record in the schema itself, and allows retention to delete', () => {
    open().audit.appendAudit([record()]);
    writeRaw((raw) => {
      expect(() => raw.prepare("UPDATE audit_log SET actor = 'someone else'").run()).toThrow(/append-only/);
      expect(raw.prepare('DELETE FROM audit_log').run().changes).toBe(1);
    });
  });

  it('uses its indexes for listing by actor, action, target and time, and for pruning, sorting only a time range', () => {
    open();
    const list = (where: string, ...params: unknown[]) => explain(`SELECT id FROM audit_log WHERE ${where} ORDER BY id DESC LIMIT 10`, ...params);

    expect(list('actor = ? AND id < ?', 'ci', 5)).toMatch(/SEARCH audit_log USING (COVERING )?INDEX audit_log_actor \(actor=\? AND rowid<\?\)/);
    expect(list('action = ? AND id < ?', 'x', 5)).toMatch(/SEARCH audit_log USING (COVERING )?INDEX audit_log_action \(action=\? AND rowid<\?\)/);
    expect(list('target = ? AND id < ?', 'x', 5)).toMatch(/SEARCH audit_log USING (COVERING )?INDEX audit_log_target \(target=\? AND rowid<\?\)/);
    for (const where of ['actor = ?', 'action = ?', 'target = ?']) expect(list(where, 'x')).not.toMatch(/TEMP B-TREE/);
    // A time range alone is read from the time index; only the records in the range are sorted.
    expect(list('at_ms >= ? AND at_ms < ?', 1, 2)).toMatch(/SEARCH audit_log USING (COVERING )?INDEX audit_log_time \(at_ms>\? AND at_ms<\?\)/);
    expect(explain('SELECT id FROM audit_log WHERE at_ms < ? LIMIT 1000', 5)).toMatch(/SEARCH audit_log USING (COVERING )?INDEX audit_log_time \(at_ms<\?\)/);
  });

  it('migrates a version 6 file with data to version 7, keeping its data and adding an empty audit log', () => {
    createAtVersion(6, (raw) => {
      raw.prepare("INSERT INTO sites VALUES ('site-1', 'north', 'One')").run();
    });

    const store = open();
    expectCurrentVersion(7);
    expect(store.getSite('site-1')).toEqual({ id: 'site-1', region: 'north', name: 'One' });
    expect(store.audit.listAudit({ limit: 10 })).toEqual([]);
    store.audit.appendAudit([record()]);
    expect(countRows('audit_log')).toBe(1);
  });
});
