/**
 * The dashboard's files at `/`: the page never cached, hashed assets cached
 * for good, conditional requests, the dashboard's own Content-Security-
 * Policy, and clear answers when there is no dashboard or it is not built.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { useControlTest } from '../test-helper.ts';
import { DASHBOARD_CSP, loadDashboard } from './dashboard.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpp-dashboard-'));
fs.mkdirSync(path.join(dir, 'assets'));
fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>VPP</title><script type="module" src="/assets/app-abc123.js"></script>');
fs.writeFileSync(path.join(dir, 'assets', 'app-abc123.js'), 'console.log("dashboard")');
fs.writeFileSync(path.join(dir, 'assets', 'app-abc123.css'), 'body{}');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the dashboard at /', () => {
  const t = useControlTest({ dashboardDir: dir });

  it('serves the page without a token, never cached, with the dashboard policy', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(response.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toContain('unsafe-inline');
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.body).toContain('/assets/app-abc123.js');
    const again = await t.app.inject({ method: 'GET', url: '/', headers: { 'if-none-match': response.headers.etag as string } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('serves hashed assets with their type, cached for good, and 404 for anything else', async () => {
    const js = await t.app.inject({ method: 'GET', url: '/assets/app-abc123.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.body).toBe('console.log("dashboard")');
    expect((await t.app.inject({ method: 'GET', url: '/assets/app-abc123.css' })).headers['content-type']).toBe('text/css; charset=utf-8');
    for (const url of ['/assets/nope.js', '/assets/..%2Findex.html', '/assets/%2e%2e%2f%2e%2e%2fpackage.json']) {
      expect((await t.app.inject({ method: 'GET', url })).statusCode, url).toBe(404);
    }
  });

  it('keeps the API policy on the API', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/fleet' });
    expect(response.headers['content-security-policy']).toContain("default-src 'none'");
  });
});

const unbuilt = fs.mkdtempSync(path.join(os.tmpdir(), 'vpp-dashboard-unbuilt-'));
afterAll(() => fs.rmSync(unbuilt, { recursive: true, force: true }));

describe('a dashboard folder that was not built', () => {
  const t = useControlTest({ dashboardDir: unbuilt });

  it('answers 503 naming the build command', async () => {
    expect(loadDashboard(unbuilt)).toBeUndefined();
    const response = await t.app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(503);
    expect(response.body).toContain('npm run build:dashboard');
  });
});

describe('no dashboard configured', () => {
  const t = useControlTest();

  it('answers 404 at / and points to the API documentation', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(404);
    expect(response.body).toContain('/docs');
  });
});
