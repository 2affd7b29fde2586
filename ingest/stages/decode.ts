/**
 * decode: topic and payload bytes → typed envelope, or a rejected envelope
 * with the reason. Never throws and never drops: every input yields exactly
 * one output, so every message is acknowledged once.
 */
import { map, type OperatorFunction } from 'rxjs';
import { decodeStatus, decodeTelemetry, parseDeviceTopic, samplesOf } from '../../protocol/index.ts';
import type { DecodedEnvelope, InboundMessage } from '../types.ts';

export function decodeMessage(message: InboundMessage): DecodedEnvelope {
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
    const decoded = decodeTelemetry(message.payload);
    if (!decoded.ok) return { kind: 'rejected', message, reason: decoded.reason, detail: decoded.detail };
    return { kind: 'telemetry', message, deviceId: topic.deviceId, samples: samplesOf(decoded.value) };
  }
  const decoded = decodeStatus(message.payload);
  if (!decoded.ok) return { kind: 'rejected', message, reason: decoded.reason, detail: decoded.detail };
  return { kind: 'status', message, deviceId: topic.deviceId, status: decoded.value };
}

export function decode(): OperatorFunction<InboundMessage, DecodedEnvelope> {
  return map(decodeMessage);
}
