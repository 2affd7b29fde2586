/**
 * The dispatcher on a real (in-memory) SQLite store, driven loop by loop
 * with `runNow()` and a controlled clock (the timer is an hour, so nothing
 * runs on its own; no sleeping): plans for the fleet, a region and a list
 * of sites; infeasible creates; a scheduled dispatch started at its start;
 * the closed loop's samples, a battery dropping out, setpoints sent again
 * to batteries that stopped running them (but not to one that refused);
 * the end of the window; cancel; and a restart on the same store.
 *
 * Batteries (unless a test changes them): 5 kW each way, 40 kWh full, a
 * 20 % reserve, so (40 − 8) kWh × 0.95 = 30.4 kWh usable: 5 kW can be held
 * for any window up to 6 hours, and the allocator splits a target evenly.
 */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FINAL_DISPATCH_STATES } from '../protocol/index.ts';
import { StoreError, openSqliteStore, type DeviceState, type Presence, type SqliteStore, type StoredCommand, type StoredDispatch } from '../store/index.ts';
import { DEFAULT_DISPATCHER_SETTINGS, startDispatcher, type DispatchRequest, type Dispatcher } from './dispatcher.ts';

const HOUR = 3_600_000;
const T0 = 1_000_000_000;
const MARGIN_MS = DEFAULT_DISPATCHER_SETTINGS.commandMarginMs;
const BATTERY_METRICS = { powerW: 0, energyWh: 40_000, capacityWh: 40_000, reservePct: 20, maxChargeW: 5_000, maxDischargeW: 5_000 };

