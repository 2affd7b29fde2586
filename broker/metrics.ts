/**
 * The broker's Prometheus metrics, read from its counters at scrape time
 * (collect callbacks): the hot path keeps incrementing plain numbers and
 * does nothing for metrics. Labels are bounded: refusal reasons only, never
 * a device id or an address.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BrokerCounters } from './counters.ts';

type CounterName = keyof BrokerCounters;

/** Connection refusals by reason: the `reason` label of vpp_broker_connections_refused_total. */
export const BROKER_REFUSAL_REASONS = {
  'missing-credentials': 'connectionsRefusedMissingCredentials',
  'unknown-device': 'connectionsRefusedUnknownDevice',
  'bad-secret': 'connectionsRefusedBadSecret',
  'client-id-rejected': 'connectionsRefusedClientIdRejected',
  'will-not-authorized': 'connectionsRefusedWillNotAuthorized',
  'server-error': 'connectionsRefusedServerError',
  'too-many-per-address': 'connectionsRefusedTooManyPerAddress',
  'too-many': 'connectionsRefusedTooMany',
  throttled: 'connectionsRefusedThrottled',
} as const satisfies Record<string, CounterName>;

/** Unlabelled counters: metric name (without `vpp_broker_`, `_total`) → counter, help. */
const COUNTERS: ReadonlyArray<readonly [string, CounterName, string]> = [
  ['sockets_opened', 'socketsOpened', 'TCP connections accepted (TLS ones once their handshake is done), before any MQTT packet'],
  ['tls_handshake_failures', 'tlsHandshakeFailures', 'TLS handshakes that failed'],
  ['connections_accepted', 'connectionsAccepted', 'CONNECTs that passed authentication'],
  ['connections_delayed', 'connectionsDelayed', 'CONNECTs whose answer was held back because of earlier failures from their address or id'],
  ['throttle_keys_evicted', 'throttleKeysEvicted', 'addresses and ids forgotten early by the failure throttle (its table was full)'],
  ['publishes_received', 'publishesReceived', 'PUBLISH packets received from connected clients (wills not included)'],
  ['publishes_unauthorized', 'unauthorizedPublishes', 'publishes refused by the ACL (each closes the connection)'],
  ['subscriptions_unauthorized', 'unauthorizedSubscriptions', 'topic filters refused by the ACL'],
  ['retain_refused', 'retainRefused', 'retained device publishes or wills outside the device status topic'],
  ['tap_handed_over', 'tapHandedOver', 'device publishes handed to the in-process ingest tap (wills included)'],
  ['tap_refused', 'tapRefused', 'publishes the tap refused'],
  ['tap_read_pauses', 'tapReadPauses', 'times a client’s reads were stopped because too many publishes waited for the tap'],
  ['wills_published', 'willsPublished', 'last wills published after an unclean disconnect'],
  ['oversized_packets', 'oversizedPackets', 'packets over the size limit (each closes the connection)'],
  ['revocations_received', 'revocationsReceived', 'messages on the revocations topic'],
  ['revocations_invalid', 'revocationsInvalid', 'revocation messages that were not a valid device id'],
  ['devices_disconnected', 'devicesDisconnected', 'device connections closed by a revocation'],
  ['devices_disconnected_secret_expired', 'devicesDisconnectedSecretExpired', 'device connections closed because their secret is no longer accepted'],
  ['credential_rechecks', 'credentialRechecks', 'runs of the credential recheck over connected devices'],
  ['credential_recheck_failures', 'credentialRecheckFailures', 'credential rechecks cut short because the credentials store failed'],
  ['presence_events', 'presenceEvents', 'presence events built (a device connection registered or ended)'],
  ['presence_publish_failures', 'presencePublishFailures', 'presence events that could not be published'],
  ['client_errors', 'clientErrors', 'connections that ended with an error'],
];

/** Gauges: metric name (without `vpp_broker_`) → counter, help. */
const GAUGES: ReadonlyArray<readonly [string, CounterName, string]> = [
  ['connections', 'clientsConnected', 'MQTT clients connected now (devices and platform services)'],
  ['throttle_tracked_keys', 'throttleTrackedKeys', 'source addresses and device ids with failed authentications in their current window'],
  ['tap_pending', 'tapPending', 'publishes handed to the tap and not settled yet'],
  ['tap_paused_clients', 'tapPausedClients', 'clients whose reads are stopped now (tap backpressure)'],
];

/**
 * Registers the broker's metrics on `registry`, read from `counters()` at
 * each scrape. Register once per registry (names are unique in one).
 */
export function registerBrokerMetrics(registry: Registry, broker: { counters(): BrokerCounters }): void {
  // A snapshot is a copy of a few dozen numbers: each metric takes its own.
  const fresh = (): BrokerCounters => broker.counters();
  for (const [name, field, help] of COUNTERS) {
    new Counter({
      name: `vpp_broker_${name}_total`,
      help: `Broker: ${help}.`,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(fresh()[field]);
      },
    });
  }
  new Counter({
    name: 'vpp_broker_connections_refused_total',
    help: 'Broker: refused CONNECTs, by reason.',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const counters = fresh();
      this.reset();
      for (const [reason, field] of Object.entries(BROKER_REFUSAL_REASONS)) this.inc({ reason }, counters[field]);
    },
  });
  for (const [name, field, help] of GAUGES) {
    new Gauge({
      name: `vpp_broker_${name}`,
      help: `Broker: ${help}.`,
      registers: [registry],
      collect() {
        this.set(fresh()[field]);
      },
    });
  }
}
