/**
 * fleet: what `npm start` itself sustains: `vpp up` (broker, ingest, control
 * and the simulator, all in one process) with a 1,000-site fleet (3,000
 * device connections), the simulator's time accelerated until the process
 * saturates. Offered = devices × speed / interval; the figures are what the
 * pipeline received and committed per second in the steady state, read from
 * ingest's heartbeat, and the process's CPU and memory.
 *
 * The shipped alert rules run, with one change: the state-of-charge rate
 * rule's tolerance is multiplied by the speed, since the simulated state of
 * charge moves `speed` times faster than wall-clock power allows (telemetry
 * is stamped with wall time), which would otherwise fire for every battery.
 *
 * Parameters: sites=1000 speed=30 seconds=20.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_ALERT_RULES_FILE } from '../../cli/config.ts';
import { freePort, spawnVpp, stopVpp } from '../../test/support/processes.ts';
import { processCpuMs, processRssMiB } from '../harness/process-stats.ts';
import type { Scenario } from '../harness/scenario.ts';

interface Heartbeat {
  service: string;
  ts: number;
  counters: Record<string, number>;
}

const scenario: Scenario = {
  name: 'fleet',
  description: '`vpp up` with a simulated 1,000-site fleet in one process: the telemetry rate it sustains',
  maxDurationMs: 120_000,
  async run({ args, workDir, progress }) {
    const sites = Number(args.sites ?? 1000);
    const speed = Number(args.speed ?? 30);
    const seconds = Number(args.seconds ?? 20);
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const rules = parseYaml(readFileSync(DEFAULT_ALERT_RULES_FILE, 'utf8')) as { rules: Array<{ rateOfChange?: { tolerance?: number } }> };
    for (const rule of rules.rules) if (rule.rateOfChange) rule.rateOfChange.tolerance = (rule.rateOfChange.tolerance ?? 1) * speed;
    const rulesFile = join(workDir, 'alert-rules.json');
    writeFileSync(rulesFile, JSON.stringify(rules));
    const vpp = spawnVpp('up', {
      VPP_ALERT_RULES: rulesFile,
      VPP_DATA_DIR: join(workDir, 'data'),
      VPP_MQTT_PORT: String(mqttPort),
      VPP_HTTP_PORT: String(httpPort),
      VPP_SIM_SITES: String(sites),
      VPP_SIM_SPEED: String(speed),
      VPP_LOG_LEVEL: 'warn',
    });
    try {
      const t0 = Date.now();
      await vpp.waitForOutput(/virtual power plant is up/, 90_000);
      const connectSeconds = (Date.now() - t0) / 1000;
      progress(`up with ${sites * 3} devices after ${connectSeconds.toFixed(0)} s`);
      // Ingest's heartbeat, as operators read it: GET /api/v1/services.
      const token = readFileSync(join(workDir, 'data', 'admin-token'), 'utf8').trim();
      let latest: Heartbeat | undefined;
      const poll = setInterval(() => {
        void fetch(`http://127.0.0.1:${httpPort}/api/v1/services`, { headers: { authorization: `Bearer ${token}` } })
          .then((response) => response.json() as Promise<{ services: Heartbeat[] }>)
          .then((body) => {
            latest = body.services.find((s) => s.service === 'ingest') ?? latest;
          })
          .catch(() => undefined);
      }, 500);
      const pid = vpp.child.pid!;
      // Warm-up: the first minute after start is rolled up from the store.
      await new Promise((r) => setTimeout(r, 10_000));
      const first = latest!;
      const cpu0 = (processCpuMs(pid) ?? Number.NaN) / 1000;
      const wall0 = Date.now();
      for (let s = 0; s < seconds; s++) {
        await new Promise((r) => setTimeout(r, 1_000));
        const rate = latest ? (latest.counters.received! - first.counters.received!) / Math.max(1, (latest.ts - first.ts) / 1000) : 0;
        progress(`steady state ${s + 1}/${seconds} s: ${Math.round(rate)} msgs/s received`);
      }
      const last = latest!;
      const cpu = ((processCpuMs(pid) ?? Number.NaN) / 1000 - cpu0) / ((Date.now() - wall0) / 1000);
      const rssMiB = processRssMiB(pid);
      clearInterval(poll);
      const dt = (last.ts - first.ts) / 1000;
      const received = (last.counters.received! - first.counters.received!) / dt;
      const committed = (last.counters.samplesCommitted! - first.counters.samplesCommitted!) / dt;
      const offered = (sites * 3 * speed) / 10;
      return {
        parameters: { sites, devices: sites * 3, speed, telemetryIntervalSimMs: 10_000, steadySeconds: dt },
        rows: [
          {
            devices: sites * 3,
            'offered msgs/s': offered,
            'received msgs/s': received,
            'committed samples/s': committed,
            'share of offered': `${Math.round((100 * received) / offered)}%`,
            'CPU (cores)': Math.round(cpu * 100) / 100,
            'RSS MiB': Math.round(rssMiB),
            'start-up s': Math.round(connectSeconds),
          },
        ],
        targets: [],
        notes: [
          'the simulator runs in the same process as the platform, so the figure is what one `npm start` process sustains, simulator included; the ingest scenario measures the platform alone',
          received < offered * 0.95 ? 'the process is saturated: the simulator could not send all it was asked to (CPU bound)' : 'the process kept up with everything offered; raise speed= to find its limit',
        ],
      };
    } finally {
      await stopVpp(vpp, 'SIGINT');
    }
  },
};

export default scenario;
