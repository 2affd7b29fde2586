import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../../store/index.ts';
import type { AuditRecord } from '../../store/types.ts';
import { buildControlApp } from '../app.ts';
import { AuditWriter, FLUSH_INTERVAL_MS, MAX_BATCH, MAX_PENDING, flushAudit, summarizeBody } from '../plugins/audit.ts';
import { ALERT_RULES, T0 } from '../test-fixtures.ts';
import { ADMIN_TOKEN, AUTH, useControlTest } from '../test-helper.ts';

const t = useControlTest();

async function auditPage(query = ''): Promise<{ records: Array<Record<string, unknown>>; next: string | null }> {
  const response = await t.request({ method: 'GET', url: `/api/v1/audit${query}` });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

describe('what the audit log records', () => {
  it('records a state-changing call with actor, role, address, action, target, summary, status and outcome', async () => {
    await t.request({ method: 'POST', url: '/api/v1/sites', payload: { id: 'site-1', region: 'north', name: 'Home 1' } });
    t.clock.nowMs = T0 + 1_000;
    const provisioned = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { type: 'battery', siteId: 'site-1', id: 'bat-1' } });
    expect(provisioned.statusCode).toBe(201);
    await t.request({ method: 'DELETE', url: '/api/v1/devices/bat-1' });
    // Reads are not recorded.
    await t.request({ method: 'GET', url: '/api/v1/devices' });

    const { records, next } = await auditPage();
    expect(next).toBeNull();
    expect(records.map((r) => r.action)).toEqual(['DELETE /api/v1/devices/:id', 'POST /api/v1/devices', 'POST /api/v1/sites']);
    expect(records[0]).toMatchObject({ target: 'bat-1', status: 204, outcome: 'ok', summary: null });
    expect(records[1]).toEqual({
      id: expect.any(String),
      at: new Date(T0 + 1_000).toISOString(),
      actor: 'bootstrap',
      role: 'admin',
      address: '127.0.0.1',
      action: 'POST /api/v1/devices',
      target: null,
      summary: { type: 'battery', siteId: 'site-1', id: 'bat-1' },
      status: 201,
      outcome: 'ok',
    });
    // The secret the answer carried is nowhere in the log.
    expect(JSON.stringify(records)).not.toContain(provisioned.json().secret);
  });

  it('records refused calls whatever their method: 401 without actor, 403 with the token\'s name and role', async () => {
    const viewer = await t.createToken('viewer', 'wallboard');
    await t.app.inject({ method: 'GET', url: '/api/v1/devices/bat-9' });
    await t.requestAs('vpp_not-a-real-token', { method: 'GET', url: '/api/v1/fleet' });
    await t.requestAs(viewer, { method: 'POST', url: '/api/v1/devices/bat-9/commands', payload: { type: 'setPower', params: { powerW: 1 } } });
    await t.requestAs(viewer, { method: 'GET', url: '/api/v1/fleet' });

    const { records } = await auditPage('?limit=3');
    // A path no route has is recorded by its path, query left out.
    await t.app.inject({ method: 'POST', url: '/api/v1/no-such-thing?x=1' });
    expect((await auditPage('?limit=1')).records[0]).toMatchObject({ action: 'POST /api/v1/no-such-thing', actor: null, status: 401, outcome: 'refused' });
    expect(records.map((r) => [r.action, r.actor, r.role, r.target, r.status, r.outcome])).toEqual([
      ['POST /api/v1/devices/:id/commands', 'wallboard', 'viewer', 'bat-9', 403, 'refused'],
      ['GET /api/v1/fleet', null, null, null, 401, 'refused'],
      ['GET /api/v1/devices/:id', null, null, 'bat-9', 401, 'refused'],
    ]);
    // The body of a refused call was never read: refused before parsing.
    expect(records[0]!.summary).toBeNull();
  });

  it('records a failed call with its body, secrets removed at any depth', async () => {
    const response = await t.request({
      method: 'POST',
      url: '/api/v1/sites',
      payload: { id: 'site-1', region: 'north', name: 'x', password: 'hunter2', extra: { Token: 'abc', list: [{ secret: 's', keep: 1 }], Authorization: 'Bearer z' } },
    });
    expect(response.statusCode).toBe(400);
    const [record] = (await auditPage()).records;
    expect(record).toMatchObject({ action: 'POST /api/v1/sites', status: 400, outcome: 'failed' });
    expect(record!.summary).toEqual({ id: 'site-1', region: 'north', name: 'x', extra: { list: [{ keep: 1 }] } });
  });

  it('cuts a large body to a summary of at most 1 KiB', async () => {
    t.dispatcher = {
      plan: () => {
        throw new Error('not planned');
      },
      create: () => {
        throw new Error('not created');
      },
      cancel: () => {
        throw new Error('not cancelled');
      },
    };
    const siteIds = Array.from({ length: 5_000 }, (_, i) => `site-${i}`);
    const response = await t.request({ method: 'POST', url: '/api/v1/dispatches', payload: { target: { siteIds }, powerW: 1000, durationSeconds: 600 } });
    expect(response.statusCode).toBe(400);
    const [record] = (await auditPage()).records;
    expect(Buffer.byteLength(JSON.stringify(record!.summary))).toBeLessThanOrEqual(1024);
    expect(record!.summary).toMatchObject({ target: { siteIds: [...siteIds.slice(0, 10), '… 4990 more'] }, powerW: 1000 });
  });

  it('summarizes only object bodies, shortening long strings', () => {
    expect(summarizeBody('text')).toBeNull();
    expect(summarizeBody({ note: 'n'.repeat(300) })).toEqual({ note: `${'n'.repeat(200)}… (300 characters)` });
  });
});

