/**
 * The live stream over real HTTP, without a browser: tickets, topic checks,
 * per-subscription filtering, state first, coalescing of aggregates,
 * resuming with Last-Event-ID (and a reset when events are gone),
 * heartbeats, a slow client dropped beside a good one, the client limit,
 * and shutdown with streams open. Each test builds its own app on a real
 * SQLite store and listens on a free loopback port.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AggregateSnapshot } from '../../protocol/index.ts';
import type { RuleSignal } from '../../store/types.ts';
import { openSqliteStore, type SqliteStore } from '../../store/index.ts';
import { buildControlApp } from '../app.ts';
import type { StreamOptions } from '../deps.ts';
import { createLiveView, type FeedableLiveView } from '../live-view.ts';
import { SseClient } from '../stream/test-sse-client.ts';
import { ALERT_RULES, T0, makeSnapshot, publishSnapshot } from '../test-fixtures.ts';
import { ADMIN_TOKEN } from '../test-helper.ts';

const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

interface StreamTest {
  app: FastifyInstance;
  store: SqliteStore;
  live: FeedableLiveView;
  clock: { nowMs: number };
  base: string;
  logs: string[];
  clients: SseClient[];
  open(query: string, headers?: Record<string, string>): Promise<SseClient>;
  api(method: string, url: string, options?: { token?: string; body?: unknown }): Promise<Response>;
  ticket(token?: string): Promise<string>;
}

let dir: string;
let t: StreamTest;

async function start(stream: StreamOptions = {}): Promise<StreamTest> {
  const store = openSqliteStore({ file: path.join(dir, `stream-${Math.random().toString(36).slice(2)}.db`) });
  const live = createLiveView();
  const clock = { nowMs: Date.now() };
  const logs: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString());
        done();
      },
    }),
  );
  const noDispatcher = (): never => {
    throw new Error('no dispatcher in stream tests');
  };
  const app = await buildControlApp({
    registry: store,
    telemetry: store,
    twins: store,
    deadLetters: store,
    alerts: store.alerts,
    alertRules: ALERT_RULES,
    onAlertTransition: () => undefined,
    commands: store.commands,
    onCommandCreated: () => undefined,
    dispatches: store.dispatches,
    dispatcher: { plan: noDispatcher, create: noDispatcher, cancel: noDispatcher },
    live,
    revocations: { revokeDevice: async () => undefined },
    health: { check: async () => ({ ok: true, components: {} }) },
    secretGraceMs: 0,
    adminToken: ADMIN_TOKEN,
    tokens: store.tokens,
    audit: store.audit,
    access: { rateLimitPerMinute: 100_000, rateLimitPerAddressPerMinute: 100_000, failedAuthPerAddressPerMinute: 100_000 },
    stream: { pollMs: 50, sitesIntervalMs: 100, ...stream },
    clock: () => clock.nowMs,
    logger,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address() as net.AddressInfo;
  const base = `http://127.0.0.1:${address.port}`;
  const test: StreamTest = {
    app,
    store,
    live,
    clock,
    base,
    logs,
    clients: [],
    async open(query, headers = {}) {
      const client = await SseClient.open(`${base}/api/v1/stream?${query}`, headers);
      test.clients.push(client);
      return client;
    },
    api(method, url, options = {}) {
      return fetch(`${base}${url}`, {
        method,
        headers: { authorization: `Bearer ${options.token ?? ADMIN_TOKEN}`, ...(options.body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    },
    async ticket(token = ADMIN_TOKEN) {
      const response = await test.api('POST', '/api/v1/stream/tickets', { token });
      expect(response.status).toBe(201);
      return ((await response.json()) as { ticket: string }).ticket;
    },
  };
  return test;
}

async function createToken(role: 'viewer' | 'operator' | 'admin', name: string): Promise<{ id: string; token: string }> {
  const response = await t.api('POST', '/api/v1/tokens', { body: { name, role } });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; token: string };
}

async function addSite(id: string, region: string, devices: string[] = []): Promise<void> {
  expect((await t.api('POST', '/api/v1/sites', { body: { id, region, name: id } })).status).toBeLessThan(300);
  for (const device of devices) {
    expect((await t.api('POST', '/api/v1/devices', { body: { id: device, type: 'battery', siteId: id } })).status).toBe(201);
  }
}

function snapshotOf(client: SseClient, index = -1): AggregateSnapshot {
  const event = client.ofType('aggregate').at(index)!;
  return (JSON.parse(event.data) as { snapshot: AggregateSnapshot }).snapshot;
}

const dataOf = (client: SseClient, type: string) => client.ofType(type).map((e) => JSON.parse(e.data) as Record<string, unknown>);

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpp-stream-'));
});

afterEach(async () => {
  for (const client of t?.clients ?? []) client.close();
  await t?.app.close();
  t?.store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('GET /api/v1/stream: authentication', () => {
  beforeEach(async () => {
    t = await start();
  });

  it('takes a ticket from POST /stream/tickets instead of the Authorization header, and a bearer token too', async () => {
    const response = await t.api('POST', '/api/v1/stream/tickets');
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const { ticket, expiresAt } = (await response.json()) as { ticket: string; expiresAt: string };
    expect(ticket).toMatch(/^st_[\w-]+\.[\w-]+$/);
    expect(Date.parse(expiresAt) - t.clock.nowMs).toBe(60_000);

    const withTicket = await t.open(`topics=fleet&ticket=${ticket}`);
    expect(withTicket.status).toBe(200);
    expect(withTicket.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(withTicket.headers['cache-control']).toBe('no-store');
    expect(withTicket.headers['x-content-type-options']).toBe('nosniff');
    await withTicket.until((c) => c.retryMs === 2_000, 2_000, 'the retry field');
    expect((await t.open('topics=fleet', AUTH)).status).toBe(200);
    // The logs show the URL without the ticket.
    const logged = t.logs.join('');
    expect(logged).toContain('ticket=[redacted]');
    expect(logged).not.toContain(ticket.slice(3, 20));
  });

  it('refuses no credential, a forged, expired or foreign-route ticket, and the ticket of a revoked token', async () => {
    expect((await t.open('topics=fleet')).status).toBe(401);
    const viewer = await createToken('viewer', 'wall screen');
    const ticket = await t.ticket(viewer.token);
    expect((await t.open(`topics=fleet&ticket=${ticket}`)).status).toBe(200);

    const [payload, mac] = ticket.slice(3).split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), r: 'admin' })).toString('base64url');
    expect((await t.open(`topics=fleet&ticket=st_${forgedPayload}.${mac}`)).status).toBe(401);
    expect((await t.open(`topics=fleet&ticket=${ticket}x`)).status).toBe(401);
    // A ticket opens the stream and nothing else.
    expect((await fetch(`${t.base}/api/v1/fleet?ticket=${ticket}`)).status).toBe(401);

    t.clock.nowMs += 60_000;
    expect((await t.open(`topics=fleet&ticket=${ticket}`)).status).toBe(401);
    t.clock.nowMs -= 60_000;
    expect((await t.api('DELETE', `/api/v1/tokens/${viewer.id}`)).status).toBe(204);
    const revoked = await t.open(`topics=fleet&ticket=${ticket}`);
    expect(revoked.status).toBe(401);
    expect(JSON.parse(revoked.body)).toMatchObject({ code: 'unauthorized' });
  });

  it('answers 400 for a bad topic list and 404 for an entity that does not exist', async () => {
    await addSite('site-1', 'north', ['bat-1']);
    const problem = async (query: string) => {
      const client = await t.open(query, AUTH);
      return { status: client.status, message: (JSON.parse(client.body) as { message: string }).message };
    };
    expect(await problem('topics=')).toMatchObject({ status: 400 });
    expect(await problem('topics=weather')).toMatchObject({ status: 400, message: expect.stringContaining("unknown topic 'weather'") });
    expect(await problem('topics=site:bad id')).toMatchObject({ status: 400 });
    expect(await problem(`topics=${Array.from({ length: 17 }, (_, i) => `device:d${i}`).join(',')}`)).toMatchObject({ status: 400, message: expect.stringContaining('at most 16') });
    expect(await problem('topics=site:site-2')).toMatchObject({ status: 404, message: 'topics: site:site-2: no such site' });
    expect(await problem('topics=device:bat-9')).toMatchObject({ status: 404 });
    expect(await problem('topics=region:south')).toMatchObject({ status: 404 });
    expect(await problem('topics=dispatch:00000000-0000-4000-8000-000000000000')).toMatchObject({ status: 404 });
    expect((await t.open('topics=site:site-1,device:bat-1,region:north,fleet,alerts,sites', AUTH)).status).toBe(200);
  });
});

describe('GET /api/v1/stream: what each client receives', () => {
  beforeEach(async () => {
    t = await start();
    await addSite('site-1', 'north', ['bat-1']);
    await addSite('site-2', 'south', ['bat-2']);
  });

  it('sends each client only the topics it watches, the current state first', async () => {
    publishSnapshot(t.live, makeSnapshot('site', 'site-1', T0, { devicesReporting: 1, devicesTotal: 1 }));
    const one = await t.open('topics=site:site-1', AUTH);
    const two = await t.open('topics=site:site-2', AUTH);
    const fleet = await t.open('topics=fleet', AUTH);
    // State first: site-1's latest aggregate (without an id) and its devices.
    await one.until((c) => c.ofType('site-devices').length === 1 && c.ofType('aggregate').length === 1, 2_000, 'the state of site-1');
    expect(one.ofType('aggregate')[0]!.id).toBeUndefined();
    expect(dataOf(one, 'site-devices')[0]).toMatchObject({ topic: 'site:site-1', devices: [{ id: 'bat-1', presence: 'offline' }] });

    publishSnapshot(t.live, makeSnapshot('site', 'site-2', T0 + 1, { devicesReporting: 1, devicesTotal: 1 }));
    publishSnapshot(t.live, makeSnapshot('region', 'north', T0 + 1, { devicesReporting: 1, devicesTotal: 1 }));
    publishSnapshot(t.live, makeSnapshot('fleet', 'fleet', T0 + 1, { devicesReporting: 2, devicesTotal: 2 }));
    await two.until((c) => c.ofType('aggregate').length === 1, 2_000, 'site-2');
    await fleet.until((c) => c.ofType('aggregate').length === 2, 2_000, 'the region and the fleet');
    expect(snapshotOf(two).id).toBe('site-2');
    expect(two.ofType('aggregate')[0]!.id).toMatch(/-\d+$/);
    expect(fleet.ofType('aggregate').map((e) => JSON.parse(e.data) as { topic: string; snapshot: AggregateSnapshot }).map((d) => `${d.topic}:${d.snapshot.level}/${d.snapshot.id}`)).toEqual([
      'fleet:region/north',
      'fleet:fleet/fleet',
    ]);

    // A device's new state reaches the site's watchers (polled from the store), not the other site's.
    t.store.saveDeviceStates([
      { deviceId: 'bat-1', lastTs: T0, lastSeenMs: t.clock.nowMs, lastSeq: 7, metrics: { socPct: 55 }, presence: 'online', presenceSinceMs: t.clock.nowMs, status: null },
    ]);
    await one.until((c) => c.ofType('site-devices').length === 2, 2_000, 'the new device state');
    expect(dataOf(one, 'site-devices')[1]).toMatchObject({ devices: [{ id: 'bat-1', presence: 'online', metrics: { socPct: 55 } }] });
    expect(one.ofType('aggregate')).toHaveLength(1);
    expect(two.ofType('site-devices')).toHaveLength(1);
  });

  it('pushes a burst of aggregates at most once per interval per entity, the newest last', async () => {
    for (const client of t.clients) client.close();
    await t.app.close();
    t.store.close();
    t = await start({ minIntervalMs: 300 });
    const fleet = await t.open('topics=fleet', AUTH);
    await fleet.until((c) => c.retryMs !== undefined, 2_000, 'the stream to open');
    for (let i = 1; i <= 50; i++) publishSnapshot(t.live, makeSnapshot('fleet', 'fleet', T0 + i, { devicesReporting: i, devicesTotal: 50 }));
    await fleet.until((c) => c.ofType('aggregate').length > 0 && snapshotOf(c).ts === T0 + 50, 3_000, 'the newest aggregate');
    // The first at once, then the newest of the burst when the interval ended: two, not fifty.
    expect(fleet.ofType('aggregate').map((e) => (JSON.parse(e.data) as { snapshot: AggregateSnapshot }).snapshot.coverage.devicesReporting)).toEqual([1, 50]);
    expect(fleet.ofType('aggregate')[1]!.receivedAtMs - fleet.ofType('aggregate')[0]!.receivedAtMs).toBeGreaterThanOrEqual(250);
  });

  it('resumes with Last-Event-ID (header or query) without a gap, and says reset when it cannot', async () => {
    const first = await t.open('topics=region:north,alerts', AUTH);
    publishSnapshot(t.live, makeSnapshot('region', 'north', T0 + 1, { devicesReporting: 1, devicesTotal: 1 }));
    await first.until((c) => c.ofType('aggregate').length === 1, 2_000, 'the first aggregate');
    const lastId = first.lastEventId()!;
    first.close();

    fireAlert('battery-overheat', 'bat-1', t.clock.nowMs);
    await waitForStats((s) => s.published >= 2);
    publishSnapshot(t.live, makeSnapshot('region', 'north', T0 + 10_000, { devicesReporting: 0, devicesTotal: 1 }));
    await waitForStats((s) => s.published >= 3);

    for (const resumed of [await t.open('topics=region:north,alerts', { ...AUTH, 'last-event-id': lastId }), await t.open(`topics=region:north,alerts&lastEventId=${lastId}`, AUTH)]) {
      await resumed.until((c) => c.events.length >= 2, 2_000, 'the missed events');
      expect(resumed.events.map((e) => e.event)).toEqual(['alert', 'aggregate']);
      expect(dataOf(resumed, 'alert')[0]).toMatchObject({ topic: 'alerts', alert: { ruleId: 'battery-overheat', subjectId: 'bat-1', state: 'firing' }, transition: { kind: 'fired' } });
      expect(snapshotOf(resumed).ts).toBe(T0 + 10_000);
    }

    const unknown = await t.open('topics=region:north', { ...AUTH, 'last-event-id': 'other-run-5' });
    await unknown.until((c) => c.events.length >= 2, 2_000, 'the reset and the state');
    expect(unknown.events.map((e) => e.event)).toEqual(['reset', 'aggregate']);
    expect(dataOf(unknown, 'reset')[0]).toEqual({ topic: 'region:north', reason: 'restart' });
  });

  it('follows every alert transition, acknowledgements included, and the watched device', async () => {
    const client = await t.open('topics=alerts,device:bat-2', AUTH);
    await client.until((c) => c.ofType('device').length === 1, 2_000, 'the device state');
    const alertId = fireAlert('battery-overheat', 'bat-2', t.clock.nowMs);
    expect((await t.api('POST', `/api/v1/alerts/${alertId}/ack`, { body: { note: 'on it' } })).status).toBe(200);
    await client.until((c) => c.ofType('alert').length === 2, 2_000, 'two transitions');
    expect(dataOf(client, 'alert').map((d) => (d.transition as { kind: string }).kind)).toEqual(['fired', 'acknowledged']);
    expect(dataOf(client, 'alert')[1]).toMatchObject({ alert: { id: alertId, state: 'acknowledged', acknowledgedBy: 'bootstrap' } });
    expect(dataOf(client, 'device')[0]).toMatchObject({ topic: 'device:bat-2', device: { id: 'bat-2', siteId: 'site-2' } });
  });

  it('sends the changed rows of the sites table', async () => {
    const sites = await t.open('topics=sites', AUTH);
    await sites.until((c) => c.retryMs !== undefined, 2_000, 'the stream to open');
    publishSnapshot(t.live, makeSnapshot('site', 'site-2', T0 + 1, { devicesReporting: 1, devicesTotal: 1 }));
    await sites.until((c) => c.ofType('sites').length >= 1, 2_000, 'a sites event');
    const { columns } = dataOf(sites, 'sites')[0] as { columns: { id: string[]; devicesReporting: number[] } };
    expect(columns.id).toEqual(['site-2']);
    expect(columns.devicesReporting).toEqual([1]);
  });
});

describe('GET /api/v1/stream: keeping connections healthy', () => {
  it('sends heartbeat comments on an idle stream', async () => {
    t = await start({ heartbeatMs: 100 });
    const client = await t.open('topics=alerts', AUTH);
    await client.until((c) => c.comments.filter((line) => line === 'heartbeat').length >= 2, 3_000, 'two heartbeats');
    expect(client.events).toEqual([]);
  });

  it('drops a client that stops reading, and the client beside it gets every event', async () => {
    // Above one poll's burst (200 transitions of about 1.4 KB), which even a good client takes a moment to read.
    t = await start({ maxBufferedBytes: 512 * 1024 });
    await addSite('site-1', 'north', ['bat-1']);
    const good = await t.open('topics=alerts', AUTH);
    // The slow client: a raw socket that sends its request and then never reads.
    const slow = net.connect(Number(new URL(t.base).port), '127.0.0.1');
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    slow.write(`GET /api/v1/stream?topics=alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\n`);
    slow.pause();
    let slowClosed = false;
    slow.on('close', () => (slowClosed = true));
    slow.on('error', () => undefined);
    await waitForStats((s) => s.clients === 2);

    // Many large transitions: far more than the socket buffers and the backlog bound hold.
    const TRANSITIONS = 10_000;
    const summary = 'x'.repeat(1_000);
    const signals: RuleSignal[] = Array.from({ length: TRANSITIONS }, (_, i) => ({
      signal: 'fire',
      ruleId: 'battery-overheat',
      severity: 'critical',
      subjectKind: 'device',
      subjectId: `bat-${i}`,
      summary,
      value: 60,
      labels: {},
      atMs: t.clock.nowMs,
      flapWindowMs: 0,
    }));
    for (let i = 0; i < signals.length; i += 500) t.store.alerts.applyRuleResults({ signals: signals.slice(i, i + 500) });
    await good.until((c) => c.ofType('alert').length === TRANSITIONS, 20_000, 'every transition');
    const stats = await waitForStats((s) => s.droppedSlow === 1);
    expect(stats.clients).toBe(1);
    // Reading again, the slow client finds its connection ended by the server.
    slow.resume();
    await new Promise<void>((resolve) => (slowClosed ? resolve() : slow.once('close', () => resolve())));
    expect(slowClosed).toBe(true);
    expect(good.closed).toBe(false);
  });

  it('answers 429 to a token with its most streams open, and still serves other tokens', async () => {
    t = await start({ maxClientsPerToken: 2 });
    const greedy = await createToken('viewer', 'greedy screen');
    const other = await createToken('viewer', 'other screen');
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    expect((await t.open('topics=alerts', as(greedy.token))).status).toBe(200);
    expect((await t.open(`topics=fleet&ticket=${await t.ticket(greedy.token)}`)).status).toBe(200);
    const third = await t.open('topics=alerts', as(greedy.token));
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toBe('10');
    expect(JSON.parse(third.body)).toMatchObject({ code: 'too-many-requests', message: expect.stringContaining('2 live streams open') });
    expect((await t.open('topics=alerts', as(other.token))).status).toBe(200);
    expect(await waitForStats((s) => s.clients === 3)).toMatchObject({ refusedPerOwner: 1 });
  });

  it('ends the open streams of a token when it is revoked, and only those', async () => {
    t = await start({ heartbeatMs: 100 });
    const revoked = await createToken('viewer', 'old screen');
    const kept = await createToken('viewer', 'new screen');
    const byTicket = await t.open(`topics=alerts&ticket=${await t.ticket(revoked.token)}`);
    const byHeader = await t.open('topics=fleet', { authorization: `Bearer ${revoked.token}` });
    const other = await t.open('topics=alerts', { authorization: `Bearer ${kept.token}` });
    expect([byTicket.status, byHeader.status, other.status]).toEqual([200, 200, 200]);
    expect((await t.api('DELETE', `/api/v1/tokens/${revoked.id}`)).status).toBe(204);
    await byTicket.until((c) => c.closed, 3_000, 'the end of the ticket stream');
    await byHeader.until((c) => c.closed, 3_000, 'the end of the header stream');
    await other.until((c) => c.comments.length >= 3, 3_000, 'heartbeats after the revocation');
    expect(other.closed).toBe(false);
  });

  it('answers 503 beyond the client limit', async () => {
    t = await start({ maxClients: 2 });
    await t.open('topics=alerts', AUTH);
    await t.open('topics=alerts', AUTH);
    const third = await t.open('topics=alerts', AUTH);
    expect(third.status).toBe(503);
    expect(JSON.parse(third.body)).toMatchObject({ code: 'unavailable', message: expect.stringContaining('2 clients') });
  });

  it('closes within its grace after a client aborted its stream and left a spare connection open (fetch with an AbortController)', async () => {
    t = await start();
    const aborter = new AbortController();
    const response = await fetch(`${t.base}/api/v1/stream?topics=alerts`, { headers: AUTH, signal: aborter.signal });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    await reader.read();
    aborter.abort();
    await waitForStats((s) => s.clients === 0);
    const started = Date.now();
    await t.app.close();
    // The server's headers timeout (60 s) would otherwise hold it.
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it('ends open streams when the app closes, without waiting for them', async () => {
    t = await start();
    const clients = [await t.open('topics=alerts', AUTH), await t.open('topics=fleet', AUTH)];
    const started = Date.now();
    await t.app.close();
    await Promise.all(clients.map((c) => c.until((client) => client.closed, 2_000, 'the end of the stream').catch(() => c.closed)));
    expect(clients.every((c) => c.closed)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

function fireAlert(ruleId: string, subjectId: string, atMs: number): string {
  const [event] = t.store.alerts.applyRuleResults({
    signals: [{ signal: 'fire', ruleId, severity: 'critical', subjectKind: 'device', subjectId, summary: `${ruleId} on ${subjectId}`, value: 60, labels: {}, atMs, flapWindowMs: 0 }],
  });
  return event!.alert.id;
}

interface Stats {
  clients: number;
  refusedPerOwner: number;
  published: number;
  droppedSlow: number;
}

async function waitForStats(check: (stats: Stats) => boolean, timeoutMs = 10_000): Promise<Stats> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = (await (await t.api('GET', '/api/v1/stream/stats')).json()) as Stats;
    if (check(stats)) return stats;
    if (Date.now() > deadline) throw new Error(`stream stats never matched: ${JSON.stringify(stats)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
