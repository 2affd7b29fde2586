import { beforeEach, describe, expect, it } from 'vitest';
import { verifySecret } from '../../store/credentials.ts';
import { ADMIN_TOKEN, SECRET_GRACE_MS, useControlTest, provisionDevices } from '../test-helper.ts';
import { T0 } from '../test-fixtures.ts';

const t = useControlTest();

describe('authorization of /api/v1', () => {
  it('answers 401 without a token, with a wrong token and with another scheme', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-of-some-length', `Basic ${ADMIN_TOKEN}`, ADMIN_TOKEN]) {
      const response = await t.app.inject({
        method: 'GET',
        url: '/api/v1/devices',
        headers: authorization === undefined ? {} : { authorization },
      });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ code: 'unauthorized' });
    }
  });

  it('checks the token before the body, and on unknown paths too', async () => {
    const post = await t.app.inject({ method: 'POST', url: '/api/v1/devices', payload: { type: 'nonsense' } });
    expect(post.statusCode).toBe(401);
    const unknown = await t.app.inject({ method: 'GET', url: '/api/v1/no-such-thing' });
    expect(unknown.statusCode).toBe(401);
    const unknownWithToken = await t.request({ method: 'GET', url: '/api/v1/no-such-thing' });
    expect(unknownWithToken.statusCode).toBe(404);
    expect(unknownWithToken.json()).toEqual({ code: 'not-found', message: 'no route GET /api/v1/no-such-thing' });
  });

  it('accepts the token with any case of the scheme', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/devices', headers: { authorization: `bearer ${ADMIN_TOKEN}` } });
    expect(response.statusCode).toBe(200);
  });
});

