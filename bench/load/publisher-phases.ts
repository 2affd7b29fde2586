/**
 * Measured phases shared by the ingest and broker scenarios: run the load
 * generator for a warm-up, then a measured window, showing progress every
 * second, then pause it (bounded drain).
 */
import type { PublisherProcess, SinkProcess } from './publisher-process.ts';
import type { SinkWindow } from './publisher-sink.ts';

export interface LoadShape {
  qos: 0 | 1;
  /**
   * Total messages/s; 0 = as fast as the window allows; 'adaptive' = as
   * fast as the receiver takes them, with a bounded backlog (see
   * adaptRate): for loads without end-to-end flow control, where sending
   * as fast as possible would only fill socket buffers and broker queues.
   */
  ratePerSec: number | 'adaptive';
  /** Unfinished publishes per connection (QoS 1: without PUBACK). */
  window: number;
  warmupMs: number;
  measureMs: number;
}

export interface GeneratorWindow {
  /** Messages the generator sent per second during the measured window. */
  sentPerSec: number;
  /** Publishes a fixed rate asked for that the window did not allow, per second. */
  behindPerSec: number;
  /** CPU of the generator process, in cores (1 = one core busy). */
  cpuCores: number;
}

export interface SinkPhaseResult {
  generator: GeneratorWindow;
  sink: SinkWindow;
  receivedPerSec: number;
  /** CPU of the subscriber process, in cores. */
  sinkCpuCores: number;
  /** CPU of this process (where an in-process broker runs), in cores. */
  localCpuCores: number;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for generator stats taken after `afterMs`, bounded (the event loop here may be busy with the system under test). */
async function generatorStatsAfter(publisher: PublisherProcess, afterMs: number, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = publisher.latest();
    if (stats && stats.atMs >= afterMs) return stats;
    if (Date.now() > deadline) throw new Error('load generator sent no stats in time');
    await sleep(50);
  }
}

/**
 * Keeps the generator's rate where the receiver's is, plus what closes the
 * gap to a backlog (sent − delivered) of about half a second's worth: the
 * figure is then what the receiver sustains, not how much a queue absorbed.
 * Both counts are up to one stats interval old, so the backlog is rough.
 */
function adaptRate(publisher: PublisherProcess, delivered: () => number): { stop(): void } {
  const INTERVAL_MS = 250;
  let rate = 20_000;
  // Counted from here: messages of earlier phases do not make a backlog.
  const sentAtStart = publisher.latest()?.sent ?? 0;
  const deliveredAtStart = delivered();
  const history: Array<{ atMs: number; delivered: number }> = [];
  const timer = setInterval(() => {
    const latest = publisher.latest();
    if (latest === undefined) return;
    const sent = latest.sent - sentAtStart;
    const now = Date.now();
    const count = delivered() - deliveredAtStart;
    history.push({ atMs: now, delivered: count });
    while (history.length > 5) history.shift();
    const oldest = history[0]!;
    const deliveredRate = now > oldest.atMs ? ((count - oldest.delivered) * 1000) / (now - oldest.atMs) : rate;
    const targetBacklog = Math.max(10_000, deliveredRate / 2);
    const next = deliveredRate + (targetBacklog - (sent - count)) * 2;
    rate = Math.round(Math.min(rate * 1.5, Math.max(rate * 0.5, next, 1_000)));
    publisher.setRate(rate);
  }, INTERVAL_MS);
  return { stop: () => clearInterval(timer) };
}

/**
 * Runs `shape` and calls `tick` every second of the phase with the seconds
 * elapsed; `onMeasureStart` / `onMeasureEnd` bracket the measured window.
 * Returns the generator's figures over the measured window.
 */
