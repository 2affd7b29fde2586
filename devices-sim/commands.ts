/**
 * What a simulated device does with a command payload, and when a command
 * in force ends. Pure: the caller passes the time and the device's limits
 * and carries out the decision (acks, the site's control, the status).
 *
 * Supported, as in protocol/commands.ts (whose `checkCommandParams` checks
 * type and parameters here, so a device and the platform agree on what is
 * valid):
 * - battery `setPower {powerW}`: run at the setpoint, clipped to the power
 *   limit (the ack says so with `applied`);
 * - battery `setMode {mode}`: `selfConsumption`, `backup` or `idle`;
 * - solar `curtail {maxPowerW}`: cap the output; `maxPowerW: null` lifts a
 *   cap and completes at once.
 * Each runs until `expiresAt` (wall clock), then the device goes back to
 * local control. Everything else is rejected with a reason, provided the
 * payload carries a command id to reject; a payload without one cannot be
 * acknowledged and is ignored (and counted by the caller).
 */
import {
  COMMAND_TYPES,
  checkCommandParams,
  isCommandType,
  parseJson,
  type Ack,
  type Command,
  type CommandType,
  type DeviceType,
} from '../protocol/index.ts';
import type { BatteryParams } from './battery.ts';
import type { BatteryControl } from './site.ts';

/** The part of a site's control a command changes: the battery's, or the inverter's curtailment. */
export type ControlChange = { battery: BatteryControl } | { curtailW: number | null };

export type CommandDecision =
  | { kind: 'ignore'; reason: string }
  | { kind: 'reject'; commandId: string; reason: string }
  /**
   * Carry out `control` until `expiresAtMs` and answer with `ack` (accepted;
   * with `applied` and a reason when a setpoint was clipped). `clipped`: the
   * setpoint in `control` is not the one asked for.
   */
  | { kind: 'run'; commandId: string; type: CommandType; expiresAtMs: number; control: ControlChange; clipped: boolean; ack: Ack }
  /** Apply `control` and be done at once: answer with `ack` (completed). */
  | { kind: 'complete'; commandId: string; type: CommandType; control: ControlChange; ack: Ack };

/** What a command decision needs to know of the device. */
export interface CommandTarget {
  type: DeviceType;
  /** A battery's power limits, which setpoints are clipped to; without them no clipping happens. */
  battery?: Pick<BatteryParams, 'maxChargeW' | 'maxDischargeW'>;
}

/** Reason of the completed ack of a command dropped because the platform was out of reach for too long. */
export const CONNECTION_LOST_REASON = 'connection lost for longer than the grace';
/** Reason of the completed ack of `curtail {maxPowerW: null}`. */
export const CURTAILMENT_LIFTED_REASON = 'curtailment lifted';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COMMAND_KEYS = new Set(['id', 'type', 'params', 'expiresAt']);
/** Longest command id an ack can carry (protocol AckSchema). */
const MAX_ACK_COMMAND_ID_LENGTH = 64;
/** Longest command type quoted back in a reason, so the reason stays within the ack's 256 characters. */
const MAX_QUOTED_TYPE_LENGTH = 64;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks a parsed payload against the command schema of protocol/messages.ts,
 * field by field. The device does this itself rather than through
 * `decodeCommand` because the schema's `format: 'uuid'` needs a format
 * checker registered with TypeBox, which a firmware should not depend on.
 */
function findCommandProblem(value: Record<string, unknown>): string | undefined {
  const extra = Object.keys(value).filter((key) => !COMMAND_KEYS.has(key));
  if (extra.length > 0) return `unexpected field ${extra[0]}`;
  if (typeof value.id !== 'string' || !UUID_PATTERN.test(value.id)) return 'id must be a uuid';
  if (typeof value.type !== 'string' || value.type.length < 1 || value.type.length > 64) return 'type must be a string of 1 to 64 characters';
  if (!isRecord(value.params)) return 'params must be an object';
  if (typeof value.expiresAt !== 'number' || !Number.isInteger(value.expiresAt) || value.expiresAt < 0) {
    return 'expiresAt must be a non-negative integer';
  }
  return undefined;
}

