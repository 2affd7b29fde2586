/**
 * The control app for tests: built once per test file (building compiles
 * every schema, which is most of a test's cost), on a fresh real SQLite
 * store, live view, health answer, revocation recorder and clock per test.
 * The app holds forwarding objects that call whatever the current test's
 * store and live view are, so each test starts from empty state.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import pino, { type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import type { AlertEvent } from '../protocol/index.ts';
import { openSqliteStore, type SqliteStore } from '../store/index.ts';
import type { OperatorRole, StoredCommand } from '../store/types.ts';
import { buildControlApp } from './app.ts';
import type { AccessOptions, Dispatcher, HealthReport } from './deps.ts';
import { flushAudit } from './plugins/audit.ts';
import { createLiveView, type FeedableLiveView } from './live-view.ts';
import { ALERT_RULES, T0 } from './test-fixtures.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };
/** Grace period of a rotated secret in tests. */
export const SECRET_GRACE_MS = 3_600_000;

export interface ControlTest {
  app: FastifyInstance;
  /** This test's store; closed after the test. */
  store: SqliteStore;
  live: FeedableLiveView;
  /** What the next health check answers; a function to compute it at check time, or to make it throw. */
  health: { report: HealthReport | (() => HealthReport) };
  revocations: { calls: string[]; fail: Error | null };
  clock: { nowMs: number };
  /** Every event the app passed to onAlertTransition in this test, in order. */
  alertTransitions: AlertEvent[];
  /** When set, onAlertTransition throws it (after recording the event). */
  alertTransitionFail: Error | null;
  /** Every command the app passed to onCommandCreated in this test, in order. */
  createdCommands: StoredCommand[];
  /** When set, onCommandCreated throws it (after recording the command). */
  commandCreatedFail: Error | null;
  /**
   * The app's dispatcher in this test. The real planner and control loop
   * live outside control; a test that needs one sets its own in a
   * beforeEach. By default every call throws, so a test that reaches it
   * without meaning to fails loudly.
   */
  dispatcher: Dispatcher;
  /** Injects with the admin token. */
  request(options: InjectOptions): Promise<LightMyRequestResponse>;
  /** Injects with this bearer token. */
  requestAs(token: string, options: InjectOptions): Promise<LightMyRequestResponse>;
  /** Makes an API token through the API (as the admin) and returns the bearer token. */
  createToken(role: OperatorRole, name?: string): Promise<string>;
}

const noDispatcher = (): never => {
  throw new Error('this test has no dispatcher; set t.dispatcher');
};
const NO_DISPATCHER: Dispatcher = { plan: noDispatcher, create: noDispatcher, cancel: noDispatcher };

/** Calls through to whatever `current()` returns at call time. */
function forwardTo<T extends object>(current: () => T): T {
  return new Proxy({} as T, {
    get(_target, key) {
      const target = current();
      const value: unknown = Reflect.get(target, key);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Registers the vitest hooks of a control test file and returns its state,
 * refreshed before each test. `logger` replaces the silent one (to capture
 * what the app logs).
 */
export function useControlTest(options: { logger?: Logger; access?: AccessOptions; dashboardDir?: string } = {}): ControlTest {
  let dir = '';
  let testCount = 0;
  let tokenCount = 0;
  const t = {
    health: { report: { ok: true, components: {} } },
    revocations: { calls: [], fail: null },
    clock: { nowMs: T0 },
    request: (options: InjectOptions) => t.app.inject({ ...options, headers: { ...AUTH, ...options.headers } }),
    requestAs: (token: string, options: InjectOptions) =>
      t.app.inject({ ...options, headers: { ...options.headers, authorization: `Bearer ${token}` } }),
    async createToken(role: OperatorRole, name = `${role}-${++tokenCount}`) {
      const response = await t.request({ method: 'POST', url: '/api/v1/tokens', payload: { name, role } });
      if (response.statusCode !== 201) throw new Error(`token: ${response.statusCode} ${response.body}`);
      return (response.json() as { token: string }).token;
    },
  } as unknown as ControlTest;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpp-control-'));
    const store = forwardTo(() => t.store);
    t.app = await buildControlApp({
      registry: store,
      telemetry: store,
      twins: store,
      deadLetters: store,
      alerts: forwardTo(() => t.store.alerts),
      alertRules: ALERT_RULES,
      onAlertTransition: (event) => {
        t.alertTransitions.push(event);
        if (t.alertTransitionFail) throw t.alertTransitionFail;
      },
      commands: forwardTo(() => t.store.commands),
      onCommandCreated: (command) => {
        t.createdCommands.push(command);
        if (t.commandCreatedFail) throw t.commandCreatedFail;
      },
      dispatches: forwardTo(() => t.store.dispatches),
      dispatcher: forwardTo(() => t.dispatcher),
      live: forwardTo(() => t.live),
      revocations: {
        async revokeDevice(deviceId) {
          t.revocations.calls.push(deviceId);
          if (t.revocations.fail) throw t.revocations.fail;
        },
      },
      health: {
        async check() {
          const report = t.health.report;
          return typeof report === 'function' ? report() : report;
        },
      },
      secretGraceMs: SECRET_GRACE_MS,
      adminToken: ADMIN_TOKEN,
      tokens: forwardTo(() => t.store.tokens),
      audit: forwardTo(() => t.store.audit),
      // One app serves every test of a file, all from 127.0.0.1, so the limits are
      // wide unless a test file asks for its own.
      access: { rateLimitPerMinute: 100_000, rateLimitPerAddressPerMinute: 100_000, failedAuthPerAddressPerMinute: 100_000, ...options.access },
      clock: () => t.clock.nowMs,
      logger: options.logger ?? pino({ level: 'silent' }),
      ...(options.dashboardDir === undefined ? {} : { dashboardDir: options.dashboardDir }),
    });
  });

  beforeEach(() => {
    t.store = openSqliteStore({ file: path.join(dir, `test-${++testCount}.db`) });
    t.live = createLiveView();
    t.health.report = { ok: true, components: { store: { ok: true } } };
    t.revocations.calls = [];
    t.revocations.fail = null;
    t.clock.nowMs = T0;
    t.alertTransitions = [];
    t.alertTransitionFail = null;
    t.createdCommands = [];
    t.commandCreatedFail = null;
    t.dispatcher = NO_DISPATCHER;
  });

  afterEach(async () => {
    // The audit records of this test go to this test's store, not the next one's.
    flushAudit(t.app);
    await t.store.close();
  });

  afterAll(async () => {
    await t.app?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  return t;
}

/** Creates a site and provisions devices through the API; returns their ids and secrets. */
export async function provisionDevices(
  t: ControlTest,
  site: { id: string; region: string; name?: string },
  devices: Array<{ id: string; type: 'battery' | 'solar' | 'meter' }>,
): Promise<Array<{ id: string; secret: string }>> {
  const siteResponse = await t.request({ method: 'POST', url: '/api/v1/sites', payload: { name: site.id, ...site } });
  if (siteResponse.statusCode >= 300) throw new Error(`site: ${siteResponse.statusCode} ${siteResponse.body}`);
  const out: Array<{ id: string; secret: string }> = [];
  for (const device of devices) {
    const response = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { ...device, siteId: site.id } });
    if (response.statusCode !== 201) throw new Error(`device: ${response.statusCode} ${response.body}`);
    out.push({ id: device.id, secret: (response.json() as { secret: string }).secret });
  }
  return out;
}
