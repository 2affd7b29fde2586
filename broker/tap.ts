/**
 * The in-process tap: how a consumer in the broker's own process (the ingest
 * pipeline) takes device publishes straight from the publish path, without a
 * network hop, and holds each device's acknowledgement until it has stored
 * the message.
 */
import type { Client } from 'aedes';
import { BrokerError } from './errors.ts';
import type { MutableBrokerCounters } from './counters.ts';
import type { TapFlowControl } from './tap-flow-control.ts';

export interface TappedPublish {
  deviceId: string;
  topic: string;
  channel: 'telemetry' | 'status';
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** True for the device's last will, published by the broker after an unclean disconnect. */
  isWill: boolean;
  /** Broker clock when the publish reached the tap, ms since the Unix epoch. */
  receivedAtMs: number;
}

/**
 * Consumer of device publishes.
 *
 * `onDevicePublish` is called for every authorized device publish on the
 * device's telemetry or status topic, before anything is acknowledged or
 * routed. The broker sends the PUBACK (QoS 1) or PUBREC (QoS 2) and routes
 * the message to subscribers only after `done()` is called, exactly once.
 * `done(err)` refuses the message: the connection is closed without an
 * acknowledgement, so the device retransmits after reconnecting. A throw
 * from `onDevicePublish` counts as `done(err)`.
 *
 * Backpressure: while too many of a device's publishes (or of all devices'
 * publishes) wait for `done`, the broker stops reading that device's socket
 * (see tap-flow-control.ts), so a slow consumer slows the publishers down
 * instead of filling the broker's memory.
 *
 * Wills (`isWill`): the connection is already gone and nobody can
 * retransmit, so the will is routed to subscribers after `done`, even after
 * `done(err)` (counted in tapRefused); presence must not stay "online".
 */
export interface BrokerTap {
  onDevicePublish(message: TappedPublish, done: (err?: Error) => void): void;
}

/**
 * Settlements run after the tap's current run of code, in order, all in one
 * macrotask. A tap acknowledges a committed batch in one loop; settling
 * inline would re-enter aedes from inside that loop: reopening a read gate
 * or finishing a QoS 0 publish makes aedes read and parse the client's next
 * chunk at once, whose publishes reach the tap, fill the next batch and
 * commit it, still inside the first loop. Under load that recursion held
 * the event loop for many seconds. Deferred, each batch's acknowledgements
 * end their turn, and new reads start from a fresh one.
 *
 * Each broker has its own queue: one broker's settlements never run in
 * another's turn, so one broker's acknowledgements (and the reads they
 * restart) cannot hold up another's.
 */
export class Settlements {
  private pending: Array<() => void> = [];

  /** Runs `settlement` in a later macrotask, after those queued before it. */
  later(settlement: () => void): void {
    this.pending.push(settlement);
    if (this.pending.length === 1) setImmediate(this.run);
  }

  private readonly run = (): void => {
    const settlements = this.pending;
    this.pending = [];
    let failure: unknown;
    for (const settlement of settlements) {
      try {
        settlement();
      } catch (error) {
        // The others still settle; the first failure surfaces as it would have inline.
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  };
}

/** What a hand-over needs from its broker. */
export interface TapHandOver {
  tap: BrokerTap;
  flow: TapFlowControl;
  counters: MutableBrokerCounters;
  settlements: Settlements;
}

/**
 * Hands `message` to the tap and calls `settle` once, when the tap is done
 * (in a later macrotask than `done`, see Settlements).
 * `settle` receives the tap's refusal wrapped in a BrokerError. `client` is
 * the publishing connection, or null for a will (its connection is gone).
 */
export function handOverToTap(
  handOver: TapHandOver,
  message: TappedPublish,
  client: Client | null,
  settle: (err: BrokerError | null) => void,
): void {
  const { tap, flow, counters, settlements } = handOver;
  let settled = false;
  counters.tapHandedOver += 1;
  flow.acquire(client);
  const done = (err?: Error): void => {
    if (settled) return;
    settled = true;
    settlements.later(() => finish(err));
  };
  const finish = (err?: Error): void => {
    flow.release(client);
    if (err === undefined || err === null) {
      settle(null);
      return;
    }
    counters.tapRefused += 1;
    settle(new BrokerError('tap-refused', `tap refused publish on ${message.topic}: ${err.message}`, { cause: err }));
  };
  try {
    tap.onDevicePublish(message, done);
  } catch (err) {
    done(err instanceof Error ? err : new Error(String(err)));
  }
}
