/** Contract suites for the storage ports; every implementation runs the ones it implements. */
export { describeTelemetryStoreContract } from './telemetry-store.contract.ts';
export { describeRollupMergeContract, describeRollupTiersContract, type ContractRetention, type PrunableTelemetryStore } from './rollup-tiers.contract.ts';
export { describeRegistryContract } from './registry.contract.ts';
export { describeTwinStoreContract } from './twin-store.contract.ts';
export { describeDeadLetterStoreContract, type OpenDeadLetterStore } from './dead-letter-store.contract.ts';
export { describeAlertStoreContract } from './alert-store.contract.ts';
export { describeCommandStoreContract } from './command-store.contract.ts';
export { describeDispatchStoreContract, type OpenDispatchStore } from './dispatch-store.contract.ts';
export { describeTokenStoreContract } from './token-store.contract.ts';
export { describeAuditStoreContract } from './audit-store.contract.ts';
export type { OpenStore } from './open-store.ts';
