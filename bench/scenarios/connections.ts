/**
 * connections: as many simulated devices as the machine allows, each its own
 * MQTT connection sending one telemetry message every 10 s, against the
 * platform as `vpp up` wires it (broker, tap, ingest, SQLite).
 *
 * Two child processes: the system under test (bench/load/connections-sut.ts,
 * with --expose-gc, so its memory and CPU are the platform's alone) and the
 * device generator (bench/load/connections-generator.ts, a minimal MQTT
 * 3.1.1 client per device over node:net). Both are started through bash with
 * the open-file limit raised as far as the machine lets.
 *
 * Steps (5k, 10k, 20k, … up to the most the file-descriptor limits allow, or
 * `max=`): provision the step's devices, ramp connections with bounded
 * concurrency, warm up, then measure one window of steady state: connections
 * held (broker gauge and generator count), SUT memory after a forced GC
 * beyond a baseline taken before any device connected, SUT CPU, committed
 * telemetry per second against devices / interval, and publish-to-PUBACK
 * latency (the PUBACK follows the store's commit).
 *
 * Arguments: `max=<devices>`, `steps=5000,10000,...`, `measureMs=`,
 * `warmupMs=`, `intervalMs=`, `concurrency=`, `profile=<dir>` (CPU profiles
 * of both children, `node --cpu-prof`, written to that folder when they stop), and
 * `ingest=false` (the broker alone, no tap or pipeline: what the broker's
 * share of the per-connection cost is; telemetry is then acknowledged on
 * receipt and nothing is committed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IpcChild } from '../load/ipc-child.ts';
import { round } from '../harness/stats.ts';
import type { Row, Scenario, ScenarioContext, ScenarioResult, Target } from '../harness/scenario.ts';
import type {
  GeneratorCounters,
  GeneratorReply,
  GeneratorRequest,
  GeneratorSettings,
  SutReply,
  SutRequest,
} from '../load/connections-ipc.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const MAX_DURATION_MS = 240_000;
/** File descriptors a process keeps for itself beside the device sockets (store, listener, IPC, service clients, slack). */
const FD_RESERVE = 64;
/** Each source address serves at most this many connections (the ephemeral port range is ~28k). */
const CONNECTIONS_PER_SOURCE_ADDRESS = 20_000;
/** Without a file-descriptor ceiling, the scenario stops here unless told otherwise. */
const DEFAULT_MAX_DEVICES = 60_000;
const TARGET_CONNECTIONS = 20_000;
const TARGET_BYTES_PER_CONNECTION = 20 * 1024;
const TARGET_ON_TIME_FRACTION = 0.95;
const TARGET_P99_MS = 1_000;
/** Time kept back for tear-down. */
const TEARDOWN_RESERVE_MS = 20_000;

