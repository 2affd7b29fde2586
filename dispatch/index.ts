/** Commands and dispatch: the command sender (queue → MQTT, acks → queue), the allocator and the control loop. */
export {
  DEFAULT_COMMAND_SENDER_SETTINGS,
  commandPayload,
  nextRetryDelayMs,
  startCommandSender,
  type CommandSender,
  type CommandSenderCounters,
  type CommandSenderOptions,
  type CommandSenderSettings,
} from './command-sender.ts';
export {
  DEFAULT_EFFICIENCY,
  DEFAULT_MIN_SHARE_W,
  allocate,
  explainAllocation,
  headroom,
  type Allocation,
  type AllocationRequest,
  type BatteryView,
  type Exclusion,
  type ExclusionReason,
  type Setpoint,
} from './allocator.ts';
export { DEFAULT_MIN_CHANGE_W, correct, type Correction, type CorrectionRequest, type CurrentSetpoint, type DispatchCommandState } from './control-loop.ts';
export {
  DEFAULT_DISPATCHER_SETTINGS,
  startDispatcher,
  type DispatchRequest,
  type Dispatcher,
  type DispatcherOptions,
  type DispatcherSettings,
  type PlanWithSetpoints,
} from './dispatcher.ts';
export { registerDispatchMetrics, type DispatchMetricsSource } from './metrics.ts';
