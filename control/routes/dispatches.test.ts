/**
 * The dispatch API on the real SQLite store (dispatches, their samples, and
 * the commands they send). The planner and the control loop live outside
 * control, so the dispatcher here is a stand-in written for these tests: it
 * answers a fixed plan set per test and stores through the real store as
 * the real dispatcher does (create: scheduled with the plan's setpoints;
 * cancel: cancelled, and one command per dispatched battery back to local
 * control). What the API computes (allocation, energy, tracking) comes from
 * what the tests put in the store.
 */
import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { DispatchSample, StoredDispatch } from '../../store/types.ts';
import type { DispatchPlan, DispatchRequest, Dispatcher } from '../deps.ts';
import { InfeasibleDispatchError } from '../errors.ts';
import { MAX_CACHED_SAMPLE_VIEWS, viewDispatch } from '../queries/dispatches.ts';
import { T0 } from '../test-fixtures.ts';
import { provisionDevices, useControlTest } from '../test-helper.ts';

const t = useControlTest();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const iso = (ms: number) => new Date(ms).toISOString();
const DAY_MS = 86_400_000;

const FEASIBLE: DispatchPlan = {
  feasible: true,
  availableW: 12_000,
  shortfallW: 0,
  marginW: 2000,
  marginWh: 1500,
  devicesUsed: 2,
  explanation: '2 batteries can deliver 12000 W; 10000 W asked',
  setpoints: { 'bat-1': 6000, 'bat-2': 4000 },
};

const INFEASIBLE: DispatchPlan = {
  feasible: false,
  availableW: 7000,
  shortfallW: 3000,
  marginW: 0,
  marginWh: 0,
  devicesUsed: 2,
  explanation: 'only 7000 W of 10000 W available: 2 batteries at their limits',
  setpoints: { 'bat-1': 4000, 'bat-2': 3000 },
};

/** What the stand-in dispatcher was asked, and the plan it answers. */
let plan: DispatchPlan;
let calls: Array<{ method: 'plan' | 'create' | 'cancel'; arg: DispatchRequest | string }>;

function testDispatcher(): Dispatcher {
  return {
    plan(request) {
      calls.push({ method: 'plan', arg: request });
      return plan;
    },
    create(request) {
      calls.push({ method: 'create', arg: request });
      if (!plan.feasible && !request.allowPartial) throw new InfeasibleDispatchError(plan);
      const { setpoints, ...record } = plan;
      return t.store.dispatches.createDispatch({ id: randomUUID(), ...request, plan: record, setpoints }, t.clock.nowMs);
    },
    cancel(id) {
      calls.push({ method: 'cancel', arg: id });
      const dispatch = t.store.dispatches.getDispatch(id);
      if (!dispatch) throw new Error(`no dispatch ${id}`);
      for (const deviceId of Object.keys(dispatch.setpoints)) {
        t.store.commands.createCommand(
          { id: randomUUID(), deviceId, type: 'setMode', params: { mode: 'selfConsumption' }, expiresAtMs: t.clock.nowMs + 60_000, dispatchId: id },
          t.clock.nowMs,
        );
      }
      return t.store.dispatches.updateDispatch(id, { state: 'cancelled', setpoints: {}, reason: 'cancelled by an operator' }, t.clock.nowMs);
    },
  };
}

beforeEach(async () => {
  plan = FEASIBLE;
  calls = [];
  t.dispatcher = testDispatcher();
  await provisionDevices(t, { id: 'site-1', region: 'north' }, [
    { id: 'bat-1', type: 'battery' },
    { id: 'bat-2', type: 'battery' },
  ]);
  await provisionDevices(t, { id: 'site-2', region: 'south' }, [{ id: 'bat-3', type: 'battery' }]);
});

const BODY = { target: { region: 'north' }, powerW: 10_000, durationSeconds: 3600 };

function post(payload: unknown, query = '') {
  return t.request({ method: 'POST', url: `/api/v1/dispatches${query}`, payload: payload as Record<string, unknown> });
}

async function create(payload: Record<string, unknown> = BODY): Promise<Record<string, unknown> & { id: string }> {
  const response = await post(payload);
  expect(response.statusCode, response.body).toBe(201);
  return response.json();
}

function stored(): StoredDispatch[] {
  return t.store.dispatches.listDispatches({ limit: 100 }).dispatches;
}

