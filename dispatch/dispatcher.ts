/**
 * The dispatcher: plans dispatches, starts them, runs the closed loop and
 * cancels them. It reads the registry and the twins, writes dispatches and
 * commands through the store's ports, and wakes the command sender; the
 * allocation and each correction are the pure functions of allocator.ts and
 * control-loop.ts.
 *
 * Loop (every `loopMs`, and at once after `wake()`), for every running
 * dispatch (DispatchStore.runningDispatches):
 * - its window has ended → completed (the setpoints expire on the devices
 *   on their own, `commandMarginMs` after the end, and they go back to
 *   local control);
 * - scheduled and due → allocated again for the time left, a `setPower`
 *   sent to each battery (expiring at the end of the window plus the
 *   margin), active;
 * - active → one correction: measured against target from the twins,
 *   batteries that dropped out, rejected or ran low relieved, the shortfall
 *   re-spread over batteries with headroom; only the setpoints that move
 *   are sent again; a tracking sample is stored.
 *
 * Everything the loop needs is in the store (the dispatch, its setpoints,
 * the commands with its dispatch id), so after a restart it picks up where
 * it was and sends nothing it already sent. Each cycle reads only the
 * newest command of each dispatched battery, not a dispatch's whole history,
 * and the registry only when its change token moved.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { FINAL_DISPATCH_STATES, type DispatchRequest, type DispatchTarget } from '../protocol/index.ts';
import {
  StoreError,
  type CommandStore,
  type DeviceRecord,
  type DeviceState,
  type DispatchPlanRecord,
  type DispatchStore,
  type Registry,
  type StoredCommand,
  type StoredDispatch,
  type TwinStore,
} from '../store/types.ts';
import { allocate, explainAllocation, type BatteryView } from './allocator.ts';
import { correct, type CurrentSetpoint, type DispatchCommandState } from './control-loop.ts';

export type { DispatchRequest };

export interface DispatcherSettings {
  /** How often the closed loop runs. */
  loopMs: number;
  /** Setpoints expire this long after the window ends, so a late loop never leaves a gap. */
  commandMarginMs: number;
  /** Under-delivery within this share of the target is left alone. */
  toleranceShare: number;
  /** How long the command sending a battery back to local control on cancel lives. */
  releaseTtlMs: number;
}

export const DEFAULT_DISPATCHER_SETTINGS: DispatcherSettings = { loopMs: 5_000, commandMarginMs: 30_000, toleranceShare: 0.02, releaseTtlMs: 60_000 };

export type PlanWithSetpoints = DispatchPlanRecord & { setpoints: Record<string, number> };

export interface Dispatcher {
  plan(request: DispatchRequest): PlanWithSetpoints;
  /** Stores the dispatch (scheduled) and wakes the loop; `infeasible` (nothing stored) when the target cannot be met and partial was not allowed. */
  create(request: DispatchRequest): { dispatch: StoredDispatch } | { infeasible: PlanWithSetpoints };
  /** Sends every dispatched battery back to local control and marks the dispatch cancelled. Throws StoreError 'not-found' / 'conflict'. */
  cancel(id: string): StoredDispatch;
  /** Runs the loop once now (after a run in progress): for tests and benchmarks. */
  runNow(): Promise<void>;
  wake(): void;
  stop(): Promise<void>;
}

export interface DispatcherOptions {
  dispatches: DispatchStore;
  commands: CommandStore;
  registry: Pick<Registry, 'listDevices' | 'listSites' | 'changeToken'>;
  twins: Pick<TwinStore, 'listDeviceStates'>;
  clock: () => number;
  logger: Logger;
  /** New commands were stored: send them now. */
  onCommandsCreated(): void;
  settings?: Partial<DispatcherSettings>;
  /**
   * Whether this instance runs the loop (default true). A process that only
   * plans, creates and cancels (control on its own) passes false: the
   * dispatch service's loop finds what it stored at its next cycle.
   */
  runLoop?: boolean;
}

