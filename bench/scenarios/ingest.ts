/**
 * ingest: device telemetry over MQTT through the platform's broker and its
 * tap into the ingest pipeline and durably into the embedded SQLite store,
 * wired as `vpp up` wires it. A load generator in its own process (MQTT.js,
 * one connection per device, realistic battery/solar/meter payloads) sends
 * as fast as a device-like window of unacknowledged messages allows, at
 * QoS 0 and QoS 1; then at a fixed rate, for latency.
 *
 * Figures: committed messages/s and data points/s (metric values), and
 * publish-to-commit latency (commit time − the payload's ts, both on this
 * machine's clock, for every committed sample of the measured window).
 *
 * The ceiling: the same load to the same broker without tap or pipeline,
 * received by a bare MQTT.js subscriber in its own process that only counts.
 * Efficiency = platform rate / ceiling, per QoS.
 */
import { Histogram, round } from '../harness/stats.ts';
import { startSystemUnderTest, type SystemUnderTest } from '../harness/platform.ts';
import type { Row, Scenario, ScenarioContext, ScenarioResult, Target } from '../harness/scenario.ts';
import { startPublisherProcess, startSinkProcess, type PublisherProcess } from '../load/publisher-process.ts';
import { runPhase, runSinkPhase, sleep, type LoadShape } from '../load/publisher-phases.ts';
import { numberArg, qosArg } from '../harness/args.ts';

const TARGET_MSGS_PER_SEC = 50_000;
const TARGET_P99_MS = 250;
const TARGET_EFFICIENCY = 0.7;

interface Parameters {
  publishers: number;
  window: number;
  warmupMs: number;
  measureMs: number;
  /** Fixed rate of the latency phase, messages/s. */
  latencyRate: number;
  qos: Array<0 | 1>;
  /** `VPP_INGEST_*` overrides, as `env.VPP_INGEST_BATCH_MESSAGES=2000`. */
  env: Record<string, string>;
  /** Extra node flags for the generator, e.g. a CPU profile (`generatorArgv=--cpu-prof`). */
  generatorArgv: string[];
}

function parameters(args: Readonly<Record<string, string>>): Parameters {
  const num = (name: string, fallback: number) => numberArg(args, name, fallback);
  const qos = qosArg(args);
  return {
    publishers: num('publishers', 200),
    window: num('window', 100),
    warmupMs: num('warmup', 5) * 1000,
    measureMs: num('measure', 15) * 1000,
    latencyRate: num('latencyRate', TARGET_MSGS_PER_SEC),
    qos,
    env: Object.fromEntries(Object.entries(args).filter(([k]) => k.startsWith('env.')).map(([k, v]) => [k.slice(4), v])),
    generatorArgv: args.generatorArgv ? args.generatorArgv.split(' ') : [],
  };
}

interface PlatformFigures {
  msgsPerSec: number;
  pointsPerSec: number;
  latency: ReturnType<Histogram['summary']>;
  sentPerSec: number;
  behindPerSec: number;
  sutCpuCores: number;
  generatorCpuCores: number;
}

/** One platform phase: committed rate and publish-to-commit latency over the measured window. */
async function measurePlatform(sut: SystemUnderTest, publisher: PublisherProcess, shape: LoadShape, context: ScenarioContext, label: string): Promise<PlatformFigures> {
  const latency = new Histogram();
  let measuring = false;
  let committed = 0;
  let points = 0;
  const off = sut.onCommitted((batch, committedAtMs) => {
    if (!measuring) return;
    committed += batch.length;
    for (const point of batch) {
      latency.record(committedAtMs - point.ts);
      for (const _ in point.metrics) points++;
    }
  });
  let windowStart = 0;
  let windowMs = 0;
  let cpuStart = process.cpuUsage();
  let sutCpuCores = 0;
  let lastCommitted = sut.counters.samplesCommitted;
  try {
    const generator = await runPhase(publisher, shape, {
      tick(elapsedS, isMeasuring) {
        const now = sut.counters.samplesCommitted;
        context.progress(
          `${label}: ${elapsedS} s ${isMeasuring ? 'measuring' : 'warm-up'}, committed ${(now - lastCommitted).toLocaleString('en-US')}/s, in flight ${sut.inflight().toLocaleString('en-US')}`,
        );
        lastCommitted = now;
      },
      delivered: () => sut.counters.received - sut.inflight(),
      onMeasureStart() {
        measuring = true;
        windowStart = Date.now();
        cpuStart = process.cpuUsage();
      },
      onMeasureEnd() {
        measuring = false;
        windowMs = Date.now() - windowStart;
        const cpu = process.cpuUsage(cpuStart);
        sutCpuCores = (cpu.user + cpu.system) / 1000 / windowMs;
      },
    });
    return {
      msgsPerSec: committed / (windowMs / 1000),
      pointsPerSec: points / (windowMs / 1000),
      latency: latency.summary(),
      sentPerSec: generator.sentPerSec,
      behindPerSec: generator.behindPerSec,
      sutCpuCores,
      generatorCpuCores: generator.cpuCores,
    };
  } finally {
    off();
  }
}

