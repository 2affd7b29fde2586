/**
 * `vpp <command>`: `up` runs the whole platform with a simulated fleet in one
 * process; `broker`, `ingest`, `control` and `sim` run one part each.
 * Configuration comes from VPP_* environment variables (`vpp help` lists them).
 */
import { pino, type Logger } from 'pino';
import { appendFaultCommand } from '../devices-sim/index.ts';
import { CONFIG_VARIABLES, ConfigError, loadConfig, type Config } from './config.ts';
import {
  openPlatform,
  startBrokerService,
  startControlService,
  startDispatchService,
  startEmbeddedIngest,
  startIngestService,
  startMetricsService,
  startSimService,
  faultFilePath,
  type Platform,
  type Service,
} from './services.ts';

const COMMANDS = ['up', 'broker', 'ingest', 'control', 'dispatch', 'sim', 'fault', 'help'] as const;
type Command = (typeof COMMANDS)[number];

function usage(): string {
  const rows = CONFIG_VARIABLES.map((v) => `  ${v.name.padEnd(28)} ${v.description} (default: ${v.fallback})`);
  return [
    'usage: vpp <command>',
    '',
    '  up        broker, ingest, control API and a simulated fleet, in one process',
    '  broker    the MQTT broker',
    '  ingest    the ingest pipeline, reading from the broker over MQTT',
    '  control   the control API, on the broker and the store',
    '  dispatch  the command sender: commands to devices, their acks',
    '  sim       a simulated fleet, provisioned in the store, connecting to the broker',
    '  fault     fault add <kind>:<target>[@seconds[-end]] | fault clear <kind>:<target>:',
    '            inject a fault into the running simulated fleet, or clear one',
    '            (kinds: overheat, silent, disconnect, frozen, soc-jump)',
    '',
    'environment:',
    ...rows,
  ].join('\n');
}

/**
 * Runs `start`, then stops what it returned on SIGINT/SIGTERM, in reverse
 * order. Stopping is bounded: each part gives up on its own bound (ingest
 * after VPP_SHUTDOWN_TIMEOUT_MS); should the whole still hang, the process
 * exits after that bound plus a margin, with nothing acknowledged that was
 * not committed.
 */
async function runUntilSignal(logger: Logger, config: Readonly<Config>, start: () => Promise<Service[]>): Promise<void> {
  const services = await start();
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn('second signal: exiting without a clean shutdown');
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      setTimeout(() => {
        logger.error({ shutdownTimeoutMs: config.shutdownTimeoutMs }, 'shutdown did not finish in time; exiting');
        process.exit(1);
      }, config.shutdownTimeoutMs + 5_000).unref();
      void (async () => {
        for (const service of [...services].reverse()) {
          try {
            await service.stop();
          } catch (error) {
            logger.error({ err: error }, 'error during shutdown');
          }
        }
        resolve();
      })();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  logger.info('stopped');
}

function storeService(platform: Platform): Service {
  return { stop: () => platform.store.close() };
}

async function up(config: Readonly<Config>, logger: Logger): Promise<void> {
  await runUntilSignal(logger, config, async () => {
    const platform = openPlatform(config, logger);
    const services: Service[] = [storeService(platform)];
    try {
      const metrics = await startMetricsService(platform);
      services.push(metrics);
      const embedded = await startEmbeddedIngest(platform);
      const { broker } = embedded;
      services.push(embedded);
      const dispatch = await startDispatchService(platform, broker.url);
      services.push(dispatch);
      const control = await startControlService(platform, broker.url, {
        onAlertTransition: () => embedded.ingest.notifier.wake(),
        onCommandCreated: () => dispatch.sender.wake(),
        dispatcher: dispatch.dispatcher,
      });
      services.push(control);
      let simDevices = 0;
      if (config.sim.sites > 0) {
        const sim = await startSimService(platform, broker.url);
        simDevices = sim.devices;
        services.push(sim);
      }
      process.stdout.write(
        [
          '',
          'virtual power plant is up',
          `  MQTT broker   ${broker.url}${broker.tlsUrl ? `   (over TLS: ${broker.tlsUrl})` : ''}`,
          `  dashboard     ${control.url}/   (sign in with the admin token below)`,
          `  control API   ${control.url}/api/v1   (OpenAPI: ${control.url}/docs)`,
          `  metrics       ${metrics.url}   (Prometheus; no authentication)`,
          `  admin token   ${platform.adminToken}`,
          `  simulated     ${config.sim.sites} sites, ${simDevices} devices, speed ×${config.sim.speed}`,
          `  data          ${config.dataDir}`,
          '  try: curl -H "Authorization: Bearer $TOKEN" ' + `${control.url}/api/v1/fleet`,
          'Ctrl-C stops it cleanly.',
          '',
        ].join('\n'),
      );
      return services;
    } catch (error) {
      for (const service of services.reverse()) await service.stop().catch(() => undefined);
      throw error;
    }
  });
}

