/**
 * The system under test, started in the benchmark's own process and wired
 * exactly as `vpp up` wires it (cli/services.ts): the SQLite store in the
 * scenario's workDir, the aedes broker with the platform's authentication
 * and authorization, and (unless `ingest: false`) the broker tap feeding the
 * ingest pipeline. The control API is started only on request; the device
 * simulator never is (load generators take its place, in their own process).
 *
 * Usage:
 *
 *   const sut = await startSystemUnderTest({ workDir });
 *   const devices = sut.provisionDevices(3_000);          // id, type, siteId, secret
 *   sut.onCommitted((points, committedAtMs) => ...);      // every committed telemetry write
 *   ... load against sut.mqttUrl, read sut.counters ...
 *   await sut.stop();
 *
 * Bare-broker mode (`ingest: false`): the same broker with no tap and no
 * pipeline, e.g. for the ceiling of what a subscriber can receive, or to
 * compare the broker with Mosquitto. Subscribers connect as a service
 * account with `serviceCredentials`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Broker, BrokerCounters } from '../../broker/index.ts';
import { loadConfig, type Config } from '../../cli/config.ts';
import {
  issueCredentials,
  openPlatform,
  startBrokerService,
  startControlService,
  startEmbeddedIngest,
  type ControlService,
  type EmbeddedIngest,
  type IngestService,
  type Platform,
} from '../../cli/services.ts';
import { planFleet } from '../../devices-sim/index.ts';
import { IngestCounters } from '../../ingest/index.ts';
import type { DeviceType } from '../../protocol/index.ts';
import type { SqliteStore, TelemetryPoint } from '../../store/index.ts';

export interface SystemUnderTestOptions {
  /** Folder for the SQLite file and generated secrets (the scenario's workDir). */
  workDir: string;
  /** Start the tap and the ingest pipeline (default true); false gives a bare broker. */
  ingest?: boolean;
  /** Start the control API too (default false). */
  control?: boolean;
  /** Extra `VPP_*` variables, e.g. `{ VPP_INGEST_BATCH_MESSAGES: '2000' }`; validated like the real ones. */
  env?: Record<string, string>;
  /** Log level of the platform's logger (default 'warn'; logs go to stderr). */
  logLevel?: string;
}

/** A provisioned device and the secret it connects with (MQTT username = client id = id). */
export interface DeviceCredential {
  id: string;
  type: DeviceType;
  siteId: string;
  secret: string;
}

/** Called after each telemetry write has committed, with the points and the commit time (Date.now()). */
export type CommitListener = (points: readonly TelemetryPoint[], committedAtMs: number) => void;

export interface SystemUnderTest {
  /** `mqtt://127.0.0.1:<port>` of the platform's broker. */
  readonly mqttUrl: string;
  readonly config: Readonly<Config>;
  readonly store: SqliteStore;
  readonly broker: Broker;
  /** Undefined in bare-broker mode. */
  readonly ingest: IngestService | undefined;
  /** Undefined unless `control: true`. */
  readonly controlUrl: string | undefined;
  /** Ingest counters (received, samplesCommitted, …); all zero in bare-broker mode. */
  readonly counters: IngestCounters;
  /** A platform service account that may subscribe to every device topic. */
  readonly serviceCredentials: { username: string; password: string; clientId: string };
  /** Messages received by ingest and not yet acknowledged. */
  inflight(): number;
  /**
   * Registers `count` devices (sites of a battery, a solar inverter and a
   * meter, in that order, named like the simulator's: `site-0001-battery`…;
   * `types` narrows the mix) with fresh secrets, and makes ingest see them
   * at once. Calling it again provisions further sites after the ones
   * already made.
   */
  provisionDevices(count: number, types?: readonly DeviceType[]): DeviceCredential[];
  /** Calls `listener` after every committed telemetry write; returns a function that removes it. */
  onCommitted(listener: CommitListener): () => void;
  brokerCounters(): BrokerCounters;
  /** Stops everything in the order `vpp up` does (control, broker, ingest, store). */
  stop(): Promise<void>;
}

export async function startSystemUnderTest(options: SystemUnderTestOptions): Promise<SystemUnderTest> {
  const dataDir = join(options.workDir, 'platform');
  mkdirSync(dataDir, { recursive: true });
  const config = loadConfig({
    VPP_HOST: '127.0.0.1',
    VPP_HTTP_PORT: '0',
    VPP_MQTT_PORT: '0',
    VPP_DATA_DIR: dataDir,
    VPP_SIM_SITES: '0',
    ...options.env,
  });
  const logger: Logger = pino({ level: options.logLevel ?? 'warn' }, pino.destination(2));
  const platform: Platform = openPlatform(config, logger);
  const store = platform.store;

  // The commit point: a resolved writeTelemetry has committed (see store/README.md).
  const listeners = new Set<CommitListener>();
  const writeTelemetry = store.writeTelemetry.bind(store);
  store.writeTelemetry = async (points) => {
    const result = await writeTelemetry(points);
    if (listeners.size > 0) {
      const now = Date.now();
      for (const listener of listeners) listener(points, now);
    }
    return result;
  };

  const withIngest = options.ingest ?? true;
  let broker: Broker;
  let embedded: EmbeddedIngest | undefined;
  let ingest: IngestService | undefined;
  let control: ControlService | undefined;
  try {
    if (withIngest) {
      embedded = await startEmbeddedIngest(platform);
      broker = embedded.broker;
    } else {
      broker = await startBrokerService(platform);
    }
    ingest = embedded?.ingest;
    if (options.control) control = await startControlService(platform, broker.url);
  } catch (error) {
    await store.close();
    throw error;
  }

  let sitesMade = 0;
  let stopped = false;
  return {
    mqttUrl: broker.url,
    config,
    store,
    broker,
    ingest,
    controlUrl: control?.url,
    counters: ingest?.ingest.counters ?? new IngestCounters(),
    // Services connect with their fixed client id; in bare-broker mode ingest's is free.
    serviceCredentials: { username: 'vpp-ingest', password: platform.serviceSecrets['vpp-ingest'], clientId: 'vpp-ingest' },
    inflight: () => ingest?.ingest.liveness().inflight ?? 0,
    provisionDevices(count, types) {
      const perSite = types?.length ?? 3;
      const sites = Math.ceil(count / perSite);
      const plan = planFleet({ sites: sitesMade + sites, seed: 1, regions: config.sim.regions });
      const newSites = new Set(plan.sites.slice(sitesMade).map((site) => site.id));
      for (const site of plan.sites.slice(sitesMade)) store.upsertSite(site);
      const wanted = plan.devices
        .filter((device) => newSites.has(device.siteId) && (!types || types.includes(device.type)))
        .slice(0, count)
        .map(({ id, type, siteId }) => ({ id, type, siteId }));
      const made: DeviceCredential[] = issueCredentials(store, wanted, Date.now());
      sitesMade += sites;
      ingest?.ingest.directory.refresh();
      return made;
    },
    onCommitted(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    brokerCounters: () => broker.counters(),
    async stop() {
      if (stopped) return;
      stopped = true;
      await control?.stop();
      if (embedded) await embedded.stop();
      else await broker.close();
      await store.close();
    },
  };
}
