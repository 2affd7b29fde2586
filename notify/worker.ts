/**
 * The outbox worker: the only thing that moves notifications. It knows the
 * storage ports and the Notifier port, and no HTTP server, pipeline or
 * broker.
 *
 * Each cycle:
 * 1. stores the outcomes of finished deliveries that could not be stored
 *    before (the store was unavailable);
 * 2. routes new transitions: `transitionsToRoute` → `routeEvent` →
 *    `routeTransitions`, which creates one delivery per integration;
 * 3. starts due deliveries (`dueDeliveries`), at most `concurrency` at once
 *    and never one already in flight; the store hands out only the first
 *    pending delivery of each (alert, integration), so each integration
 *    hears an alert's transitions one at a time and in order;
 * 4. sleeps until the earliest of pollMs, the next due time
 *    (`nextDueAtMs`) and the next re-send, or until `wake()`, or until a
 *    delivery finishes.
 *
 * A delivery that succeeds is marked delivered. One that fails is marked
 * failed with the next attempt from backoff.ts (Retry-After as a floor), or
 * dead when the attempts ran out or the receiver refused it for good: a
 * dead delivery is counted and logged at error, an operator must act. The
 * next transition of the same alert to the same integration then goes out.
 *
 * Fairness: one integration's in-flight deliveries never take every slot
 * (each other integration keeps at least one), so a receiver that hangs
 * until the timeout delays neither other integrations nor, beyond its own
 * slots, other alerts.
 *
 * Store errors are logged and counted, and the step is tried again at the
 * next cycle; they never stop the loop. An outcome that cannot be stored is
 * kept in memory and stored at the next cycle, and its delivery is not
 * handed out again meanwhile.
 *
 * Re-send: every resendIntervalMs (and at start), each notifier with
 * `resend` gets the open alerts routed to it. While its re-send is due or
 * running, no delivery to that integration starts, and it starts only when
 * none is in flight, so a re-send never overtakes a resolution.
 *
 * stop(): no new work; in-flight deliveries may finish for up to timeoutMs,
 * then are aborted. What was not marked delivered stays pending and is
 * delivered by the next run, so a receiver may see one transition twice
 * across a crash or stop, always with the same event id (at least once,
 * with a stable dedup key). One worker per store: two workers on one store
 * would both deliver the same deliveries.
 */
import type { Logger } from 'pino';
import type { Alert, AlertEvent } from '../protocol/index.ts';
import { StoreError, type AlertOutbox, type AlertStore, type Delivery } from '../store/index.ts';
import { deadlineSignal } from './abort.ts';
import { nextAttemptAtMs } from './backoff.ts';
import { describeError } from './http.ts';
import { routeAlert, routeEvent, type NotificationRoute } from './routing.ts';
import type { Clock, DeliveryOutcome, Notifier } from './types.ts';

export interface NotifierWorkerOptions {
  outbox: AlertOutbox;
  /** For the open alerts to re-send. */
  alerts: Pick<AlertStore, 'listOpenAlerts'>;
  notifiers: readonly Notifier[];
  routes?: readonly NotificationRoute[];
  clock: Clock;
  logger: Logger;
  /** Longest sleep between cycles (a transition stored by another process is seen within it). Default 250. */
  pollMs?: number;
  /** Attempts per delivery before it is dead. Default 12. */
  maxAttempts?: number;
  /** Exponential backoff: baseMs (default 1 s) doubling up to maxMs (default 5 min), with equal jitter. */
  backoff?: { baseMs?: number; maxMs?: number };
  random?: () => number;
  /** Longest a delivery or a re-send may take, and how long stop() waits for them. Default 10 s. */
  timeoutMs?: number;
  /** Default 60 s. */
  resendIntervalMs?: number;
  /** Deliveries in flight at once. Default 8. */
  concurrency?: number;
}

export interface IntegrationCounters {
  /** Transitions routed to the integration. */
  routed: number;
  delivered: number;
  /** Failed attempts, the ones that made a delivery dead included. */
  failedAttempts: number;
  dead: number;
  resends: number;
  resendFailures: number;
}

