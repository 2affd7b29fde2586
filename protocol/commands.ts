/**
 * Commands of the firmware contract: the types a device understands, their
 * parameters per device type, their lifecycle on the platform, and what a
 * device reports doing. Pure, no I/O. The wire shapes (CommandSchema,
 * AckSchema) are in messages.ts.
 */
import type { DeviceType } from './metrics.ts';

/**
 * - setPower (battery): run at `powerW`, positive = discharge towards the
 *   grid, negative = charge; clipped by the device to its power limits,
 *   its capacity and its backup reserve.
 * - setMode (battery): `selfConsumption` (local control, the default),
 *   `backup` (keep the battery full for an outage), `idle` (neither charge
 *   nor discharge).
 * - curtail (solar): produce at most `maxPowerW`; `maxPowerW: null` lifts it.
 *
 * Every command runs until its `expiresAt`; then the device goes back to
 * local control (self-consumption, no curtailment) on its own.
 */
export const COMMAND_TYPES = ['setPower', 'setMode', 'curtail'] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

export const BATTERY_MODES = ['selfConsumption', 'backup', 'idle'] as const;
export type BatteryMode = (typeof BATTERY_MODES)[number];

/** Largest |powerW| or maxPowerW a command may carry: far above any home device, far below anything absurd. */
export const MAX_COMMAND_POWER_W = 1_000_000;

export type CommandParams =
  | { type: 'setPower'; params: { powerW: number } }
  | { type: 'setMode'; params: { mode: BatteryMode } }
  | { type: 'curtail'; params: { maxPowerW: number | null } };

/** Which device types take which command. */
export const COMMAND_DEVICE_TYPES: Readonly<Record<CommandType, readonly DeviceType[]>> = {
  setPower: ['battery'],
  setMode: ['battery'],
  curtail: ['solar'],
};

export function isCommandType(value: unknown): value is CommandType {
  return typeof value === 'string' && (COMMAND_TYPES as readonly string[]).includes(value);
}

/**
 * Checks a command's type and parameters for a device type; returns the
 * normalised parameters (exactly the documented keys) or a problem an
 * operator can act on.
 */
export function checkCommandParams(
  type: unknown,
  deviceType: DeviceType,
  params: unknown,
): { ok: true; command: CommandParams } | { ok: false; problem: string } {
  if (!isCommandType(type)) return { ok: false, problem: `type must be one of ${COMMAND_TYPES.join(', ')}` };
  if (!COMMAND_DEVICE_TYPES[type].includes(deviceType)) {
    return { ok: false, problem: `a ${deviceType} does not take ${type} (only ${COMMAND_DEVICE_TYPES[type].join(', ')})` };
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return { ok: false, problem: 'params must be an object' };
  const p = params as Record<string, unknown>;
  const allowed: Record<CommandType, string[]> = { setPower: ['powerW'], setMode: ['mode'], curtail: ['maxPowerW'] };
  const extra = Object.keys(p).filter((key) => !allowed[type].includes(key));
  if (extra.length > 0) return { ok: false, problem: `params.${extra[0]} is not a parameter of ${type} (only ${allowed[type].join(', ')})` };
  switch (type) {
    case 'setPower': {
      const powerW = p.powerW;
      if (typeof powerW !== 'number' || !Number.isFinite(powerW) || Math.abs(powerW) > MAX_COMMAND_POWER_W) {
        return { ok: false, problem: `params.powerW must be a number of watts from -${MAX_COMMAND_POWER_W} to ${MAX_COMMAND_POWER_W} (positive = discharge)` };
      }
      return { ok: true, command: { type, params: { powerW } } };
    }
    case 'setMode': {
      const mode = p.mode;
      if (typeof mode !== 'string' || !(BATTERY_MODES as readonly string[]).includes(mode)) {
        return { ok: false, problem: `params.mode must be one of ${BATTERY_MODES.join(', ')}` };
      }
      return { ok: true, command: { type, params: { mode: mode as BatteryMode } } };
    }
    case 'curtail': {
      const maxPowerW = p.maxPowerW ?? null;
      if (maxPowerW !== null && (typeof maxPowerW !== 'number' || !Number.isFinite(maxPowerW) || maxPowerW < 0 || maxPowerW > MAX_COMMAND_POWER_W)) {
        return { ok: false, problem: `params.maxPowerW must be a number of watts from 0 to ${MAX_COMMAND_POWER_W}, or null to lift the curtailment` };
      }
      return { ok: true, command: { type, params: { maxPowerW } } };
    }
  }
}

/**
 * A command's fate on the platform:
 *
 *   pending → sent → accepted → completed
 *                  ↘ rejected (the device's reason)
 *   pending | sent → expired (its expiry passed before the device accepted)
 *   pending | sent → failed (every try spent without an answer)
 *
 * `sent` may repeat (resent with backoff while the device is offline or
 * silent). rejected, completed, expired and failed are final.
 */
export const COMMAND_STATES = ['pending', 'sent', 'accepted', 'rejected', 'completed', 'expired', 'failed'] as const;
export type CommandState = (typeof COMMAND_STATES)[number];
export const FINAL_COMMAND_STATES: readonly CommandState[] = ['rejected', 'completed', 'expired', 'failed'];

export function isFinalCommandState(state: CommandState): boolean {
  return FINAL_COMMAND_STATES.includes(state);
}

/**
 * What a device reports doing, as extra fields of its retained status
 * (`StatusSchema` allows scalar extras), published again whenever it
 * changes: the platform's twin compares it with what was asked.
 */
export interface ReportedControl {
  /** `setpoint` while following a setPower; otherwise the battery's mode. */
  mode?: 'setpoint' | BatteryMode;
  /** The setpoint being followed, after clipping to the device's limits. */
  setpointW?: number | null;
  /** What holds the setpoint back, null when nothing does. */
  clippedBy?: 'powerLimit' | 'reserve' | 'full' | null;
  /** The curtailment in force on a solar inverter, null when none. */
  curtailW?: number | null;
  /** Until when the current command runs (ms since the epoch), null under local control. */
  commandUntil?: number | null;
  /** The id of the command being followed, null under local control. */
  commandId?: string | null;
}

/**
 * A dispatch: the fleet (or a region, or a list of sites) asked for
 * `powerW` over a window, positive to deliver to the grid (batteries
 * discharge), negative to absorb (they charge).
 *
 *   scheduled → active → completed
 *             ↘ cancelled (by an operator) · failed (nothing could be asked)
 */
export type DispatchTarget = { fleet: true } | { region: string } | { siteIds: string[] };
export const DISPATCH_STATES = ['scheduled', 'active', 'completed', 'cancelled', 'failed'] as const;
export type DispatchState = (typeof DISPATCH_STATES)[number];
export const FINAL_DISPATCH_STATES: readonly DispatchState[] = ['completed', 'cancelled', 'failed'];

/** A request for a dispatch, as the API checks it and the dispatcher plans it. */
export interface DispatchRequest {
  target: DispatchTarget;
  /** Positive: deliver to the grid; negative: absorb. Never 0. */
  powerW: number;
  startAtMs: number;
  durationMs: number;
  /** Store and run the dispatch even when the fleet cannot meet the whole target. */
  allowPartial: boolean;
}
