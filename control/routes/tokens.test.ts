import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { T0 } from '../test-fixtures.ts';
import { useControlTest } from '../test-helper.ts';

const t = useControlTest();

describe('POST /api/v1/tokens', () => {
  it('makes a token shown once, stored only by its SHA-256, that works at once with its role', async () => {
    const response = await t.request({
      method: 'POST',
      url: '/api/v1/tokens',
      payload: { name: 'grafana', role: 'viewer', expiresAt: new Date(T0 + 86_400_000).toISOString() },
    });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json();
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'grafana',
      role: 'viewer',
      createdAt: new Date(T0).toISOString(),
      expiresAt: new Date(T0 + 86_400_000).toISOString(),
      token: expect.stringMatching(/^vpp_[A-Za-z0-9_-]{43}$/),
    });
    const hash = createHash('sha256').update(body.token as string).digest('hex');
    expect(t.store.tokens.authenticate(hash, T0)).toMatchObject({ id: body.id, name: 'grafana', role: 'viewer' });

    expect((await t.requestAs(body.token, { method: 'GET', url: '/api/v1/sites' })).statusCode).toBe(200);
    expect((await t.requestAs(body.token, { method: 'POST', url: '/api/v1/sites', payload: { id: 's', region: 'r', name: 'n' } })).statusCode).toBe(403);
  });

  it('refuses the reserved name, a name an active token has, an expiry not in the future, an unknown role', async () => {
    await t.createToken('operator', 'ops');
    const cases: Array<[object, number, RegExp]> = [
      [{ name: 'bootstrap', role: 'viewer' }, 400, /^name: 'bootstrap' is the configured admin token's name$/],
      [{ name: 'ops', role: 'viewer' }, 409, /named "ops"/],
      [{ name: 'later', role: 'viewer', expiresAt: new Date(T0).toISOString() }, 400, /^expiresAt: must be in the future$/],
      [{ name: 'later', role: 'viewer', expiresAt: 'soon' }, 400, /^expiresAt:/],
      [{ name: 'root', role: 'superuser' }, 400, /^role: must be one of viewer, operator, admin$/],
      [{ name: 'x', role: 'viewer', secret: 'mine' }, 400, /^secret: is not a known property$/],
      [{ name: ' padded', role: 'viewer' }, 400, /white space/],
    ];
    for (const [payload, status, message] of cases) {
      const response = await t.request({ method: 'POST', url: '/api/v1/tokens', payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(status);
      expect(response.json().message, JSON.stringify(payload)).toMatch(message);
    }
  });

  it('expires: the token is a 401 from its expiry on', async () => {
    const response = await t.request({
      method: 'POST',
      url: '/api/v1/tokens',
      payload: { name: 'temp', role: 'viewer', expiresAt: new Date(T0 + 60_000).toISOString() },
    });
    const { token } = response.json() as { token: string };
    t.clock.nowMs = T0 + 59_999;
    expect((await t.requestAs(token, { method: 'GET', url: '/api/v1/sites' })).statusCode).toBe(200);
    t.clock.nowMs = T0 + 60_000;
    const expired = await t.requestAs(token, { method: 'GET', url: '/api/v1/sites' });
    expect(expired.statusCode).toBe(401);
    expect(expired.json()).toEqual({ code: 'unauthorized', message: 'Authorization: the token is not valid (unknown, revoked or expired)' });
  });
});

describe('GET /api/v1/tokens', () => {
  it('lists tokens newest first without any secret, with last use, expiry and revocation', async () => {
    const first = await t.createToken('viewer', 'first');
    t.clock.nowMs = T0 + 1_000;
    await t.createToken('admin', 'second');
    t.clock.nowMs = T0 + 5_000;
    await t.requestAs(first, { method: 'GET', url: '/api/v1/fleet' });

    const response = await t.request({ method: 'GET', url: '/api/v1/tokens' });
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain('vpp_');
    const { tokens } = response.json() as { tokens: Array<Record<string, unknown>> };
    expect(tokens.map((token) => token.name)).toEqual(['second', 'first']);
    expect(Object.keys(tokens[0]!).sort()).toEqual(['active', 'createdAt', 'expiresAt', 'id', 'lastUsedAt', 'name', 'revoked', 'revokedAt', 'role']);
    expect(tokens[1]).toMatchObject({
      role: 'viewer',
      createdAt: new Date(T0).toISOString(),
      lastUsedAt: new Date(T0 + 5_000).toISOString(),
      expiresAt: null,
      revoked: false,
      revokedAt: null,
      active: true,
    });
    expect(tokens[0]).toMatchObject({ role: 'admin', lastUsedAt: null });
  });
});

describe('DELETE /api/v1/tokens/:id', () => {
  it('revokes at once: the next request with the token is a 401; again is a 409, unknown a 404', async () => {
    const token = await t.createToken('operator', 'leaving');
    expect((await t.requestAs(token, { method: 'GET', url: '/api/v1/sites' })).statusCode).toBe(200);
    const id = t.store.tokens.listTokens()[0]!.id;

    t.clock.nowMs = T0 + 2_000;
    const revoked = await t.request({ method: 'DELETE', url: `/api/v1/tokens/${id}` });
    expect(revoked.statusCode).toBe(204);
    expect(revoked.body).toBe('');
    expect((await t.requestAs(token, { method: 'GET', url: '/api/v1/sites' })).statusCode).toBe(401);

    const listed = (await t.request({ method: 'GET', url: '/api/v1/tokens' })).json().tokens[0];
    expect(listed).toMatchObject({ name: 'leaving', revoked: true, revokedAt: new Date(T0 + 2_000).toISOString(), active: false });

    const again = await t.request({ method: 'DELETE', url: `/api/v1/tokens/${id}` });
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toBe(`token '${id}' (leaving) is already revoked (at ${new Date(T0 + 2_000).toISOString()})`);
    expect((await t.request({ method: 'DELETE', url: '/api/v1/tokens/bootstrap' })).statusCode).toBe(404);

    // Revoking frees the name.
    await t.createToken('operator', 'leaving');
  });
});

describe('authentication', () => {
  it('answers 401 for a made-up token of the right form and for a token of another form', async () => {
    for (const token of ['vpp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'vpp_', 'something-else-entirely']) {
      const response = await t.requestAs(token, { method: 'GET', url: '/api/v1/sites' });
      expect(response.statusCode, token).toBe(401);
    }
  });

  it('keeps accepting the configured admin token as admin', async () => {
    expect((await t.request({ method: 'GET', url: '/api/v1/audit' })).statusCode).toBe(200);
  });
});