/** A UUID-shaped id made from a number, so cache keys are distinct and readable. */
function randomUUIDFrom(i: number): string {
  return `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
}

function sample(atMs: number, targetW: number, measuredW: number, confidence: number): DispatchSample {
  return { atMs, targetW, measuredW, confidence, devicesReporting: 2 };
}

describe('POST /api/v1/dispatches: validation', () => {
  it('answers 400 naming the field for each bound, and neither plans nor stores', async () => {
    const cases: Array<[string, unknown, string | RegExp]> = [
      ['powerW 0', { ...BODY, powerW: 0 }, 'powerW: must not be 0 (positive delivers, negative absorbs)'],
      ['powerW over 1e9', { ...BODY, powerW: 1e9 + 1 }, 'powerW: must be <= 1000000000'],
      ['powerW under -1e9', { ...BODY, powerW: -1e9 - 1 }, 'powerW: must be >= -1000000000'],
      ['powerW missing', { target: { fleet: true }, durationSeconds: 60 }, 'powerW: is required'],
      ['duration 59 s', { ...BODY, durationSeconds: 59 }, 'durationSeconds: must be >= 60'],
      ['duration over a day', { ...BODY, durationSeconds: 86_401 }, 'durationSeconds: must be <= 86400'],
      ['duration fractional', { ...BODY, durationSeconds: 60.5 }, 'durationSeconds: must be integer'],
      ['duration missing', { target: { fleet: true }, powerW: 1 }, 'durationSeconds: is required'],
      ['startAt over 7 days ahead', { ...BODY, startAt: iso(T0 + 7 * DAY_MS + 1) }, `startAt: ${iso(T0 + 7 * DAY_MS + 1)} is more than 7 days ahead (latest ${iso(T0 + 7 * DAY_MS)})`],
      ['startAt 61 s ago', { ...BODY, startAt: iso(T0 - 61_000) }, `startAt: ${iso(T0 - 61_000)} is in the past (earliest ${iso(T0 - 60_000)})`],
      ['startAt not a time', { ...BODY, startAt: 'tomorrow' }, /^startAt: must match format "date-time"/],
      ['startAt in ms', { ...BODY, startAt: String(T0) }, /^startAt: must match format "date-time"/],
      ['target missing', { powerW: 1, durationSeconds: 60 }, 'target: is required'],
      ['target empty', { ...BODY, target: {} }, 'target: must have exactly one of fleet, region, siteIds'],
      ['two targets', { ...BODY, target: { fleet: true, region: 'north' } }, 'target: must have exactly one of fleet, region, siteIds (not fleet and region)'],
      ['fleet false', { ...BODY, target: { fleet: false } }, 'target.fleet: must be equal to constant'],
      ['no sites', { ...BODY, target: { siteIds: [] } }, 'target.siteIds: must NOT have fewer than 1 items'],
      ['site twice', { ...BODY, target: { siteIds: ['site-1', 'site-1'] } }, /^target\.siteIds: must NOT have duplicate items/],
      ['site id empty', { ...BODY, target: { siteIds: [''] } }, 'target.siteIds.0: must NOT have fewer than 1 characters'],
      ['unknown target key', { ...BODY, target: { sites: ['site-1'] } }, 'target.sites: is not a known property'],
      ['unknown property', { ...BODY, priority: 'high' }, 'priority: is not a known property'],
      ['allowPartial not boolean', { ...BODY, allowPartial: 'maybe' }, 'allowPartial: must be boolean'],
      ['unknown region', { ...BODY, target: { region: 'east' } }, "target.region: no site is in region 'east'"],
      ['unknown site', { ...BODY, target: { siteIds: ['site-1', 'site-9'] } }, "target.siteIds: site 'site-9' does not exist"],
      ['unknown sites', { ...BODY, target: { siteIds: ['site-8', 'site-2', 'site-9'] } }, "target.siteIds: sites 'site-8', 'site-9' do not exist"],
    ];
    for (const [name, payload, message] of cases) {
      for (const query of ['', '?dryRun=true']) {
        const response = await post(payload, query);
        expect(response.statusCode, `${name}${query}: ${response.body}`).toBe(400);
        expect(response.json(), name).toEqual({ code: 'bad-request', message: typeof message === 'string' ? message : expect.stringMatching(message) });
      }
    }
    const dryRun = await post(BODY, '?dryRun=perhaps');
    expect(dryRun.json()).toEqual({ code: 'bad-request', message: 'dryRun: must be boolean' });
    expect(calls).toEqual([]);
    expect(stored()).toEqual([]);
  });

  it('takes 10 000 site ids in one body and names the first ten unknown ones', async () => {
    const siteIds = Array.from({ length: 10_000 }, (_, i) => `site-${String(i + 3).padStart(59, '0')}`);
    const response = await post({ ...BODY, target: { siteIds } }, '?dryRun=true');
    expect(response.statusCode).toBe(400);
    const named = siteIds.slice(0, 10).map((id) => `'${id}'`).join(', ');
    expect(response.json().message).toBe(`target.siteIds: sites ${named} and 9990 more do not exist`);

    const tooMany = await post({ ...BODY, target: { siteIds: [...siteIds, 'site-1'] } }, '?dryRun=true');
    expect(tooMany.json()).toEqual({ code: 'bad-request', message: 'target.siteIds: must NOT have more than 10000 items' });
  });

  it('takes every bound itself', async () => {
    const accepted: Array<Record<string, unknown>> = [
      { ...BODY, powerW: 1e9 },
      { ...BODY, powerW: -1e9 },
      { ...BODY, powerW: 0.5 },
      { ...BODY, durationSeconds: 60 },
      { ...BODY, durationSeconds: 86_400 },
      { ...BODY, startAt: iso(T0 + 7 * DAY_MS) },
      { ...BODY, startAt: iso(T0 - 60_000) },
      { ...BODY, startAt: '2024-03-01T14:00:00+02:00' },
      { ...BODY, target: { fleet: true } },
      { ...BODY, target: { siteIds: ['site-2', 'site-1'] } },
    ];
    for (const payload of accepted) {
      const response = await post(payload, '?dryRun=true');
      expect(response.statusCode, `${JSON.stringify(payload)}: ${response.body}`).toBe(200);
    }
    const requests = calls.map((c) => c.arg as DispatchRequest);
    expect(requests.map((r) => r.powerW)).toEqual([1e9, -1e9, 0.5, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000]);
    expect(requests[3]!.durationMs).toBe(60_000);
    expect(requests[4]!.durationMs).toBe(86_400_000);
    expect(requests[5]!.startAtMs).toBe(T0 + 7 * DAY_MS);
    expect(requests[6]!.startAtMs).toBe(T0 - 60_000);
    expect(requests[7]!.startAtMs).toBe(T0);
    expect(requests[8]!.target).toEqual({ fleet: true });
    expect(requests[9]!.target).toEqual({ siteIds: ['site-2', 'site-1'] });
    expect(stored()).toEqual([]);
  });
});

describe('POST /api/v1/dispatches', () => {
  it('plans a dry run: 200 with the plan, nothing stored, nothing created', async () => {
    t.clock.nowMs = T0 + 5000;
    const response = await post(BODY, '?dryRun=true');
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({ plan: FEASIBLE });
    expect(calls).toEqual([
      { method: 'plan', arg: { target: { region: 'north' }, powerW: 10_000, startAtMs: T0 + 5000, durationMs: 3_600_000, allowPartial: false } },
    ]);
    // An infeasible plan is still a 200 in a dry run: it is the answer asked for.
    plan = INFEASIBLE;
    expect((await post(BODY, '?dryRun=true')).json()).toEqual({ plan: INFEASIBLE });
    expect(stored()).toEqual([]);
    expect(t.store.commands.listCommands({ limit: 10 }).commands).toEqual([]);
  });

  it('creates a scheduled dispatch: 201 with its Location', async () => {
    t.clock.nowMs = T0 + 1000;
    const startAt = iso(T0 + 3_600_000);
    const response = await post({ ...BODY, startAt }, '?dryRun=false');
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(body.id).toMatch(UUID);
    expect(response.headers.location).toBe(`/api/v1/dispatches/${body.id}`);
    const { setpoints: _setpoints, ...planRecord } = FEASIBLE;
    expect(body).toEqual({
      id: body.id,
      target: { region: 'north' },
      powerW: 10_000,
      startAt,
      endAt: iso(T0 + 7_200_000),
      durationSeconds: 3600,
      state: 'scheduled',
      allowPartial: false,
      createdAt: iso(T0 + 1000),
      updatedAt: iso(T0 + 1000),
      reason: null,
      plan: planRecord,
      allocation: [
        { deviceId: 'bat-1', setpointW: 6000, command: null },
        { deviceId: 'bat-2', setpointW: 4000, command: null },
      ],
      measured: [],
      energy: { requestedWh: 10_000, deliveredWh: 0, shareDelivered: 0 },
      tracking: { latestErrorW: null, meanAbsErrorPct: null, confidence: null },
    });
    expect(stored().map((d) => d.id)).toEqual([body.id]);
    expect(calls.map((c) => c.method)).toEqual(['create']);
    expect(calls[0]!.arg).toMatchObject({ startAtMs: T0 + 3_600_000, allowPartial: false });
  });

  it('answers 409 with the plan when the fleet cannot meet the target, and stores nothing', async () => {
    plan = INFEASIBLE;
    const response = await post(BODY);
    expect(response.statusCode, response.body).toBe(409);
    expect(response.json()).toEqual({ code: 'conflict', message: INFEASIBLE.explanation, plan: INFEASIBLE });
    expect(stored()).toEqual([]);
  });

  it('creates an infeasible dispatch with allowPartial: 201 showing the plan that falls short', async () => {
    plan = INFEASIBLE;
    const body = await create({ ...BODY, powerW: -10_000, allowPartial: true });
    expect(body).toMatchObject({ powerW: -10_000, allowPartial: true, plan: { feasible: false, shortfallW: 3000 } });
    expect(body.allocation).toEqual([
      { deviceId: 'bat-1', setpointW: 4000, command: null },
      { deviceId: 'bat-2', setpointW: 3000, command: null },
    ]);
    expect(stored()).toHaveLength(1);
    expect(calls[0]!.arg).toMatchObject({ allowPartial: true });
  });
});

describe('GET /api/v1/dispatches/:id', () => {
  it('shows the newest command of the dispatch per battery, beside its setpoint', async () => {
    const { id } = await create();
    const command = (deviceId: string, powerW: number, atMs: number, dispatchId: string | null = id) =>
      t.store.commands.createCommand(
        { id: randomUUID(), deviceId, type: 'setPower', params: { powerW }, expiresAtMs: atMs + 600_000, dispatchId },
        atMs,
      ).command;
    command('bat-1', 6000, T0 + 100);
    const newer = command('bat-1', 5500, T0 + 200);
    t.store.commands.applyAck('bat-1', { commandId: newer.id, status: 'accepted' }, T0 + 250);
    const rejected = command('bat-2', 4000, T0 + 100);
    t.store.commands.applyAck('bat-2', { commandId: rejected.id, status: 'rejected', reason: 'battery empty' }, T0 + 150);
    // Commands of other dispatches, or of none, are not this dispatch's.
    command('bat-1', 1, T0 + 300, null);
    command('bat-3', 1, T0 + 300, randomUUID());

    const response = await t.request({ method: 'GET', url: `/api/v1/dispatches/${id}` });
    expect(response.statusCode).toBe(200);
    expect(response.json().allocation).toEqual([
      { deviceId: 'bat-1', setpointW: 6000, command: { id: newer.id, state: 'accepted', reason: null } },
      { deviceId: 'bat-2', setpointW: 4000, command: { id: rejected.id, state: 'rejected', reason: 'battery empty' } },
    ]);
  });

  it('computes measured, energy and tracking from the samples', async () => {
    const { id } = await create();
    // Ramping up, crossing 95 % at the third sample, then tracking within a few percent.
    const samples = [
      sample(T0, 10_000, 0, 0.2),
      sample(T0 + 60_000, 10_000, 5000, 0.5),
      sample(T0 + 120_000, 10_000, 9600, 0.9),
      sample(T0 + 180_000, 10_000, 10_400, 1),
      sample(T0 + 240_000, 10_000, 9000, 1),
    ];
    // Before the fleet reaches 95 % of the target, there is no tracking error yet.
    t.store.dispatches.addDispatchSample(id, samples[0]!);
    t.store.dispatches.addDispatchSample(id, samples[1]!);
    const ramping = (await t.request({ method: 'GET', url: `/api/v1/dispatches/${id}` })).json();
    expect(ramping.tracking).toEqual({ latestErrorW: 5000, meanAbsErrorPct: null, confidence: 0.5 });

    for (const s of samples.slice(2)) t.store.dispatches.addDispatchSample(id, s);
    const body = (await t.request({ method: 'GET', url: `/api/v1/dispatches/${id}` })).json();
    expect(body.measured).toEqual(samples.map((s) => ({ at: iso(s.atMs), targetW: s.targetW, measuredW: s.measuredW, confidence: s.confidence })));
    // Trapezoids: (0+5000)/2 + (5000+9600)/2 + (9600+10400)/2 + (10400+9000)/2 W, each for one minute.
    const deliveredWh = (2500 + 7300 + 10_000 + 9700) / 60;
    expect(body.energy.requestedWh).toBe(10_000);
    expect(body.energy.deliveredWh).toBeCloseTo(deliveredWh, 9);
    expect(body.energy.shareDelivered).toBeCloseTo(deliveredWh / 10_000, 12);
    // From the crossing: 4 %, 4 %, 10 %.
    expect(body.tracking.latestErrorW).toBe(1000);
    expect(body.tracking.meanAbsErrorPct).toBeCloseTo(6, 9);
    expect(body.tracking.confidence).toBe(1);
  });

  it('counts energy in the direction of the target when absorbing, and against it when pushing the wrong way', async () => {
    const { id } = await create({ ...BODY, powerW: -6000, durationSeconds: 600 });
    t.store.dispatches.addDispatchSample(id, sample(T0, -6000, -6000, 1));
    t.store.dispatches.addDispatchSample(id, sample(T0 + 60_000, -6000, -5700, 1));
    const absorbing = (await t.request({ method: 'GET', url: `/api/v1/dispatches/${id}` })).json();
    expect(absorbing.energy.requestedWh).toBe(1000);
    expect(absorbing.energy.deliveredWh).toBeCloseTo(97.5, 9);
    expect(absorbing.tracking).toEqual({ latestErrorW: -300, meanAbsErrorPct: 2.5, confidence: 1 });

    const { id: wrongWay } = await create({ ...BODY, powerW: -6000, durationSeconds: 600 });
    t.store.dispatches.addDispatchSample(wrongWay, sample(T0, -6000, 1200, 0.5));
    t.store.dispatches.addDispatchSample(wrongWay, sample(T0 + 60_000, -6000, 1200, 0.5));
    const body = (await t.request({ method: 'GET', url: `/api/v1/dispatches/${wrongWay}` })).json();
    expect(body.energy.deliveredWh).toBeCloseTo(-20, 9);
    expect(body.tracking.meanAbsErrorPct).toBeNull();
  });

  it('shows the last 720 samples and counts energy over all of them', async () => {
    const { id } = await create();
    for (let i = 0; i < 730; i += 1) t.store.dispatches.addDispatchSample(id, sample(T0 + i * 5000, 10_000, 10_000, 1));
    const body = (await t.request({ method: 'GET', url: `/api/v1/dispatches/${id}` })).json();
    expect(body.measured).toHaveLength(720);
    expect(body.measured[0].at).toBe(iso(T0 + 10 * 5000));
    expect(body.measured.at(-1).at).toBe(iso(T0 + 729 * 5000));
    // 729 intervals of 5 s at 10 kW.
    expect(body.energy.deliveredWh).toBeCloseTo((10_000 * 729 * 5) / 3600, 9);
    expect(body.tracking.meanAbsErrorPct).toBe(0);
  });

  it('reads the samples of a finished dispatch once, and again only when it changes', async () => {
    const { id } = await create();
    t.store.dispatches.addDispatchSample(id, sample(T0, 10_000, 9_000, 1));
    t.store.dispatches.updateDispatch(id, { state: 'active' }, T0 + 1_000);
    t.store.dispatches.updateDispatch(id, { state: 'completed' }, T0 + 2_000);
    let reads = 0;
    const counted = {
      listDispatchSamples: (dispatchId: string, query: { fromMs?: number; limit: number }) => {
        reads += 1;
        return t.store.dispatches.listDispatchSamples(dispatchId, query);
      },
    };
    const deps = { dispatches: counted, commands: t.store.commands };
    const completed = t.store.dispatches.getDispatch(id)!;
    const first = viewDispatch(deps, completed);
    expect(viewDispatch(deps, completed)).toEqual(first);
    expect(reads).toBe(1);
    expect(first.tracking).toEqual({ latestErrorW: 1000, meanAbsErrorPct: null, confidence: 1 });
    // Another update of the record (another process, say) reads them again.
    viewDispatch(deps, { ...completed, updatedAtMs: completed.updatedAtMs + 1 });
    expect(reads).toBe(2);
    // An active dispatch still takes samples: read every time.
    const active = { ...completed, state: 'active' as const };
    viewDispatch(deps, active);
    viewDispatch(deps, active);
    expect(reads).toBe(4);
  });

  it('keeps the sample summaries of at most MAX_CACHED_SAMPLE_VIEWS finished dispatches', async () => {
    const { id } = await create();
    t.store.dispatches.updateDispatch(id, { state: 'cancelled' }, T0 + 1_000);
    const base = t.store.dispatches.getDispatch(id)!;
    const reads: string[] = [];
    const deps = {
      dispatches: { listDispatchSamples: (dispatchId: string) => (reads.push(dispatchId), []) },
      commands: t.store.commands,
    };
    const finished = (i: number): StoredDispatch => ({ ...base, id: randomUUIDFrom(i) });
    for (let i = 0; i <= MAX_CACHED_SAMPLE_VIEWS; i += 1) viewDispatch(deps, finished(i));
    expect(reads).toHaveLength(MAX_CACHED_SAMPLE_VIEWS + 1);
    // The newest are kept; the first, least recently read, was dropped.
    viewDispatch(deps, finished(MAX_CACHED_SAMPLE_VIEWS));
    expect(reads).toHaveLength(MAX_CACHED_SAMPLE_VIEWS + 1);
    viewDispatch(deps, finished(0));
    expect(reads).toHaveLength(MAX_CACHED_SAMPLE_VIEWS + 2);
  });

  it('answers 404 for an unknown id and for one that is not a UUID', async () => {
    for (const id of [randomUUID(), 'not-a-uuid', '1']) {
      const response = await t.request({ method: 'GET', url: `/api/v1/dispatches/${id}` });
      expect(response.statusCode, id).toBe(404);
      expect(response.json()).toEqual({ code: 'not-found', message: `dispatch '${id}' does not exist` });
    }
  });
});

describe('GET /api/v1/dispatches', () => {
  it('lists newest first, by state, in pages', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      t.clock.nowMs = T0 + i * 1000;
      ids.push((await create({ ...BODY, powerW: 1000 + i })).id);
    }
    t.store.dispatches.updateDispatch(ids[1]!, { state: 'active' }, T0 + 10_000);

    const all = await t.request({ method: 'GET', url: '/api/v1/dispatches' });
    expect(all.statusCode).toBe(200);
    const listed = all.json() as { dispatches: Array<Record<string, unknown>>; next: string | null };
    expect(listed.dispatches.map((d) => d.id)).toEqual([...ids].reverse());
    expect(listed.next).toBeNull();
    // The list leaves out what GET /dispatches/:id computes.
    expect(Object.keys(listed.dispatches[0]!).sort()).toEqual(
      ['allowPartial', 'createdAt', 'durationSeconds', 'endAt', 'id', 'plan', 'powerW', 'reason', 'startAt', 'state', 'target', 'updatedAt'],
    );

    const pages: string[][] = [];
    let before: string | null = null;
    do {
      const query: string = before === null ? '' : `&before=${encodeURIComponent(before)}`;
      const page = (await t.request({ method: 'GET', url: `/api/v1/dispatches?limit=2${query}` })).json() as { dispatches: Array<{ id: string }>; next: string | null };
      pages.push(page.dispatches.map((d) => d.id));
      before = page.next;
    } while (before !== null);
    expect(pages).toEqual([[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]);

    const active = (await t.request({ method: 'GET', url: '/api/v1/dispatches?state=active' })).json();
    expect(active.dispatches.map((d: { id: string; state: string }) => [d.id, d.state])).toEqual([[ids[1], 'active']]);
  });

  it('answers 400 for a bad state, limit or cursor', async () => {
    const cases: Array<[string, string]> = [
      ['state=running', 'state: must be one of scheduled, active, completed, cancelled, failed'],
      ['limit=0', 'limit: must be >= 1'],
      ['limit=501', 'limit: must be <= 500'],
      ['before=bogus', 'before: is not the `next` of a previous page'],
    ];
    for (const [query, message] of cases) {
      const response = await t.request({ method: 'GET', url: `/api/v1/dispatches?${query}` });
      expect(response.statusCode, query).toBe(400);
      expect(response.json()).toEqual({ code: 'bad-request', message });
    }
  });
});

describe('POST /api/v1/dispatches/:id/cancel', () => {
  it('cancels through the dispatcher (200 with the commands back to local control), then answers 409', async () => {
    const { id } = await create();
    t.clock.nowMs = T0 + 30_000;
    const response = await t.request({ method: 'POST', url: `/api/v1/dispatches/${id}/cancel` });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ id, state: 'cancelled', reason: 'cancelled by an operator', updatedAt: iso(T0 + 30_000) });
    expect(body.allocation).toEqual([
      { deviceId: 'bat-1', setpointW: null, command: { id: expect.stringMatching(UUID), state: 'pending', reason: null } },
      { deviceId: 'bat-2', setpointW: null, command: { id: expect.stringMatching(UUID), state: 'pending', reason: null } },
    ]);
    expect(calls.map((c) => [c.method, c.arg])).toEqual([['create', expect.anything()], ['cancel', id]]);

    t.clock.nowMs = T0 + 40_000;
    const again = await t.request({ method: 'POST', url: `/api/v1/dispatches/${id}/cancel` });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toEqual({
      code: 'conflict',
      message: `dispatch '${id}' is already cancelled (since ${iso(T0 + 30_000)}); only a scheduled or active dispatch can be cancelled`,
    });
    expect(calls).toHaveLength(2);
  });

  it('answers 409 for a completed dispatch and 404 for an unknown one', async () => {
    const { id } = await create();
    t.store.dispatches.updateDispatch(id, { state: 'active' }, T0 + 1000);
    t.store.dispatches.updateDispatch(id, { state: 'completed' }, T0 + 2000);
    const completed = await t.request({ method: 'POST', url: `/api/v1/dispatches/${id}/cancel` });
    expect(completed.statusCode).toBe(409);
    expect(completed.json().message).toMatch(/is already completed/);

    for (const unknown of [randomUUID(), 'nope']) {
      const response = await t.request({ method: 'POST', url: `/api/v1/dispatches/${unknown}/cancel` });
      expect(response.statusCode, unknown).toBe(404);
      expect(response.json()).toEqual({ code: 'not-found', message: `dispatch '${unknown}' does not exist` });
    }
    expect(calls.map((c) => c.method)).toEqual(['create']);
  });

  it('answers the store\'s 409 when the dispatch ended between the read and the cancellation', async () => {
    const { id } = await create();
    t.dispatcher = {
      ...testDispatcher(),
      cancel(dispatchId) {
        // The control loop finished it meanwhile; the store refuses to move it back.
        t.store.dispatches.updateDispatch(dispatchId, { state: 'failed', reason: 'no battery answers' }, T0 + 1);
        return t.store.dispatches.updateDispatch(dispatchId, { state: 'cancelled' }, T0 + 2);
      },
    };
    const response = await t.request({ method: 'POST', url: `/api/v1/dispatches/${id}/cancel` });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toEqual({ code: 'conflict', message: `dispatch ${id} cannot go from failed to cancelled` });
  });
});

describe('dispatch routes and the token', () => {
  it('answer 401 without the admin token, and plan, store and cancel nothing', async () => {
    const { id } = await create();
    const requests = [
      { method: 'POST', url: '/api/v1/dispatches', payload: BODY },
      { method: 'POST', url: '/api/v1/dispatches?dryRun=true', payload: BODY },
      { method: 'POST', url: '/api/v1/dispatches', payload: { bogus: true } },
      { method: 'GET', url: '/api/v1/dispatches' },
      { method: 'GET', url: `/api/v1/dispatches/${id}` },
      { method: 'POST', url: `/api/v1/dispatches/${id}/cancel` },
    ] as const;
    for (const request of requests) {
      const response = await t.app.inject(request);
      expect(response.statusCode, request.url).toBe(401);
      expect(response.json().code).toBe('unauthorized');
    }
    expect(calls.map((c) => c.method)).toEqual(['create']);
    expect(stored().map((d) => [d.id, d.state])).toEqual([[id, 'scheduled']]);
  });
});