describe('dispatcher', () => {
  let store: SqliteStore;
  let nowMs: number;
  let woken: number;
  const dispatchers: Dispatcher[] = [];

  /**
   * Sites and devices:
   * - s1 (north): bat-1, bat-2 online; pv-1, a solar inverter (online, with battery-like figures);
   * - s2 (north): bat-3 online; bat-4 stale;
   * - s3 (south): bat-5 online; bat-6 offline; bat-7 revoked (its twin online); bat-8 never seen (no twin).
   */
  beforeEach(() => {
    store = openSqliteStore({ file: ':memory:' });
    nowMs = T0;
    woken = 0;
    store.upsertSite({ id: 's1', region: 'north', name: 'One' });
    store.upsertSite({ id: 's2', region: 'north', name: 'Two' });
    store.upsertSite({ id: 's3', region: 'south', name: 'Three' });
    const devices: Array<[string, 'battery' | 'solar', string]> = [
      ['bat-1', 'battery', 's1'],
      ['bat-2', 'battery', 's1'],
      ['pv-1', 'solar', 's1'],
      ['bat-3', 'battery', 's2'],
      ['bat-4', 'battery', 's2'],
      ['bat-5', 'battery', 's3'],
      ['bat-6', 'battery', 's3'],
      ['bat-7', 'battery', 's3'],
      ['bat-8', 'battery', 's3'],
    ];
    for (const [id, type, siteId] of devices) store.createDevice({ id, type, siteId, secretHash: 'h' }, 0);
    store.revokeDevice('bat-7', 1);
    for (const id of ['bat-1', 'bat-2', 'pv-1', 'bat-3', 'bat-5', 'bat-7']) twin(id);
    twin('bat-4', { presence: 'stale' });
    twin('bat-6', { presence: 'offline' });
  });
  afterEach(async () => {
    for (const dispatcher of dispatchers.splice(0)) await dispatcher.stop();
    await store.close();
  });

  function start(): Dispatcher {
    const dispatcher = startDispatcher({
      dispatches: store.dispatches,
      commands: store.commands,
      registry: store,
      twins: store,
      clock: () => nowMs,
      logger: pino({ level: 'silent' }),
      onCommandsCreated: () => woken++,
      settings: { loopMs: HOUR },
    });
    dispatchers.push(dispatcher);
    return dispatcher;
  }

  /** Saves a battery's twin: online, the default figures, no status, unless told otherwise. */
  function twin(deviceId: string, change: { presence?: Presence; metrics?: Partial<typeof BATTERY_METRICS>; status?: Record<string, unknown> | null } = {}): void {
    const metrics: Record<string, number> = { ...BATTERY_METRICS };
    for (const [name, value] of Object.entries(change.metrics ?? {})) {
      if (value === undefined) delete metrics[name];
      else metrics[name] = value;
    }
    const state: DeviceState = {
      deviceId,
      lastTs: nowMs,
      lastSeenMs: nowMs,
      lastSeq: 1,
      metrics,
      presence: change.presence ?? 'online',
      presenceSinceMs: nowMs,
      status: change.status ?? null,
    };
    store.saveDeviceStates([state]);
  }

  const request = (values: Partial<DispatchRequest> = {}): DispatchRequest => ({
    target: { region: 'north' },
    powerW: 6_000,
    startAtMs: nowMs,
    durationMs: HOUR,
    allowPartial: false,
    ...values,
  });

  function create(dispatcher: Dispatcher, values: Partial<DispatchRequest> = {}): StoredDispatch {
    const result = dispatcher.create(request(values));
    if (!('dispatch' in result)) throw new Error(`unexpectedly infeasible: ${result.infeasible.explanation}`);
    return result.dispatch;
  }

  /** The dispatch's commands, oldest first. */
  function commandsOf(dispatchId: string): StoredCommand[] {
    return store.commands.listCommands({ dispatchId, limit: 1_000 }).commands.reverse();
  }

  /** The setPower commands created after the first `skip`, as device → W. */
  function setpointsSent(dispatchId: string, skip: number): Record<string, number> {
    return Object.fromEntries(
      commandsOf(dispatchId)
        .slice(skip)
        .map((c) => [c.deviceId, c.params.powerW as number]),
    );
  }

  function expectStoreError(fn: () => unknown, code: StoreError['code']): void {
    let caught: unknown;
    try {
      fn();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StoreError);
    expect((caught as StoreError).code).toBe(code);
  }

  /** Each device's newest command of the dispatch. */
  function latest(dispatchId: string): Map<string, StoredCommand> {
    const byDevice = new Map<string, StoredCommand>();
    for (const command of commandsOf(dispatchId)) byDevice.set(command.deviceId, command);
    return byDevice;
  }

  /** Every battery of the dispatch accepts its newest command and runs it exactly, reporting it in its status. */
  function acceptAll(dispatchId: string): void {
    for (const [deviceId, command] of latest(dispatchId)) {
      store.commands.applyAck(deviceId, { commandId: command.id, status: 'accepted' }, nowMs);
      twin(deviceId, { metrics: { powerW: command.params.powerW as number }, status: { commandId: command.id } });
    }
  }

  /** Creates a dispatch starting now over north (bat-1..3 at 2 kW each) and runs the loop once to start it. */
  async function startedDispatch(dispatcher: Dispatcher, values: Partial<DispatchRequest> = {}): Promise<StoredDispatch> {
    const created = create(dispatcher, values);
    await dispatcher.runNow();
    const dispatch = store.dispatches.getDispatch(created.id)!;
    expect(dispatch.state).toBe('active');
    expect(dispatch.setpoints).toEqual({ 'bat-1': 2_000, 'bat-2': 2_000, 'bat-3': 2_000 });
    return dispatch;
  }

  describe('plan and create', () => {
    it('plans over the fleet: only batteries, not revoked ones, not offline, stale or never-seen ones', () => {
      const dispatcher = start();
      const plan = dispatcher.plan(request({ target: { fleet: true }, powerW: 8_000 }));
      expect(plan.setpoints).toEqual({ 'bat-1': 2_000, 'bat-2': 2_000, 'bat-3': 2_000, 'bat-5': 2_000 });
      expect(plan).toMatchObject({ feasible: true, availableW: 20_000, shortfallW: 0, marginW: 12_000, devicesUsed: 4 });
      expect(plan.explanation).toContain('from 4 batteries');
      expect(plan.explanation).toContain('2 offline');
      expect(plan.explanation).toContain('1 not heard from recently');
      // A plan stores nothing.
      expect(store.dispatches.listDispatches({ limit: 10 }).dispatches).toEqual([]);
    });

    it('plans over a region: only the batteries of its sites', () => {
      const dispatcher = start();
      const plan = dispatcher.plan(request({ target: { region: 'north' }, powerW: 6_000 }));
      expect(plan.setpoints).toEqual({ 'bat-1': 2_000, 'bat-2': 2_000, 'bat-3': 2_000 });
      expect(plan).toMatchObject({ feasible: true, availableW: 15_000, devicesUsed: 3 });
      expect(plan.explanation).toContain('1 not heard from recently');
      expect(plan.explanation).not.toContain('offline');
      const south = dispatcher.plan(request({ target: { region: 'south' }, powerW: 3_000 }));
      expect(south.setpoints).toEqual({ 'bat-5': 3_000 });
      expect(dispatcher.plan(request({ target: { region: 'nowhere' } }))).toMatchObject({ feasible: false, devicesUsed: 0, setpoints: {} });
    });

    it('plans over a list of sites: only their batteries', () => {
      const dispatcher = start();
      const plan = dispatcher.plan(request({ target: { siteIds: ['s1', 's3'] }, powerW: 6_000 }));
      expect(plan.setpoints).toEqual({ 'bat-1': 2_000, 'bat-2': 2_000, 'bat-5': 2_000 });
      expect(plan).toMatchObject({ feasible: true, availableW: 15_000, devicesUsed: 3 });
      expect(plan.explanation).toContain('2 offline');
      expect(plan.explanation).not.toContain('not heard from recently');
      expect(dispatcher.plan(request({ target: { siteIds: ['s2'] }, powerW: 1_000 })).setpoints).toEqual({ 'bat-3': 1_000 });
    });

    it('reads the registry again only when it changed: a battery provisioned or revoked since is seen at once', () => {
      const dispatcher = start();
      let listed = 0;
      const listDevices = store.listDevices.bind(store);
      store.listDevices = (filter) => {
        listed++;
        return listDevices(filter);
      };
      expect(Object.keys(dispatcher.plan(request({ target: { siteIds: ['s1'] }, powerW: 2_000 })).setpoints)).toEqual(['bat-1', 'bat-2']);
      dispatcher.plan(request({ target: { siteIds: ['s1'] }, powerW: 2_000 }));
      expect(listed).toBe(1);
      store.createDevice({ id: 'bat-9', type: 'battery', siteId: 's1', secretHash: 'h' }, 2);
      twin('bat-9');
      store.revokeDevice('bat-1', 3);
      expect(Object.keys(dispatcher.plan(request({ target: { siteIds: ['s1'] }, powerW: 2_000 })).setpoints)).toEqual(['bat-2', 'bat-9']);
      store.listDevices = listDevices;
    });

    it('plans a charge (negative target) by the charge limits and the room left', () => {
      twin('bat-1', { metrics: { energyWh: 20_000, maxChargeW: 3_000 } });
      twin('bat-2', { metrics: { energyWh: 20_000, maxChargeW: 3_000 } });
      const dispatcher = start();
      // bat-3 is full: no room; bat-1 and bat-2 take 3 kW each at most.
      const plan = dispatcher.plan(request({ target: { siteIds: ['s1', 's2'] }, powerW: -4_000 }));
      expect(plan.setpoints).toEqual({ 'bat-1': -2_000, 'bat-2': -2_000 });
      expect(plan).toMatchObject({ feasible: true, availableW: 6_000 });
      expect(plan.explanation).toContain('already full');
    });

    it('returns an infeasible create without storing anything', () => {
      const dispatcher = start();
      const result = dispatcher.create(request({ target: { fleet: true }, powerW: 30_000 }));
      expect('infeasible' in result).toBe(true);
      if (!('infeasible' in result)) return;
      expect(result.infeasible).toMatchObject({ feasible: false, availableW: 20_000, shortfallW: 10_000, devicesUsed: 4 });
      expect(result.infeasible.setpoints).toEqual({ 'bat-1': 5_000, 'bat-2': 5_000, 'bat-3': 5_000, 'bat-5': 5_000 });
      expect(store.dispatches.listDispatches({ limit: 10 }).dispatches).toEqual([]);
    });

    it('stores an infeasible dispatch, scheduled, when partial is allowed', async () => {
      const dispatcher = start();
      const dispatch = create(dispatcher, { target: { fleet: true }, powerW: 30_000, startAtMs: T0 + 60_000, allowPartial: true });
      expect(dispatch).toMatchObject({ state: 'scheduled', powerW: 30_000, allowPartial: true, target: { fleet: true } });
      expect(dispatch.plan).toMatchObject({ feasible: false, shortfallW: 10_000, devicesUsed: 4 });
      expect(dispatch.setpoints).toEqual({ 'bat-1': 5_000, 'bat-2': 5_000, 'bat-3': 5_000, 'bat-5': 5_000 });
      expect(store.dispatches.getDispatch(dispatch.id)).toEqual(dispatch);
      expect(store.dispatches.listDispatches({ limit: 10 }).dispatches.map((d) => d.id)).toEqual([dispatch.id]);
      // At its start, every battery runs at its limit.
      nowMs = T0 + 60_000;
      await dispatcher.runNow();
      expect(store.dispatches.getDispatch(dispatch.id)!.state).toBe('active');
      expect(setpointsSent(dispatch.id, 0)).toEqual({ 'bat-1': 5_000, 'bat-2': 5_000, 'bat-3': 5_000, 'bat-5': 5_000 });
    });
  });

  describe('start', () => {
    it('starts a scheduled dispatch only once its start has come: active, one setPower per battery expiring after the window', async () => {
      const dispatcher = start();
      const startAtMs = T0 + 60_000;
      const dispatch = create(dispatcher, { startAtMs });
      expect(dispatch.state).toBe('scheduled');
      await dispatcher.runNow();
      nowMs = startAtMs - 1;
      await dispatcher.runNow();
      expect(store.dispatches.getDispatch(dispatch.id)).toMatchObject({ state: 'scheduled', lastLoopAtMs: null });
      expect(commandsOf(dispatch.id)).toEqual([]);
      expect(woken).toBe(0);

      nowMs = startAtMs;
      await dispatcher.runNow();
      expect(store.dispatches.getDispatch(dispatch.id)).toMatchObject({
        state: 'active',
        lastLoopAtMs: startAtMs,
        setpoints: { 'bat-1': 2_000, 'bat-2': 2_000, 'bat-3': 2_000 },
      });
      const commands = commandsOf(dispatch.id);
      expect(commands).toHaveLength(3);
      for (const command of commands) {
        expect(command).toMatchObject({
          type: 'setPower',
          params: { powerW: 2_000 },
          dispatchId: dispatch.id,
          state: 'pending',
          createdAtMs: startAtMs,
          expiresAtMs: startAtMs + HOUR + MARGIN_MS,
        });
      }
      expect(commands.map((c) => c.deviceId).sort()).toEqual(['bat-1', 'bat-2', 'bat-3']);
      expect(woken).toBe(1);
      // Starting stores no tracking sample.
      expect(store.dispatches.listDispatchSamples(dispatch.id, { limit: 10 })).toEqual([]);
    });

    it('allocates again at the start, over the batteries as they are then', async () => {
      const dispatcher = start();
      const dispatch = create(dispatcher, { startAtMs: T0 + 60_000 });
      expect(dispatch.setpoints).toEqual({ 'bat-1': 2_000, 'bat-2': 2_000, 'bat-3': 2_000 });
      twin('bat-3', { presence: 'offline' });
      nowMs = T0 + 60_000;
      await dispatcher.runNow();
      expect(store.dispatches.getDispatch(dispatch.id)!.setpoints).toEqual({ 'bat-1': 3_000, 'bat-2': 3_000 });
      expect(setpointsSent(dispatch.id, 0)).toEqual({ 'bat-1': 3_000, 'bat-2': 3_000 });
    });

    it('fails a dispatch no battery can take part in at its start, sending nothing', async () => {
      const dispatcher = start();
      const dispatch = create(dispatcher, { startAtMs: T0 + 60_000 });
      for (const id of ['bat-1', 'bat-2', 'bat-3']) twin(id, { presence: 'offline' });
      nowMs = T0 + 60_000;
      await dispatcher.runNow();
      const failed = store.dispatches.getDispatch(dispatch.id)!;
      expect(failed.state).toBe('failed');
      expect(failed.reason).toMatch(/^no battery could take part/);
      expect(commandsOf(dispatch.id)).toEqual([]);
      expect(woken).toBe(0);
    });
  });

  describe('closed loop', () => {
    it('stores a sample at each run, measured from the twins of the dispatched batteries', async () => {
      const dispatcher = start();
      const dispatch = await startedDispatch(dispatcher);
      acceptAll(dispatch.id);
      // bat-1 delivers a little less than asked: within the 2 % tolerance (120 W), left alone.
      twin('bat-1', { metrics: { powerW: 1_900 }, status: { commandId: latest(dispatch.id).get('bat-1')!.id } });
      // Not dispatched: never counted.
      twin('bat-5', { metrics: { powerW: 4_000 } });
      nowMs += 5_000;
      await dispatcher.runNow();
      // bat-3 stops reporting its power.
      twin('bat-3', { metrics: { powerW: undefined }, status: { commandId: latest(dispatch.id).get('bat-3')!.id } });
      nowMs += 5_000;
      await dispatcher.runNow();
      expect(store.dispatches.listDispatchSamples(dispatch.id, { limit: 10 })).toEqual([
        { atMs: T0 + 5_000, targetW: 6_000, measuredW: 5_900, confidence: 1, devicesReporting: 3 },
        { atMs: T0 + 10_000, targetW: 6_000, measuredW: 3_900, confidence: 2 / 3, devicesReporting: 2 },
      ]);
      expect(store.dispatches.getDispatch(dispatch.id)).toMatchObject({ state: 'active', lastLoopAtMs: T0 + 10_000 });
      // On target within tolerance: nothing new sent.
      expect(commandsOf(dispatch.id)).toHaveLength(3);
      expect(woken).toBe(1);
    });

    it('counts as a shortfall what a battery measures after it accepted its setpoint', async () => {
      const dispatcher = start();
      const dispatch = await startedDispatch(dispatcher);
      acceptAll(dispatch.id);
      nowMs += 1_000;
      // A sample after the acceptance: bat-1 delivers nothing of its 2 kW.
      twin('bat-1', { metrics: { powerW: 0 }, status: { commandId: latest(dispatch.id).get('bat-1')!.id } });
      nowMs += 1_000;
      await dispatcher.runNow();
      const sent = setpointsSent(dispatch.id, 3);
      expect(sent['bat-2']).toBeGreaterThan(2_000);
      expect(sent['bat-3']).toBeGreaterThan(2_000);
    });

    it('waits for a sample taken after the acceptance before it corrects for a battery', async () => {
      const dispatcher = start();
      const dispatch = await startedDispatch(dispatcher);
      // Every battery reported (0 W) before the acks came: nothing is a shortfall yet.
      for (const deviceId of ['bat-1', 'bat-2', 'bat-3']) twin(deviceId, { metrics: { powerW: 0 } });
      nowMs += 1_000;
      for (const [deviceId, command] of latest(dispatch.id)) store.commands.applyAck(deviceId, { commandId: command.id, status: 'accepted' }, nowMs);
      nowMs += 1_000;
      await dispatcher.runNow();
      expect(commandsOf(dispatch.id)).toHaveLength(3);
      expect(store.dispatches.listDispatchSamples(dispatch.id, { limit: 10 }).at(-1)).toMatchObject({ measuredW: 0, confidence: 0 });
    });

    it('takes a battery that went offline out (0 W) and asks its share of the others, sending only the setpoints that changed', async () => {
      const dispatcher = start();
      const dispatch = await startedDispatch(dispatcher);
      twin('bat-3', { presence: 'offline' });
      nowMs += 5_000;
      await dispatcher.runNow();
      expect(setpointsSent(dispatch.id, 3)).toEqual({ 'bat-1': 3_000, 'bat-2': 3_000, 'bat-3': 0 });
      expect(commandsOf(dispatch.id)).toHaveLength(6);
      for (const command of commandsOf(dispatch.id).slice(3)) expect(command).toMatchObject({ dispatchId: dispatch.id, expiresAtMs: T0 + HOUR + MARGIN_MS });
      expect(store.dispatches.getDispatch(dispatch.id)!.setpoints).toEqual({ 'bat-1': 3_000, 'bat-2': 3_000, 'bat-3': 0 });
      expect(woken).toBe(2);
      // Nothing moved since: nothing sent, the sender not woken.
      nowMs += 5_000;
      await dispatcher.runNow();
      expect(commandsOf(dispatch.id)).toHaveLength(6);
      expect(woken).toBe(2);
    });

    it.each(['completed', 'expired', 'failed'] as const)(
      'sends its setpoint again to a connected battery whose command ended early (%s), and to no other',
      async (ending) => {
        const dispatcher = start();
        const dispatch = await startedDispatch(dispatcher);
        const first = latest(dispatch.id).get('bat-1')!;
        if (ending === 'completed') acceptAll(dispatch.id);
        else {
          // bat-1 never answered; the others accepted and run their setpoints.
          for (const [deviceId, command] of latest(dispatch.id)) {
            if (deviceId === 'bat-1') continue;
            store.commands.applyAck(deviceId, { commandId: command.id, status: 'accepted' }, nowMs);
            twin(deviceId, { metrics: { powerW: 2_000 }, status: { commandId: command.id } });
          }
        }
        nowMs += 5_000;
        if (ending === 'completed') {
          // It lost the platform for longer than its grace, dropped the setpoint and said so once back.
          store.commands.applyAck('bat-1', { commandId: first.id, status: 'completed', reason: 'lost the platform' }, nowMs);
        } else if (ending === 'expired') {
          // The queue is told its expiry has come (another process's clock); the accepted ones are within their completion grace.
          expect(store.commands.expireCommands(first.expiresAtMs, 2 * MARGIN_MS).map((c) => c.id)).toEqual([first.id]);
        } else {
          store.commands.failCommand(first.id, { atMs: nowMs, reason: 'no answer after 5 tries' });
        }
        expect(store.commands.getCommand(first.id)!.state).toBe(ending);
        twin('bat-1', { metrics: { powerW: 0 }, status: { commandId: null } });
        const woke = woken;
        await dispatcher.runNow();
        expect(setpointsSent(dispatch.id, 3)).toEqual({ 'bat-1': 2_000 });
        const again = latest(dispatch.id).get('bat-1')!;
        expect(again).toMatchObject({ state: 'pending', dispatchId: dispatch.id, expiresAtMs: T0 + HOUR + MARGIN_MS });
        expect(again.id).not.toBe(first.id);
        expect(store.dispatches.getDispatch(dispatch.id)!.setpoints).toEqual({ 'bat-1': 2_000, 'bat-2': 2_000, 'bat-3': 2_000 });
        expect(woken).toBe(woke + 1);
        // Its new command is on its way: not sent a third time.
        nowMs += 5_000;
        await dispatcher.runNow();
        expect(commandsOf(dispatch.id)).toHaveLength(4);
      },
    );

    it('does not send its setpoint again to a battery that rejected it, and asks its share of the others', async () => {
      const dispatcher = start();
      const dispatch = await startedDispatch(dispatcher);
      const refused = latest(dispatch.id).get('bat-1')!;
      for (const [deviceId, command] of latest(dispatch.id)) {
        if (deviceId === 'bat-1') continue;
        store.commands.applyAck(deviceId, { commandId: command.id, status: 'accepted' }, nowMs);
        twin(deviceId, { metrics: { powerW: 2_000 }, status: { commandId: command.id } });
      }
      nowMs += 1_000;
      store.commands.applyAck('bat-1', { commandId: refused.id, status: 'rejected', reason: 'in backup mode' }, nowMs);
      twin('bat-1', { metrics: { powerW: 0 }, status: { commandId: null } });
      nowMs += 4_000;
      await dispatcher.runNow();
      expect(setpointsSent(dispatch.id, 3)).toEqual({ 'bat-2': 3_000, 'bat-3': 3_000 });
      nowMs += 5_000;
      await dispatcher.runNow();
      nowMs += 5_000;
      await dispatcher.runNow();
      expect(commandsOf(dispatch.id).filter((c) => c.deviceId === 'bat-1').map((c) => c.id)).toEqual([refused.id]);
      expect(commandsOf(dispatch.id)).toHaveLength(5);
    });

    it("reads each battery's newest command of the dispatch, not the dispatch's history, even when a newer command of another source exists", async () => {
      const dispatcher = start();
      const dispatch = await startedDispatch(dispatcher);
      const refused = latest(dispatch.id).get('bat-1')!;
      for (const [deviceId, command] of latest(dispatch.id)) {
        if (deviceId === 'bat-1') continue;
        store.commands.applyAck(deviceId, { commandId: command.id, status: 'accepted' }, nowMs);
        twin(deviceId, { metrics: { powerW: 2_000 }, status: { commandId: command.id } });
      }
      nowMs += 1_000;
      store.commands.applyAck('bat-1', { commandId: refused.id, status: 'rejected', reason: 'in backup mode' }, nowMs);
      // An operator's command, newer than the dispatch's: bat-1's rejection must still be found.
      store.commands.createCommand(
        { id: '00000000-0000-4000-8000-000000000001', deviceId: 'bat-1', type: 'setMode', params: { mode: 'backup' }, expiresAtMs: nowMs + HOUR },
        nowMs,
      );
      twin('bat-1', { metrics: { powerW: 0 }, status: { commandId: null } });
      const listed: Array<{ deviceId?: string; dispatchId?: string }> = [];
      const list = store.commands.listCommands.bind(store.commands);
      store.commands.listCommands = (query) => {
        listed.push(query);
        return list(query);
      };
      nowMs += 4_000;
      await dispatcher.runNow();
      store.commands.listCommands = list;
      expect(setpointsSent(dispatch.id, 3)).toEqual({ 'bat-2': 3_000, 'bat-3': 3_000 });
      // One lookup, for the battery whose newest command is not the dispatch's; never a page of the whole dispatch.
      expect(listed).toEqual([expect.objectContaining({ deviceId: 'bat-1', dispatchId: dispatch.id, limit: 1 })]);
    });

    it('sends its setpoint again to a battery that accepted long ago but reports another command, not to one that accepted recently', async () => {
      const dispatcher = start();
      // A 4-hour window: "long ago" is more than two loop periods (2 hours here).
      const dispatch = await startedDispatch(dispatcher, { durationMs: 4 * HOUR });
      acceptAll(dispatch.id);
      const forgotten = latest(dispatch.id).get('bat-1')!;
      // bat-1 restarted and follows a command of its own.
      twin('bat-1', { metrics: { powerW: 2_000 }, status: { commandId: 'local-0001' } });
      nowMs = T0 + HOUR;
      await dispatcher.runNow();
      nowMs = T0 + 2 * HOUR;
      await dispatcher.runNow();
      expect(commandsOf(dispatch.id)).toHaveLength(3);

      nowMs = T0 + 2 * HOUR + 1;
      await dispatcher.runNow();
      expect(setpointsSent(dispatch.id, 3)).toEqual({ 'bat-1': 2_000 });
      const again = latest(dispatch.id).get('bat-1')!;
      expect(again.id).not.toBe(forgotten.id);
      expect(again.expiresAtMs).toBe(T0 + 4 * HOUR + MARGIN_MS);
      // bat-2 and bat-3 report the command they were sent: left alone, however long ago they accepted.
      nowMs = T0 + 3 * HOUR;
      await dispatcher.runNow();
      expect(commandsOf(dispatch.id)).toHaveLength(4);
    });

    it('completes the dispatch at the end of its window and sends nothing', async () => {
      const dispatcher = start();
      const dispatch = await startedDispatch(dispatcher);
      acceptAll(dispatch.id);
      nowMs = T0 + HOUR - 1;
      await dispatcher.runNow();
      expect(store.dispatches.getDispatch(dispatch.id)!.state).toBe('active');
      const samples = store.dispatches.listDispatchSamples(dispatch.id, { limit: 10 }).length;
      // Even with a battery gone, which would otherwise be taken out.
      twin('bat-3', { presence: 'offline' });
      const woke = woken;
      nowMs = T0 + HOUR;
      await dispatcher.runNow();
      expect(store.dispatches.getDispatch(dispatch.id)).toMatchObject({ state: 'completed', lastLoopAtMs: T0 + HOUR, updatedAtMs: T0 + HOUR });
      expect(commandsOf(dispatch.id)).toHaveLength(3);
      expect(store.dispatches.listDispatchSamples(dispatch.id, { limit: 10 })).toHaveLength(samples);
      expect(store.dispatches.runningDispatches(nowMs)).toEqual([]);
      expect(woken).toBe(woke);
      nowMs += 5_000;
      await dispatcher.runNow();
      expect(commandsOf(dispatch.id)).toHaveLength(3);
    });

    // BUG: the store only lets a dispatch go scheduled → active | cancelled | failed, so `step`'s
    // updateDispatch(state 'completed') on a dispatch still scheduled throws 'conflict'; the loop
    // catches it ("retried at the next cycle") and the dispatch stays scheduled, returned by
    // runningDispatches and failing again at every cycle, for good.
    it('ends a scheduled dispatch whose whole window passed while the loop was not running, sending nothing', async () => {
      const dispatcher = start();
      const dispatch = create(dispatcher, { startAtMs: T0 + 60_000 });
      // The dispatch service is down from before the start until after the end.
      nowMs = T0 + 60_000 + HOUR;
      await dispatcher.runNow();
      nowMs += 5_000;
      await dispatcher.runNow();
      expect(commandsOf(dispatch.id)).toEqual([]);
      expect(woken).toBe(0);
      expect(FINAL_DISPATCH_STATES).toContain(store.dispatches.getDispatch(dispatch.id)!.state);
      expect(store.dispatches.runningDispatches(nowMs)).toEqual([]);
    });
  });

  describe('cancel', () => {
    it('sends every dispatched battery back to self-consumption (taken-out ones too) and stops running it', async () => {
      const dispatcher = start();
      const dispatch = await startedDispatch(dispatcher);
      twin('bat-3', { presence: 'offline' });
      nowMs += 5_000;
      await dispatcher.runNow();
      // bat-3 is still in the dispatch, at 0 W: it is released too.
      expect(store.dispatches.getDispatch(dispatch.id)!.setpoints).toEqual({ 'bat-1': 3_000, 'bat-2': 3_000, 'bat-3': 0 });
      const before = commandsOf(dispatch.id).length;
      const woke = woken;
      nowMs += 5_000;
      const cancelled = dispatcher.cancel(dispatch.id);
      expect(cancelled).toMatchObject({ id: dispatch.id, state: 'cancelled', reason: 'cancelled by an operator', updatedAtMs: nowMs });
      expect(store.dispatches.getDispatch(dispatch.id)).toEqual(cancelled);
      const releases = commandsOf(dispatch.id).slice(before);
      expect(releases.map((c) => c.deviceId).sort()).toEqual(['bat-1', 'bat-2', 'bat-3']);
      for (const command of releases) {
        expect(command).toMatchObject({
          type: 'setMode',
          params: { mode: 'selfConsumption' },
          dispatchId: dispatch.id,
          state: 'pending',
          expiresAtMs: nowMs + DEFAULT_DISPATCHER_SETTINGS.releaseTtlMs,
        });
      }
      expect(woken).toBe(woke + 1);

      // No longer run by the loop.
      nowMs += 5_000;
      await dispatcher.runNow();
      expect(commandsOf(dispatch.id)).toHaveLength(before + 3);
      expect(store.dispatches.getDispatch(dispatch.id)!.state).toBe('cancelled');
      expect(woken).toBe(woke + 1);
    });

    // BUG: cancel relies on updateDispatch to refuse a dispatch already over, but the store allows
    // "the same state again" (DispatchStore contract), so cancelled → cancelled goes through: the
    // second cancel returns normally, overwrites reason and lastLoopAtMs, sends setMode
    // selfConsumption to every battery a second time and wakes the sender. control/'s cancelDispatch
    // checks the state first, but outside the store's transaction (two concurrent cancels both pass).
    it('refuses a second cancel with conflict, sending nothing more', async () => {
      const dispatcher = start();
      const dispatch = await startedDispatch(dispatcher);
      nowMs += 5_000;
      dispatcher.cancel(dispatch.id);
      const sent = commandsOf(dispatch.id).length;
      const woke = woken;
      nowMs += 5_000;
      expectStoreError(() => dispatcher.cancel(dispatch.id), 'conflict');
      expect(commandsOf(dispatch.id)).toHaveLength(sent);
      expect(woken).toBe(woke);
      expect(store.dispatches.getDispatch(dispatch.id)!.lastLoopAtMs).toBe(T0 + 5_000);
    });

    it('refuses to cancel a dispatch that completed (conflict), sending nothing', async () => {
      const dispatcher = start();
      const dispatch = await startedDispatch(dispatcher);
      nowMs = T0 + HOUR;
      await dispatcher.runNow();
      expect(store.dispatches.getDispatch(dispatch.id)!.state).toBe('completed');
      const woke = woken;
      expectStoreError(() => dispatcher.cancel(dispatch.id), 'conflict');
      expect(store.dispatches.getDispatch(dispatch.id)!.state).toBe('completed');
      expect(commandsOf(dispatch.id)).toHaveLength(3);
      expect(woken).toBe(woke);
    });

    it('refuses to cancel an unknown dispatch (not-found), sending nothing', () => {
      const dispatcher = start();
      expectStoreError(() => dispatcher.cancel('00000000-0000-4000-8000-000000000001'), 'not-found');
      expect(store.commands.countCommands()).toMatchObject({ pending: 0 });
      expect(woken).toBe(0);
    });
  });

  describe('restart', () => {
    it('a new dispatcher on the same store resumes the active dispatch without sending again what did not change', async () => {
      const first = start();
      const dispatch = await startedDispatch(first);
      acceptAll(dispatch.id);
      nowMs += 5_000;
      await first.runNow();
      await first.stop();
      const sent = commandsOf(dispatch.id).length;
      expect(sent).toBe(3);
      const samples = store.dispatches.listDispatchSamples(dispatch.id, { limit: 10 }).length;
      const woke = woken;

      const second = start();
      nowMs += 5_000;
      await second.runNow();
      expect(commandsOf(dispatch.id)).toHaveLength(sent);
      expect(woken).toBe(woke);
      expect(store.dispatches.getDispatch(dispatch.id)).toMatchObject({
        state: 'active',
        lastLoopAtMs: nowMs,
        setpoints: { 'bat-1': 2_000, 'bat-2': 2_000, 'bat-3': 2_000 },
      });
      expect(store.dispatches.listDispatchSamples(dispatch.id, { limit: 10 })).toHaveLength(samples + 1);

      // It carries on from there: a battery lost now is taken out by the new one.
      twin('bat-2', { presence: 'offline' });
      nowMs += 5_000;
      await second.runNow();
      expect(setpointsSent(dispatch.id, sent)).toEqual({ 'bat-1': 3_000, 'bat-2': 0, 'bat-3': 3_000 });
    });
  });
});
