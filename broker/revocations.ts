/**
 * Revocations from other processes. When control revokes a device it
 * publishes `{"deviceId": "..."}` on REVOCATIONS_TOPIC; the registry already
 * refuses the device's next CONNECT, and this ends the session it has open.
 * Only the vpp-control account may publish there (see policy.ts).
 */
import type { Aedes, AedesPublishPacket } from 'aedes';
import type { Logger } from 'pino';
import { REVOCATIONS_TOPIC, isValidDeviceId, parseJson } from '../protocol/index.ts';
import type { MutableBrokerCounters } from './counters.ts';

export function parseRevocation(payload: Buffer): string | undefined {
  const decoded = parseJson(payload);
  if (!decoded.ok) return undefined;
  const value = decoded.value;
  if (typeof value !== 'object' || value === null || !('deviceId' in value)) return undefined;
  const deviceId = value.deviceId;
  return typeof deviceId === 'string' && isValidDeviceId(deviceId) ? deviceId : undefined;
}

/** Subscribes the broker itself to REVOCATIONS_TOPIC; resolves once subscribed. */
export function listenForRevocations(
  aedes: Aedes,
  disconnectDevice: (deviceId: string) => boolean,
  counters: MutableBrokerCounters,
  logger: Logger,
): Promise<void> {
  const onRevocation = (packet: AedesPublishPacket, done: () => void): void => {
    counters.revocationsReceived += 1;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const deviceId = parseRevocation(payload);
    if (deviceId === undefined) {
      counters.revocationsInvalid += 1;
      logger.warn({ topic: packet.topic }, 'ignored revocation: payload is not {"deviceId": "<device id>"}');
    } else {
      const wasConnected = disconnectDevice(deviceId);
      logger.info({ deviceId, wasConnected }, 'device revoked');
    }
    done();
  };
  return new Promise((resolve) => aedes.subscribe(REVOCATIONS_TOPIC, onRevocation, resolve));
}
