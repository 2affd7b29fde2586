/**
 * Notification and alert metrics for Prometheus, read at scrape time: the
 * worker's delivery counters, and from the alert store the open alerts and
 * the deliveries by state (two small GROUP BY queries per scrape). Labels
 * are bounded: integration (one of INTEGRATIONS), state, severity.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { ALERT_SEVERITIES } from '../protocol/index.ts';
import type { AlertOutbox, AlertStore } from '../store/index.ts';
import { INTEGRATIONS } from './routing.ts';
import type { IntegrationCounters, NotifyCounters } from './worker.ts';

/** Worker counters per integration: metric name (without `vpp_notify_`, `_total`) → counter, help. */
const PER_INTEGRATION: ReadonlyArray<readonly [string, keyof IntegrationCounters, string]> = [
  ['transitions_routed', 'routed', 'alert transitions routed to the integration'],
  ['delivered', 'delivered', 'deliveries the integration confirmed'],
  ['attempts_failed', 'failedAttempts', 'failed delivery attempts (the ones that made a delivery dead included)'],
  ['dead', 'dead', 'deliveries given up after their last attempt: the integration was not told'],
  ['resends', 'resends', 'open alerts re-sent (Alertmanager forgets alerts not re-sent)'],
  ['resend_failures', 'resendFailures', 're-sends that failed'],
];

const KNOWN_INTEGRATIONS: ReadonlySet<string> = new Set(INTEGRATIONS);

export interface NotifyMetricsSource {
  worker: { counters(): NotifyCounters };
  alerts: Pick<AlertStore, 'countOpenAlerts'> & Pick<AlertOutbox, 'countDeliveries'>;
}

/**
 * Registers the notifier's metrics and the alert store's open alerts and
 * deliveries on `registry`. When the store cannot be read, the store gauges
 * keep their last values (the store's failure shows in
 * vpp_notify_store_errors_total and the other parts' store errors). Once per
 * registry.
 */
export function registerNotifyMetrics(registry: Registry, source: NotifyMetricsSource): void {
  const { worker, alerts } = source;
  for (const [name, field, help] of PER_INTEGRATION) {
    new Counter({
      name: `vpp_notify_${name}_total`,
      help: `Notify: ${help}, by integration.`,
      labelNames: ['integration'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [integration, counters] of Object.entries(worker.counters().integrations)) {
          if (KNOWN_INTEGRATIONS.has(integration)) this.inc({ integration }, counters[field]);
        }
      },
    });
  }
  new Counter({
    name: 'vpp_notify_store_errors_total',
    help: 'Notify: store calls of the notifier that failed (each retried at a later cycle).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(worker.counters().storeErrors);
    },
  });
  new Gauge({
    name: 'vpp_notify_in_flight',
    help: 'Notify: deliveries in flight now.',
    registers: [registry],
    collect() {
      this.set(worker.counters().inFlight);
    },
  });
  new Gauge({
    name: 'vpp_notify_deliveries',
    help: 'Notify: deliveries kept in the outbox, by integration and state (pending, delivered, dead).',
    labelNames: ['integration', 'state'],
    registers: [registry],
    collect() {
      let counts: ReturnType<typeof alerts.countDeliveries>;
      try {
        counts = alerts.countDeliveries();
      } catch {
        return;
      }
      this.reset();
      for (const [integration, byState] of Object.entries(counts)) {
        if (!KNOWN_INTEGRATIONS.has(integration)) continue;
        for (const [state, n] of Object.entries(byState)) this.set({ integration, state }, n);
      }
    },
  });
  // The store counts open alerts by severity and by state separately, hence two gauges (each sums to the open alerts).
  const openAlerts = (): ReturnType<typeof alerts.countOpenAlerts> | undefined => {
    try {
      return alerts.countOpenAlerts();
    } catch {
      return undefined;
    }
  };
  new Gauge({
    name: 'vpp_alerts_open_by_severity',
    help: 'Alerts open (firing or acknowledged), by severity.',
    labelNames: ['severity'],
    registers: [registry],
    collect() {
      const open = openAlerts();
      if (!open) return;
      for (const severity of ALERT_SEVERITIES) this.set({ severity }, open.bySeverity[severity]);
    },
  });
  new Gauge({
    name: 'vpp_alerts_open_by_state',
    help: 'Alerts open, by state (firing, acknowledged).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const open = openAlerts();
      if (!open) return;
      for (const state of ['firing', 'acknowledged'] as const) this.set({ state }, open.byState[state]);
    },
  });
}
