/**
 * An operator sends a command to one device: checked against the device
 * and the protocol, stored pending, and the process's sender is woken.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { checkCommandParams } from '../../protocol/index.ts';
import type { CommandStore, Registry, StoredCommand } from '../../store/types.ts';
import { conflict, isStoreError, badRequest, notFound } from '../errors.ts';
import { isoTime } from '../presenters/device.ts';

export interface CreateCommandDeps {
  registry: Pick<Registry, 'getDevice'>;
  commands: Pick<CommandStore, 'createCommand'>;
  clock: () => number;
  onCommandCreated: (command: StoredCommand) => void;
}

export interface CreateCommandInput {
  deviceId: string;
  /** As sent; checked here with the device's type. */
  type: string;
  params: Record<string, unknown>;
  ttlSeconds: number;
  idempotencyKey: string | undefined;
}

/**
 * JSON with the keys of every object sorted, so that two bodies that say the
 * same thing in another key order hash the same.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    const entries = Object.keys(object)
      .sort()
      .filter((key) => object[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(object[key])}`);
    return `{${entries.join(',')}}`;
  }
  // undefined (not in parsed JSON, but possible from a caller) is written as JSON.stringify writes it in arrays.
  return JSON.stringify(value) ?? 'null';
}

/**
 * What identifies a request for idempotency: the body as sent (params before
 * normalisation, so `{}` and `{"maxPowerW": null}` are different requests),
 * with ttlSeconds as it applies (a body without it means the default).
 */
export function requestHashOf(input: Pick<CreateCommandInput, 'type' | 'params' | 'ttlSeconds'>): string {
  return createHash('sha256')
    .update(canonicalJson({ type: input.type, params: input.params, ttlSeconds: input.ttlSeconds }))
    .digest('hex');
}

/**
 * Stores a command for a device and returns it with `created: false` when it
 * repeats an earlier request with the same idempotency key (the command made
 * then, whatever became of it). Throws 404 for an unknown device, 409 for a
 * revoked one or for the key used with another request, 400 for a type or
 * params the device does not take.
 */
export function createCommand(
  deps: CreateCommandDeps,
  input: CreateCommandInput,
  log: Pick<FastifyBaseLogger, 'warn'>,
): { command: StoredCommand; created: boolean } {
  const device = deps.registry.getDevice(input.deviceId);
  if (!device) throw notFound(`device '${input.deviceId}' does not exist`);
  if (device.revokedAtMs !== null) {
    throw conflict(`device '${device.id}' was revoked at ${isoTime(device.revokedAtMs)}; a revoked device takes no commands`);
  }
  const checked = checkCommandParams(input.type, device.type, input.params);
  if (!checked.ok) throw badRequest(checked.problem);

  const nowMs = deps.clock();
  const idempotencyKey = input.idempotencyKey ?? null;
  let result: { command: StoredCommand; created: boolean };
  try {
    result = deps.commands.createCommand(
      {
        id: randomUUID(),
        deviceId: device.id,
        type: checked.command.type,
        params: checked.command.params,
        expiresAtMs: nowMs + input.ttlSeconds * 1000,
        idempotencyKey,
        requestHash: idempotencyKey === null ? null : requestHashOf(input),
      },
      nowMs,
    );
  } catch (err) {
    // With a key, a conflict is the key having been used for another request (a fresh UUID does not collide).
    if (idempotencyKey !== null && isStoreError(err) && err.code === 'conflict') {
      throw conflict(
        `Idempotency-Key '${idempotencyKey}' was already used for device '${device.id}' with another request; send a new key for a new command`,
      );
    }
    throw err;
  }
  if (result.created) wakeSender(deps, result.command, log);
  return result;
}

/**
 * The command is stored and the sender finds it at its next poll anyway, so
 * a failure to wake it is logged and does not fail the request.
 */
function wakeSender(deps: Pick<CreateCommandDeps, 'onCommandCreated'>, command: StoredCommand, log: Pick<FastifyBaseLogger, 'warn'>): void {
  try {
    deps.onCommandCreated(command);
  } catch (err) {
    log.warn({ err, commandId: command.id, deviceId: command.deviceId }, 'command stored, but the sender could not be woken');
  }
}