describe('POST /api/v1/devices', () => {
  beforeEach(async () => {
    await t.request({ method: 'POST', url: '/api/v1/sites', payload: { id: 'site-1', region: 'north', name: 'Home 1' } });
  });

  it('provisions a device whose secret matches the stored hash, shown only once', async () => {
    const response = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { type: 'battery', siteId: 'site-1', id: 'bat-1' } });
    expect(response.statusCode).toBe(201);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json();
    expect(body).toMatchObject({
      id: 'bat-1',
      type: 'battery',
      siteId: 'site-1',
      createdAt: new Date(T0).toISOString(),
      mqtt: {
        username: 'bat-1',
        clientId: 'bat-1',
        password: body.secret,
        topics: {
          telemetry: 'vpp/v1/devices/bat-1/telemetry',
          status: 'vpp/v1/devices/bat-1/status',
          commands: 'vpp/v1/devices/bat-1/commands',
          acks: 'vpp/v1/devices/bat-1/acks',
        },
      },
    });
    const [hash, ...others] = t.store.getAcceptedSecretHashes('bat-1', T0);
    expect(others).toEqual([]);
    expect(hash).toBeDefined();
    expect(hash).not.toContain(body.secret);
    expect(verifySecret(body.secret, hash!)).toBe(true);
    expect(verifySecret(`${body.secret}x`, hash!)).toBe(false);

    const twin = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1' });
    expect(twin.body).not.toContain(body.secret);
  });

  it('generates an id of the form {type}-{random} when none is given', async () => {
    const first = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { type: 'solar', siteId: 'site-1' } });
    const second = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { type: 'solar', siteId: 'site-1' } });
    expect(first.statusCode).toBe(201);
    expect(first.json().id).toMatch(/^solar-[0-9a-f]{12}$/);
    expect(second.json().id).not.toBe(first.json().id);
    expect(t.store.getDevice(first.json().id)?.type).toBe('solar');
  });

  it('answers 409 for an id that exists, and keeps the first secret', async () => {
    const first = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { type: 'battery', siteId: 'site-1', id: 'bat-1' } });
    const second = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { type: 'meter', siteId: 'site-1', id: 'bat-1' } });
    expect(second.statusCode).toBe(409);
    expect(second.json()).toMatchObject({ code: 'conflict' });
    expect(second.json().message).toContain('bat-1');
    expect(verifySecret(first.json().secret, t.store.getAcceptedSecretHashes('bat-1', T0)[0]!)).toBe(true);
  });

  it('answers 404 for an unknown site, and creates it when the request describes it', async () => {
    const unknown = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { type: 'battery', siteId: 'site-9' } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().message).toMatch(/site 'site-9' does not exist/);
    expect(t.store.listDevices()).toHaveLength(0);

    const created = await t.request({
      method: 'POST',
      url: '/api/v1/devices',
      payload: { type: 'battery', siteId: 'site-9', site: { region: 'south', name: 'Home 9' } },
    });
    expect(created.statusCode).toBe(201);
    expect(t.store.getSite('site-9')).toEqual({ id: 'site-9', region: 'south', name: 'Home 9' });
  });

  it('answers 409 when the described site differs from the existing one', async () => {
    const response = await t.request({
      method: 'POST',
      url: '/api/v1/devices',
      payload: { type: 'battery', siteId: 'site-1', site: { region: 'south', name: 'Home 1' } },
    });
    expect(response.statusCode).toBe(409);
    expect(t.store.getSite('site-1')?.region).toBe('north');
  });

  it('rejects bad bodies with 400 naming the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ type: 'windmill', siteId: 'site-1' }, /^type: must be one of battery, solar, meter$/],
      [{ siteId: 'site-1' }, /^type: is required$/],
      [{ type: 'battery', siteId: 'site-1', id: 'has/slash' }, /^id: must match pattern/],
      [{ type: 'battery', siteId: 'site-1', colour: 'red' }, /^colour: is not a known property$/],
      [{ type: 'battery', siteId: 'site-1', site: { region: 'a b', name: 'x' } }, /^site\.region: must match pattern/],
      [{ type: 'battery', siteId: 'site-1', id: 'vpp-ingest' }, /^id: 'vpp-ingest' is reserved/],
      [{ type: 'battery', siteId: 'site-1', id: 'vpp-control' }, /^id: 'vpp-control' is reserved/],
    ];
    for (const [payload, message] of cases) {
      const response = await t.request({ method: 'POST', url: '/api/v1/devices', payload: payload as object });
      expect(response.statusCode, JSON.stringify(payload)).toBe(400);
      expect(response.json().code).toBe('bad-request');
      expect(response.json().message).toMatch(message);
    }
    expect(t.store.listDevices()).toHaveLength(0);
  });

  it('answers malformed JSON with a 400 in the same shape', async () => {
    const response = await t.request({
      method: 'POST',
      url: '/api/v1/devices',
      payload: '{"type": "battery",',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(400);
    expect(Object.keys(response.json()).sort()).toEqual(['code', 'message']);
    expect(response.body).not.toMatch(/at .*\.(ts|js):\d+/);
  });
});

