import { beforeEach, describe, expect, it } from 'vitest';
import type { DeviceState } from '../../store/types.ts';
import { T0 } from '../test-fixtures.ts';
import { provisionDevices, useControlTest } from '../test-helper.ts';

const t = useControlTest();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const iso = (ms: number) => new Date(ms).toISOString();

interface CommandBody {
  id: string;
  deviceId: string;
  type: string;
  params: Record<string, unknown>;
  state: string;
  createdAt: string;
  expiresAt: string;
  attempts: number;
  nextAttemptAt: string | null;
  reason: string | null;
  applied: Record<string, unknown> | null;
  dispatchId: string | null;
  transitions: Array<{ state: string; at: string; detail: string | null }>;
}

beforeEach(async () => {
  await provisionDevices(t, { id: 'site-1', region: 'north' }, [
    { id: 'bat-1', type: 'battery' },
    { id: 'bat-2', type: 'battery' },
    { id: 'pv-1', type: 'solar' },
    { id: 'meter-1', type: 'meter' },
  ]);
});

function send(deviceId: string, payload: Record<string, unknown>, headers: Record<string, string> = {}) {
  return t.request({ method: 'POST', url: `/api/v1/devices/${deviceId}/commands`, payload, headers });
}

/** Sends a command that must be created; returns it. */
async function create(deviceId: string, payload: Record<string, unknown>, headers: Record<string, string> = {}): Promise<CommandBody> {
  const response = await send(deviceId, payload, headers);
  expect(response.statusCode, response.body).toBe(201);
  return response.json();
}

/** The twin of a device with this status, as ingest would save it. */
function saveStatus(deviceId: string, status: Record<string, unknown>): void {
  const state: DeviceState = {
    deviceId,
    lastTs: t.clock.nowMs,
    lastSeenMs: t.clock.nowMs,
    lastSeq: 1,
    metrics: {},
    presence: 'online',
    presenceSinceMs: t.clock.nowMs,
    status,
  };
  t.store.saveDeviceStates([state]);
}

async function controlOf(deviceId: string): Promise<Record<string, unknown>> {
  const response = await t.request({ method: 'GET', url: `/api/v1/devices/${deviceId}` });
  expect(response.statusCode, response.body).toBe(200);
  return response.json().control;
}

