import { describe, expect, it } from 'vitest';
import { flushAudit } from './plugins/audit.ts';
import { AUTH, useControlTest } from './test-helper.ts';

// Small limits; the counters live as long as the app, which serves every test of
// this file, so each test uses its own addresses and tokens (the configured admin
// token makes the tokens: a handful of requests in all, under its limit).
const t = useControlTest({ access: { rateLimitPerMinute: 5, rateLimitPerAddressPerMinute: 40, failedAuthPerAddressPerMinute: 3 } });

describe('rate limits', () => {
  it('answers 429 with Retry-After once a token passes its limit per minute; other tokens go on', async () => {
    const busy = await t.createToken('viewer', 'busy');
    const calm = await t.createToken('viewer', 'calm');
    const remoteAddress = '10.0.1.1';
    for (let i = 0; i < 5; i++) {
      const response = await t.requestAs(busy, { method: 'GET', url: '/api/v1/fleet', remoteAddress });
      expect(response.statusCode).toBe(200);
      expect(response.headers['x-ratelimit-remaining']).toBe(String(4 - i));
    }
    const limited = await t.requestAs(busy, { method: 'GET', url: '/api/v1/fleet', remoteAddress });
    expect(limited.statusCode).toBe(429);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.json()).toEqual({
      code: 'too-many-requests',
      message: `token "busy": more than 5 requests per minute; retry in ${retryAfter} s`,
    });
    expect((await t.requestAs(calm, { method: 'GET', url: '/api/v1/fleet', remoteAddress })).statusCode).toBe(200);

    flushAudit(t.app);
    expect(t.store.audit.listAudit({ limit: 10, actor: 'busy' })).toEqual([
      expect.objectContaining({ action: 'GET /api/v1/fleet', role: 'viewer', status: 429, outcome: 'refused', address: remoteAddress }),
    ]);
  });

  it('answers 429 once an address passes its limit per minute, token or not', async () => {
    const remoteAddress = '10.0.1.2';
    for (let i = 0; i < 40; i++) {
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/fleet', remoteAddress })).statusCode).toBe(401);
    }
    const limited = await t.app.inject({ method: 'GET', url: '/api/v1/fleet', remoteAddress, headers: AUTH });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited.json().message).toMatch(/^more than 40 requests per minute from this address; retry in \d+ s$/);
  });

  it('throttles failed authentication per address: after N bad tokens, 429 before the token is checked', async () => {
    const remoteAddress = '10.0.1.3';
    for (const token of ['vpp_guess-1', 'vpp_guess-2', 'not-even-close']) {
      expect((await t.requestAs(token, { method: 'GET', url: '/api/v1/sites', remoteAddress })).statusCode).toBe(401);
    }
    // Even the right token is refused from that address until the minute is over.
    const throttled = await t.app.inject({ method: 'GET', url: '/api/v1/sites', remoteAddress, headers: AUTH });
    expect(throttled.statusCode).toBe(429);
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(throttled.json().message).toMatch(/^too many failed authentications from this address; retry in \d+ s$/);
    // Other addresses are not affected, and a request without a token is not a failed guess.
    const elsewhere = '10.0.1.4';
    for (let i = 0; i < 5; i++) expect((await t.app.inject({ method: 'GET', url: '/api/v1/sites', remoteAddress: elsewhere })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/sites', remoteAddress: elsewhere, headers: AUTH })).statusCode).toBe(200);
  });
});