describe('GET /api/v1/devices and /api/v1/devices/:id', () => {
  it('lists devices with presence, filtered by site and type', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, [
      { id: 'bat-1', type: 'battery' },
      { id: 'pv-1', type: 'solar' },
    ]);
    await provisionDevices(t, { id: 'site-2', region: 'north' }, [{ id: 'bat-2', type: 'battery' }]);
    t.store.saveDeviceStates([
      {
        deviceId: 'bat-1',
        lastTs: T0 - 2000,
        lastSeenMs: T0 - 1000,
        lastSeq: 7,
        metrics: { socPct: 50 },
        presence: 'online',
        presenceSinceMs: T0 - 5000,
        status: { online: true },
      },
    ]);

    const all = await t.request({ method: 'GET', url: '/api/v1/devices' });
    expect(all.json().items.map((d: { id: string }) => d.id).sort()).toEqual(['bat-1', 'bat-2', 'pv-1']);
    const bat1 = all.json().items.find((d: { id: string }) => d.id === 'bat-1');
    expect(bat1).toEqual({
      id: 'bat-1',
      type: 'battery',
      siteId: 'site-1',
      createdAt: new Date(T0).toISOString(),
      revoked: false,
      revokedAt: null,
      online: true,
      presence: 'online',
      presenceSince: new Date(T0 - 5000).toISOString(),
      lastSeen: new Date(T0 - 1000).toISOString(),
      // No command and a status without control fields: nothing desired, nothing reported.
      control: { desired: null, reported: null, agree: null },
    });
    // A device that never reported is offline since nobody knows when.
    expect(all.json().items.find((d: { id: string }) => d.id === 'pv-1')).toMatchObject({ online: false, presence: 'offline', presenceSince: null });

    const bySite = await t.request({ method: 'GET', url: '/api/v1/devices?siteId=site-1' });
    expect(bySite.json().items.map((d: { id: string }) => d.id).sort()).toEqual(['bat-1', 'pv-1']);
    const byType = await t.request({ method: 'GET', url: '/api/v1/devices?type=battery&siteId=site-2' });
    expect(byType.json().items.map((d: { id: string }) => d.id)).toEqual(['bat-2']);
    const badType = await t.request({ method: 'GET', url: '/api/v1/devices?type=kettle' });
    expect(badType.statusCode).toBe(400);
    expect(badType.json().message).toMatch(/^type: /);
  });

  it('shows the twin of a device after its state was saved', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    const before = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1' });
    expect(before.json()).toMatchObject({
      online: false,
      presence: 'offline',
      presenceSince: null,
      lastSeen: null,
      lastSeenMs: null,
      metrics: {},
      status: null,
    });

    t.store.saveDeviceStates([
      {
        deviceId: 'bat-1',
        lastTs: T0 - 1500,
        lastSeenMs: T0 - 1000,
        lastSeq: 42,
        metrics: { socPct: 62.5, powerW: -3200 },
        presence: 'stale',
        presenceSinceMs: T0 - 400,
        status: { online: true, firmware: '1.4.2' },
      },
    ]);
    const response = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      id: 'bat-1',
      type: 'battery',
      siteId: 'site-1',
      createdAt: new Date(T0).toISOString(),
      revoked: false,
      revokedAt: null,
      online: true,
      presence: 'stale',
      presenceSince: new Date(T0 - 400).toISOString(),
      lastSeen: new Date(T0 - 1000).toISOString(),
      lastSeenMs: T0 - 1000,
      lastTs: T0 - 1500,
      lastSeq: 42,
      metrics: { socPct: 62.5, powerW: -3200 },
      status: { online: true, firmware: '1.4.2' },
      control: { desired: null, reported: null, agree: null },
    });
  });

  it('answers 404 for an unknown device', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/devices/nobody' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ code: 'not-found', message: "device 'nobody' does not exist" });
  });
});