describe('POST /api/v1/devices/:id/commands', () => {
  it('creates a pending command, answers 201 with its Location, and wakes the sender once', async () => {
    t.clock.nowMs = T0 + 500;
    const response = await send('bat-1', { type: 'setPower', params: { powerW: -2500 }, ttlSeconds: 60 });
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json() as CommandBody;
    expect(body.id).toMatch(UUID);
    expect(response.headers.location).toBe(`/api/v1/commands/${body.id}`);
    expect(response.headers['idempotent-replayed']).toBeUndefined();
    expect(body).toEqual({
      id: body.id,
      deviceId: 'bat-1',
      type: 'setPower',
      params: { powerW: -2500 },
      state: 'pending',
      createdAt: iso(T0 + 500),
      expiresAt: iso(T0 + 500 + 60_000),
      attempts: 0,
      nextAttemptAt: iso(T0 + 500),
      reason: null,
      applied: null,
      dispatchId: null,
      transitions: [{ state: 'pending', at: iso(T0 + 500), detail: null }],
    });

    const stored = t.store.commands.getCommand(body.id)!;
    expect(stored).toMatchObject({ deviceId: 'bat-1', type: 'setPower', params: { powerW: -2500 }, state: 'pending', expiresAtMs: T0 + 500 + 60_000 });
    expect(t.createdCommands).toEqual([stored]);
  });

  it('runs for 300 seconds without ttlSeconds, and stores params as normalised', async () => {
    const setMode = await create('bat-1', { type: 'setMode', params: { mode: 'backup' } });
    expect(setMode.expiresAt).toBe(iso(T0 + 300_000));
    // A curtailment without maxPowerW lifts it: stored with the documented key.
    const curtail = await create('pv-1', { type: 'curtail', params: {}, ttlSeconds: 1 });
    expect(curtail).toMatchObject({ type: 'curtail', params: { maxPowerW: null }, expiresAt: iso(T0 + 1000) });
    expect(t.store.commands.getCommand(curtail.id)!.params).toEqual({ maxPowerW: null });
    const atMost = await create('pv-1', { type: 'curtail', params: { maxPowerW: 0 }, ttlSeconds: 86_400 });
    expect(atMost).toMatchObject({ params: { maxPowerW: 0 }, expiresAt: iso(T0 + 86_400_000) });
  });

  it('answers a repeated request with the same Idempotency-Key with the first command (200), without storing another', async () => {
    const key = { 'idempotency-key': 'dispatch-42/bat-1' };
    const first = await create('bat-1', { type: 'setPower', params: { powerW: 3000 }, ttlSeconds: 120 }, key);

    t.clock.nowMs = T0 + 1000;
    // The same body in another key order is the same request.
    const again = await send('bat-1', { ttlSeconds: 120, params: { powerW: 3000 }, type: 'setPower' }, key);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers.location).toBeUndefined();
    expect(again.json()).toEqual(first);

    expect(t.store.commands.listCommands({ limit: 10 }).commands.map((c) => c.id)).toEqual([first.id]);
    expect(t.createdCommands.map((c) => c.id)).toEqual([first.id]);
  });

  it('answers the first command even after it expired: idempotency is about the request, not its fate', async () => {
    const key = { 'idempotency-key': 'retry-me' };
    const first = await create('bat-1', { type: 'setPower', params: { powerW: 1000 }, ttlSeconds: 10 }, key);
    t.clock.nowMs = T0 + 60_000;
    t.store.commands.expireCommands(t.clock.nowMs, 0);

    const again = await send('bat-1', { type: 'setPower', params: { powerW: 1000 }, ttlSeconds: 10 }, key);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ id: first.id, state: 'expired', expiresAt: iso(T0 + 10_000) });
    expect(again.json().transitions.map((tr: { state: string }) => tr.state)).toEqual(['pending', 'expired']);
    expect(t.createdCommands).toHaveLength(1);
  });

  it('answers 409 for the same key with another body, and takes the same key for another device', async () => {
    const key = { 'idempotency-key': 'k-1' };
    const first = await create('bat-1', { type: 'setPower', params: { powerW: 1000 }, ttlSeconds: 60 }, key);
    const others: Array<Record<string, unknown>> = [
      { type: 'setPower', params: { powerW: 1001 }, ttlSeconds: 60 },
      { type: 'setPower', params: { powerW: 1000 }, ttlSeconds: 61 },
      { type: 'setMode', params: { mode: 'idle' }, ttlSeconds: 60 },
    ];
    for (const payload of others) {
      const response = await send('bat-1', payload, key);
      expect(response.statusCode, JSON.stringify(payload)).toBe(409);
      expect(response.json()).toEqual({
        code: 'conflict',
        message: "Idempotency-Key 'k-1' was already used for device 'bat-1' with another request; send a new key for a new command",
      });
    }

    const otherDevice = await create('bat-2', { type: 'setPower', params: { powerW: 1000 }, ttlSeconds: 60 }, key);
    expect(otherDevice.id).not.toBe(first.id);
    expect(otherDevice.deviceId).toBe('bat-2');
    // Without a key every request is a new command.
    const noKey1 = await create('bat-1', { type: 'setPower', params: { powerW: 1000 }, ttlSeconds: 60 });
    const noKey2 = await create('bat-1', { type: 'setPower', params: { powerW: 1000 }, ttlSeconds: 60 });
    expect(new Set([first.id, noKey1.id, noKey2.id]).size).toBe(3);
    expect(t.createdCommands.map((c) => c.id)).toEqual([first.id, otherDevice.id, noKey1.id, noKey2.id]);
  });

  it('counts a body without ttlSeconds as the default for idempotency, but not params before normalisation', async () => {
    const key = { 'idempotency-key': 'defaults' };
    const first = await create('bat-1', { type: 'setMode', params: { mode: 'idle' } }, key);
    const explicit = await send('bat-1', { type: 'setMode', params: { mode: 'idle' }, ttlSeconds: 300 }, key);
    expect(explicit.statusCode).toBe(200);
    expect(explicit.json().id).toBe(first.id);

    // `{}` and `{"maxPowerW": null}` do the same, but are different requests as sent.
    const pvKey = { 'idempotency-key': 'lift' };
    await create('pv-1', { type: 'curtail', params: {} }, pvKey);
    expect((await send('pv-1', { type: 'curtail', params: { maxPowerW: null } }, pvKey)).statusCode).toBe(409);
  });

  it('answers 400 naming the problem for a bad type, device type, params, ttl, body or key, and stores nothing', async () => {
    const cases: Array<[string, string, Record<string, unknown>, Record<string, string>, string | RegExp]> = [
      ['unknown type', 'bat-1', { type: 'explode', params: {} }, {}, 'type: must be one of setPower, setMode, curtail'],
      ['curtail on a battery', 'bat-1', { type: 'curtail', params: { maxPowerW: 0 } }, {}, 'a battery does not take curtail (only solar)'],
      ['setPower on solar', 'pv-1', { type: 'setPower', params: { powerW: 100 } }, {}, 'a solar does not take setPower (only battery)'],
      ['setMode on a meter', 'meter-1', { type: 'setMode', params: { mode: 'idle' } }, {}, 'a meter does not take setMode (only battery)'],
      ['powerW not a number', 'bat-1', { type: 'setPower', params: { powerW: 'lots' } }, {}, /^params\.powerW must be a number of watts from -1000000 to 1000000/],
      ['powerW too large', 'bat-1', { type: 'setPower', params: { powerW: 1_000_001 } }, {}, /^params\.powerW must be a number/],
      ['powerW missing', 'bat-1', { type: 'setPower', params: {} }, {}, /^params\.powerW must be a number/],
      ['unknown mode', 'bat-1', { type: 'setMode', params: { mode: 'turbo' } }, {}, 'params.mode must be one of selfConsumption, backup, idle'],
      ['negative curtailment', 'pv-1', { type: 'curtail', params: { maxPowerW: -1 } }, {}, /^params\.maxPowerW must be a number of watts from 0/],
      ['extra param', 'bat-1', { type: 'setPower', params: { powerW: 100, mode: 'idle' } }, {}, 'params.mode is not a parameter of setPower (only powerW)'],
      ['params missing', 'bat-1', { type: 'setPower' }, {}, 'params: is required'],
      ['params not an object', 'bat-1', { type: 'setPower', params: 5 }, {}, 'params: must be object'],
      ['params null', 'bat-1', { type: 'setPower', params: null }, {}, 'params: must be object'],
      ['type missing', 'bat-1', { params: { powerW: 1 } }, {}, 'type: is required'],
      ['ttl 0', 'bat-1', { type: 'setPower', params: { powerW: 1 }, ttlSeconds: 0 }, {}, 'ttlSeconds: must be >= 1'],
      ['ttl over a day', 'bat-1', { type: 'setPower', params: { powerW: 1 }, ttlSeconds: 86_401 }, {}, 'ttlSeconds: must be <= 86400'],
      ['ttl fractional', 'bat-1', { type: 'setPower', params: { powerW: 1 }, ttlSeconds: 1.5 }, {}, 'ttlSeconds: must be integer'],
      ['unknown property', 'bat-1', { type: 'setPower', params: { powerW: 1 }, priority: 'high' }, {}, 'priority: is not a known property'],
      ['key too long', 'bat-1', { type: 'setPower', params: { powerW: 1 } }, { 'idempotency-key': 'k'.repeat(256) }, /^idempotency-key: must NOT have more than 255 characters/],
      ['key not printable ASCII', 'bat-1', { type: 'setPower', params: { powerW: 1 } }, { 'idempotency-key': 'clé' }, /^idempotency-key: must match pattern/],
      ['key with a tab', 'bat-1', { type: 'setPower', params: { powerW: 1 } }, { 'idempotency-key': 'a\tb' }, /^idempotency-key: must match pattern/],
    ];
    for (const [name, deviceId, payload, headers, message] of cases) {
      const response = await send(deviceId, payload, headers);
      expect(response.statusCode, name).toBe(400);
      expect(response.json(), name).toEqual({ code: 'bad-request', message: typeof message === 'string' ? message : expect.stringMatching(message) });
    }
    expect(t.store.commands.listCommands({ limit: 10 }).commands).toEqual([]);
    expect(t.createdCommands).toEqual([]);
  });

  it('takes a key of 255 printable characters, spaces inside included', async () => {
    const key = `a ${'~'.repeat(253)}`;
    const first = await create('bat-1', { type: 'setPower', params: { powerW: 1 } }, { 'idempotency-key': key });
    const again = await send('bat-1', { type: 'setPower', params: { powerW: 1 } }, { 'idempotency-key': key });
    expect(again.json().id).toBe(first.id);
  });

  it('answers 404 for an unknown device and 409 for a revoked one', async () => {
    const unknown = await send('bat-9', { type: 'setPower', params: { powerW: 1 } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ code: 'not-found', message: "device 'bat-9' does not exist" });

    t.clock.nowMs = T0 + 5000;
    expect((await t.request({ method: 'DELETE', url: '/api/v1/devices/bat-1' })).statusCode).toBe(204);
    const revoked = await send('bat-1', { type: 'setPower', params: { powerW: 1 } });
    expect(revoked.statusCode).toBe(409);
    expect(revoked.json()).toEqual({
      code: 'conflict',
      message: `device 'bat-1' was revoked at ${iso(T0 + 5000)}; a revoked device takes no commands`,
    });
    expect(t.store.commands.listCommands({ limit: 10 }).commands).toEqual([]);
    expect(t.createdCommands).toEqual([]);
  });

  it('still answers 201 when the sender cannot be woken, since the command is stored', async () => {
    t.commandCreatedFail = new Error('sender gone');
    const body = await create('bat-1', { type: 'setPower', params: { powerW: 1 } });
    expect(t.store.commands.getCommand(body.id)!.state).toBe('pending');
    expect(t.createdCommands).toHaveLength(1);
  });
});