export async function runPhase(
  publisher: PublisherProcess,
  shape: LoadShape,
  hooks: {
    tick(elapsedS: number, measuring: boolean): void;
    onMeasureStart(): Promise<void> | void;
    onMeasureEnd(): Promise<void> | void;
    /** Messages the receiver has taken so far (needed for an adaptive rate). */
    delivered?: () => number;
  },
): Promise<GeneratorWindow> {
  const adaptive = shape.ratePerSec === 'adaptive';
  if (adaptive && hooks.delivered === undefined) throw new Error('an adaptive rate needs a delivered count');
  publisher.run({ qos: shape.qos, ratePerSec: adaptive ? 20_000 : (shape.ratePerSec as number), window: shape.window });
  const controller = adaptive ? adaptRate(publisher, hooks.delivered!) : undefined;
  try {
    return await measure(publisher, shape, hooks);
  } finally {
    controller?.stop();
    await publisher.pause();
  }
}

async function measure(publisher: PublisherProcess, shape: LoadShape, hooks: Parameters<typeof runPhase>[2]): Promise<GeneratorWindow> {
  const started = Date.now();
  let second = 0;
  while (Date.now() - started < shape.warmupMs) {
    await sleep(Math.min(1_000, shape.warmupMs - (Date.now() - started)));
    hooks.tick(++second, false);
  }
  const before = await generatorStatsAfter(publisher, Date.now() - 300);
  await hooks.onMeasureStart();
  const measureStarted = Date.now();
  while (Date.now() - measureStarted < shape.measureMs) {
    await sleep(Math.min(1_000, shape.measureMs - (Date.now() - measureStarted)));
    hooks.tick(++second, true);
  }
  await hooks.onMeasureEnd();
  const after = await generatorStatsAfter(publisher, Date.now() - 100);
  const seconds = (after.atMs - before.atMs) / 1000;
  return {
    sentPerSec: (after.sent - before.sent) / seconds,
    behindPerSec: (after.behind - before.behind) / seconds,
    cpuCores: (after.cpuMs - before.cpuMs) / 1000 / seconds,
  };
}

/** A phase whose figure is what the bare subscriber receives. */
export async function runSinkPhase(
  publisher: PublisherProcess,
  sink: SinkProcess,
  shape: LoadShape,
  progress: (message: string) => void,
  label: string,
): Promise<SinkPhaseResult> {
  let lastReceived = sink.latest()?.received ?? 0;
  let sinkCpuStart = 0;
  let localCpuStart = process.cpuUsage();
  let localStartMs = 0;
  let window: SinkWindow | undefined;
  let sinkCpuEnd = 0;
  let localCpuCores = 0;
  const generator = await runPhase(publisher, shape, {
    tick(elapsedS, measuring) {
      const received = sink.latest()?.received ?? 0;
      const sent = publisher.latest()?.sent ?? 0;
      progress(`${label}: ${elapsedS} s ${measuring ? 'measuring' : 'warm-up'}, received ${Math.round(received - lastReceived).toLocaleString('en-US')}/s, sent ${sent.toLocaleString('en-US')}`);
      lastReceived = received;
    },
    delivered: () => sink.latest()?.received ?? 0,
    async onMeasureStart() {
      await sink.reset();
      sinkCpuStart = sink.latest()?.cpuMs ?? 0;
      localCpuStart = process.cpuUsage();
      localStartMs = Date.now();
    },
    async onMeasureEnd() {
      window = await sink.snapshot();
      sinkCpuEnd = sink.latest()?.cpuMs ?? 0;
      const cpu = process.cpuUsage(localCpuStart);
      localCpuCores = (cpu.user + cpu.system) / 1000 / (Date.now() - localStartMs);
    },
  });
  const seconds = (window!.atMs - window!.sinceMs) / 1000;
  // Let the broker's backlog to the subscriber drain before the next phase.
  await waitForQuiet(sink, 15_000);
  return {
    generator,
    sink: window!,
    receivedPerSec: window!.received / seconds,
    sinkCpuCores: (sinkCpuEnd - sinkCpuStart) / 1000 / seconds,
    localCpuCores,
  };
}

/** Waits until the subscriber's count stops growing (a backlog in the broker has drained), bounded. */
export async function waitForQuiet(sink: SinkProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < deadline) {
    await sleep(1_100);
    const received = sink.latest()?.received ?? 0;
    if (received === last) return;
    last = received;
  }
}
