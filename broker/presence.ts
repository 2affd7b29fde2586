/**
 * Presence events: the broker's own account of when each device connection
 * opened and closed, and why. Devices' retained status and last will say
 * what the firmware chose to say; these say what the broker saw, including
 * a takeover, a revocation, an expired secret and the broker's own restart
 * (`brokerStartedAtMs` tells which run an event belongs to).
 *
 * Contract, per device connection that aedes registered:
 * - exactly one `connected` event when aedes registers it ('client'), and
 * - exactly one event with `connected: false` when it ends, for whatever
 *   reason, and never before its `connected` event.
 * For one device id the events come in the order the connections came and
 * went: on a takeover the old connection's `taken-over` event comes before
 * the new connection's `connected`, so the last word is always the truth.
 * Services produce no events.
 *
 * Each event goes to the in-process listener synchronously, then to
 * `publish`, one device's events strictly one after the other (the next
 * waits for aedes to be done with the previous), so that a subscriber sees
 * them in order even through a persistence that answers out of order.
 */
import type { Client } from 'aedes';
import type { Logger } from 'pino';
import type { PresenceEvent } from '../protocol/index.ts';
import type { MutableBrokerCounters } from './counters.ts';

/** Called synchronously with every presence event; it must not throw (a throw is logged and ignored). */
export type PresenceListener = (event: PresenceEvent) => void;

export type DisconnectReason = Exclude<PresenceEvent['reason'], 'connected'>;

export interface PresenceDeps {
  brokerStartedAtMs: number;
  clock: () => number;
  listener: PresenceListener | undefined;
  /** Publishes one event through the broker and calls `done` when aedes is done with it. */
  publish(event: PresenceEvent, done: (err?: Error) => void): void;
  counters: MutableBrokerCounters;
  logger: Logger;
}

export class DevicePresence {
  /** The connection reported connected and not yet ended, by device id. */
  private readonly online = new Map<string, Client>();
  /** Connections reported connected, ended or not. */
  private readonly reported = new WeakSet<Client>();
  private readonly ended = new WeakSet<Client>();
  /** Why the broker itself is closing a connection, set just before it does. */
  private readonly closeReasons = new WeakMap<Client, DisconnectReason>();
  /** Authenticated connections about to take over an online device's session, by device id. */
  private readonly successors = new Map<string, Client>();
  /** Events of a device waiting for its previous event to be published, the one in flight first. */
  private readonly queues = new Map<string, PresenceEvent[]>();
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private closingAll = false;
  private publishing = true;

  constructor(private readonly deps: PresenceDeps) {}

  /**
   * A connection for `deviceId` passed authentication. If the device is
   * online, aedes will close that connection when it registers this one
   * (MQTT-3.1.4-2), so that close is a takeover.
   */
  authenticated(deviceId: string, client: Client): void {
    if (this.online.has(deviceId)) this.successors.set(deviceId, client);
  }

  /** The broker is about to close `client` for `reason`; the first reason given sticks. */
  closing(client: Client, reason: DisconnectReason): void {
    if (!this.closeReasons.has(client)) this.closeReasons.set(client, reason);
  }

  /** aedes registered a device connection ('client'). */
  opened(deviceId: string, client: Client): void {
    if (this.successors.get(deviceId) === client) this.successors.delete(deviceId);
    const previous = this.online.get(deviceId);
    // aedes normally ends the old connection first; this covers the order in
    // which it registers the new one while the old one is still closing.
    if (previous !== undefined && previous !== client) {
      this.end(deviceId, previous, this.closeReasons.get(previous) ?? 'taken-over');
    }
    this.online.set(deviceId, client);
    this.reported.add(client);
    this.emit(deviceId, true, 'connected');
  }

  /** aedes unregistered a device connection ('clientDisconnect'). */
  closed(deviceId: string, client: Client): void {
    this.end(deviceId, client, this.reasonFor(deviceId, client));
  }

  /** The broker is closing: ends every online device with 'broker-closing', and any that ends from now on too. */
  closeAll(): void {
    this.closingAll = true;
    for (const [deviceId, client] of [...this.online]) this.end(deviceId, client, 'broker-closing');
  }

  /**
   * Resolves once every event handed to `publish` so far is done with, or
   * after `timeoutMs` (a subscriber's full socket must not hold a close up).
   */
  async drained(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  /** From now on events go only to the listener (the broker can no longer publish). */
  stopPublishing(): void {
    this.publishing = false;
    this.queues.clear();
    this.inFlight = 0;
    this.notifyIdle();
  }

  private reasonFor(deviceId: string, client: Client): DisconnectReason {
    const reason = this.closeReasons.get(client);
    if (reason !== undefined) return reason;
    if (sentDisconnect(client)) return 'disconnected';
    if (this.closingAll) return 'broker-closing';
    const successor = this.successors.get(deviceId);
    if (successor !== undefined && successor !== client && !successor.closed) return 'taken-over';
    return 'connection-lost';
  }

  private end(deviceId: string, client: Client, reason: DisconnectReason): void {
    if (!this.reported.has(client) || this.ended.has(client)) return;
    this.ended.add(client);
    if (this.online.get(deviceId) === client) this.online.delete(deviceId);
    this.emit(deviceId, false, reason);
  }

  private emit(deviceId: string, connected: boolean, reason: PresenceEvent['reason']): void {
    const { counters, listener, logger } = this.deps;
    const event: PresenceEvent = {
      deviceId,
      connected,
      reason,
      ts: this.deps.clock(),
      brokerStartedAtMs: this.deps.brokerStartedAtMs,
    };
    counters.presenceEvents += 1;
    if (listener !== undefined) {
      try {
        listener(event);
      } catch (err) {
        logger.error({ err, deviceId, reason }, 'presence listener threw; event still published');
      }
    }
    if (!this.publishing) return;
    this.inFlight += 1;
    const queue = this.queues.get(deviceId);
    if (queue !== undefined) {
      queue.push(event);
      return;
    }
    this.queues.set(deviceId, [event]);
    this.publishNext(deviceId, event);
  }

  private publishNext(deviceId: string, event: PresenceEvent): void {
    this.deps.publish(event, (err) => {
      if (err) {
        this.deps.counters.presencePublishFailures += 1;
        this.deps.logger.warn({ err, deviceId, reason: event.reason }, 'presence event not published');
      }
      const queue = this.queues.get(deviceId);
      // Cleared by stopPublishing in the meantime.
      if (queue === undefined || queue[0] !== event) return;
      queue.shift();
      this.inFlight -= 1;
      const next = queue[0];
      if (next === undefined) {
        this.queues.delete(deviceId);
        if (this.inFlight === 0) this.notifyIdle();
      } else {
        this.publishNext(deviceId, next);
      }
    });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/**
 * True when the connection ended with a DISCONNECT packet. aedes records it
 * on the client as `_disconnected` (lib/handlers/index.js, MQTT-3.14.4-3),
 * the flag by which it also decides not to publish the will; it has no
 * public equivalent.
 */
function sentDisconnect(client: Client): boolean {
  return (client as Client & { _disconnected?: unknown })._disconnected === true;
}