describe('GET /api/v1/commands/:id', () => {
  it('answers the command with its transitions as the sender and the device move it', async () => {
    const { id } = await create('bat-1', { type: 'setPower', params: { powerW: 9000 }, ttlSeconds: 600 });
    t.store.commands.markSent(id, { atMs: T0 + 100, nextAttemptAtMs: T0 + 5100 });
    t.store.commands.markSent(id, { atMs: T0 + 5100, nextAttemptAtMs: T0 + 15_100 });
    t.store.commands.applyAck('bat-1', { commandId: id, status: 'accepted', reason: 'clipped to the inverter limit', applied: { powerW: 5000 } }, T0 + 5200);

    const accepted = await t.request({ method: 'GET', url: `/api/v1/commands/${id}` });
    expect(accepted.statusCode).toBe(200);
    expect(accepted.json()).toMatchObject({
      id,
      state: 'accepted',
      attempts: 2,
      nextAttemptAt: null,
      applied: { powerW: 5000 },
      transitions: [
        { state: 'pending', at: iso(T0), detail: null },
        { state: 'sent', at: iso(T0 + 100), detail: 'attempt 1' },
        { state: 'sent', at: iso(T0 + 5100), detail: 'attempt 2' },
        { state: 'accepted', at: iso(T0 + 5200), detail: 'clipped to the inverter limit' },
      ],
    });

    t.store.commands.applyAck('bat-1', { commandId: id, status: 'completed', reason: 'ran to its expiry' }, T0 + 600_000);
    const completed = (await t.request({ method: 'GET', url: `/api/v1/commands/${id}` })).json() as CommandBody;
    expect(completed).toMatchObject({ state: 'completed', reason: 'ran to its expiry', applied: { powerW: 5000 } });
    expect(completed.transitions.at(-1)).toEqual({ state: 'completed', at: iso(T0 + 600_000), detail: 'ran to its expiry' });
  });

  it('shows a rejection with the device\'s reason', async () => {
    const { id } = await create('pv-1', { type: 'curtail', params: { maxPowerW: 0 } });
    t.store.commands.applyAck('pv-1', { commandId: id, status: 'rejected', reason: 'export limit set by the grid operator' }, T0 + 50);
    const body = (await t.request({ method: 'GET', url: `/api/v1/commands/${id}` })).json() as CommandBody;
    expect(body).toMatchObject({ state: 'rejected', reason: 'export limit set by the grid operator', nextAttemptAt: null });
  });

  it('answers 404 for an unknown id and for an id that is not a UUID', async () => {
    await create('bat-1', { type: 'setPower', params: { powerW: 1 } });
    for (const id of ['6f1c1c1e-4c1b-4d1a-9a1e-1c1e4c1b4d1a', 'abc', '42', 'bat-1']) {
      const response = await t.request({ method: 'GET', url: `/api/v1/commands/${id}` });
      expect(response.statusCode, id).toBe(404);
      expect(response.json(), id).toEqual({ code: 'not-found', message: `command '${id}' does not exist` });
    }
  });
});

