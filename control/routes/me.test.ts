import { describe, expect, it } from 'vitest';
import { OPERATOR_ROLES } from '../../store/types.ts';
import { useControlTest } from '../test-helper.ts';

const t = useControlTest();

describe('GET /api/v1/me', () => {
  it('names the configured admin token bootstrap, role admin', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/me' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ name: 'bootstrap', role: 'admin' });
  });

  it.each(OPERATOR_ROLES)('answers the name and role of an API token of role %s', async (role) => {
    const token = await t.createToken(role, `dashboard-${role}`);
    const response = await t.requestAs(token, { method: 'GET', url: '/api/v1/me' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ name: `dashboard-${role}`, role });
  });

  it('is a 401 without a token, with a wrong one and with a revoked one', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/me' })).statusCode).toBe(401);
    expect((await t.requestAs('vpp_not-a-token', { method: 'GET', url: '/api/v1/me' })).statusCode).toBe(401);
    const token = await t.createToken('viewer', 'leaving');
    const id = t.store.tokens.listTokens().find((k) => k.name === 'leaving')!.id;
    expect((await t.request({ method: 'DELETE', url: `/api/v1/tokens/${id}` })).statusCode).toBe(204);
    expect((await t.requestAs(token, { method: 'GET', url: '/api/v1/me' })).statusCode).toBe(401);
  });
});