/**
 * A setpoint within the battery's power limit: the setpoint itself, or the
 * limit it was clipped to. Only the power limit: whether the battery can
 * sustain the setpoint (reserve, full) changes while it runs and is
 * reported in the status, not in the ack.
 */
export function clipSetpoint(
  powerW: number,
  limits: Pick<BatteryParams, 'maxChargeW' | 'maxDischargeW'> | undefined,
): { powerW: number; clippedToW: number | null } {
  if (limits && powerW > limits.maxDischargeW) return { powerW: limits.maxDischargeW, clippedToW: limits.maxDischargeW };
  // `|| 0`: a zero charge limit would give -0, which JSON writes as 0 but comparisons see differently.
  if (limits && powerW < -limits.maxChargeW) return { powerW: -limits.maxChargeW || 0, clippedToW: limits.maxChargeW };
  return { powerW, clippedToW: null };
}

export function decideCommand(payload: Buffer | Uint8Array | string, device: CommandTarget, nowMs: number): CommandDecision {
  const parsed = parseJson(payload);
  if (!parsed.ok) return { kind: 'ignore', reason: `not JSON: ${parsed.detail}` };
  const value = parsed.value;
  if (!isRecord(value)) return { kind: 'ignore', reason: 'not a JSON object' };
  const rawId = value.id;
  const idUsable = typeof rawId === 'string' && rawId.length > 0 && rawId.length <= MAX_ACK_COMMAND_ID_LENGTH;
  const problem = findCommandProblem(value);
  if (problem !== undefined) {
    return idUsable ? { kind: 'reject', commandId: rawId, reason: `malformed command: ${problem}` } : { kind: 'ignore', reason: problem };
  }
  const command = value as Command;
  const commandId = command.id;
  if (!isCommandType(command.type)) {
    const quoted = command.type.slice(0, MAX_QUOTED_TYPE_LENGTH);
    return { kind: 'reject', commandId, reason: `unknown command type ${quoted} (known: ${COMMAND_TYPES.join(', ')})` };
  }
  const checked = checkCommandParams(command.type, device.type, command.params);
  if (!checked.ok) return { kind: 'reject', commandId, reason: checked.problem };
  // After the checks: a command that would be refused anyway says why it is wrong, not that it is late.
  if (command.expiresAt <= nowMs) return { kind: 'reject', commandId, reason: 'expired' };
  const type = checked.command.type;
  const expiresAtMs = command.expiresAt;
  switch (checked.command.type) {
    case 'setPower': {
      const clip = clipSetpoint(checked.command.params.powerW, device.battery);
      const control: ControlChange = { battery: { mode: 'setpoint', powerW: clip.powerW } };
      if (clip.clippedToW === null) return { kind: 'run', commandId, type, expiresAtMs, control, clipped: false, ack: { commandId, status: 'accepted' } };
      const ack: Ack = {
        commandId,
        status: 'accepted',
        reason: `clipped to the power limit of ${clip.clippedToW} W`,
        applied: { powerW: clip.powerW },
      };
      return { kind: 'run', commandId, type, expiresAtMs, control, clipped: true, ack };
    }
    case 'setMode':
      return {
        kind: 'run',
        commandId,
        type,
        expiresAtMs,
        control: { battery: { mode: checked.command.params.mode } },
        clipped: false,
        ack: { commandId, status: 'accepted' },
      };
    case 'curtail': {
      const maxPowerW = checked.command.params.maxPowerW;
      if (maxPowerW === null) {
        // Lifting a cap is done the moment it is applied: nothing runs until an expiry.
        return {
          kind: 'complete',
          commandId,
          type,
          control: { curtailW: null },
          ack: { commandId, status: 'completed', reason: CURTAILMENT_LIFTED_REASON },
        };
      }
      return { kind: 'run', commandId, type, expiresAtMs, control: { curtailW: maxPowerW }, clipped: false, ack: { commandId, status: 'accepted' } };
    }
  }
}

/**
 * When and why the command in force ends, if it has by `nowMs` (wall
 * clock): at its expiry, or once the connection has been lost for
 * `graceMs` (the device no longer trusts a plan it cannot hear about),
 * whichever comes first. `lostSinceMs` is when the connection was lost,
 * null while connected. Undefined while it runs on.
 */