describe('GET /api/v1/commands', () => {
  /** Six commands a second apart, ids in creation order; the third is accepted, the fourth belongs to a dispatch. */
  async function seed(): Promise<string[]> {
    const ids: string[] = [];
    const devices = ['bat-1', 'bat-2', 'bat-1', 'bat-2', 'bat-1', 'pv-1'];
    for (const [i, deviceId] of devices.entries()) {
      t.clock.nowMs = T0 + i * 1000;
      if (i === 3) {
        const { command } = t.store.commands.createCommand(
          { id: '00000000-0000-4000-8000-000000000003', deviceId, type: 'setPower', params: { powerW: 10 }, expiresAtMs: t.clock.nowMs + 60_000, dispatchId: 'dispatch-7' },
          t.clock.nowMs,
        );
        ids.push(command.id);
        continue;
      }
      const payload = deviceId === 'pv-1' ? { type: 'curtail', params: { maxPowerW: 100 } } : { type: 'setPower', params: { powerW: i } };
      ids.push((await create(deviceId, payload)).id);
    }
    t.store.commands.applyAck('bat-1', { commandId: ids[2]!, status: 'accepted' }, T0 + 6000);
    return ids;
  }

  async function list(query: string): Promise<{ commands: CommandBody[]; next: string | null }> {
    const response = await t.request({ method: 'GET', url: `/api/v1/commands${query}` });
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  }

  it('lists newest first, with the full command shape', async () => {
    const ids = await seed();
    const body = await list('');
    expect(body.commands.map((c) => c.id)).toEqual([...ids].reverse());
    expect(body.next).toBeNull();
    expect(body.commands.find((c) => c.id === ids[3])).toMatchObject({ deviceId: 'bat-2', dispatchId: 'dispatch-7', createdAt: iso(T0 + 3000) });
    expect(body.commands.find((c) => c.id === ids[2])!.transitions.map((tr) => tr.state)).toEqual(['pending', 'accepted']);
  });

  it('filters by device, state and dispatch, and combines filters', async () => {
    const ids = await seed();
    expect((await list('?deviceId=bat-1')).commands.map((c) => c.id)).toEqual([ids[4], ids[2], ids[0]]);
    expect((await list('?deviceId=pv-1')).commands.map((c) => c.id)).toEqual([ids[5]]);
    expect((await list('?deviceId=nobody')).commands).toEqual([]);
    expect((await list('?state=accepted')).commands.map((c) => c.id)).toEqual([ids[2]]);
    expect((await list('?state=pending&deviceId=bat-1')).commands.map((c) => c.id)).toEqual([ids[4], ids[0]]);
    expect((await list('?dispatchId=dispatch-7')).commands.map((c) => c.id)).toEqual([ids[3]]);
    expect((await list('?dispatchId=dispatch-7&deviceId=bat-1')).commands).toEqual([]);
  });

  it('pages with limit and next, keeping the filter, and next is null on the last page', async () => {
    const ids = await seed();
    const page1 = await list('?limit=4');
    expect(page1.commands.map((c) => c.id)).toEqual([ids[5], ids[4], ids[3], ids[2]]);
    expect(page1.next).toEqual(expect.any(String));
    const page2 = await list(`?limit=4&before=${page1.next}`);
    expect(page2.commands.map((c) => c.id)).toEqual([ids[1], ids[0]]);
    expect(page2.next).toBeNull();
    expect((await list('?limit=6')).next).toBeNull();

    const bat1 = await list('?deviceId=bat-1&limit=2');
    expect(bat1.commands.map((c) => c.id)).toEqual([ids[4], ids[2]]);
    const bat1Rest = await list(`?deviceId=bat-1&limit=2&before=${bat1.next}`);
    expect(bat1Rest.commands.map((c) => c.id)).toEqual([ids[0]]);
    expect(bat1Rest.next).toBeNull();
  });

  it('answers 400 naming the parameter for bad values', async () => {
    await seed();
    const cases: Array<[string, RegExp]> = [
      ['state=lost', /^state: must be one of pending, sent, accepted, rejected, completed, expired, failed$/],
      ['limit=0', /^limit: /],
      ['limit=501', /^limit: /],
      ['limit=ten', /^limit: /],
      ['before=not-a-cursor', /^before: is not the `next` of a previous page$/],
      [`before=${'x'.repeat(257)}`, /^before: /],
      ['before=', /^before: /],
      ['deviceId=', /^deviceId: /],
      ['dispatchId=', /^dispatchId: /],
    ];
    for (const [query, message] of cases) {
      const response = await t.request({ method: 'GET', url: `/api/v1/commands?${query}` });
      expect(response.statusCode, query).toBe(400);
      expect(response.json(), query).toEqual({ code: 'bad-request', message: expect.stringMatching(message) });
    }
  });
});

