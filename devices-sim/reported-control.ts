/**
 * What a simulated device reports doing, as extra fields of its retained
 * status (`ReportedControl` of protocol/commands.ts, plus `clippedBy`), and
 * when a change of the physics is worth publishing again. Pure.
 *
 * Status fields per device type (every one always present, null when it
 * does not apply, so a retained status never keeps a stale value):
 * - battery: `mode`, `setpointW`, `clippedBy`, `commandId`, `commandUntil`
 * - solar: `curtailW`, `commandId`, `commandUntil`
 * - meter: none (it takes no commands)
 */
import type { DeviceType, ReportedControl } from '../protocol/index.ts';
import type { BatteryLimit } from './battery.ts';
import type { SiteControl } from './site.ts';

/** The setpoint a battery actually runs at, and what held it below the one asked for. */
export interface SetpointReading {
  /** W, positive = discharge, rounded to the watt like the telemetry. */
  setpointW: number;
  clippedBy: BatteryLimit | null;
}

/** The status extras a device publishes about its control. */
export type ControlStatus = ReportedControl & {
  /** Why `setpointW` is below the setpoint asked for: `powerLimit`, `reserve` or `full`; null when it is not. */
  clippedBy?: BatteryLimit | null;
};

/** Share of the battery's power limit a setpoint must move by before it is published again. */
export const SETPOINT_REPORT_SHARE = 0.01;

/**
 * The status extras of a device of `type` under `control`, following
 * `command` (null under local control). `setpoint` is what the battery
 * actually runs at when the control is a setpoint.
 */
export function controlStatus(
  type: DeviceType,
  control: SiteControl,
  command: { id: string; expiresAtMs: number } | null,
  setpoint: SetpointReading | null,
): ControlStatus {
  const running = { commandId: command?.id ?? null, commandUntil: command?.expiresAtMs ?? null };
  switch (type) {
    case 'battery': {
      const isSetpoint = control.battery.mode === 'setpoint';
      return {
        mode: control.battery.mode,
        setpointW: isSetpoint ? (setpoint?.setpointW ?? null) : null,
        clippedBy: isSetpoint ? (setpoint?.clippedBy ?? null) : null,
        ...running,
      };
    }
    case 'solar':
      return { curtailW: control.curtailW, ...running };
    case 'meter':
      return {};
  }
}

/**
 * Whether the setpoint a battery runs at has changed enough since it was
 * last published to publish it again: the reason for clipping changed, or
 * the value moved by more than SETPOINT_REPORT_SHARE of the power limit.
 * Small moves are left out so a battery easing into its reserve does not
 * republish its status on every sample.
 */
export function setpointChanged(last: SetpointReading, next: SetpointReading, powerLimitW: number): boolean {
  if (last.clippedBy !== next.clippedBy) return true;
  return Math.abs(next.setpointW - last.setpointW) > SETPOINT_REPORT_SHARE * powerLimitW;
}
