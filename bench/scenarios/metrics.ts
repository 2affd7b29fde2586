/**
 * metrics: what serving `/metrics` costs ingest. The platform runs as `vpp
 * up` wires it, in this process (broker, ingest, dispatch, control, the
 * metrics server), with a simulated fleet (`sites=`, default 300, a sample
 * per device every `interval=` ms, default 1,000). Three phases of
 * `seconds=` (default 20) each, alternating: no scrape, a scrape every
 * second (15 times what a Prometheus at its default 15 s interval asks), no
 * scrape. Figures: the process's CPU per committed sample in each phase
 * (the peer is the phases without scrapes, in the same run), and the time
 * one scrape takes (p50, p99) with its size. Since every value is read from
 * counters the parts keep anyway, a scrape is the only cost: nothing is
 * added per message.
 */
import { performance } from 'node:perf_hooks';
import { numberArg } from '../harness/args.ts';
import type { Scenario } from '../harness/scenario.ts';
import { Histogram, round } from '../harness/stats.ts';
import { removeDir, startPlatform } from '../../test/support/platform.ts';

interface Phase {
  name: string;
  scrapeEveryMs: number | undefined;
}

const scenario: Scenario = {
  name: 'metrics',
  description: 'the cost of serving /metrics: process CPU per committed sample with and without a scrape every second',
  maxDurationMs: (args) => 90_000 + 3 * numberArg(args, 'seconds', 20) * 1_000,
  async run({ args, progress }) {
    const sites = numberArg(args, 'sites', 300);
    const intervalMs = numberArg(args, 'interval', 1_000);
    const seconds = numberArg(args, 'seconds', 20);
    const p = await startPlatform({ VPP_SIM_SITES: String(sites), VPP_SIM_INTERVAL_MS: String(intervalMs), VPP_DEVICE_INTERVAL_MS: String(intervalMs) });
    const counters = p.ingest.ingest.counters;
    const scrapes = new Histogram();
    let bytes = 0;
    const scrape = async (): Promise<void> => {
      const started = performance.now();
      const body = await (await fetch(p.metrics.url)).text();
      scrapes.record(performance.now() - started);
      bytes = body.length;
    };
    try {
      progress(`fleet of ${sites * 3} devices connecting`);
      await new Promise((resolve) => setTimeout(resolve, 5_000 + 2 * intervalMs));
      const phases: Phase[] = [
        { name: 'no scrape', scrapeEveryMs: undefined },
        { name: 'scrape every 1 s', scrapeEveryMs: 1_000 },
        { name: 'no scrape (again)', scrapeEveryMs: undefined },
      ];
      const rows = [];
      const perSample: Record<string, number> = {};
      for (const phase of phases) {
        progress(`${phase.name}: ${seconds} s`);
        const cpu0 = process.cpuUsage();
        const samples0 = counters.samplesCommitted;
        const timer = phase.scrapeEveryMs === undefined ? undefined : setInterval(() => void scrape(), phase.scrapeEveryMs);
        await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
        if (timer) clearInterval(timer);
        const cpu = process.cpuUsage(cpu0);
        const samples = counters.samplesCommitted - samples0;
        const cpuMs = (cpu.user + cpu.system) / 1_000;
        perSample[phase.name] = samples > 0 ? (cpuMs * 1_000) / samples : Number.NaN;
        rows.push({
          phase: phase.name,
          'samples committed/s': round(samples / seconds, 0),
          'process CPU %': round((cpuMs / (seconds * 1_000)) * 100, 1),
          'CPU µs per sample': round(perSample[phase.name]!, 1),
        });
      }
      for (let i = 0; i < 50; i++) await scrape();
      const { p50, p99 } = scrapes.summary();
      const without = (perSample['no scrape']! + perSample['no scrape (again)']!) / 2;
      const overheadPct = ((perSample['scrape every 1 s']! - without) / without) * 100;
      return {
        parameters: { sites, devices: sites * 3, intervalMs, seconds },
        rows,
        targets: [
          { name: 'CPU per sample, scraped every 1 s vs not', target: '≤ +25 %', measured: round(overheadPct, 1), unit: '%', met: overheadPct <= 25 },
          { name: 'one scrape p99', target: '≤ 50 ms', measured: round(p99, 2), unit: 'ms', met: p99 <= 50 },
        ],
        notes: [
          `one scrape: p50 ${round(p50, 2)} ms, p99 ${round(p99, 2)} ms, ${bytes} bytes (50 scrapes after the phases)`,
          'the platform runs in this process, so process CPU includes the scrapes’ client side (one fetch a second), which counts against /metrics',
          `at Prometheus' default 15 s interval a scrape costs ${round(p50 / 15_000 * 100, 3)} % of one core (p50 scrape time / interval)`,
        ],
      };
    } finally {
      await p.stop();
      removeDir(p.dataDir);
    }
  },
};

export default scenario;