describe('control of a device: desired versus reported', () => {
  it('shows nothing desired or reported for a device without commands or status', async () => {
    expect(await controlOf('bat-1')).toEqual({ desired: null, reported: null, agree: null });
    // A status without control fields (a meter, older firmware) reports nothing either.
    saveStatus('meter-1', { online: true, firmware: '2.0.1' });
    expect(await controlOf('meter-1')).toEqual({ desired: null, reported: null, agree: null });
  });

  it('desires the newest command while pending or accepted, and compares it with what the device reports', async () => {
    const { id } = await create('bat-1', { type: 'setPower', params: { powerW: -4000 }, ttlSeconds: 60 });
    const desired = { commandId: id, type: 'setPower', params: { powerW: -4000 }, state: 'pending', until: iso(T0 + 60_000) };
    // Nothing reported yet: no verdict.
    expect(await controlOf('bat-1')).toEqual({ desired, reported: null, agree: null });

    // Still under local control.
    saveStatus('bat-1', { online: true, mode: 'selfConsumption', setpointW: null, commandId: null, commandUntil: null });
    expect(await controlOf('bat-1')).toEqual({
      desired,
      reported: { mode: 'selfConsumption', setpointW: null, commandId: null, until: null },
      agree: false,
    });

    // The device accepts and follows it, clipped.
    t.clock.nowMs = T0 + 2000;
    t.store.commands.markSent(id, { atMs: T0 + 1000, nextAttemptAtMs: T0 + 6000 });
    t.store.commands.applyAck('bat-1', { commandId: id, status: 'accepted', applied: { powerW: -3300 } }, T0 + 1500);
    saveStatus('bat-1', { online: true, mode: 'setpoint', setpointW: -3300, commandId: id, commandUntil: T0 + 60_000 });
    expect(await controlOf('bat-1')).toEqual({
      desired: { ...desired, state: 'accepted' },
      reported: { mode: 'setpoint', setpointW: -3300, commandId: id, until: iso(T0 + 60_000) },
      agree: true,
    });

    // A newer command is desired at once; the device still follows the older one.
    const newer = await create('bat-1', { type: 'setMode', params: { mode: 'backup' } });
    expect(await controlOf('bat-1')).toMatchObject({ desired: { commandId: newer.id, type: 'setMode', state: 'pending' }, agree: false });
  });

  it('desires local control again after completion, rejection or expiry', async () => {
    const { id } = await create('bat-1', { type: 'setPower', params: { powerW: 2000 }, ttlSeconds: 60 });
    t.store.commands.applyAck('bat-1', { commandId: id, status: 'accepted' }, T0 + 100);
    saveStatus('bat-1', { online: true, mode: 'setpoint', setpointW: 2000, commandId: id, commandUntil: T0 + 60_000 });
    t.store.commands.applyAck('bat-1', { commandId: id, status: 'completed' }, T0 + 200);
    // The device has not said it went back yet.
    expect(await controlOf('bat-1')).toMatchObject({ desired: null, agree: false });
    saveStatus('bat-1', { online: true, mode: 'selfConsumption', setpointW: null, commandId: null, commandUntil: null });
    expect(await controlOf('bat-1')).toMatchObject({ desired: null, agree: true });

    // Commands of the same millisecond are ordered by id, so each newer one comes a little later.
    t.clock.nowMs = T0 + 250;
    const rejected = await create('bat-1', { type: 'setMode', params: { mode: 'idle' } });
    expect(await controlOf('bat-1')).toMatchObject({ desired: { commandId: rejected.id } });
    t.store.commands.applyAck('bat-1', { commandId: rejected.id, status: 'rejected', reason: 'grid outage' }, T0 + 300);
    expect(await controlOf('bat-1')).toMatchObject({ desired: null, agree: true });

    // Past its expiry a command is not desired, whether or not the store has marked it expired yet.
    t.clock.nowMs = T0 + 400;
    const expiring = await create('bat-1', { type: 'setPower', params: { powerW: 1 }, ttlSeconds: 10 });
    t.clock.nowMs = T0 + 10_399;
    expect(await controlOf('bat-1')).toMatchObject({ desired: { commandId: expiring.id, state: 'pending' } });
    t.clock.nowMs = T0 + 10_400;
    expect(await controlOf('bat-1')).toMatchObject({ desired: null });
    t.store.commands.expireCommands(T0 + 10_400, 0);
    expect(t.store.commands.getCommand(expiring.id)!.state).toBe('expired');
    expect(await controlOf('bat-1')).toMatchObject({ desired: null, agree: true });
  });

  it('reads a curtailment from a solar status, and leaves out fields of the wrong type', async () => {
    const { id } = await create('pv-1', { type: 'curtail', params: { maxPowerW: 1500 } });
    saveStatus('pv-1', { online: true, curtailW: 1500, commandId: id, commandUntil: T0 + 300_000 });
    expect(await controlOf('pv-1')).toEqual({
      desired: { commandId: id, type: 'curtail', params: { maxPowerW: 1500 }, state: 'pending', until: iso(T0 + 300_000) },
      reported: { curtailW: 1500, commandId: id, until: iso(T0 + 300_000) },
      agree: true,
    });

    saveStatus('bat-1', { online: true, mode: 7, setpointW: 'high', curtailW: true, commandId: 12, commandUntil: 'soon' });
    expect(await controlOf('bat-1')).toEqual({ desired: null, reported: null, agree: null });
    // A device reporting a mode but no command id is under local control.
    saveStatus('bat-2', { online: true, mode: 'idle', commandUntil: -1 });
    expect(await controlOf('bat-2')).toEqual({ desired: null, reported: { mode: 'idle' }, agree: true });
  });

  it('shows each device\'s control in the device list and on its site', async () => {
    const bat = await create('bat-1', { type: 'setPower', params: { powerW: 500 } });
    saveStatus('bat-1', { online: true, mode: 'setpoint', setpointW: 500, commandId: bat.id, commandUntil: T0 + 300_000 });
    saveStatus('pv-1', { online: true, curtailW: null, commandId: null });

    const listed = (await t.request({ method: 'GET', url: '/api/v1/devices' })).json() as { items: Array<{ id: string; control: Record<string, unknown> }> };
    const byId = new Map(listed.items.map((d) => [d.id, d.control]));
    expect(byId.get('bat-1')).toMatchObject({ desired: { commandId: bat.id, state: 'pending' }, reported: { commandId: bat.id }, agree: true });
    expect(byId.get('bat-2')).toEqual({ desired: null, reported: null, agree: null });
    expect(byId.get('pv-1')).toEqual({ desired: null, reported: { curtailW: null, commandId: null }, agree: true });

    const site = (await t.request({ method: 'GET', url: '/api/v1/sites/site-1' })).json() as { devices: Array<{ id: string; control: Record<string, unknown> }> };
    expect(site.devices.find((d) => d.id === 'bat-1')!.control).toEqual(byId.get('bat-1'));
  });
});

