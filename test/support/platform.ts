/**
 * Test support: the platform exactly as `vpp up` and the per-part commands
 * wire it, started in this process (or as child processes, see processes.ts)
 * on free loopback ports with a fresh data folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../cli/config.ts';
import {
  openPlatform,
  startControlService,
  startDispatchService,
  startEmbeddedIngest,
  startMetricsService,
  startSimService,
  type ControlService,
  type DispatchService,
  type IngestService,
  type Platform,
  type SimService,
} from '../../cli/services.ts';
import type { Broker } from '../../broker/index.ts';
import type { MetricsServer } from '../../cli/metrics.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface RunningPlatform {
  platform: Platform;
  config: Readonly<Config>;
  broker: Broker;
  ingest: IngestService;
  control: ControlService;
  dispatch: DispatchService;
  sim: SimService | undefined;
  /** The process's metrics server (GET /metrics), as `vpp up` starts it. */
  metrics: MetricsServer;
  dataDir: string;
  /** fetch against the control API with the admin token. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Stops everything in the order `vpp up` does on Ctrl-C. */
  stop(): Promise<void>;
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'vpp-test-'));
}

export async function startPlatform(env: Record<string, string> = {}, dataDir = tempDataDir()): Promise<RunningPlatform> {
  const config = loadConfig({
    VPP_HTTP_PORT: '0',
    VPP_MQTT_PORT: '0',
    VPP_METRICS_PORT: '0',
    VPP_DATA_DIR: dataDir,
    VPP_ADMIN_TOKEN: ADMIN_TOKEN,
    VPP_SIM_SITES: '0',
    ...env,
  });
  const logger = pino({ level: process.env.VPP_TEST_LOG_LEVEL ?? 'silent' });
  const platform = openPlatform(config, logger);
  const metrics = await startMetricsService(platform);
  const embedded = await startEmbeddedIngest(platform);
  const { broker, ingest } = embedded;
  const dispatch = await startDispatchService(platform, broker.url);
  const control = await startControlService(platform, broker.url, {
    onAlertTransition: () => ingest.notifier.wake(),
    onCommandCreated: () => dispatch.sender.wake(),
    dispatcher: dispatch.dispatcher,
  });
  const sim = config.sim.sites > 0 ? await startSimService(platform, broker.url) : undefined;
  let stopped = false;
  return {
    platform,
    config,
    broker,
    ingest,
    control,
    dispatch,
    sim,
    metrics,
    dataDir,
    api: (path, init = {}) =>
      fetch(`${control.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
      }),
    async stop() {
      if (stopped) return;
      stopped = true;
      await sim?.stop();
      await control.stop();
      await dispatch.stop();
      await embedded.stop();
      await metrics.stop();
      await platform.store.close();
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Polls `probe` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
