/**
 * What a simulated device does with a command payload. Pure: the caller
 * passes the time and carries out the decision (ack, setpoint).
 *
 * Supported: `setPower` on a battery, `params.powerW` a finite number
 * (positive = discharge), followed until `expiresAt` (wall clock).
 * Everything else is rejected with a reason, provided the payload carries a
 * command id to reject; a payload without one cannot be acknowledged and is
 * ignored (and counted by the caller).
 */
import { parseJson, type Command, type DeviceType } from '../protocol/index.ts';

export type CommandDecision =
  | { kind: 'ignore'; reason: string }
  | { kind: 'reject'; commandId: string; reason: string }
  | { kind: 'set-power'; commandId: string; powerW: number; expiresAtMs: number };

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COMMAND_KEYS = new Set(['id', 'type', 'params', 'expiresAt']);
/** Longest command id an ack can carry (protocol AckSchema). */
const MAX_ACK_COMMAND_ID_LENGTH = 64;

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

export function decideCommand(payload: Buffer | Uint8Array | string, deviceType: DeviceType, nowMs: number): CommandDecision {
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
  if (command.type !== 'setPower') return { kind: 'reject', commandId: command.id, reason: `unknown command type ${command.type}` };
  if (deviceType !== 'battery') return { kind: 'reject', commandId: command.id, reason: `a ${deviceType} does not support setPower` };
  if (command.expiresAt <= nowMs) return { kind: 'reject', commandId: command.id, reason: 'expired' };
  const powerW = command.params.powerW;
  if (typeof powerW !== 'number' || !Number.isFinite(powerW)) {
    return { kind: 'reject', commandId: command.id, reason: 'params.powerW must be a finite number' };
  }
  return { kind: 'set-power', commandId: command.id, powerW, expiresAtMs: command.expiresAt };
}
