/**
 * Commands as the API shows them, and a device's control: what the
 * platform wants it to do next to what it says it does.
 */
import type { Static } from '@sinclair/typebox';
import type { CommandTransition, DeviceState, StoredCommand } from '../../store/types.ts';
import type { CommandSchema, CommandTransitionSchema, DesiredControlSchema, DeviceControlSchema, ReportedControlSchema } from '../schemas/commands.ts';
import { isoTime } from './device.ts';

export type CommandView = Static<typeof CommandSchema>;
export type CommandTransitionView = Static<typeof CommandTransitionSchema>;
export type DesiredControlView = Static<typeof DesiredControlSchema>;
export type ReportedControlView = Static<typeof ReportedControlSchema>;
export type DeviceControlView = Static<typeof DeviceControlSchema>;

function isoTimeOrNull(ms: number | null): string | null {
  return ms === null ? null : isoTime(ms);
}

export function presentCommandTransition(transition: CommandTransition): CommandTransitionView {
  return { state: transition.state, at: isoTime(transition.atMs), detail: transition.detail };
}

export function presentCommand(command: StoredCommand): CommandView {
  return {
    id: command.id,
    deviceId: command.deviceId,
    type: command.type,
    params: command.params,
    state: command.state,
    createdAt: isoTime(command.createdAtMs),
    expiresAt: isoTime(command.expiresAtMs),
    attempts: command.attempts,
    nextAttemptAt: isoTimeOrNull(command.nextAttemptAtMs),
    reason: command.reason,
    applied: command.applied,
    dispatchId: command.dispatchId,
    transitions: command.transitions.map(presentCommandTransition),
  };
}

/**
 * The command a device should be following: its newest one, while that is
 * pending, sent or accepted and not expired. Anything else (none yet, a
 * final state, or past its expiry before the store has noticed) means local
 * control is desired.
 */
export function desiredControl(latest: StoredCommand | undefined, nowMs: number): DesiredControlView | null {
  if (!latest || latest.expiresAtMs <= nowMs) return null;
  if (latest.state !== 'pending' && latest.state !== 'sent' && latest.state !== 'accepted') return null;
  return { commandId: latest.id, type: latest.type, params: latest.params, state: latest.state, until: isoTime(latest.expiresAtMs) };
}

/** Latest time a Date can show as ISO 8601 with a four-digit year (9999-12-31T23:59:59.999Z). */
const MAX_ISO_MS = 253_402_300_799_999;

function numberOrNull(value: unknown): number | null | undefined {
  if (value === null) return null;
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/**
 * What the device says it does, from the scalar extras of its latest status
 * (see ReportedControl in protocol/commands.ts). A field the device does not
 * send, or sends with the wrong type, is left out rather than guessed; a
 * status with none of them (a meter, older firmware) reports nothing: null.
 */
export function reportedControl(status: Record<string, unknown> | null | undefined): ReportedControlView | null {
  if (!status) return null;
  const reported: ReportedControlView = {};
  if (typeof status.mode === 'string') reported.mode = status.mode;
  const setpointW = numberOrNull(status.setpointW);
  if (setpointW !== undefined) reported.setpointW = setpointW;
  const curtailW = numberOrNull(status.curtailW);
  if (curtailW !== undefined) reported.curtailW = curtailW;
  if (status.commandId === null || typeof status.commandId === 'string') reported.commandId = status.commandId;
  const until = numberOrNull(status.commandUntil);
  if (until === null) reported.until = null;
  else if (until !== undefined && Number.isSafeInteger(until) && until >= 0 && until <= MAX_ISO_MS) reported.until = isoTime(until);
  return Object.keys(reported).length === 0 ? null : reported;
}

/**
 * Desired next to reported. They agree when the device follows the desired
 * command, or follows none while none is desired; a device that reports
 * control without a command id is taken to be under local control.
 */
export function presentDeviceControl(latest: StoredCommand | undefined, state: Pick<DeviceState, 'status'> | undefined, nowMs: number): DeviceControlView {
  const desired = desiredControl(latest, nowMs);
  const reported = reportedControl(state?.status);
  const agree = reported === null ? null : (reported.commandId ?? null) === (desired?.commandId ?? null);
  return { desired, reported, agree };
}
