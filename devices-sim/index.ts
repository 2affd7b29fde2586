/** Simulated home energy sites (battery, solar inverter, meter) speaking the platform's MQTT protocol. */
export {
  DEFAULT_REGIONS,
  SITE_DEVICE_TYPES,
  formatDeviceId,
  formatSiteId,
  planFleet,
  planSiteParams,
  type FleetPlan,
  type FleetPlanOptions,
  type SimDeviceSpec,
} from './fleet-plan.ts';
export type { SimSite } from './fleet-plan.ts';
export { DEFAULT_COMMAND_GRACE_MS, MIN_REAL_INTERVAL_MS, startFleet, type Fleet, type FleetOptions, type FleetStats } from './fleet.ts';
export { CONNECTION_LOST_REASON, CURTAILMENT_LIFTED_REASON } from './commands.ts';
export { SETPOINT_REPORT_SHARE, type ControlStatus, type SetpointReading } from './reported-control.ts';
export { SIM_FIRMWARE } from './sim-device.ts';
export {
  DEFAULT_RECONNECT_AFTER_SECONDS,
  FAULT_KINDS,
  MAX_FAULT_SECONDS,
  MAX_FAULT_SPECS,
  MAX_FAULT_SPEC_LENGTH,
  faultAppliesTo,
  formatFaultSpec,
  isFaultKind,
  parseFaultSpec,
  parseFaultSpecs,
  validateFaultSpec,
  type FaultKind,
  type FaultParse,
  type FaultSpec,
} from './faults.ts';
export { OVERHEAT_CLIMB_MS, OVERHEAT_PLATEAU_C, SOC_JUMP_PCT } from './fault-effects.ts';
export {
  MAX_FAULT_COMMAND_LENGTH,
  appendFaultCommand,
  formatFaultCommand,
  parseFaultCommand,
  watchFaultFile,
  type FaultCommand,
  type WatchFaultFileOptions,
} from './fault-file.ts';
export { SimError, type SimErrorCode } from './errors.ts';
export {
  LOCAL_CONTROL,
  SimulatedSite,
  ambientTempC,
  batteryRequestW,
  createSiteState,
  readSiteMetrics,
  stepSite,
  type BatteryControl,
  type ClimateParams,
  type SiteControl,
  type SiteParams,
  type SiteState,
} from './site.ts';
export type { BatteryLimit, BatteryParams, BatteryState } from './battery.ts';
export type { SolarParams, SolarState } from './solar.ts';
export type { GridParams, LoadParams } from './meter.ts';
