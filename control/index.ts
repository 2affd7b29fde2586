/** Public API of the control part: the operator REST API and what feeds it. */
export { buildControlApp, type ControlAppOptions } from './app.ts';
export { createLiveView, type FeedableLiveView, type LiveViewStats, type LiveViewRejection } from './live-view.ts';
export { createMqttRevocations, feedLiveView } from './mqtt.ts';
export type {
  AccessOptions,
  ComponentHealth,
  ControlDeps,
  Dispatcher,
  DispatchPlan,
  DispatchRequest,
  HealthCheck,
  HealthReport,
  LiveView,
  PipelineFigures,
  Revocations,
  StreamOptions,
} from './deps.ts';
export { checkStoreHealth, evaluateHealth, type HealthInputs } from './health.ts';
export { ControlError, InfeasibleDispatchError, isInfeasibleDispatchError, type ControlErrorCode } from './errors.ts';
export { API_PREFIX } from './routes/api.ts';
export { API_TOKEN_PREFIX, BOOTSTRAP_TOKEN_NAME, MIN_ADMIN_TOKEN_LENGTH } from './plugins/auth.ts';
export { DEFAULT_ACCESS } from './plugins/access.ts';
export { DEFAULT_STREAM } from './stream/index.ts';
export { registerControlMetrics, type ControlMetricsSource } from './metrics.ts';
