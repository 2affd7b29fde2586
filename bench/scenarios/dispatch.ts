/**
 * Fleet dispatch, as operators feel it: `vpp up`'s wiring in the benchmark
 * process (broker tap, ingest, the command sender and the control loop)
 * with the simulator (`sites=`, default 1,000, so 1,000 batteries; a sample
 * every `interval=` ms, default 2,000, in real time) and the fleet asked for
 * half of what it can hold for 15 minutes.
 *
 * Measured from the dispatch request: when 99 % of the first setpoints were
 * acknowledged (accepted by the batteries), when the measured power of the
 * dispatched batteries first reached 95 % of the target, and then, over
 * `seconds=` (default 60) of tracking, the error of each control-loop
 * sample (|measured − target| / target), mean and worst. The peer in the
 * same run is the loop period (`loop=`, default 2,000 ms): the times are
 * also given in loop cycles.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../cli/config.ts';
import { openPlatform, startDispatchService, startEmbeddedIngest, startSimService } from '../../cli/services.ts';
import { numberArg } from '../harness/args.ts';
import type { Scenario } from '../harness/scenario.ts';
import { Histogram, round } from '../harness/stats.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const scenario: Scenario = {
  name: 'dispatch',
  description: '1,000 simulated batteries dispatched as one plant: setpoints acknowledged, target reached, tracking error',
  maxDurationMs: (args) => 240_000 + numberArg(args, 'seconds', 60) * 1_000,
  async run({ args, workDir, progress }) {
    const sites = numberArg(args, 'sites', 1_000);
    const intervalMs = numberArg(args, 'interval', 2_000);
    const loopMs = numberArg(args, 'loop', 2_000);
    const seconds = numberArg(args, 'seconds', 60);
    const rulesFile = join(workDir, 'no-rules.json');
    writeFileSync(rulesFile, JSON.stringify({ rules: [] }));
    const config = loadConfig({
      VPP_HTTP_PORT: '0',
      VPP_MQTT_PORT: '0',
      VPP_DATA_DIR: join(workDir, 'platform'),
      VPP_SIM_SITES: String(sites),
      VPP_SIM_INTERVAL_MS: String(intervalMs),
      VPP_DEVICE_INTERVAL_MS: String(intervalMs),
      VPP_DISPATCH_LOOP_MS: String(loopMs),
      VPP_ALERT_RULES: rulesFile,
    });
    const platform = openPlatform(config, pino({ level: 'warn' }, pino.destination(2)));
    const embedded = await startEmbeddedIngest(platform);
    const dispatchService = await startDispatchService(platform, embedded.broker.url);
    const sim = await startSimService(platform, embedded.broker.url);
    const { store } = platform;
    try {
      // Ready when 99 % of the batteries have reported their figures (coverage alone counts a
      // device as soon as it connects, before its first sample).
      const batteries = store.listDevices().filter((d) => d.type === 'battery').map((d) => d.id);
      for (let i = 0; i < 240; i++) {
        const ready = store.listDeviceStates(batteries).filter((s) => s.presence === 'online' && s.metrics.maxDischargeW !== undefined).length;
        if (ready >= 0.99 * batteries.length) break;
        progress(`waiting for the batteries to report: ${ready}/${batteries.length}`);
        await sleep(500);
      }
      const { dispatcher } = dispatchService;
      const request = { target: { fleet: true } as const, powerW: 1e9, startAtMs: Date.now(), durationMs: 900_000, allowPartial: false };
      const capacity = dispatcher.plan(request);
      const targetW = Math.round(capacity.availableW / 2);
      const t0 = Date.now();
      const created = dispatcher.create({ ...request, powerW: targetW, startAtMs: t0 });
      if (!('dispatch' in created)) throw new Error(`the fleet cannot take half its capacity: ${created.infeasible.explanation}`);
      const id = created.dispatch.id;

      let acked99Ms: number | null = null;
      let reached95Ms: number | null = null;
      let firstCommands = 0;
      while (Date.now() - t0 < 120_000 && (acked99Ms === null || reached95Ms === null)) {
        await sleep(100);
        if (acked99Ms === null) {
          const commands = store.commands.listCommands({ dispatchId: id, limit: 1_000 }).commands;
          firstCommands = Math.max(firstCommands, commands.length);
          const acked = commands.filter((c) => c.state === 'accepted' || c.state === 'completed' || c.state === 'rejected').length;
          if (firstCommands > 0 && acked >= 0.99 * firstCommands) acked99Ms = Date.now() - t0;
          progress(`acknowledged ${acked}/${firstCommands}`);
        }
        if (reached95Ms === null) {
          const reached = store.dispatches.listDispatchSamples(id, { limit: 100_000 }).find((s) => s.measuredW >= 0.95 * targetW);
          if (reached) reached95Ms = reached.atMs - t0;
        }
      }
      progress(`tracking for ${seconds} s`);
      const trackFromMs = Date.now();
      await sleep(seconds * 1_000);
      const errors = new Histogram();
      for (const sample of store.dispatches.listDispatchSamples(id, { fromMs: trackFromMs, limit: 100_000 })) {
        errors.record((100 * Math.abs(sample.measuredW - targetW)) / targetW);
      }
      const errorSummary = errors.summary();
      const meanErrorPct = store.dispatches
        .listDispatchSamples(id, { fromMs: trackFromMs, limit: 100_000 })
        .reduce((sum, s, _, all) => sum + (100 * Math.abs(s.measuredW - targetW)) / targetW / all.length, 0);
      const view = store.dispatches.getDispatch(id)!;
      const counters = dispatchService.sender.counters();
      return {
        parameters: { batteries: sim.devices / 3, sites, telemetryIntervalMs: intervalMs, loopMs, trackingSeconds: seconds, targetW, availableW: capacity.availableW },
        rows: [
          { figure: 'request → 99 % of setpoints acknowledged', value: acked99Ms === null ? 'not reached' : `${round(acked99Ms)} ms`, 'loop cycles': acked99Ms === null ? '' : round(acked99Ms / loopMs, 1) },
          { figure: 'request → 95 % of target measured', value: reached95Ms === null ? 'not reached' : `${round(reached95Ms)} ms`, 'loop cycles': reached95Ms === null ? '' : round(reached95Ms / loopMs, 1) },
          { figure: `tracking error over ${seconds} s, mean`, value: `${round(meanErrorPct, 2)} %`, 'loop cycles': '' },
          { figure: `tracking error over ${seconds} s, worst`, value: `${round(errorSummary.max, 2)} %`, 'loop cycles': '' },
          { figure: 'setpoints sent (first + corrections)', value: `${counters.sent}`, 'loop cycles': '' },
        ],
        targets: [
          { name: '99 % of setpoints acknowledged', target: '≤ 10 s', measured: round((acked99Ms ?? Infinity) / 1000, 1), unit: 's', met: acked99Ms !== null && acked99Ms <= 10_000 },
          { name: '95 % of target reached', target: '≤ 30 s', measured: round((reached95Ms ?? Infinity) / 1000, 1), unit: 's', met: reached95Ms !== null && reached95Ms <= 30_000 },
          { name: 'mean tracking error after settling', target: '≤ 2 %', measured: round(meanErrorPct, 2), unit: '%', met: meanErrorPct <= 2 },
          { name: 'worst tracking error after settling', target: '≤ 5 %', measured: round(errorSummary.max, 2), unit: '%', met: errorSummary.max <= 5 },
        ],
        notes: [
          `dispatch ${view.state}, ${Object.keys(view.setpoints).length} batteries asked; the plan: ${capacity.explanation}`,
          'measured power is the sum of the dispatched batteries’ latest reported power, as the twins hold it when the loop runs',
          'the platform, the command sender, the loop and the 3,000 simulated devices share this process, as in `npm start`',
        ],
      };
    } finally {
      await sim.stop();
      await dispatchService.stop();
      await embedded.stop();
      await platform.store.close();
    }
  },
};

export default scenario;
