/**
 * broker: the platform's MQTT broker (aedes with the project's
 * authentication and authorization, no tap) against Mosquitto (the Debian
 * package, configured not to drop: max_queued_messages 0,
 * max_inflight_messages 0), under the same load generator and the same bare
 * subscriber, in the same run. Figures: messages/s the subscriber receives
 * and latency (receive time − the payload's ts), at QoS 0 and QoS 1; the
 * target is the platform's throughput as a fraction of Mosquitto's.
 *
 * Neither broker has end-to-end flow control from subscriber to publisher,
 * so the generator's rate follows what the subscriber receives (with about
 * half a second of backlog) rather than filling the broker's queues.
 */
import { findMosquitto, startMosquitto } from '../harness/mosquitto.ts';
import { startSystemUnderTest } from '../harness/platform.ts';
import type { Row, Scenario, ScenarioContext, ScenarioResult, Target } from '../harness/scenario.ts';
import { round } from '../harness/stats.ts';
import type { PublisherDevice } from '../load/publisher.ts';
import { startPublisherProcess, startSinkProcess } from '../load/publisher-process.ts';
import { runSinkPhase, type SinkPhaseResult } from '../load/publisher-phases.ts';
import { numberArg, qosArg } from '../harness/args.ts';
import { processCpuMs } from '../harness/process-stats.ts';

const TARGET_RATIO = 0.9;
const TELEMETRY_FILTER = 'vpp/v1/devices/+/telemetry';

interface Parameters {
  publishers: number;
  window: number;
  warmupMs: number;
  measureMs: number;
  qos: Array<0 | 1>;
}

function parameters(args: Readonly<Record<string, string>>): Parameters {
  const num = (name: string, fallback: number) => numberArg(args, name, fallback);
  const qos = qosArg(args);
  return { publishers: num('publishers', 200), window: num('window', 100), warmupMs: num('warmup', 4) * 1000, measureMs: num('measure', 12) * 1000, qos };
}

interface BrokerUnderTest {
  name: string;
  url: string;
  devices: PublisherDevice[];
  subscriber: { username?: string; password?: string; clientId?: string };
  /** CPU of the broker in cores over a phase: in this process for aedes, from /proc for Mosquitto. */
  cpuCores(phase: SinkPhaseResult, startMs: number, startCpuMs: number | undefined): number | undefined;
  cpuNowMs(): number | undefined;
}

async function measureBroker(target: BrokerUnderTest, p: Parameters, context: ScenarioContext): Promise<Map<0 | 1, { phase: SinkPhaseResult; cpu: number | undefined }>> {
  const results = new Map<0 | 1, { phase: SinkPhaseResult; cpu: number | undefined }>();
  const publisher = startPublisherProcess();
  const sink = startSinkProcess();
  try {
    const connected = await publisher.connect({ url: target.url, devices: target.devices, announceStatus: true });
    if (connected.failed > 0) throw new Error(`${target.name}: ${connected.failed} devices could not connect: ${connected.firstError}`);
    for (const qos of p.qos) {
      await sink.connect({ url: target.url, qos, filter: TELEMETRY_FILTER, ...target.subscriber });
      const startMs = Date.now();
      const startCpu = target.cpuNowMs();
      const phase = await runSinkPhase(
        publisher,
        sink,
        { qos, ratePerSec: 'adaptive', window: p.window, warmupMs: p.warmupMs, measureMs: p.measureMs },
        context.progress,
        `${target.name} QoS ${qos}`,
      );
      results.set(qos, { phase, cpu: target.cpuCores(phase, startMs, startCpu) });
    }
  } finally {
    await publisher.stop();
    await sink.stop();
  }
  return results;
}

