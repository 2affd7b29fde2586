/**
 * Revocation: the registry is the source of truth (a revoked device cannot
 * connect again), then the broker is asked to end a session that is open.
 */
import type { Registry } from '../../store/types.ts';
import type { Revocations } from '../deps.ts';
import { ControlError, conflict, notFound } from '../errors.ts';
import { isoTime } from '../presenters/device.ts';

/**
 * Revokes a device. Throws 404 for an unknown device and 409 when it was
 * already revoked; a repeated revocation sends the disconnect request
 * again, so an operator can retry after the broker was unreachable.
 */
export async function revokeDevice(
  deps: { registry: Registry; revocations: Revocations; clock: () => number },
  id: string,
): Promise<void> {
  const device = deps.registry.getDevice(id);
  if (!device) throw notFound(`device '${id}' does not exist`);
  const revokedNow = device.revokedAtMs === null && deps.registry.revokeDevice(id, deps.clock());
  await requestDisconnect(deps.revocations, id);
  if (!revokedNow) {
    const revokedAtMs = deps.registry.getDevice(id)?.revokedAtMs ?? device.revokedAtMs;
    const when = revokedAtMs === null ? '' : ` at ${isoTime(revokedAtMs)}`;
    throw conflict(`device '${id}' was already revoked${when}; the disconnect request was sent again`);
  }
}

async function requestDisconnect(revocations: Revocations, id: string): Promise<void> {
  try {
    await revocations.revokeDevice(id);
  } catch (err) {
    throw new ControlError(
      'revocation-not-delivered',
      `device '${id}' is revoked and cannot connect again, but the broker could not be asked to end its open session (${(err as Error).message}); DELETE again to retry`,
      { cause: err },
    );
  }
}
