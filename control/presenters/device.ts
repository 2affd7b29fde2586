/** Devices and twins as the API shows them: ISO times, booleans instead of nullable timestamps. */
import type { Static } from '@sinclair/typebox';
import { isConnected, type DeviceRecord, type DeviceState } from '../../store/types.ts';
import type { DeviceSummarySchema, DeviceTwinSchema } from '../schemas/devices.ts';
import type { DeviceControlView } from './command.ts';

export type DeviceSummary = Static<typeof DeviceSummarySchema>;
export type DeviceTwin = Static<typeof DeviceTwinSchema>;

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

function isoTimeOrNull(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : isoTime(ms);
}

export function presentDeviceSummary(device: DeviceRecord, state: DeviceState | undefined, control: DeviceControlView): DeviceSummary {
  return {
    id: device.id,
    type: device.type,
    siteId: device.siteId,
    createdAt: isoTime(device.createdAtMs),
    revoked: device.revokedAtMs !== null,
    revokedAt: isoTimeOrNull(device.revokedAtMs),
    online: state !== undefined && isConnected(state),
    // A device with no state was never seen: offline since nobody knows when.
    presence: state?.presence ?? 'offline',
    presenceSince: isoTimeOrNull(state?.presenceSinceMs),
    lastSeen: isoTimeOrNull(state?.lastSeenMs),
    control,
  };
}

/** A device that never reported has a twin with no metrics and null times. */
export function presentDeviceTwin(device: DeviceRecord, state: DeviceState | undefined, control: DeviceControlView): DeviceTwin {
  return {
    ...presentDeviceSummary(device, state, control),
    lastSeenMs: state?.lastSeenMs ?? null,
    lastTs: state?.lastTs ?? null,
    lastSeq: state?.lastSeq ?? null,
    metrics: state?.metrics ?? {},
    status: state?.status ?? null,
  };
}

/** A device without command or report: local control, nothing said about it. */
const NO_CONTROL: DeviceControlView = { desired: null, reported: null, agree: null };

/** Pairs devices with their states and controls, each fetched in one read for all of them. */
export function presentDevices<T>(
  devices: readonly DeviceRecord[],
  states: readonly DeviceState[],
  controls: ReadonlyMap<string, DeviceControlView>,
  present: (device: DeviceRecord, state: DeviceState | undefined, control: DeviceControlView) => T,
): T[] {
  const stateById = new Map(states.map((s) => [s.deviceId, s]));
  return devices.map((d) => present(d, stateById.get(d.id), controls.get(d.id) ?? NO_CONTROL));
}