describe('POST /api/v1/devices/:id/secret', () => {
  it('issues a new secret shown once, and keeps the old one accepted for the grace period', async () => {
    const [device] = await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    const oldSecret = device!.secret;
    t.clock.nowMs = T0 + 1_000;
    const response = await t.request({ method: 'POST', url: '/api/v1/devices/bat-1/secret' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json();
    expect(Object.keys(body).sort()).toEqual(['deviceId', 'previousSecretValidUntil', 'secret']);
    expect(body.deviceId).toBe('bat-1');
    expect(body.previousSecretValidUntil).toBe(new Date(T0 + 1_000 + SECRET_GRACE_MS).toISOString());
    expect(body.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.secret).not.toBe(oldSecret);

    const accepts = (secret: string, nowMs: number) => t.store.getAcceptedSecretHashes('bat-1', nowMs).some((hash) => verifySecret(secret, hash));
    const graceEndMs = T0 + 1_000 + SECRET_GRACE_MS;
    expect(accepts(body.secret, T0 + 1_000)).toBe(true);
    expect(accepts(oldSecret, T0 + 1_000)).toBe(true);
    expect(accepts(body.secret, graceEndMs + 1)).toBe(true);
    expect(accepts(oldSecret, graceEndMs + 1)).toBe(false);
    // The new secret comes first: the one the device should be using.
    expect(verifySecret(body.secret, t.store.getAcceptedSecretHashes('bat-1', T0 + 1_000)[0]!)).toBe(true);

    const twin = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1' });
    expect(twin.body).not.toContain(body.secret);
  });

  it('answers 404 for an unknown device and 409 for a revoked one, changing nothing', async () => {
    const unknown = await t.request({ method: 'POST', url: '/api/v1/devices/nobody/secret' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ code: 'not-found', message: "device 'nobody' does not exist" });

    await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    await t.request({ method: 'DELETE', url: '/api/v1/devices/bat-1' });
    const revoked = await t.request({ method: 'POST', url: '/api/v1/devices/bat-1/secret' });
    expect(revoked.statusCode).toBe(409);
    expect(revoked.json()).toEqual({
      code: 'conflict',
      message: "device 'bat-1' was revoked at 2024-03-01T12:00:00.000Z; a revoked device gets no new secret",
    });
    expect(t.store.getAcceptedSecretHashes('bat-1', T0)).toEqual([]);
    expect(t.store.getDevice('bat-1')?.revokedAtMs).toBe(T0);
  });

  it('needs the admin token', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/devices/bat-1/secret' });
    expect(response.statusCode).toBe(401);
    expect(t.store.getAcceptedSecretHashes('bat-1', T0)).toHaveLength(1);
  });
});

describe('DELETE /api/v1/devices/:id', () => {
  it('revokes in the registry and asks the broker to disconnect', async () => {
    const [device] = await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    t.clock.nowMs = T0 + 60_000;
    const response = await t.request({ method: 'DELETE', url: '/api/v1/devices/bat-1' });
    expect(response.statusCode).toBe(204);
    expect(response.body).toBe('');
    expect(t.store.getDevice('bat-1')?.revokedAtMs).toBe(T0 + 60_000);
    expect(t.store.getAcceptedSecretHashes('bat-1', T0 + 60_000)).toEqual([]);
    expect(t.revocations.calls).toEqual(['bat-1']);
    expect(device).toBeDefined();

    const twin = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1' });
    expect(twin.json()).toMatchObject({ revoked: true, revokedAt: new Date(T0 + 60_000).toISOString() });
    const sites = await t.request({ method: 'GET', url: '/api/v1/sites' });
    expect(sites.json().items[0].deviceCount).toBe(0);
  });

  it('answers 409 to a second revocation and repeats the disconnect request', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    await t.request({ method: 'DELETE', url: '/api/v1/devices/bat-1' });
    const again = await t.request({ method: 'DELETE', url: '/api/v1/devices/bat-1' });
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toMatch(/already revoked at 2024-03-01T12:00:00.000Z/);
    expect(t.revocations.calls).toEqual(['bat-1', 'bat-1']);
  });

  it('answers 404 for an unknown device without asking the broker', async () => {
    const response = await t.request({ method: 'DELETE', url: '/api/v1/devices/nobody' });
    expect(response.statusCode).toBe(404);
    expect(t.revocations.calls).toEqual([]);
  });

  it('says so when the broker could not be told, while the registry keeps the revocation', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    t.revocations.fail = new Error('broker unreachable');
    const response = await t.request({ method: 'DELETE', url: '/api/v1/devices/bat-1' });
    expect(response.statusCode).toBe(502);
    expect(response.json()).toMatchObject({ code: 'revocation-not-delivered' });
    expect(response.json().message).toContain('broker unreachable');
    expect(t.store.getDevice('bat-1')?.revokedAtMs).not.toBeNull();
  });
});

describe('GET /api/v1/devices paging', () => {
  it('pages through devices in id order with nextAfter', async () => {
    const ids = ['d-1', 'd-2', 'd-3', 'd-4', 'd-5'];
    await provisionDevices(t, { id: 'paged', region: 'north' }, ids.map((id) => ({ id, type: 'meter' as const })));
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const url: string = `/api/v1/devices?limit=2${after === null ? '' : `&after=${after}`}`;
      const body = (await t.request({ method: 'GET', url })).json() as { items: { id: string }[]; nextAfter: string | null };
      seen.push(...body.items.map((d) => d.id));
      after = body.nextAfter;
      if (after === null) break;
    }
    expect(seen).toEqual(ids);
    const tooMany = await t.request({ method: 'GET', url: '/api/v1/devices?limit=100000' });
    expect(tooMany.statusCode).toBe(400);
  });
});