describe('GET /api/v1/audit', () => {
  beforeEach(async () => {
    const operator = await t.createToken('operator', 'ops');
    for (let i = 0; i < 5; i++) {
      t.clock.nowMs = T0 + i * 1_000;
      await t.requestAs(operator, { method: 'POST', url: `/api/v1/dispatches/d-${i}/cancel` });
    }
  });

  it('filters by actor, action, target and time, and pages with before/next', async () => {
    // One more record, of another actor and action: the token made in beforeEach.
    expect((await auditPage()).records).toHaveLength(6);
    expect((await auditPage('?actor=ops')).records).toHaveLength(5);
    expect((await auditPage('?actor=bootstrap')).records.map((r) => r.action)).toEqual(['POST /api/v1/tokens']);
    expect((await auditPage(`?action=${encodeURIComponent('POST /api/v1/dispatches/:id/cancel')}&target=d-3`)).records.map((r) => r.target)).toEqual(['d-3']);
    const from = new Date(T0 + 1_000).toISOString();
    const to = new Date(T0 + 3_000).toISOString();
    expect((await auditPage(`?actor=ops&from=${from}&to=${to}`)).records.map((r) => r.target)).toEqual(['d-2', 'd-1']);

    const first = await auditPage('?actor=ops&limit=2');
    expect(first.records.map((r) => r.target)).toEqual(['d-4', 'd-3']);
    const second = await auditPage(`?actor=ops&limit=2&before=${first.next}`);
    expect(second.records.map((r) => r.target)).toEqual(['d-2', 'd-1']);
    const last = await auditPage(`?actor=ops&limit=2&before=${second.next}`);
    expect(last.records.map((r) => r.target)).toEqual(['d-0']);
    expect(last.next).toBeNull();
  });

  it('refuses a bad range or cursor with a 400 naming it', async () => {
    for (const [query, message] of [
      ['?from=2024-02-31', /^from:/],
      ['?before=abc', /^before:/],
      ['?limit=0', /^limit:/],
      [`?from=${new Date(T0).toISOString()}&to=${new Date(T0).toISOString()}`, /^from: must be before to$/],
    ] as const) {
      const response = await t.request({ method: 'GET', url: `/api/v1/audit${query}` });
      expect(response.statusCode, query).toBe(400);
      expect(response.json().message, query).toMatch(message);
    }
  });
});

describe('writing in batches', () => {
  it('answers before the record is written, then writes within the flush interval', async () => {
    await t.request({ method: 'POST', url: '/api/v1/sites', payload: { id: 'site-1', region: 'north', name: 'Home 1' } });
    expect(t.store.audit.listAudit({ limit: 10 })).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, FLUSH_INTERVAL_MS * 2));
    expect(t.store.audit.listAudit({ limit: 10 }).map((r) => r.action)).toEqual(['POST /api/v1/sites']);
  });

  it('writes at once, in one batch, when MAX_BATCH records are waiting', async () => {
    await Promise.all(Array.from({ length: MAX_BATCH }, () => t.app.inject({ method: 'GET', url: '/api/v1/fleet' })));
    await new Promise((resolve) => setImmediate(resolve));
    expect(t.store.audit.listAudit({ limit: 1_000 })).toHaveLength(MAX_BATCH);
  });
});