describe('command routes and the token', () => {
  it('answer 401 without the admin token, and store nothing', async () => {
    const { id } = await create('bat-1', { type: 'setPower', params: { powerW: 1 } });
    const requests = [
      { method: 'POST', url: '/api/v1/devices/bat-1/commands', payload: { type: 'setPower', params: { powerW: 2 } } },
      { method: 'POST', url: '/api/v1/devices/bat-1/commands', payload: { type: 'bogus' } },
      { method: 'GET', url: '/api/v1/commands' },
      { method: 'GET', url: `/api/v1/commands/${id}` },
    ] as const;
    for (const request of requests) {
      const response = await t.app.inject(request);
      expect(response.statusCode, request.url).toBe(401);
      expect(response.json().code).toBe('unauthorized');
    }
    expect(t.store.commands.listCommands({ limit: 10 }).commands.map((c) => c.id)).toEqual([id]);
    expect(t.createdCommands).toHaveLength(1);
  });

  it('answer 503 when the store is down', async () => {
    const { id } = await create('bat-1', { type: 'setPower', params: { powerW: 1 } });
    await t.store.close();
    for (const url of ['/api/v1/commands', `/api/v1/commands/${id}`]) {
      const response = await t.request({ method: 'GET', url });
      expect(response.statusCode, url).toBe(503);
      expect(response.json().code).toBe('unavailable');
    }
  });
});