export function startDispatcher(options: DispatcherOptions): Dispatcher {
  const settings: DispatcherSettings = { ...DEFAULT_DISPATCHER_SETTINGS, ...options.settings };
  const { dispatches, commands, clock } = options;
  const logger = options.logger.child({ component: 'dispatcher' });
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;

  /**
   * The fleet's active batteries and each site's region, reloaded only when
   * the registry's change token moves: the loop asks for them every cycle.
   */
  let fleet: { token: string; batteries: DeviceRecord[]; regionOfSite: Map<string, string> } | undefined;
  function fleetBatteries(): NonNullable<typeof fleet> {
    const token = options.registry.changeToken();
    if (fleet?.token !== token) {
      fleet = {
        token,
        batteries: options.registry.listDevices().filter((d) => d.type === 'battery' && d.revokedAtMs === null),
        regionOfSite: new Map(options.registry.listSites().map((s) => [s.id, s.region])),
      };
    }
    return fleet;
  }

  /** The batteries a target covers, as the twins see them, with the power limit of the target's direction. */
  function batteriesOf(target: DispatchTarget, sign: number): BatteryView[] {
    const { batteries, regionOfSite } = fleetBatteries();
    const siteIds = 'siteIds' in target ? new Set(target.siteIds) : undefined;
    const covered = (siteId: string): boolean => ('region' in target ? regionOfSite.get(siteId) === target.region : !siteIds || siteIds.has(siteId));
    const devices = batteries.filter((d) => covered(d.siteId));
    const states = new Map(options.twins.listDeviceStates(devices.map((d) => d.id)).map((s) => [s.deviceId, s]));
    return devices.map((device) => {
      const state = states.get(device.id);
      const m = state?.metrics ?? {};
      const limit = sign >= 0 ? m.maxDischargeW : m.maxChargeW;
      return {
        deviceId: device.id,
        siteId: device.siteId,
        presence: state?.presence ?? 'offline',
        maxPowerW: limit ?? Number.NaN,
        capacityWh: m.capacityWh ?? Number.NaN,
        energyWh: m.energyWh ?? Number.NaN,
        reservePct: m.reservePct ?? Number.NaN,
        measuredPowerW: m.powerW ?? null,
      };
    });
  }

  function plan(request: DispatchRequest, remainingMs = request.durationMs): PlanWithSetpoints {
    const allocation = allocate({ targetW: request.powerW, durationMs: remainingMs, batteries: batteriesOf(request.target, Math.sign(request.powerW)) });
    return {
      feasible: allocation.feasible,
      availableW: allocation.availableW,
      shortfallW: allocation.shortfallW,
      marginW: allocation.marginW,
      marginWh: allocation.marginWh,
      devicesUsed: allocation.devicesUsed,
      explanation: explainAllocation(allocation),
      setpoints: Object.fromEntries(allocation.setpoints.map((s) => [s.deviceId, s.powerW])),
    };
  }

  function sendSetpoints(dispatch: StoredDispatch, setpoints: Record<string, number>, nowMs: number): number {
    const expiresAtMs = dispatch.startAtMs + dispatch.durationMs + settings.commandMarginMs;
    if (expiresAtMs <= nowMs) return 0;
    let sent = 0;
    for (const [deviceId, powerW] of Object.entries(setpoints)) {
      commands.createCommand({ id: randomUUID(), deviceId, type: 'setPower', params: { powerW }, expiresAtMs, dispatchId: dispatch.id }, nowMs);
      sent++;
    }
    return sent;
  }

  /**
   * The newest command of this dispatch for each of these devices. One
   * batched read of each device's newest command (usually this dispatch's);
   * only a device whose newest command belongs elsewhere (another dispatch,
   * an operator) is looked up on its own. The cost follows the number of
   * devices, not the dispatch's age.
   */
  function latestCommands(dispatchId: string, deviceIds: readonly string[]): Map<string, StoredCommand> {
    const latest = deviceIds.length === 0 ? new Map<string, StoredCommand>() : commands.latestCommandPerDevice(deviceIds);
    for (const [deviceId, command] of latest) {
      if (command.dispatchId === dispatchId) continue;
      const own = commands.listCommands({ deviceId, dispatchId, limit: 1 }).commands[0];
      if (own) latest.set(deviceId, own);
      else latest.delete(deviceId);
    }
    return latest;
  }

  function step(dispatch: StoredDispatch, nowMs: number): number {
    const endMs = dispatch.startAtMs + dispatch.durationMs;
    if (nowMs >= endMs) {
      if (dispatch.state === 'scheduled') {
        // The loop did not run during the whole window (the service was down): nothing was asked.
        dispatches.updateDispatch(dispatch.id, { state: 'failed', reason: 'its window passed before it could start', lastLoopAtMs: nowMs }, nowMs);
        logger.warn({ dispatchId: dispatch.id }, 'dispatch window passed before it started');
        return 0;
      }
      dispatches.updateDispatch(dispatch.id, { state: 'completed', lastLoopAtMs: nowMs }, nowMs);
      logger.info({ dispatchId: dispatch.id }, 'dispatch completed');
      return 0;
    }
    const remainingMs = endMs - nowMs;
    if (dispatch.state === 'scheduled') {
      const fresh = plan(dispatch, remainingMs);
      if (Object.keys(fresh.setpoints).length === 0) {
        dispatches.updateDispatch(dispatch.id, { state: 'failed', reason: `no battery could take part: ${fresh.explanation}`, lastLoopAtMs: nowMs }, nowMs);
        return 0;
      }
      const sent = sendSetpoints(dispatch, fresh.setpoints, nowMs);
      dispatches.updateDispatch(dispatch.id, { state: 'active', setpoints: fresh.setpoints, lastLoopAtMs: nowMs }, nowMs);
      logger.info({ dispatchId: dispatch.id, devices: sent, targetW: dispatch.powerW }, 'dispatch started');
      return sent;
    }
    const dispatched = Object.keys(dispatch.setpoints);
    const latest = latestCommands(dispatch.id, dispatched);
    const states = options.twins.listDeviceStates(dispatched);
    const resend = devicesToResend(dispatch, states, latest, nowMs);
    const sampledAt = new Map(states.map((s) => [s.deviceId, s.lastSeenMs ?? -Infinity]));
    const current: CurrentSetpoint[] = Object.entries(dispatch.setpoints).map(([deviceId, powerW]) => {
      const command = latest.get(deviceId);
      let state: string = command?.state ?? 'sent';
      // A battery that should be running its setpoint and is not is counted as asked: it is sent it again below.
      if (resend.has(deviceId)) state = 'sent';
      // Accepted after its latest sample arrived (platform clock): what it measures is still the old setpoint, not a shortfall
      // to make up for (chasing it would swing the loop and flood the batteries with commands).
      else if (state === 'accepted' && (command!.transitions.find((t) => t.state === 'accepted')?.atMs ?? 0) > (sampledAt.get(deviceId) ?? -Infinity)) state = 'sent';
      return { deviceId, powerW, state: (state === 'pending' ? 'sent' : state) as DispatchCommandState };
    });
    const batteries = batteriesOf(dispatch.target, Math.sign(dispatch.powerW));
    const correction = correct({ targetW: dispatch.powerW, remainingMs, batteries, current, toleranceW: Math.abs(dispatch.powerW) * settings.toleranceShare });
    const changed: Record<string, number> = Object.fromEntries(correction.setpoints.map((s) => [s.deviceId, s.powerW]));
    for (const deviceId of resend) if (!(deviceId in changed)) changed[deviceId] = dispatch.setpoints[deviceId]!;
    const setpoints = { ...dispatch.setpoints, ...changed };
    for (const [deviceId, powerW] of Object.entries(changed)) if (powerW === 0 && !(deviceId in dispatch.setpoints)) delete setpoints[deviceId];
    const sent = sendSetpoints(dispatch, changed, nowMs);
    const reporting = batteries.filter((b) => b.deviceId in setpoints && b.presence === 'online' && b.measuredPowerW !== null).length;
    dispatches.addDispatchSample(dispatch.id, { atMs: nowMs, targetW: dispatch.powerW, measuredW: correction.measuredW, confidence: correction.confidence, devicesReporting: reporting });
    dispatches.updateDispatch(dispatch.id, { setpoints, lastLoopAtMs: nowMs }, nowMs);
    return sent;
  }

  /**
   * Desired against reported: dispatched batteries that are connected but
   * not running their setpoint any more, and did not refuse it: the
   * command ended early (a device that lost the platform for longer than
   * its grace drops it and acks completed), or the device reports another
   * command (it restarted and forgot it) well after accepting. They are
   * sent their setpoint again; a refusal (rejected) is respected.
   */
  function devicesToResend(dispatch: StoredDispatch, states: readonly DeviceState[], latest: Map<string, StoredCommand>, nowMs: number): Set<string> {
    const resend = new Set<string>();
    for (const state of states) {
      if (state.presence !== 'online' || !dispatch.setpoints[state.deviceId]) continue;
      const command = latest.get(state.deviceId);
      if (!command) continue;
      const running = command.state === 'accepted';
      const endedEarly = command.state === 'completed' || command.state === 'expired' || command.state === 'failed';
      const acceptedAtMs = command.transitions.find((t) => t.state === 'accepted')?.atMs ?? command.createdAtMs;
      const reportedId = state.status?.commandId;
      const forgot = running && nowMs - acceptedAtMs > 2 * settings.loopMs && reportedId !== undefined && reportedId !== command.id;
      if (endedEarly || forgot) resend.add(state.deviceId);
    }
    return resend;
  }

  async function loop(): Promise<void> {
    const nowMs = clock();
    let sent = 0;
    for (const dispatch of dispatches.runningDispatches(nowMs)) {
      try {
        sent += step(dispatch, nowMs);
      } catch (error) {
        logger.warn({ err: error, dispatchId: dispatch.id }, 'dispatch loop step failed; retried at the next cycle');
      }
    }
    if (sent > 0) options.onCommandsCreated();
  }

  const runLoop = options.runLoop ?? true;
  function schedule(delayMs: number): void {
    if (stopped || !runLoop) return;
    clearTimeout(timer);
    timer = setTimeout(() => void runNow(), delayMs);
  }

  async function runNow(): Promise<void> {
    while (running) await running;
    if (stopped || !runLoop) return;
    clearTimeout(timer);
    running = loop().finally(() => {
      running = undefined;
      schedule(settings.loopMs);
    });
    await running;
  }

  schedule(0);
  return {
    plan: (request) => plan(request),
    create(request) {
      const planned = plan(request);
      if (!planned.feasible && !request.allowPartial) return { infeasible: planned };
      const { setpoints, ...record } = planned;
      const dispatch = dispatches.createDispatch(
        { id: randomUUID(), target: request.target, powerW: request.powerW, startAtMs: request.startAtMs, durationMs: request.durationMs, allowPartial: request.allowPartial, plan: record, setpoints },
        clock(),
      );
      schedule(0);
      return { dispatch };
    },
    cancel(id) {
      const nowMs = clock();
      const dispatch = dispatches.getDispatch(id);
      if (!dispatch) throw new StoreError('not-found', `dispatch '${id}' does not exist`);
      // The store lets a state be set again (the loop updates an active dispatch), so a final one is refused here.
      if (FINAL_DISPATCH_STATES.includes(dispatch.state)) throw new StoreError('conflict', `dispatch '${id}' is already ${dispatch.state}`);
      const cancelled = dispatches.updateDispatch(id, { state: 'cancelled', reason: 'cancelled by an operator', lastLoopAtMs: nowMs }, nowMs);
      // A dispatch that never started asked nothing of anyone: there is nothing to release.
      const asked = dispatch.state === 'active' ? Object.keys(dispatch.setpoints) : [];
      for (const deviceId of asked) {
        commands.createCommand(
          { id: randomUUID(), deviceId, type: 'setMode', params: { mode: 'selfConsumption' }, expiresAtMs: nowMs + settings.releaseTtlMs, dispatchId: id },
          nowMs,
        );
      }
      if (asked.length > 0) options.onCommandsCreated();
      return cancelled;
    },
    runNow,
    wake: () => schedule(0),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