describe('when the audit log cannot be written', () => {
  let dir = '';
  let broken: SqliteStore;
  let lines: string[] = [];
  const logger = () => pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpp-audit-'));
    broken = openSqliteStore({ file: path.join(dir, 'broken.db') });
    // A closed database fails every call, as a lost disk would.
    await broken.close();
    lines = [];
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('still answers the request, and logs the failure as an error', async () => {
    const app = await buildControlApp({
      registry: t.store,
      telemetry: t.store,
      twins: t.store,
      deadLetters: t.store,
      alerts: t.store.alerts,
      alertRules: ALERT_RULES,
      onAlertTransition: () => {},
      commands: t.store.commands,
      onCommandCreated: () => {},
      dispatches: t.store.dispatches,
      dispatcher: t.dispatcher,
      live: t.live,
      revocations: { revokeDevice: async () => {} },
      health: { check: async () => ({ ok: true, components: {} }) },
      clock: () => T0,
      logger: logger(),
      adminToken: ADMIN_TOKEN,
      tokens: t.store.tokens,
      audit: broken.audit,
      secretGraceMs: 60_000,
    });
    try {
      const response = await app.inject({ method: 'POST', url: '/api/v1/sites', headers: AUTH, payload: { id: 'site-1', region: 'north', name: 'Home 1' } });
      expect(response.statusCode).toBe(201);
      flushAudit(app);
      const errors = lines.map((line) => JSON.parse(line) as { level: number; msg: string; records?: number }).filter((entry) => entry.level >= 50);
      expect(errors).toEqual([expect.objectContaining({ msg: 'audit records could not be written; retrying', records: 1 })]);
    } finally {
      await app.close();
    }
  });

  it('keeps the records and writes them once the store takes them again', () => {
    let current = broken;
    const writer = new AuditWriter({ appendAudit: (records) => current.audit.appendAudit(records) }, logger());
    const record: AuditRecord = {
      atMs: T0,
      actor: 'ops',
      role: 'operator',
      address: '10.0.0.1',
      action: 'POST /api/v1/dispatches',
      target: null,
      summary: null,
      status: 201,
      outcome: 'ok',
    };
    writer.add(record);
    writer.flush();
    expect(lines.some((line) => line.includes('audit records could not be written'))).toBe(true);
    current = t.store;
    writer.flush();
    writer.close();
    expect(t.store.audit.listAudit({ limit: 10 })).toEqual([{ ...record, id: expect.any(Number) }]);
    expect(lines.at(-1)).toContain('audit log written again');
  });

  it('keeps at most MAX_PENDING records while the store refuses them, dropping the oldest, and says so once per attempt', () => {
    const appended: (readonly AuditRecord[])[] = [];
    let failing = true;
    const writer = new AuditWriter(
      {
        appendAudit: (records) => {
          if (failing) throw new Error('disk lost');
          appended.push(records);
        },
      },
      logger(),
    );
    const record = (i: number): AuditRecord => ({
      atMs: T0 + i,
      actor: 'ops',
      role: 'operator',
      address: '10.0.0.1',
      action: 'POST /api/v1/dispatches',
      target: null,
      summary: null,
      status: 201,
      outcome: 'ok',
    });
    try {
      for (let i = 0; i < MAX_PENDING + 25; i++) writer.add(record(i));
      expect(writer.pendingCount).toBe(MAX_PENDING);
      writer.flush();
      expect(writer.pendingCount).toBe(MAX_PENDING);
      const entries = lines.map((line) => JSON.parse(line) as { msg: string; dropped?: number });
      expect(entries.filter((entry) => entry.msg.startsWith('audit records dropped'))).toEqual([expect.objectContaining({ dropped: 25 })]);
      failing = false;
      writer.flush();
      expect(writer.pendingCount).toBe(0);
      // The newest were kept: the oldest 25 went first.
      expect(appended.flat().map((r) => r.atMs)).toEqual(Array.from({ length: MAX_PENDING }, (_, i) => T0 + 25 + i));
    } finally {
      writer.close();
    }
  });
});