/** Starts a .ts file under Node through bash, with the open-file limit raised as far as allowed (hard limit otherwise). */
function spawnChild(file: string, nodeFlags: string[], args: string[], env: Record<string, string>): ChildProcess {
  const script = 'ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"';
  return spawn('bash', ['-c', script, 'bash', process.execPath, ...nodeFlags, '--import', 'tsx', file, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
}

function parseNumber(args: Readonly<Record<string, string>>, key: string, fallback: number): number {
  const raw = args[key];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${key} must be a positive number, got ${raw}`);
  return value;
}

function planSteps(maxDevices: number, requested: string | undefined): number[] {
  const base = requested
    ? requested.split(',').map((s) => Number(s.trim()))
    : [5_000, 10_000, 20_000, 40_000, 60_000];
  const steps = base.filter((n) => Number.isInteger(n) && n > 0 && n < maxDevices);
  steps.push(maxDevices);
  return [...new Set(steps)].sort((a, b) => a - b);
}

const kb = (bytes: number): number => round(bytes / 1024, 1);
const mb = (bytes: number): number => round(bytes / 2 ** 20, 1);

interface StepResult {
  devices: number;
  generatorConnected: number;
  brokerConnected: number;
  connectFailed: number;
  connectRatePerS: number;
  connectP99Ms: number;
  rssPerConnection: number;
  heapPerConnection: number;
  rssBytes: number;
  heapUsedBytes: number;
  cpuPct: number;
  committedPerS: number;
  expectedPerS: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  pubackTimeouts: number;
  connectionsLost: number;
  generatorLagMs: number;
}

const connections: Scenario = {
  name: 'connections',
  description: 'as many device connections as the machine allows, one telemetry message per device every 10 s',
  maxDurationMs: MAX_DURATION_MS,

  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const { args, progress, workDir } = context;
    const intervalMs = parseNumber(args, 'intervalMs', 10_000);
    const measureMs = parseNumber(args, 'measureMs', 2 * intervalMs);
    const warmupMs = parseNumber(args, 'warmupMs', 5_000);
    const concurrency = parseNumber(args, 'concurrency', 500);
    const requestedMax = args.max === undefined ? undefined : parseNumber(args, 'max', DEFAULT_MAX_DEVICES);
    const notes: string[] = [];
    const bareBroker = args.ingest === 'false';
    // Without the pipeline nothing is committed; the broker's receive count stands in.
    const landedKey = bareBroker ? 'publishesReceived' : 'samplesCommitted';
    if (bareBroker) notes.push('ingest=false: the broker alone, no tap or pipeline; "committed/s" counts publishes received by the broker, and the PUBACK follows receipt, not a commit');

    const profileFlags = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`] : [];
    let latestProgress: GeneratorCounters | undefined;
    const sut = new IpcChild<SutRequest, SutReply>(
      'sut',
      spawnChild(
        join(repoRoot, 'bench/load/connections-sut.ts'),
        ['--expose-gc', ...profileFlags],
        [],
        { VPP_BENCH_WORK_DIR: workDir, VPP_BENCH_SUT_INGEST: args.ingest === 'false' ? '0' : '1' },
      ),
      () => {},
    );
    let generator: IpcChild<GeneratorRequest, GeneratorReply> | undefined;
    const rows: Row[] = [];
    const steps: StepResult[] = [];
    try {
      progress('starting the platform');
      const started = await sut.request<'started'>({ type: 'start' }, 30_000);
      // Baseline: the platform up and idle, nothing connected (after a forced GC).
      const baseline = (await sut.request<'sampled'>({ type: 'sample', gc: true }, 30_000)).sample;

      const localAddressCount = Math.max(1, Math.ceil((requestedMax ?? DEFAULT_MAX_DEVICES) / CONNECTIONS_PER_SOURCE_ADDRESS));
      const settings: GeneratorSettings = {
        mqttHost: started.mqttHost,
        mqttPort: started.mqttPort,
        localAddresses: Array.from({ length: Math.max(localAddressCount, 8) }, (_, i) => `127.0.0.${i + 2}`),
        telemetryIntervalMs: intervalMs,
        keepAliveS: 60,
        connectTimeoutMs: 20_000,
        pubackTimeoutMs: 10_000,
      };
      generator = new IpcChild<GeneratorRequest, GeneratorReply>(
        'generator',
        spawnChild(join(repoRoot, 'bench/load/connections-generator.ts'), profileFlags, [JSON.stringify(settings)], {}),
        (message) => {
          if ((message as { type?: string }).type === 'progress') latestProgress = (message as { counters: GeneratorCounters }).counters;
        },
      );
      const generatorFdLimit = await readChildFdLimit(generator.child.pid);

      // The SUT holds one descriptor per connection, the generator one per device.
      const fdCeiling = Math.min(started.fdLimit, generatorFdLimit) - FD_RESERVE - baseline.openFds;
      const maxDevices = Math.floor(Math.min(requestedMax ?? DEFAULT_MAX_DEVICES, fdCeiling));
      if (fdCeiling < (requestedMax ?? DEFAULT_MAX_DEVICES)) {
        notes.push(
          `open-file limit: SUT ${started.fdLimit}, generator ${generatorFdLimit} (could not be raised further; the hard limit needs CAP_SYS_RESOURCE). ` +
            `One descriptor per connection caps this machine at ${maxDevices} devices per process.`,
        );
      }
      const plan = planSteps(maxDevices, args.steps);
      progress(`broker at ${started.mqttHost}:${started.mqttPort}; steps ${plan.join(', ')}`);

      let provisioned = 0;
      // Connects per second seen so far (a guess before the first ramp), to tell whether a step still fits the bound.
      let connectRatePerS = 250;
      const stepEstimateMs = (devices: number): number => warmupMs + measureMs + 5_000 + (devices / connectRatePerS) * 1_000;

      for (const target of plan) {
        if (Date.now() + stepEstimateMs(target - provisioned) > context.deadline - TEARDOWN_RESERVE_MS) {
          notes.push(`stopped before the ${target}-device step: not enough of the ${MAX_DURATION_MS / 1000} s bound left`);
          break;
        }
        const file = join(workDir, `devices-${target}.json`);
        const made = await sut.request<'provisioned'>({ type: 'provision', count: target - provisioned, file }, 60_000);
        provisioned += made.count;
        await generator.request<'loaded'>({ type: 'load', file }, 30_000);
        progress(`${target}: provisioned ${made.count} devices in ${made.durationMs} ms; connecting`);

        const rampTicker = setInterval(() => {
          if (latestProgress) progress(`${target}: ${latestProgress.connected} connected, ${latestProgress.connecting} connecting, ${latestProgress.connectFailures} failed`);
        }, 1_000);
        const ramped = await generator.request<'ramped'>({ type: 'ramp', target, concurrency }, 90_000).finally(() => clearInterval(rampTicker));
        const rampConnected = ramped.connected - (steps.at(-1)?.generatorConnected ?? 0);
        progress(`${target}: ${ramped.connected} connected (${ramped.failed} failed) in ${ramped.durationMs} ms; warming up`);
        await sleep(warmupMs);

        const before = (await sut.request<'sampled'>({ type: 'sample', gc: false }, 30_000)).sample;
        await generator.request<'measure-started'>({ type: 'measure-start' }, 10_000);
        const measureEnd = Date.now() + measureMs;
        const genBefore = latestProgress;
        while (Date.now() < measureEnd) {
          await sleep(Math.min(1_000, measureEnd - Date.now()));
          if (latestProgress && genBefore) {
            const s = (Date.now() - (measureEnd - measureMs)) / 1000;
            progress(
              `${target}: measuring, ${latestProgress.connected} held, ${Math.round((latestProgress.telemetryAcked - genBefore.telemetryAcked) / s)} acked/s (expected ${Math.round((latestProgress.connected * 1000) / intervalMs)})`,
            );
          }
        }
        const measured = await generator.request<'measured'>({ type: 'measure-end' }, 10_000);
        const after = (await sut.request<'sampled'>({ type: 'sample', gc: false }, 30_000)).sample;
        const settled = (await sut.request<'sampled'>({ type: 'sample', gc: true }, 60_000)).sample;

        const windowS = (after.atMs - before.atMs) / 1000;
        const held = Math.max(1, Math.min(measured.counters.connected, after.clientsConnected - baseline.clientsConnected));
        const cpuUs = after.cpuUserUs + after.cpuSystemUs - (before.cpuUserUs + before.cpuSystemUs);
        const step: StepResult = {
          devices: target,
          generatorConnected: measured.counters.connected,
          brokerConnected: after.clientsConnected - baseline.clientsConnected,
          connectFailed: ramped.failed,
          connectRatePerS: rampConnected / (ramped.durationMs / 1000),
          connectP99Ms: ramped.connectLatency.p99,
          rssPerConnection: (settled.rssBytes - baseline.rssBytes) / held,
          heapPerConnection: (settled.heapUsedBytes - baseline.heapUsedBytes) / held,
          rssBytes: settled.rssBytes,
          heapUsedBytes: settled.heapUsedBytes,
          cpuPct: (cpuUs / 1_000 / (windowS * 1000)) * 100,
          committedPerS: (after[landedKey] - before[landedKey]) / windowS,
          expectedPerS: (held * 1000) / intervalMs,
          latencyP50Ms: measured.latency.p50,
          latencyP99Ms: measured.latency.p99,
          pubackTimeouts: measured.counters.pubackTimeouts - (genBefore?.pubackTimeouts ?? 0),
          connectionsLost: measured.counters.connectionsLost,
          generatorLagMs: measured.counters.loopLagMaxMs,
        };
        steps.push(step);
        connectRatePerS = Math.max(50, step.connectRatePerS);
        rows.push(toRow(step));
        const perConnection = (key: 'heapTotalBytes' | 'externalBytes' | 'arrayBuffersBytes'): number => kb((settled[key] - baseline[key]) / held);
        notes.push(
          `${target} devices, per connection beyond baseline: RSS ${kb(step.rssPerConnection)} KB = V8 heap used ${kb(step.heapPerConnection)} KB ` +
            `(heap reserved ${perConnection('heapTotalBytes')} KB) + external ${perConnection('externalBytes')} KB (array buffers ${perConnection('arrayBuffersBytes')} KB) + native and allocator slack; ` +
            `${settled.openFds} open descriptors in the SUT`,
        );
        progress(
          `${target}: held ${held}, ${kb(step.rssPerConnection)} KB RSS/conn, CPU ${round(step.cpuPct)} %, ${round(step.committedPerS)}/${round(step.expectedPerS)} committed/s, p99 ${round(step.latencyP99Ms)} ms`,
        );
        if (ramped.failed > 0 || held < target * 0.99 || step.committedPerS < TARGET_ON_TIME_FRACTION * step.expectedPerS) {
          notes.push(`stopped after the ${target}-device step: connections failed or telemetry fell behind`);
          break;
        }
      }

      progress('stopping the generator and the platform');
      const stopped = await generator.request<'stopped'>({ type: 'stop' }, 30_000);
      await generator.end(5_000);
      const final = (await sut.request<'sampled'>({ type: 'sample', gc: false }, 30_000)).sample;
      await sut.request<'stopped'>({ type: 'stop' }, 30_000);
      await sut.end(5_000);

      if (final.rejected > 0) notes.push(`${final.rejected} messages were rejected by ingest (dead-lettered)`);
      if (final.writeFailures > 0) notes.push(`${final.writeFailures} store writes failed and were retried`);
      if (stopped.counters.slotsMissed > 0) notes.push(`the generator fell a whole interval behind ${stopped.counters.slotsMissed} times`);
      notes.push(
        `memory per connection = (SUT memory after a forced GC with N devices connected − the same before any device connected) / N; ` +
          `the target is checked on RSS (what the process costs the machine); V8 heap used is shown beside it. ` +
          `Baseline: RSS ${mb(baseline.rssBytes)} MB, heap used ${mb(baseline.heapUsedBytes)} MB.`,
      );
      notes.push(
        `latency = device PUBLISH to its PUBACK, which the platform sends after the store has committed; committed/s counts telemetry samples committed by the SUT during the window; ` +
          `CPU is the SUT process's user+system time over the window, in % of one core.`,
      );

      return {
        parameters: {
          intervalMs,
          measureMs,
          warmupMs,
          connectConcurrency: concurrency,
          keepAliveS: settings.keepAliveS,
          qos: 1,
          sourceAddresses: settings.localAddresses,
          steps: plan,
          fdLimitSut: started.fdLimit,
          fdLimitGenerator: generatorFdLimit,
          client: 'minimal MQTT 3.1.1 client over node:net (bench/load/connections-mqtt.ts), will + retained status + commands subscription per device',
          sut: 'broker + tap + ingest + SQLite in its own process (bench/harness/platform.ts), node --expose-gc',
        },
        rows,
        targets: buildTargets(steps),
        notes,
      };
    } finally {
      if (generator) {
        generator.child.kill('SIGKILL');
        await generator.exited;
      }
      if (sut.child.exitCode === null && sut.child.signalCode === null) {
        sut.child.kill('SIGKILL');
        await sut.exited;
      }
    }
  },
};

