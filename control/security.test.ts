import { describe, expect, it } from 'vitest';
import { useControlTest } from './test-helper.ts';

const ORIGIN = 'https://ops.example.com';
const t = useControlTest({ access: { corsOrigins: [ORIGIN] } });

describe('security headers', () => {
  it('sends nosniff, no framing and a CSP that allows nothing on API answers, errors included', async () => {
    for (const response of [
      await t.request({ method: 'GET', url: '/api/v1/sites', remoteAddress: '10.0.2.1' }),
      await t.app.inject({ method: 'GET', url: '/api/v1/sites', remoteAddress: '10.0.2.1' }),
      await t.app.inject({ method: 'GET', url: '/healthz' }),
    ]) {
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['x-frame-options']).toBe('DENY');
      const csp = String(response.headers['content-security-policy']);
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
    }
  });

  it('gives the Swagger UI under /docs its own policy, still without framing', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(response.statusCode).toBe(200);
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("default-src 'none'");
    expect(response.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('CORS, open to a configured origin', () => {
  it('allows the configured origin, on answers and preflights', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/sites', remoteAddress: '10.0.3.1', headers: { origin: ORIGIN } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(response.headers['access-control-allow-credentials']).toBeUndefined();

    const preflight = await t.app.inject({
      method: 'OPTIONS',
      url: '/api/v1/devices/bat-1/commands',
      remoteAddress: '10.0.3.1',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(String(preflight.headers['access-control-allow-headers'])).toContain('authorization');
    expect(String(preflight.headers['access-control-allow-methods'])).toContain('POST');
  });

  it('sends nothing to another origin', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/sites', remoteAddress: '10.0.3.2', headers: { origin: 'https://evil.example.com' } });
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('body limits', () => {
  it('answers 413 over 8 KiB on acknowledgements, resolutions and tokens, over 64 KiB elsewhere', async () => {
    const remoteAddress = '10.0.4.1';
    const note = 'n'.repeat(9 * 1024);
    for (const [url, payload] of [
      ['/api/v1/alerts/1/ack', { note }],
      ['/api/v1/alerts/1/resolve', { reason: note }],
      ['/api/v1/tokens', { name: note, role: 'viewer' }],
      ['/api/v1/sites', { id: 'site-1', region: 'north', name: 'n'.repeat(65 * 1024) }],
    ] as const) {
      const response = await t.request({ method: 'POST', url, payload, remoteAddress });
      expect(response.statusCode, url).toBe(413);
      expect(response.json().code, url).toBe('payload-too-large');
    }
    // 9 KiB is fine where the limit is 64 KiB: the site's name is refused by its schema, not by size.
    const small = await t.request({ method: 'POST', url: '/api/v1/sites', payload: { id: 'site-1', region: 'north', name: note }, remoteAddress });
    expect(small.statusCode).toBe(400);
  });
});
