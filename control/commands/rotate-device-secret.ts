/**
 * Secret rotation: gives a device a fresh secret while its current one stays
 * accepted for a grace period, so the device can switch over without
 * losing its connection. Only the new secret's hash is stored; the secret is
 * returned once.
 */
// credentials.ts rather than broker/index.ts, for the reason given in provision-device.ts.
import { generateSecret, hashSecret } from '../../store/credentials.ts';
import type { Registry } from '../../store/types.ts';
import { conflict, notFound } from '../errors.ts';
import { isoTime } from '../presenters/device.ts';

export interface RotatedSecret {
  deviceId: string;
  /** Shown to the operator once, never stored. */
  secret: string;
  /** Until when the secret the device had before is still accepted. */
  previousSecretValidUntilMs: number;
}

/**
 * Throws 404 for an unknown device and 409 for a revoked one (a revoked
 * device gets no new way in). Rotating again during a grace period ends
 * the grace of the secret before the current one (see Registry.rotateDeviceSecret).
 */
export function rotateDeviceSecret(
  deps: { registry: Registry; clock: () => number; secretGraceMs: number },
  id: string,
): RotatedSecret {
  const device = deps.registry.getDevice(id);
  if (!device) throw notFound(`device '${id}' does not exist`);
  if (device.revokedAtMs !== null) {
    throw conflict(`device '${id}' was revoked at ${isoTime(device.revokedAtMs)}; a revoked device gets no new secret`);
  }
  const secret = generateSecret();
  const previousSecretValidUntilMs = deps.clock() + deps.secretGraceMs;
  // A revocation between the check above and here makes the store throw 'conflict', answered as 409 too.
  deps.registry.rotateDeviceSecret(id, hashSecret(secret), previousSecretValidUntilMs);
  return { deviceId: id, secret, previousSecretValidUntilMs };
}