export interface NotifyCounters {
  integrations: Record<string, IntegrationCounters>;
  /** Store calls that failed (each retried at a later cycle). */
  storeErrors: number;
  inFlight: number;
}

/** The counters as flat `notify.<integration>.<counter>` numbers, for a service heartbeat. */
export function flattenNotifyCounters(counters: NotifyCounters): Record<string, number> {
  const flat: Record<string, number> = { 'notify.storeErrors': counters.storeErrors, 'notify.inFlight': counters.inFlight };
  for (const [integration, values] of Object.entries(counters.integrations)) {
    for (const [name, value] of Object.entries(values)) flat[`notify.${integration}.${name}`] = value;
  }
  return flat;
}

export interface NotifierWorker {
  /** A transition was stored in this process: look now rather than at the next poll. */
  wake(): void;
  counters(): NotifyCounters;
  stop(): Promise<void>;
}

export const DEFAULT_NOTIFY_SETTINGS = {
  pollMs: 250,
  maxAttempts: 12,
  baseMs: 1_000,
  maxMs: 5 * 60_000,
  timeoutMs: 10_000,
  resendIntervalMs: 60_000,
  concurrency: 8,
} as const;

/** Transitions routed per store call. */
const ROUTE_BATCH = 200;
/** Batches routed per cycle, so a huge backlog does not hold the event loop. */
const ROUTE_BATCHES_PER_CYCLE = 10;
/**
 * Due deliveries read per cycle beyond those in flight. The store hands them
 * out oldest first for all integrations together; reading well past the
 * free slots lets a cycle find work for other integrations behind a backlog
 * of one whose slots are all taken.
 */
const DUE_WINDOW_PER_SLOT = 32;
const STORE_WARN_EVERY_MS = 10_000;

type Mark =
  | { kind: 'delivered'; delivery: Delivery; atMs: number }
  | { kind: 'failed'; delivery: Delivery; atMs: number; error: string; nextAttemptAtMs: number | null };