export function dueCommandEnd(
  expiresAtMs: number,
  nowMs: number,
  lostSinceMs: number | null,
  graceMs: number,
): { atMs: number; reason?: string } | undefined {
  const endsAtMs = commandEndsAtMs(expiresAtMs, lostSinceMs, graceMs);
  if (nowMs < endsAtMs) return undefined;
  return endsAtMs === expiresAtMs ? { atMs: endsAtMs } : { atMs: endsAtMs, reason: CONNECTION_LOST_REASON };
}

/** When the command in force ends unless something changes: the earlier of its expiry and, while disconnected, the end of the grace (the expiry on a tie). */
export function commandEndsAtMs(expiresAtMs: number, lostSinceMs: number | null, graceMs: number): number {
  return lostSinceMs === null ? expiresAtMs : Math.min(expiresAtMs, lostSinceMs + graceMs);
}

/** Command ids remembered after they finished, to answer redeliveries without acting twice. */
export const FINISHED_COMMANDS_KEPT = 32;

/** The command a device is carrying out. */
export interface RunningCommand {
  id: string;
  expiresAtMs: number;
  /** The accepted ack, sent again to a redelivery. */
  accepted: Ack;
  /** Simulated time the command took over the site: physics before it belongs to the previous control. */
  startedAtSimMs: number;
  /** The setpoint was clipped to the power limit when the command started. */
  clipped: boolean;
}

/**
 * What the device does with a decision:
 * - `ack`: send `ack` and nothing else (a rejection, or the answer to a
 *   redelivered id: the state the command reached, never a second run);
 * - `apply`: send `superseded` (the completed ack of the command this one
 *   replaces) when there is one, change the site's control, then send `ack`.
 */
export type CommandStep =
  | { kind: 'ack'; ack: Ack }
  | { kind: 'apply'; superseded: Ack | null; control: ControlChange; ack: Ack };

/**
 * A device's memory of its commands: the one in force, and the last answer
 * of the last FINISHED_COMMANDS_KEPT finished ones (delivery is at least
 * once, so an id may come again). Pure; one per device.
 */
export class CommandLedger {
  private running: RunningCommand | null = null;
  private readonly finished = new Map<string, Ack>();
  private readonly finishedKept: number;

  constructor(finishedKept = FINISHED_COMMANDS_KEPT) {
    this.finishedKept = finishedKept;
  }

  /** The command in force, or null under local control. */
  get active(): RunningCommand | null {
    return this.running;
  }

  /** Takes a decision of `decideCommand` at simulated time `simNowMs`. */
  receive(decision: Exclude<CommandDecision, { kind: 'ignore' }>, simNowMs: number): CommandStep {
    const id = decision.commandId;
    if (this.running?.id === id) return { kind: 'ack', ack: this.running.accepted };
    const answered = this.finished.get(id);
    if (answered) return { kind: 'ack', ack: answered };
    if (decision.kind === 'reject') return { kind: 'ack', ack: this.remember({ commandId: id, status: 'rejected', reason: decision.reason }) };
    const superseded = this.end(`superseded by ${id}`);
    if (decision.kind === 'complete') return { kind: 'apply', superseded, control: decision.control, ack: this.remember(decision.ack) };
    this.running = { id, expiresAtMs: decision.expiresAtMs, accepted: decision.ack, startedAtSimMs: simNowMs, clipped: decision.clipped };
    return { kind: 'apply', superseded, control: decision.control, ack: decision.ack };
  }

  /** Ends the command in force, if any: returns its completed ack (with `reason` when given), remembered for redeliveries. */
  end(reason?: string): Ack | null {
    const running = this.running;
    if (!running) return null;
    this.running = null;
    return this.remember(reason === undefined ? { commandId: running.id, status: 'completed' } : { commandId: running.id, status: 'completed', reason });
  }

  private remember(ack: Ack): Ack {
    this.finished.delete(ack.commandId);
    this.finished.set(ack.commandId, ack);
    if (this.finished.size > this.finishedKept) {
      const oldest = this.finished.keys().next().value;
      if (oldest !== undefined) this.finished.delete(oldest);
    }
    return ack;
  }
}
