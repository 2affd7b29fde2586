export { startBroker, type Broker, type BrokerOptions } from './broker.ts';
export type { BrokerTap, TappedPublish } from './tap.ts';
export type { TapWindow } from './tap-flow-control.ts';
export type { BrokerCounters } from './counters.ts';
export type { CredentialSource } from './authenticate.ts';
export { BrokerError, type BrokerErrorCode } from './errors.ts';
