/**
 * The dashboard in a real Chromium (Debian's, driven by playwright-core)
 * against the real stack: broker, ingest, dispatch, control serving the
 * built dashboard, and a simulated fleet sending a sample a second. As an
 * operator would: sign in with the admin token, watch the fleet move, find a
 * site, acknowledge the alert of an injected fault, dispatch the fleet from
 * the page after its dry run and watch measured power approach the target;
 * and as a viewer, who sees but cannot act. Each page is screenshotted into
 * test-output/screenshots/ (docs/screenshots/ holds copies of a run).
 *
 * The dashboard must be built (npm ci and npm start do it; or npm run
 * build:dashboard).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, launchBrowser, screenshot } from './support/browser.ts';
import { ADMIN_TOKEN, eventually, removeDir, startPlatform, tempDataDir, type RunningPlatform } from './support/platform.ts';

const SITES = 12;
const REGIONS = ['north', 'south', 'east', 'west'];
const DIST = resolve(import.meta.dirname, '..', 'dashboard', 'dist');

const missing = chromiumMissing();
if (missing) console.warn(`dashboard browser tests skipped: ${missing}`);

describe.skipIf(missing !== undefined)('the dashboard in Chromium', () => {
  let p: RunningPlatform;
  let browser: Browser;
  let page: Page;
  let base: string;

  beforeAll(async () => {
    if (!existsSync(join(DIST, 'index.html'))) throw new Error(`the dashboard is not built in ${DIST}: run npm run build:dashboard`);
    const dataDir = tempDataDir();
    // The overheat rule fires on the first hot sample, so the test need not wait the shipped 30 s.
    const rules = join(dataDir, 'rules.json');
    writeFileSync(
      rules,
      JSON.stringify({
        flapWindowSeconds: 0,
        rules: [
          {
            id: 'battery-overheat',
            severity: 'critical',
            subject: 'device',
            filter: { deviceTypes: ['battery'] },
            summary: 'Battery {subjectId} is overheating: {value} °C',
            threshold: { metric: 'tempC', above: 55, forSeconds: 0, clearBelow: 50 },
          },
        ],
      }),
    );
    p = await startPlatform(
      {
        VPP_SIM_SITES: String(SITES),
        VPP_SIM_INTERVAL_MS: '1000',
        VPP_DEVICE_INTERVAL_MS: '1000',
        VPP_DISPATCH_LOOP_MS: '1000',
        VPP_ALERT_RULES: rules,
        VPP_ALERT_STARTUP_GRACE_SECONDS: '0',
        VPP_DASHBOARD_DIR: DIST,
      },
      dataDir,
    );
    base = p.control.url;
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    // Every battery must have reported its limits before a dispatch can use it.
    await eventually(async () => {
      const { items } = (await (await p.api('/api/v1/devices?type=battery')).json()) as { items: Array<{ id: string }> };
      const twins = await Promise.all(items.map(async (d) => (await (await p.api(`/api/v1/devices/${d.id}`)).json()) as { metrics: Record<string, number> }));
      return twins.length === SITES && twins.every((t) => t.metrics.maxDischargeW !== undefined) ? true : undefined;
    }, 30_000, 'every battery reporting');
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await p?.stop();
    if (p) removeDir(p.dataDir);
  });

  const value = async (testId: string, target: Page = page): Promise<number> => {
    const raw = await target.getByTestId(testId).first().getAttribute('data-value');
    return raw === null || raw === '' ? Number.NaN : Number(raw);
  };

  async function signIn(target: Page, token: string): Promise<void> {
    await target.goto(`${base}/`);
    await target.getByTestId('signin-token').fill(token);
    await target.getByTestId('signin-submit').click();
    await target.getByTestId('whoami').waitFor();
  }

  it('signs in with the admin token and shows every region live, its numbers changing without a reload', { timeout: 60_000 }, async () => {
    await page.goto(`${base}/`);
    await page.getByTestId('signin-token').fill('not-the-token-at-all');
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('signin-error').waitFor();
    await signIn(page, ADMIN_TOKEN);
    expect(await page.getByTestId('whoami').getAttribute('data-role')).toBe('admin');
    await expect.poll(() => page.getByTestId('connection-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('live');
    for (const region of REGIONS) await page.getByTestId(`region-card-${region}`).waitFor();
    await expect.poll(async () => page.getByTestId('fleet-total-coverage').getAttribute('data-reporting'), { timeout: 15_000 }).toBe(String(SITES * 3));

    // The page stays where it is; the figures move with the fleet.
    const url = page.url();
    const first = await value('fleet-total-loadW');
    expect(first).toBeGreaterThan(0);
    await expect.poll(() => value('fleet-total-loadW'), { timeout: 15_000 }).not.toBe(first);
    for (const region of REGIONS) {
      const soc = await value(`region-${region}-socPct`);
      expect(soc).toBeGreaterThanOrEqual(0);
      expect(soc).toBeLessThanOrEqual(100);
    }
    expect(page.url()).toBe(url);
    await screenshot(page, 'fleet');
  });

  it('lists the sites, searches them, and opens a site with its devices', { timeout: 60_000 }, async () => {
    await page.goto(`${base}/#/sites`);
    await page.getByTestId('sites-row-site-0001').waitFor();
    await screenshot(page, 'sites');
    await page.getByTestId('sites-search').fill('site-0002');
    await expect.poll(() => page.getByTestId('sites-row-site-0001').count(), { timeout: 5_000 }).toBe(0);
    await page.getByTestId('sites-row-site-0002').click();
    await expect.poll(() => page.url()).toContain('#/sites/site-0002');
    for (const type of ['battery', 'solar', 'meter']) await page.getByTestId(`site-device-site-0002-${type}`).waitFor();
    await expect.poll(() => value('site-device-site-0002-battery-socPct'), { timeout: 10_000 }).toBeGreaterThanOrEqual(0);
    await screenshot(page, 'site');
  });

  let alertId = '';

  it('shows the alert of an injected fault as it fires, and acknowledges it', { timeout: 60_000 }, async () => {
    await page.goto(`${base}/#/alerts`);
    await expect.poll(() => page.getByTestId('connection-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('live');
    p.sim!.fleet.injectFault('overheat:site-0003-battery');
    const row = page.locator('[data-testid^="alert-row-"][data-state="firing"]').first();
    await row.waitFor({ timeout: 30_000 });
    alertId = (await row.getAttribute('data-testid'))!.slice('alert-row-'.length);
    expect(await row.textContent()).toContain('site-0003-battery');
    await screenshot(page, 'alerts');
    await page.getByTestId(`alert-ack-${alertId}`).click();
    await page.getByTestId('alert-ack-note').fill('crew on the way');
    await page.getByTestId('alert-ack-confirm').click();
    await expect.poll(() => page.getByTestId(`alert-row-${alertId}`).getAttribute('data-state'), { timeout: 10_000 }).toBe('acknowledged');
    const stored = (await (await p.api(`/api/v1/alerts/${alertId}`)).json()) as { state: string; acknowledgedBy: string; acknowledgeNote: string };
    expect(stored).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'bootstrap', acknowledgeNote: 'crew on the way' });
  });

  it('plans a dispatch, starts it from the page and shows measured power approaching the target', { timeout: 90_000 }, async () => {
    await page.goto(`${base}/#/dispatch`);
    await page.getByTestId('dispatch-target').selectOption('fleet');
    await page.getByTestId('dispatch-power').fill('6');
    await page.getByTestId('dispatch-duration').fill('10');
    await page.getByTestId('dispatch-check').click();
    const plan = page.getByTestId('dispatch-plan');
    await plan.waitFor();
    expect(await plan.getAttribute('data-feasible')).toBe('true');
    // The dry run sent nothing.
    expect(((await (await p.api('/api/v1/dispatches')).json()) as { dispatches: unknown[] }).dispatches).toEqual([]);
    await page.getByTestId('dispatch-submit').click();
    await expect.poll(() => page.url(), { timeout: 10_000 }).toMatch(/#\/dispatch\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').at(-1)!;
    expect(await value('dispatch-target-w')).toBe(6_000);
    await expect.poll(() => value('dispatch-measured'), { timeout: 60_000, interval: 1_000 }).toBeGreaterThan(0.9 * 6_000);
    await screenshot(page, 'dispatch');
    await page.getByTestId('dispatch-cancel').click();
    await page.getByTestId('dispatch-cancel-confirm').click();
    await expect.poll(() => page.getByTestId('dispatch-state').getAttribute('data-value'), { timeout: 10_000 }).toBe('cancelled');
    expect(((await (await p.api(`/api/v1/dispatches/${id}`)).json()) as { state: string }).state).toBe('cancelled');
  });

  it('lets a viewer see everything and act on nothing (and the API refuses anyway)', { timeout: 60_000 }, async () => {
    const created = await p.api('/api/v1/tokens', { method: 'POST', body: JSON.stringify({ name: 'wall screen', role: 'viewer' }) });
    const { token } = (await created.json()) as { token: string };
    const viewer = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    try {
      await signIn(viewer, token);
      expect(await viewer.getByTestId('whoami').getAttribute('data-role')).toBe('viewer');
      await viewer.goto(`${base}/#/alerts`);
      await viewer.getByTestId(`alert-row-${alertId}`).waitFor({ timeout: 10_000 });
      expect(await viewer.getByTestId(`alert-ack-${alertId}`).count()).toBe(0);
      expect(await viewer.getByTestId(`alert-resolve-${alertId}`).count()).toBe(0);
      await screenshot(viewer, 'alerts-viewer');
      await viewer.goto(`${base}/#/dispatch`);
      await viewer.getByTestId('connection-state').waitFor();
      expect(await viewer.getByTestId('dispatch-submit').count()).toBe(0);
      expect(await viewer.getByTestId('dispatch-check').count()).toBe(0);
      const status = await viewer.evaluate(async (bearer) => {
        const response = await fetch('/api/v1/dispatches', {
          method: 'POST',
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
          body: JSON.stringify({ target: { fleet: true }, powerW: 1000, durationSeconds: 60 }),
        });
        return response.status;
      }, token);
      expect(status).toBe(403);
    } finally {
      await viewer.close();
    }
  });
});
