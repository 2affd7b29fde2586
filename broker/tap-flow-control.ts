/**
 * Bounds how many tapped publishes wait for the tap, per client and in
 * total, by shutting the read gate of a client's socket (see read-gate.ts).
 *
 * A client's reads stop when it has `maxPendingPerClient` publishes pending
 * or when `maxPendingTotal` are pending across all clients; they resume
 * once the client is down to half its window and the total is below the
 * total limit (after it was hit, once it is down to half). The halves keep
 * a busy connection from flapping between paused and reading on every
 * message. Packets of a chunk that was already read are still dispatched,
 * so the limits can be exceeded by one socket read per client.
 */
import type { Client } from 'aedes';
import type { MutableBrokerCounters } from './counters.ts';
import type { ReadGate } from './read-gate.ts';

export interface TapWindow {
  /** Publishes of one client waiting for the tap before its reads stop. Default 1000. */
  maxPendingPerClient?: number;
  /** Publishes of all clients waiting for the tap before every publishing client's reads stop. Default 20000. */
  maxPendingTotal?: number;
}

export const DEFAULT_TAP_WINDOW: Required<TapWindow> = { maxPendingPerClient: 1_000, maxPendingTotal: 20_000 };

export class TapFlowControl {
  private readonly pendingByClient = new Map<Client, number>();
  private readonly paused = new Set<Client>();
  private totalBlocked = false;
  private readonly perClientResumeAt: number;
  private readonly totalResumeAt: number;

  constructor(
    private readonly window: Required<TapWindow>,
    private readonly gateOf: (client: Client) => ReadGate | undefined,
    private readonly counters: MutableBrokerCounters,
  ) {
    this.perClientResumeAt = Math.floor(window.maxPendingPerClient / 2);
    this.totalResumeAt = Math.floor(window.maxPendingTotal / 2);
  }

  /** A publish of `client` (null for a will of a gone client) was handed to the tap. */
  acquire(client: Client | null): void {
    this.counters.tapPending += 1;
    if (this.counters.tapPending >= this.window.maxPendingTotal) this.totalBlocked = true;
    if (client === null || client.closed) return;
    const pending = (this.pendingByClient.get(client) ?? 0) + 1;
    this.pendingByClient.set(client, pending);
    if (!this.paused.has(client) && (pending >= this.window.maxPendingPerClient || this.totalBlocked)) {
      this.pause(client);
    }
  }

  /** The tap is done with a publish of `client`. */
  release(client: Client | null): void {
    this.counters.tapPending -= 1;
    let pending = 0;
    if (client !== null) {
      pending = (this.pendingByClient.get(client) ?? 1) - 1;
      if (pending <= 0) this.pendingByClient.delete(client);
      else this.pendingByClient.set(client, pending);
    }
    if (this.totalBlocked) {
      if (this.counters.tapPending > this.totalResumeAt) return;
      this.totalBlocked = false;
      for (const paused of [...this.paused]) {
        if ((this.pendingByClient.get(paused) ?? 0) <= this.perClientResumeAt) this.resume(paused);
      }
      return;
    }
    if (client !== null && this.paused.has(client) && pending <= this.perClientResumeAt) this.resume(client);
  }

  private pause(client: Client): void {
    const gate = this.gateOf(client);
    if (gate === undefined) return;
    gate.shut();
    this.paused.add(client);
    this.counters.tapReadPauses += 1;
    this.counters.tapPausedClients = this.paused.size;
  }

  private resume(client: Client): void {
    this.paused.delete(client);
    this.counters.tapPausedClients = this.paused.size;
    this.gateOf(client)?.open();
  }
}
