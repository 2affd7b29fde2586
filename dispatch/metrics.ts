/**
 * Commands and dispatch metrics for Prometheus, read at scrape time: the
 * command sender's counters, the commands by state (one GROUP BY on the
 * commands' state index) and how closely the running dispatches track
 * their targets (the latest sample of each active dispatch: a handful of
 * rows). Labels are bounded: command state and ack outcome only, never a
 * device, site or dispatch id.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { COMMAND_STATES } from '../protocol/index.ts';
import type { CommandStore, DispatchSample, DispatchStore } from '../store/types.ts';
import type { CommandSenderCounters } from './command-sender.ts';

/** Unlabelled sender counters: metric name (without `vpp_dispatch_`, `_total`) → counter, help. */
const COUNTERS: ReadonlyArray<readonly [string, keyof CommandSenderCounters, string]> = [
  ['commands_sent', 'sent', 'commands published to devices for the first time'],
  ['commands_resent', 'resent', 'commands published again (no ack yet)'],
  ['commands_held_offline', 'heldForOfflineDevice', 'due commands held back because their device was not connected (per cycle and command)'],
  ['publish_failures', 'publishFailures', 'command publishes the broker did not acknowledge'],
  ['commands_expired', 'expired', 'commands that expired before completing'],
  ['commands_completed_without_ack', 'completedWithoutAck', 'commands completed without an ack of their own'],
  ['commands_failed', 'failed', 'commands given up as failed'],
  ['store_errors', 'storeErrors', 'store calls of the command sender that failed (each retried)'],
];

/** Acks by outcome: the `outcome` label of vpp_dispatch_acks_total. */
const ACK_OUTCOMES = {
  applied: 'acksApplied',
  ignored: 'acksIgnored',
  invalid: 'acksInvalid',
} as const satisfies Record<string, keyof CommandSenderCounters>;

export interface DispatchMetricsSource {
  sender: { counters(): CommandSenderCounters };
  commands: Pick<CommandStore, 'countCommands'>;
  dispatches: Pick<DispatchStore, 'runningDispatches' | 'listDispatchSamples'>;
  clock: () => number;
}

interface Tracking {
  active: number;
  targetW: number;
  measuredW: number;
  errorW: number;
}

/** The latest sample of each active dispatch, summed: target, measured and absolute tracking error. */
function readTracking(dispatches: DispatchMetricsSource['dispatches'], nowMs: number): Tracking {
  const tracking: Tracking = { active: 0, targetW: 0, measuredW: 0, errorW: 0 };
  for (const dispatch of dispatches.runningDispatches(nowMs)) {
    if (dispatch.state !== 'active') continue;
    tracking.active += 1;
    if (dispatch.lastLoopAtMs === null) continue;
    const [sample]: DispatchSample[] = dispatches.listDispatchSamples(dispatch.id, { fromMs: dispatch.lastLoopAtMs, limit: 1 });
    if (!sample) continue;
    tracking.targetW += sample.targetW;
    tracking.measuredW += sample.measuredW;
    tracking.errorW += Math.abs(sample.targetW - sample.measuredW);
  }
  return tracking;
}

/**
 * Registers the sender's counters, the commands by state and the tracking
 * of active dispatches on `registry`. When the store cannot be read, the
 * store gauges keep their last values. Once per registry.
 */
export function registerDispatchMetrics(registry: Registry, source: DispatchMetricsSource): void {
  const { sender, commands, dispatches, clock } = source;
  for (const [name, field, help] of COUNTERS) {
    new Counter({
      name: `vpp_dispatch_${name}_total`,
      help: `Dispatch: ${help}.`,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(sender.counters()[field]);
      },
    });
  }
  new Counter({
    name: 'vpp_dispatch_acks_total',
    help: 'Dispatch: acks from devices, by outcome (applied; ignored: repeats, for final or unknown commands; invalid).',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const counters = sender.counters();
      this.reset();
      for (const [outcome, field] of Object.entries(ACK_OUTCOMES)) this.inc({ outcome }, counters[field]);
    },
  });
  new Gauge({
    name: 'vpp_commands',
    help: 'Commands kept in the store, by state.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      let counts: ReturnType<typeof commands.countCommands>;
      try {
        counts = commands.countCommands();
      } catch {
        return;
      }
      for (const state of COMMAND_STATES) this.set({ state }, counts[state] ?? 0);
    },
  });
  // Each tracking gauge reads on its own: a few rows per active dispatch, and dispatches are few.
  const readOnce = (): Tracking | undefined => {
    try {
      return readTracking(dispatches, clock());
    } catch {
      return undefined;
    }
  };
  const gauges: ReadonlyArray<readonly [string, keyof Tracking, string]> = [
    ['dispatches_active', 'active', 'Dispatches running now'],
    ['dispatch_target_watts', 'targetW', 'Dispatch: sum of the targets of the active dispatches at their last control loop run (positive: to the grid)'],
    ['dispatch_measured_watts', 'measuredW', 'Dispatch: sum of the power measured for the active dispatches at their last control loop run'],
    ['dispatch_tracking_error_watts', 'errorW', 'Dispatch: sum over the active dispatches of |target − measured| at their last control loop run'],
  ];
  for (const [name, field, help] of gauges) {
    new Gauge({
      name: `vpp_${name}`,
      help: `${help}.`,
      registers: [registry],
      collect() {
        const value = readOnce();
        if (value) this.set(value[field]);
      },
    });
  }
}
