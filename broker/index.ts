export { BROKER_DEFAULTS, startBroker, type Broker, type BrokerOptions, type TlsOptions } from './broker.ts';
export { THROTTLE_DEFAULTS, type ThrottleOptions } from './throttle.ts';
export type { BrokerTap, TappedPublish } from './tap.ts';
export type { TapWindow } from './tap-flow-control.ts';
export type { BrokerCounters } from './counters.ts';
export type { CredentialSource } from './authenticate.ts';
export type { DisconnectReason, PresenceListener } from './presence.ts';
// The event itself is part of the wire protocol; re-exported for listeners' convenience.
export type { PresenceEvent } from '../protocol/index.ts';
export { BrokerError, type BrokerErrorCode } from './errors.ts';
export { BROKER_REFUSAL_REASONS, registerBrokerMetrics } from './metrics.ts';