export function startNotifier(options: NotifierWorkerOptions): NotifierWorker {
  const settings = {
    pollMs: options.pollMs ?? DEFAULT_NOTIFY_SETTINGS.pollMs,
    maxAttempts: options.maxAttempts ?? DEFAULT_NOTIFY_SETTINGS.maxAttempts,
    baseMs: options.backoff?.baseMs ?? DEFAULT_NOTIFY_SETTINGS.baseMs,
    maxMs: options.backoff?.maxMs ?? DEFAULT_NOTIFY_SETTINGS.maxMs,
    timeoutMs: options.timeoutMs ?? DEFAULT_NOTIFY_SETTINGS.timeoutMs,
    resendIntervalMs: options.resendIntervalMs ?? DEFAULT_NOTIFY_SETTINGS.resendIntervalMs,
    concurrency: options.concurrency ?? DEFAULT_NOTIFY_SETTINGS.concurrency,
  };
  for (const [name, value] of Object.entries(settings)) {
    if (!Number.isFinite(value) || value <= 0) throw new Error(`notify: ${name} must be positive, got ${value}`);
  }
  if (!Number.isInteger(settings.maxAttempts) || !Number.isInteger(settings.concurrency)) {
    throw new Error('notify: maxAttempts and concurrency must be integers');
  }
  const { outbox, alerts } = options;
  // The store takes integer milliseconds.
  const clock = (): number => Math.floor(options.clock());
  const routes = options.routes ?? [];
  const random = options.random ?? Math.random;
  const log = options.logger.child({ component: 'notify' });

  const notifiers = new Map<string, Notifier>();
  for (const notifier of options.notifiers) {
    if (notifiers.has(notifier.name)) throw new Error(`notify: two notifiers named ${notifier.name}`);
    notifiers.set(notifier.name, notifier);
  }
  const names = [...notifiers.keys()];
  for (const route of routes) {
    if (!notifiers.has(route.integration)) log.info({ integration: route.integration }, 'a route names an integration that is not configured; it is ignored');
  }
  /** Each other integration keeps at least one slot. */
  const perIntegrationCap = Math.max(1, settings.concurrency - (names.length - 1));

  const counters = new Map<string, IntegrationCounters>();
  const countersOf = (integration: string): IntegrationCounters => {
    let c = counters.get(integration);
    if (c === undefined) {
      c = { routed: 0, delivered: 0, failedAttempts: 0, dead: 0, resends: 0, resendFailures: 0 };
      counters.set(integration, c);
    }
    return c;
  };
  for (const name of names) countersOf(name);
  let storeErrors = 0;

  /** Deliveries started and not finished, by id. */
  const inFlight = new Map<number, { integration: string; done: Promise<void> }>();
  const inFlightByIntegration = new Map<string, number>();
  /** Outcomes not stored yet (the store failed), by delivery id: not handed out again meanwhile. */
  const unstored = new Map<number, Mark>();
  const resendDue = new Set<string>();
  const resending = new Map<string, Promise<void>>();
  const warnedUnconfigured = new Set<string>();
  let lastResendAtMs = Number.NEGATIVE_INFINITY;

  /** Aborted when stop() gives up waiting: in-flight deliveries and re-sends end now. */
  const stopAbort = new AbortController();
  let stopping = false;
  let stopped: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;

  // A store that is down fails every cycle: warn once per STORE_WARN_EVERY_MS, count every time.
  let lastStoreWarnAtMs = Number.NEGATIVE_INFINITY;
  const storeFailed = (error: unknown, what: string): void => {
    storeErrors += 1;
    const nowMs = Date.now();
    const level = nowMs - lastStoreWarnAtMs >= STORE_WARN_EVERY_MS ? 'warn' : 'debug';
    if (level === 'warn') lastStoreWarnAtMs = nowMs;
    log[level]({ err: error, storeErrors }, `notify: store failed ${what}; trying again at the next cycle`);
  };

  function runSoon(): void {
    if (stopping || immediate !== undefined) return;
    immediate = setImmediate(() => {
      immediate = undefined;
      cycle();
    });
  }

  function runIn(delayMs: number): void {
    if (stopping) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      cycle();
    }, delayMs);
  }

  function cycle(): void {
    if (stopping) return;
    const nowMs = clock();
    storeMarks();
    route(nowMs);
    if (nowMs - lastResendAtMs >= settings.resendIntervalMs) {
      lastResendAtMs = nowMs;
      for (const [name, notifier] of notifiers) if (notifier.resend !== undefined) resendDue.add(name);
    }
    startResends();
    dispatch(nowMs);
    runIn(sleepMs());
  }

  function sleepMs(): number {
    const nowMs = clock();
    let wakeAtMs = Math.min(nowMs + settings.pollMs, lastResendAtMs + settings.resendIntervalMs);
    let nextDue: number | null = null;
    try {
      nextDue = outbox.nextDueAtMs();
    } catch (error) {
      storeFailed(error, 'reading the next due time');
    }
    // A due time already past belongs to work in flight or waiting for a slot:
    // its completion wakes the loop, and the poll is the safety net.
    if (nextDue !== null && nextDue > nowMs) wakeAtMs = Math.min(wakeAtMs, nextDue);
    return Math.max(0, Math.min(settings.pollMs, wakeAtMs - nowMs));
  }

  function route(nowMs: number): void {
    try {
      for (let batch = 0; batch < ROUTE_BATCHES_PER_CYCLE; batch++) {
        const events = outbox.transitionsToRoute(nowMs, ROUTE_BATCH);
        if (events.length === 0) return;
        const routed = events.map((event) => ({ seq: event.transition.seq, integrations: routeEvent(event, routes, names) }));
        outbox.routeTransitions(routed, nowMs);
        for (const { integrations } of routed) for (const integration of integrations) countersOf(integration).routed += 1;
        if (events.length < ROUTE_BATCH) return;
      }
      runSoon(); // more backlog: go on after other callbacks had their turn
    } catch (error) {
      storeFailed(error, 'routing transitions');
    }
  }

  function dispatch(nowMs: number): void {
    const free = settings.concurrency - inFlight.size;
    if (free <= 0) return;
    let due: Delivery[];
    try {
      due = outbox.dueDeliveries(nowMs, inFlight.size + unstored.size + free * DUE_WINDOW_PER_SLOT);
    } catch (error) {
      storeFailed(error, 'reading due deliveries');
      return;
    }
    let started = 0;
    for (const delivery of due) {
      if (started >= free) break;
      if (inFlight.has(delivery.id) || unstored.has(delivery.id)) continue;
      const integration = delivery.integration;
      if (resendDue.has(integration) || resending.has(integration)) continue;
      if ((inFlightByIntegration.get(integration) ?? 0) >= perIntegrationCap) continue;
      const notifier = notifiers.get(integration);
      if (notifier === undefined) {
        notConfigured(delivery, nowMs);
        continue;
      }
      start(notifier, delivery);
      started += 1;
    }
  }

  /**
   * A delivery for an integration this process has no notifier for (its
   * configuration was removed since it was routed): a failed attempt, so it
   * waits with backoff for the configuration to come back and is dead,
   * counted and logged, if it never does.
   */
  function notConfigured(delivery: Delivery, nowMs: number): void {
    if (!warnedUnconfigured.has(delivery.integration)) {
      warnedUnconfigured.add(delivery.integration);
      log.warn({ integration: delivery.integration }, 'notify: deliveries wait for an integration that is not configured');
    }
    finishFailed(delivery, { ok: false, retryable: true, detail: `integration ${delivery.integration} is not configured` }, nowMs);
  }

  function start(notifier: Notifier, delivery: Delivery): void {
    const integration = delivery.integration;
    inFlightByIntegration.set(integration, (inFlightByIntegration.get(integration) ?? 0) + 1);
    const deadline = deadlineSignal(stopAbort.signal, settings.timeoutMs);
    const done = deliverSafely(notifier, delivery.event, deadline.signal).then((outcome) => {
      deadline.dispose();
      inFlight.delete(delivery.id);
      inFlightByIntegration.set(integration, (inFlightByIntegration.get(integration) ?? 1) - 1);
      finish(delivery, outcome);
      runSoon();
    });
    inFlight.set(delivery.id, { integration, done });
  }

  /** The notifier's outcome, or a retryable one when it throws or outlives its signal. */
  async function deliverSafely(notifier: Notifier, event: AlertEvent, signal: AbortSignal): Promise<DeliveryOutcome> {
    try {
      return await Promise.race([notifier.deliver(event, signal), whenAborted(signal)]);
    } catch (error) {
      return { ok: false, retryable: true, detail: `notifier failed: ${describeError(error)}` };
    }
  }

  function whenAborted(signal: AbortSignal): Promise<DeliveryOutcome> {
    return new Promise((resolve) => {
      const settle = () =>
        resolve({ ok: false, retryable: true, detail: stopAbort.signal.aborted ? 'aborted: stopping' : `timed out after ${settings.timeoutMs} ms` });
      if (signal.aborted) settle();
      else signal.addEventListener('abort', settle, { once: true });
    });
  }

  function finish(delivery: Delivery, outcome: DeliveryOutcome): void {
    const atMs = clock();
    if (outcome.ok) {
      applyMark({ kind: 'delivered', delivery, atMs });
      return;
    }
    // Cut short by stop(): not an attempt; it stays pending as it was for the next run.
    if (stopAbort.signal.aborted) return;
    finishFailed(delivery, outcome, atMs);
  }

  function finishFailed(delivery: Delivery, outcome: Extract<DeliveryOutcome, { ok: false }>, atMs: number): void {
    const next = outcome.retryable
      ? nextAttemptAtMs({
          attempts: delivery.attempts + 1,
          maxAttempts: settings.maxAttempts,
          nowMs: atMs,
          retryAfterMs: outcome.retryAfterMs,
          baseMs: settings.baseMs,
          maxMs: settings.maxMs,
          random,
        })
      : null;
    applyMark({ kind: 'failed', delivery, atMs, error: outcome.detail, nextAttemptAtMs: next });
  }

  /** Stores an outcome and counts it; keeps it for the next cycle when the store fails. */
  function applyMark(mark: Mark): boolean {
    const { delivery } = mark;
    try {
      if (mark.kind === 'delivered') outbox.markDelivered(delivery.id, mark.atMs);
      else outbox.markFailed(delivery.id, { atMs: mark.atMs, error: mark.error, nextAttemptAtMs: mark.nextAttemptAtMs });
    } catch (error) {
      if (error instanceof StoreError && error.code !== 'unavailable') {
        // Settled or pruned meanwhile (conflict, not-found), or refused for good
        // (invalid): trying again cannot help, and must not hold the delivery back.
        storeErrors += 1;
        unstored.delete(delivery.id);
        log.error({ err: error, deliveryId: delivery.id, integration: delivery.integration }, 'notify: the store refused the outcome of a delivery; dropped');
        return true;
      }
      storeFailed(error, `storing the outcome of delivery ${delivery.id}`);
      unstored.set(delivery.id, mark);
      return false;
    }
    unstored.delete(delivery.id);
    const c = countersOf(delivery.integration);
    const context = { deliveryId: delivery.id, integration: delivery.integration, eventId: delivery.event.eventId, attempts: delivery.attempts + 1 };
    if (mark.kind === 'delivered') {
      c.delivered += 1;
      log.debug(context, 'notify: delivered');
    } else if (mark.nextAttemptAtMs === null) {
      c.failedAttempts += 1;
      c.dead += 1;
      log.error({ ...context, error: mark.error }, 'notify: delivery is dead; the integration was not told of this transition');
    } else {
      c.failedAttempts += 1;
      log.warn({ ...context, error: mark.error, nextAttemptAtMs: mark.nextAttemptAtMs }, 'notify: delivery failed; will retry');
    }
    return true;
  }

  function storeMarks(): void {
    for (const mark of [...unstored.values()]) {
      if (!applyMark(mark)) return; // the store is still failing: next cycle
    }
  }

  function startResends(): void {
    for (const integration of [...resendDue]) {
      if ((inFlightByIntegration.get(integration) ?? 0) > 0 || resending.has(integration)) continue;
      const notifier = notifiers.get(integration);
      if (notifier?.resend === undefined) {
        resendDue.delete(integration);
        continue;
      }
      let open: Alert[];
      try {
        open = alerts.listOpenAlerts().filter((alert) => routeAlert(alert, routes, names).includes(integration));
      } catch (error) {
        storeFailed(error, 'listing open alerts to re-send');
        return;
      }
      resendDue.delete(integration);
      const deadline = deadlineSignal(stopAbort.signal, settings.timeoutMs);
      const c = countersOf(integration);
      const resend = notifier.resend.bind(notifier);
      const done = Promise.race([
        resend(open, deadline.signal),
        whenAborted(deadline.signal).then((outcome) => Promise.reject(new Error(outcome.ok ? '' : outcome.detail))),
      ])
        .then(
          () => {
            c.resends += 1;
          },
          (error: unknown) => {
            c.resendFailures += 1;
            log.warn({ err: error, integration, open: open.length }, 'notify: re-sending open alerts failed; trying again at the next interval');
          },
        )
        .finally(() => {
          deadline.dispose();
          resending.delete(integration);
          runSoon();
        });
      resending.set(integration, done);
    }
  }

  function snapshot(): NotifyCounters {
    const integrations: Record<string, IntegrationCounters> = {};
    for (const [name, c] of counters) integrations[name] = { ...c };
    return { integrations, storeErrors, inFlight: inFlight.size };
  }

  async function stop(): Promise<void> {
    stopping = true;
    if (timer !== undefined) clearTimeout(timer);
    if (immediate !== undefined) clearImmediate(immediate);
    timer = undefined;
    immediate = undefined;
    const pending = [...[...inFlight.values()].map((entry) => entry.done), ...resending.values()];
    if (pending.length > 0) {
      let grace: NodeJS.Timeout | undefined;
      const expired = new Promise<void>((resolve) => {
        grace = setTimeout(resolve, settings.timeoutMs);
      });
      await Promise.race([Promise.allSettled(pending), expired]);
      clearTimeout(grace);
      stopAbort.abort();
      await Promise.allSettled(pending);
    }
    stopAbort.abort();
    storeMarks();
    if (unstored.size > 0) log.warn({ deliveries: [...unstored.keys()] }, 'notify: outcomes not stored at stop; these deliveries will be sent again');
  }

  runSoon();
  return {
    wake: runSoon,
    counters: snapshot,
    stop() {
      stopped ??= stop();
      return stopped;
    },
  };
}