async function runBroker(context: ScenarioContext): Promise<ScenarioResult> {
  const p = parameters(context.args);
  const rows: Row[] = [];
  const notes: string[] = [];
  const measured = new Map<string, Map<0 | 1, { phase: SinkPhaseResult; cpu: number | undefined }>>();

  // (a) The platform's broker: aedes with the registry's credentials and the ACL, no tap.
  {
    const sut = await startSystemUnderTest({ workDir: `${context.workDir}/platform`, ingest: false });
    try {
      const devices = sut.provisionDevices(p.publishers);
      measured.set(
        'platform (aedes)',
        await measureBroker(
          {
            name: 'platform (aedes)',
            url: sut.mqttUrl,
            devices,
            subscriber: sut.serviceCredentials,
            // The broker runs in this process: its CPU is what this process used.
            cpuCores: (phase) => phase.localCpuCores,
            cpuNowMs: () => undefined,
          },
          p,
          context,
        ),
      );
    } finally {
      await sut.stop();
    }
  }

  // (b) Mosquitto, anonymous, same devices by id.
  const binary = findMosquitto();
  if (binary === undefined) {
    notes.push('Mosquitto is not installed (scripts/install-deps.sh installs it): the comparison was not measured.');
  } else {
    const mosquitto = await startMosquitto({ workDir: context.workDir, binary });
    try {
      const devices = Array.from({ length: p.publishers }, (_, i) => ({ id: `bench-device-${i + 1}`, type: (['battery', 'solar', 'meter'] as const)[i % 3]! }));
      measured.set(
        'mosquitto',
        await measureBroker(
          {
            name: 'mosquitto',
            url: mosquitto.url,
            devices,
            subscriber: {},
            cpuNowMs: () => processCpuMs(mosquitto.pid),
            cpuCores: (phase, startMs, startCpu) => {
              // Over the whole phase (warm-up included): Mosquitto's CPU cannot be read at the window's edges from here.
              const now = processCpuMs(mosquitto.pid);
              return now === undefined || startCpu === undefined ? undefined : (now - startCpu) / (Date.now() - startMs);
            },
          },
          p,
          context,
        ),
      );
    } finally {
      await mosquitto.stop();
    }
  }

  for (const [name, byQos] of measured) {
    for (const [qos, { phase, cpu }] of byQos) {
      const reference = measured.get('mosquitto')?.get(qos);
      rows.push({
        broker: name,
        qos,
        'msgs/s': round(phase.receivedPerSec),
        'p50 ms': phase.sink.latencyMs.p50,
        'p90 ms': phase.sink.latencyMs.p90,
        'p99 ms': phase.sink.latencyMs.p99,
        'sent/s': round(phase.generator.sentPerSec),
        'broker CPU': cpu === undefined ? '' : round(cpu, 2),
        'gen CPU': round(phase.generator.cpuCores, 2),
        'sub CPU': round(phase.sinkCpuCores, 2),
        'vs mosquitto': reference ? `${round(phase.receivedPerSec / reference.phase.receivedPerSec, 2)}×` : '',
      });
    }
  }

  const targets: Target[] = [];
  for (const qos of p.qos) {
    const platform = measured.get('platform (aedes)')?.get(qos);
    const mosquitto = measured.get('mosquitto')?.get(qos);
    if (!platform || !mosquitto) continue;
    const ratio = platform.phase.receivedPerSec / mosquitto.phase.receivedPerSec;
    targets.push({ name: `broker throughput QoS ${qos} / Mosquitto`, target: `≥ ${TARGET_RATIO}×`, measured: round(ratio, 2), unit: '×', met: ratio >= TARGET_RATIO });
  }
  if (!measured.has('mosquitto')) {
    targets.push({ name: 'broker throughput / Mosquitto', target: `≥ ${TARGET_RATIO}×`, measured: Number.NaN, unit: '(not measured)', met: false });
  }
  notes.push(
    'Both brokers are measured with the same bare subscriber, which is often the limit: one Node process receiving and acknowledging; broker CPU shows how much headroom each broker had.',
    'Mosquitto CPU is over the whole phase including warm-up; the platform broker runs in the benchmark process and its CPU is over the measured window.',
  );
  return { parameters: { ...p, mosquitto: binary ?? 'not installed', subscriberFilter: TELEMETRY_FILTER }, rows, targets, notes };
}

const scenario: Scenario = {
  name: 'broker',
  description: 'the platform broker (aedes + auth/ACL) vs Mosquitto, same publishers and bare subscriber',
  maxDurationMs: 180_000,
  run: runBroker,
};

export default scenario;
