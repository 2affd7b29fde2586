export { startIngest, type Ingest, type IngestOptions, type IngestSettings } from './ingest.ts';
export { createBrokerTapSource, type BrokerTapSource, type TappedMessage } from './sources/broker-tap.ts';
export { connectMqttSubscription, type MqttSubscriptionSource, type MqttSubscriptionOptions } from './sources/mqtt-subscription.ts';
export { IngestCounters } from './counters.ts';
export type { InboundMessage, IngestSource, InflightReport, RejectReason } from './types.ts';
export { registerIngestMetrics, type IngestMetricsSource } from './metrics.ts';