function describeLoad(shape: LoadShape): string {
  if (shape.ratePerSec === 'adaptive') return 'adaptive (max taken)';
  if (shape.ratePerSec === 0) return `max, window ${shape.window}`;
  return `${shape.ratePerSec.toLocaleString('en-US')}/s, window ${shape.window}`;
}

async function runIngest(context: ScenarioContext): Promise<ScenarioResult> {
  const p = parameters(context.args);
  const rows: Row[] = [];
  const notes: string[] = [];
  const ceiling = new Map<0 | 1, number>();
  const platform = new Map<0 | 1, PlatformFigures>();
  let latencyPhase: PlatformFigures | undefined;

  // (a) The ceiling: bare broker (same auth, no tap), bare subscriber.
  {
    const sut = await startSystemUnderTest({ workDir: `${context.workDir}/ceiling`, ingest: false });
    const publisher = startPublisherProcess(p.generatorArgv);
    const sink = startSinkProcess();
    try {
      const devices = sut.provisionDevices(p.publishers);
      const connected = await publisher.connect({ url: sut.mqttUrl, devices, announceStatus: true });
      if (connected.failed > 0) throw new Error(`ceiling: ${connected.failed} devices could not connect: ${connected.firstError}`);
      for (const qos of p.qos) {
        // A fresh subscription per QoS: a QoS 0 subscriber gets QoS 1 publishes at QoS 0.
        await sink.connect({ url: sut.mqttUrl, qos, filter: 'vpp/v1/devices/+/telemetry', ...sut.serviceCredentials });
        // The broker acknowledges at once without a tap, so nothing but the
        // rate controller keeps the generator from queueing in the broker.
        const result = await runSinkPhase(publisher, sink, { qos, ratePerSec: 'adaptive', window: p.window, warmupMs: p.warmupMs, measureMs: p.measureMs }, context.progress, `ceiling QoS ${qos}`);
        ceiling.set(qos, result.receivedPerSec);
        rows.push({
          configuration: 'ceiling: bare subscriber',
          qos,
          load: 'adaptive (max taken)',
          'msgs/s': round(result.receivedPerSec),
          'points/s': '',
          'p50 ms': result.sink.latencyMs.p50,
          'p90 ms': result.sink.latencyMs.p90,
          'p99 ms': result.sink.latencyMs.p99,
          'sent/s': round(result.generator.sentPerSec),
          'broker CPU': round(result.localCpuCores, 2),
          'gen CPU': round(result.generator.cpuCores, 2),
          'sub CPU': round(result.sinkCpuCores, 2),
        });
        if (result.generator.sentPerSec > result.receivedPerSec * 1.05) {
          notes.push(
            `ceiling QoS ${qos}: the generator sent ${round(result.generator.sentPerSec)}/s but the subscriber received ${round(result.receivedPerSec)}/s; the rest queued in the broker (the subscriber is the limit, with three processes on ${'two'} cores).`,
          );
        }
      }
    } finally {
      await publisher.stop();
      await sink.stop();
      await sut.stop();
    }
  }

  // (b) The platform: tap → pipeline → SQLite, as `vpp up`.
  {
    const sut = await startSystemUnderTest({ workDir: `${context.workDir}/platform`, env: p.env });
    const publisher = startPublisherProcess(p.generatorArgv);
    try {
      const devices = sut.provisionDevices(p.publishers);
      const connected = await publisher.connect({ url: sut.mqttUrl, devices, announceStatus: true });
      if (connected.failed > 0) throw new Error(`platform: ${connected.failed} devices could not connect: ${connected.firstError}`);
      const shapes: Array<{ label: string; shape: LoadShape; latency: boolean }> = [
        // QoS 1: every device keeps `window` messages without PUBACK, and the
        // PUBACK waits for the commit, so the load is closed-loop. QoS 0 has
        // no acknowledgement: the rate controller follows the commits.
        ...p.qos.map((qos) => ({
          label: `platform QoS ${qos}`,
          shape: { qos, ratePerSec: qos === 1 ? 0 : ('adaptive' as const), window: p.window, warmupMs: p.warmupMs, measureMs: p.measureMs },
          latency: false,
        })),
      ];
      if (p.latencyRate > 0) {
        shapes.push({
          label: `platform QoS 1 at ${p.latencyRate}/s`,
          shape: { qos: 1, ratePerSec: p.latencyRate, window: p.window, warmupMs: p.warmupMs, measureMs: p.measureMs },
          latency: true,
        });
      }
      for (const { label, shape, latency } of shapes) {
        if (Date.now() + shape.warmupMs + shape.measureMs + 20_000 > context.deadline) {
          notes.push(`${label}: skipped, not enough time left within the scenario's bound`);
          continue;
        }
        const figures = await measurePlatform(sut, publisher, shape, context, label);
        if (latency) latencyPhase = figures;
        else platform.set(shape.qos, figures);
        const ceilingRate = ceiling.get(shape.qos);
        rows.push({
          configuration: 'platform: tap → ingest → SQLite',
          qos: shape.qos,
          load: describeLoad(shape),
          'msgs/s': round(figures.msgsPerSec),
          'points/s': round(figures.pointsPerSec),
          'p50 ms': figures.latency.p50,
          'p90 ms': figures.latency.p90,
          'p99 ms': figures.latency.p99,
          'sent/s': round(figures.sentPerSec),
          'broker CPU': round(figures.sutCpuCores, 2),
          'gen CPU': round(figures.generatorCpuCores, 2),
          ...(ceilingRate && !latency ? { 'of ceiling': `${Math.round((figures.msgsPerSec / ceilingRate) * 100)}%` } : {}),
        });
        if (typeof shape.ratePerSec === 'number' && shape.ratePerSec > 0 && figures.behindPerSec > shape.ratePerSec * 0.01) {
          notes.push(`${label}: the generator fell behind the asked rate by ${round(figures.behindPerSec)}/s (windows full: the platform did not acknowledge fast enough).`);
        }
        // Let in-flight messages commit before the next phase.
        for (let i = 0; i < 50 && sut.inflight() > 0; i++) await sleep(100);
      }
      const rejected = sut.counters.rejectedTotal();
      if (rejected > 0) notes.push(`ingest rejected ${rejected} messages: ${JSON.stringify(Object.fromEntries(sut.counters.rejected))}`);
      notes.push(`broker tap read pauses (backpressure): ${sut.brokerCounters().tapReadPauses}; batches committed: ${sut.counters.batchesCommitted}`);
    } finally {
      await publisher.stop();
      await sut.stop();
    }
  }

  const targets: Target[] = [];
  const qos1 = platform.get(1);
  if (qos1) {
    targets.push({ name: 'ingest QoS 1 msgs/s (max)', target: `≥ ${TARGET_MSGS_PER_SEC.toLocaleString('en-US')}`, measured: round(qos1.msgsPerSec), unit: 'msgs/s', met: qos1.msgsPerSec >= TARGET_MSGS_PER_SEC });
  }
  if (latencyPhase) {
    const reached = latencyPhase.msgsPerSec >= p.latencyRate * 0.98;
    targets.push({
      name: `publish-to-commit p99, QoS 1 at ${p.latencyRate.toLocaleString('en-US')}/s`,
      target: `≤ ${TARGET_P99_MS} ms${reached ? '' : ' (and the rate sustained)'}`,
      measured: latencyPhase.latency.p99,
      unit: 'ms',
      met: latencyPhase.latency.p99 <= TARGET_P99_MS && reached,
    });
    if (!reached) notes.push(`latency phase sustained only ${round(latencyPhase.msgsPerSec)} of ${p.latencyRate} msgs/s asked`);
  }
  const ceiling1 = ceiling.get(1);
  if (qos1 && ceiling1) {
    const ratio = qos1.msgsPerSec / ceiling1;
    targets.push({ name: 'ingest QoS 1 / bare-subscriber ceiling', target: `≥ ${TARGET_EFFICIENCY * 100}%`, measured: round(ratio * 100), unit: '%', met: ratio >= TARGET_EFFICIENCY });
  }
  notes.push(
    'Latency under "max" load is set by the window (Little: in flight = rate × latency), so the latency target is checked at a fixed rate; points/s counts metric values (battery 6, solar 3, meter 3 per message).',
  );
  return {
    parameters: { ...p, devices: p.publishers, deviceMix: 'battery, solar, meter in turn', store: 'SQLite (WAL) in the work folder' },
    rows,
    targets,
    notes,
  };
}

const scenario: Scenario = {
  name: 'ingest',
  description: 'N MQTT publishers → broker tap → ingest pipeline → SQLite; vs a bare subscriber',
  maxDurationMs: 300_000,
  run: runIngest,
};

export default scenario;
