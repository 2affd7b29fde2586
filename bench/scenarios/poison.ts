/**
 * Fleet safety under attack: the PUBACK latency of healthy devices while
 * one device sends poison as fast as the broker takes it, against the same
 * healthy load with no poison, in the same run.
 *
 * The platform runs in this process as `vpp up` wires it (broker tap,
 * ingest, SQLite). A healthy fleet (`devices=`, default 100) publishes QoS 1
 * telemetry at a fixed total rate (`rate=`, default 1,000 messages/s) from a
 * load process (load/poison-load.ts), which records each PUBACK's latency.
 * The poison device, in a second load process, keeps `window=` (default 100) QoS 1
 * publishes outstanding, as fast as they are acknowledged, with payloads
 * that each hit a bound. Phase one measures the healthy fleet alone; phase
 * two adds small poison (a seq beyond 2^53, telemetry adding metric names
 * past the per-device cap, a short non-JSON payload: the most messages per
 * second); phase three large poison (a status nested 50,000 deep, 100 KiB,
 * and a 200 KiB non-JSON payload: the most bytes per second); phase four
 * small and large alternately, which shows how the broker's read-when-done
 * backpressure slows such a device, and that device alone.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { numberArg } from '../harness/args.ts';
import { startSystemUnderTest, type DeviceCredential } from '../harness/platform.ts';
import type { Scenario } from '../harness/scenario.ts';
import { round } from '../harness/stats.ts';
import type { LoadRole, LoadSpec, PhaseReport } from '../load/poison-load.ts';

interface LoadProcess {
  child: ChildProcess;
  report(): Promise<PhaseReport>;
  stop(): Promise<void>;
}

/** Starts load/poison-load.ts in a process of its own. */
function startLoad(role: LoadRole, url: string, devices: readonly DeviceCredential[], options: Record<string, number>): LoadProcess {
  const spec: LoadSpec = { role, url, devices: [...devices], options };
  const child = fork(fileURLToPath(new URL('../load/poison-load.ts', import.meta.url)), [JSON.stringify(spec)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (): Promise<PhaseReport> => new Promise((resolve) => child.once('message', (m) => resolve(m as PhaseReport)));
  return {
    child,
    report() {
      const reply = next();
      child.send('report');
      return reply;
    },
    async stop() {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send('stop');
      await exited;
    },
  };
}

const scenario: Scenario = {
  name: 'poison',
  description: 'PUBACK latency of healthy devices while one device sends poison at full speed, against no poison',
  maxDurationMs: (args) => 60_000 + 4 * (3_000 + numberArg(args, 'seconds', 20) * 1_000),
  async run({ args, workDir, progress }) {
    const devices = numberArg(args, 'devices', 100);
    const rate = numberArg(args, 'rate', 1_000);
    const window = numberArg(args, 'window', 100);
    const seconds = numberArg(args, 'seconds', 20);
    const sut = await startSystemUnderTest({ workDir });
    const healthyDevices = sut.provisionDevices(devices, ['battery']);
    const poisonDevices = sut.provisionDevices(3, ['battery']);
    const healthy = startLoad('healthy', sut.mqttUrl, healthyDevices, { rate });
    const loads: LoadProcess[] = [healthy];
    try {
      const measure = async (label: string): Promise<PhaseReport> => {
        await new Promise((r) => setTimeout(r, 3_000));
        await healthy.report();
        progress(`${label}: measuring ${seconds} s`);
        await new Promise((r) => setTimeout(r, seconds * 1_000));
        return healthy.report();
      };
      const row = (name: string, r: PhaseReport, poisonDone?: PhaseReport) => ({
        phase: name,
        'healthy msgs/s acked': round(r.acked / seconds),
        'PUBACK p50 ms': round(r.p50, 1),
        'PUBACK p99 ms': round(r.p99, 1),
        'PUBACK max ms': round(r.max, 1),
        'poison msgs/s': poisonDone ? round(poisonDone.acked / seconds) : '',
        'poison MiB/s': poisonDone ? round(poisonDone.ackedBytes / seconds / 1_048_576, 1) : '',
      });
      const alone = await measure('healthy fleet alone');
      const rows = [row('healthy fleet alone', alone)];
      const targets = [];
      const rejectedBefore = sut.counters.rejectedTotal();
      const suppressedBefore = sut.counters.deadLettersSuppressed;
      for (const [i, role] of (['small-poison', 'large-poison', 'mixed-poison'] as const).entries()) {
        const poison = startLoad(role, sut.mqttUrl, [poisonDevices[i]!], { window });
        loads.push(poison);
        const attacked = await measure(`with ${role.replace('-', ' ')}`);
        // The poison's own figures cover the same measured seconds (after the same warm-up).
        const poisonDone = await poison.report();
        await poison.stop();
        loads.pop();
        rows.push(row(`with one device sending ${role.replace('-', ' ')}`, attacked, { ...poisonDone, acked: (poisonDone.acked * seconds) / (seconds + 3), ackedBytes: (poisonDone.ackedBytes * seconds) / (seconds + 3) }));
        targets.push({
          name: `healthy PUBACK p99 with ${role.replace('-', ' ')} / without`,
          target: '≤ 2×',
          measured: round(attacked.p99 / alone.p99, 2),
          unit: '×',
          met: attacked.p99 <= 2 * alone.p99,
        });
      }
      const rejected = sut.counters.rejectedTotal() - rejectedBefore;
      const suppressed = sut.counters.deadLettersSuppressed - suppressedBefore;
      return {
        parameters: { healthyDevices: devices, healthyRate: rate, poisonWindow: window, seconds },
        rows,
        targets,
        notes: [
          `every poison message was rejected and acknowledged: ${rejected.toLocaleString('en-US')} rejected, ${suppressed.toLocaleString('en-US')} of them only counted (the device's dead-letter budget was spent)`,
          "mixed poison: the broker reads a device's socket again only once the publishes of its last read are committed (read-when-done), so a read that ends inside a large packet waits a batch for the rest of it; such a device slows itself, not the others",
          'the platform runs in the benchmark process; each load runs in a process of its own',
        ],
      };
    } finally {
      for (const load of loads) await load.stop();
      await sut.stop();
    }
  },
};

export default scenario;
