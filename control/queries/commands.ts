/** Reads of commands, and of the control a device is under. */
import type { CommandState } from '../../protocol/index.ts';
import type { CommandStore, DeviceRecord, DeviceState, StoredCommand } from '../../store/types.ts';
import { notFound, readPage } from '../errors.ts';
import { presentCommand, presentDeviceControl, type DeviceControlView } from '../presenters/command.ts';
import { COMMAND_ID_PATTERN } from '../schemas/commands.ts';

const COMMAND_ID = new RegExp(COMMAND_ID_PATTERN);

export interface CommandPageParams {
  limit: number;
  deviceId?: string | undefined;
  state?: CommandState | undefined;
  dispatchId?: string | undefined;
  before?: string | undefined;
}

/** One page of commands, newest first; `next` continues it. */
export function queryCommands(deps: { commands: Pick<CommandStore, 'listCommands'> }, params: CommandPageParams) {
  const { limit, deviceId, state, dispatchId, before } = params;
  const page = readPage(before, () =>
    deps.commands.listCommands({
      limit,
      ...(deviceId === undefined ? {} : { deviceId }),
      ...(state === undefined ? {} : { state }),
      ...(dispatchId === undefined ? {} : { dispatchId }),
      ...(before === undefined ? {} : { before }),
    }),
  );
  return { commands: page.commands.map(presentCommand), next: page.next };
}

/**
 * The command with this id, or a 404. An id that is not a UUID cannot name
 * a command, so it is a 404 without asking the store.
 */
export function requireCommand(deps: { commands: Pick<CommandStore, 'getCommand'> }, id: string): StoredCommand {
  const command = COMMAND_ID.test(id) ? deps.commands.getCommand(id) : undefined;
  if (!command) throw notFound(`command '${id}' does not exist`);
  return command;
}

export function queryCommand(deps: { commands: Pick<CommandStore, 'getCommand'> }, id: string) {
  return presentCommand(requireCommand(deps, id));
}

/**
 * Desired versus reported control of each device, with one read of the
 * newest commands for all of them (the twins are read by the caller).
 */
export function queryDeviceControls(
  deps: { commands: Pick<CommandStore, 'latestCommandPerDevice'>; clock: () => number },
  devices: readonly DeviceRecord[],
  states: readonly DeviceState[],
): Map<string, DeviceControlView> {
  const latest = devices.length === 0 ? new Map<string, StoredCommand>() : deps.commands.latestCommandPerDevice(devices.map((d) => d.id));
  const stateById = new Map(states.map((s) => [s.deviceId, s]));
  const nowMs = deps.clock();
  return new Map(devices.map((d) => [d.id, presentDeviceControl(latest.get(d.id), stateById.get(d.id), nowMs)]));
}

/** Desired versus reported control of one device. */
export function queryDeviceControl(
  deps: { commands: Pick<CommandStore, 'latestCommandPerDevice'>; clock: () => number },
  device: DeviceRecord,
  state: DeviceState | undefined,
): DeviceControlView {
  return presentDeviceControl(deps.commands.latestCommandPerDevice([device.id]).get(device.id), state, deps.clock());
}