export default connections;

function toRow(step: StepResult): Row {
  return {
    devices: step.devices,
    'held (gen/broker)': `${step.generatorConnected}/${step.brokerConnected}`,
    'connects/s': round(step.connectRatePerS),
    'connect p99 ms': round(step.connectP99Ms),
    'RSS MB': mb(step.rssBytes),
    'RSS KB/conn': kb(step.rssPerConnection),
    'heap KB/conn': kb(step.heapPerConnection),
    'CPU %': round(step.cpuPct, 1),
    'committed/s': round(step.committedPerS),
    'expected/s': round(step.expectedPerS),
    'p50 ms': round(step.latencyP50Ms, 1),
    'p99 ms': round(step.latencyP99Ms, 1),
    'puback timeouts': step.pubackTimeouts,
    lost: step.connectionsLost,
  };
}

function buildTargets(steps: StepResult[]): Target[] {
  const last = steps.at(-1);
  const held = last ? Math.min(last.generatorConnected, last.brokerConnected) : 0;
  const worstOnTime = steps.length ? Math.min(...steps.map((s) => s.committedPerS / s.expectedPerS)) : 0;
  const worstP99 = steps.length ? Math.max(...steps.map((s) => s.latencyP99Ms)) : Number.NaN;
  const timeouts = steps.reduce((sum, s) => sum + s.pubackTimeouts, 0);
  return [
    { name: 'concurrent device connections held', target: `≥ ${TARGET_CONNECTIONS.toLocaleString('en-US')}`, measured: held, unit: 'connections', met: held >= TARGET_CONNECTIONS },
    {
      name: 'SUT RSS per connection beyond baseline (largest step)',
      target: `≤ ${TARGET_BYTES_PER_CONNECTION / 1024} KB`,
      measured: last ? kb(last.rssPerConnection) : Number.NaN,
      unit: 'KB',
      met: last !== undefined && last.rssPerConnection <= TARGET_BYTES_PER_CONNECTION,
    },
    {
      name: 'telemetry committed vs expected (worst step)',
      target: `≥ ${TARGET_ON_TIME_FRACTION * 100} %`,
      measured: round(worstOnTime * 100, 1),
      unit: '%',
      met: worstOnTime >= TARGET_ON_TIME_FRACTION,
    },
    {
      name: 'publish-to-commit p99 (worst step), no PUBACK timeouts',
      target: `≤ ${TARGET_P99_MS} ms, 0 timeouts`,
      measured: round(worstP99, 1),
      unit: `ms (${timeouts} timeouts)`,
      met: worstP99 <= TARGET_P99_MS && timeouts === 0,
    },
  ];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** The soft open-file limit of a running process (the generator's, raised by its bash wrapper before exec). */
async function readChildFdLimit(pid: number | undefined): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  // The wrapper execs node at once; read after it has (a bash ulimit applies to the same process either way).
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
      const soft = limits
        .split('\n')
        .find((l) => l.startsWith('Max open files'))
        ?.split(/\s{2,}/)[1];
      const comm = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
      if (soft !== undefined && comm !== 'bash') return soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
    } catch {
      // Not there yet.
    }
    await sleep(100);
  }
  return Number.POSITIVE_INFINITY;
}