async function single(command: Exclude<Command, 'up' | 'help' | 'fault'>, config: Readonly<Config>, logger: Logger): Promise<void> {
  await runUntilSignal(logger, config, async () => {
    const platform = openPlatform(config, logger);
    const services: Service[] = [storeService(platform)];
    try {
      const metrics = await startMetricsService(platform);
      services.push(metrics);
      logger.info({ url: metrics.url }, 'metrics listening');
      switch (command) {
        case 'broker': {
          const broker = await startBrokerService(platform);
          logger.info({ url: broker.url, tlsUrl: broker.tlsUrl }, 'broker listening');
          services.push({ stop: () => broker.close() });
          break;
        }
        case 'ingest':
          services.push(await startIngestService(platform, config.mqttUrl));
          logger.info({ mqtt: config.mqttUrl }, 'ingest running');
          break;
        case 'control': {
          const control = await startControlService(platform, config.mqttUrl);
          logger.info({ url: control.url, adminTokenFile: config.adminToken === undefined ? `${config.dataDir}/admin-token` : 'VPP_ADMIN_TOKEN' }, 'control API listening');
          services.push(control);
          break;
        }
        case 'dispatch': {
          services.push(await startDispatchService(platform, config.mqttUrl));
          logger.info({ mqtt: config.mqttUrl }, 'dispatch running');
          break;
        }
        case 'sim': {
          const sim = await startSimService(platform, config.mqttUrl);
          logger.info({ devices: sim.devices, mqtt: config.mqttUrl }, 'simulated fleet connected');
          services.push(sim);
          break;
        }
      }
    } catch (error) {
      // What started (the metrics server, a connection) would keep the process alive.
      for (const service of services.reverse()) await service.stop().catch(() => undefined);
      throw error;
    }
    return services;
  });
}

/**
 * `vpp fault add|clear …`: appends the command to the fault file of the
 * data folder, which the running simulator (`vpp up` or `vpp sim` on the
 * same data folder) reads within a second.
 */
async function fault(args: readonly string[], config: Readonly<Config>): Promise<number> {
  const line = args.join(' ');
  try {
    await appendFaultCommand(faultFilePath(config), line);
  } catch (error) {
    process.stderr.write(`vpp fault: ${(error as Error).message}\nusage: vpp fault add <kind>:<target>[@seconds[-end]] | vpp fault clear <kind>:<target>\n`);
    return 2;
  }
  process.stdout.write(`${line}: sent to the simulator (${faultFilePath(config)})\n`);
  return 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const command = (argv[0] ?? 'help') as Command;
  if (!COMMANDS.includes(command) || command === 'help') {
    process.stdout.write(`${usage()}\n`);
    return command === 'help' ? 0 : 2;
  }
  let config: Readonly<Config>;
  try {
    config = loadConfig(process.env, { ingestSource: command === 'up' ? 'tap' : 'mqtt' });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`vpp: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (command === 'fault') return fault(argv.slice(1), config);
  const logger = pino({ level: config.logLevel, base: { service: command } });
  try {
    if (command === 'up') await up(config, logger);
    else await single(command, config, logger);
    return 0;
  } catch (error) {
    logger.fatal({ err: error }, 'vpp failed to start');
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
