/**
 * decode: topic and payload bytes → typed envelope, or a rejected envelope
 * with the reason. Never throws and never drops: every input yields exactly
 * one output, so every message is acknowledged once.
 */
import { map, type OperatorFunction } from 'rxjs';
import {
  BROKER_HEALTH_TOPIC,
  decodePresenceEvent,
  decodeServiceHealth,
  decodeStatus,
  decodeTelemetry,
  parseDeviceTopic,
  parsePresenceTopic,
  samplesOf,
} from '../../protocol/index.ts';
import type { DecodedEnvelope, InboundMessage } from '../types.ts';

export function decodeMessage(message: InboundMessage): DecodedEnvelope {
  if (message.clientId === null) {
    // Only the broker publishes here (service permissions); no device can.
    const platform = decodePlatformMessage(message);
    if (platform) return platform;
  }
  const topic = parseDeviceTopic(message.topic);
  if (!topic || (topic.channel !== 'telemetry' && topic.channel !== 'status')) {
    return { kind: 'rejected', message, reason: 'unexpected-topic', detail: `no telemetry or status topic: ${message.topic}` };
  }
  // The broker already refuses a device publishing on another's topic; this
  // guards sources that cannot know the publisher (and is cheap).
  if (message.clientId !== null && message.clientId !== topic.deviceId) {
    return { kind: 'rejected', message, reason: 'wrong-client', detail: `client ${message.clientId} published on ${message.topic}` };
  }
  if (topic.channel === 'telemetry') {
    // A retained sample would come back at every subscription; the broker
    // refuses retain outside the status topic, another broker may not.
    if (message.retained) {
      return { kind: 'rejected', message, reason: 'retained-telemetry', detail: `retained copy of ${message.topic}` };
    }
    const decoded = decodeTelemetry(message.payload);
    if (!decoded.ok) return { kind: 'rejected', message, reason: decoded.reason, detail: decoded.detail };
    return { kind: 'telemetry', message, deviceId: topic.deviceId, samples: samplesOf(decoded.value) };
  }
  const decoded = decodeStatus(message.payload);
  if (!decoded.ok) return { kind: 'rejected', message, reason: decoded.reason, detail: decoded.detail };
  return { kind: 'status', message, deviceId: topic.deviceId, status: decoded.value };
}

function decodePlatformMessage(message: InboundMessage): DecodedEnvelope | undefined {
  const presenceOf = parsePresenceTopic(message.topic);
  if (presenceOf !== undefined) {
    const decoded = decodePresenceEvent(message.payload);
    if (!decoded.ok) return { kind: 'rejected', message, reason: decoded.reason, detail: decoded.detail };
    if (decoded.value.deviceId !== presenceOf) {
      return { kind: 'rejected', message, reason: 'schema', detail: `presence of ${decoded.value.deviceId} on ${message.topic}` };
    }
    return { kind: 'presence', message, event: decoded.value };
  }
  if (message.topic === BROKER_HEALTH_TOPIC) {
    const health = decodeServiceHealth(message.payload);
    if (!health.ok) return { kind: 'rejected', message, reason: health.reason, detail: health.detail };
    const startedAtMs = health.value.startedAtMs;
    if (startedAtMs === undefined) return { kind: 'rejected', message, reason: 'schema', detail: 'broker heartbeat without startedAtMs' };
    return { kind: 'broker-start', message, startedAtMs };
  }
  return undefined;
}

export function decode(): OperatorFunction<InboundMessage, DecodedEnvelope> {
  return map(decodeMessage);
}
