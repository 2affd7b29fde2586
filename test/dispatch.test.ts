/**
 * Dispatch end to end on real sockets: the platform as `vpp up` wires it
 * (broker, ingest, dispatch's command sender and control loop, control)
 * with a simulated fleet sending a sample a second, in real time.
 *
 * - A dry run plans without sending anything.
 * - A region's batteries reach 95 % of the target within a bounded number
 *   of control cycles and hold it within a few percent.
 * - When a tenth of the dispatched batteries drop off mid-dispatch, the
 *   others pick up the shortfall.
 * - Cancelling sends every battery back to local control.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startPlatform, type RunningPlatform } from './support/platform.ts';

const LOOP_MS = 1_000;

interface DispatchView {
  id: string;
  state: string;
  powerW: number;
  allocation: Array<{ deviceId: string; setpointW: number; command: { id: string; state: string } | null }>;
  measured: Array<{ at: string; targetW: number; measuredW: number; confidence: number }>;
  tracking: { latestErrorW: number | null; confidence: number | null };
}

interface Plan {
  feasible: boolean;
  availableW: number;
  devicesUsed: number;
  explanation: string;
}

describe('dispatch end to end', () => {
  let platform: RunningPlatform;
  beforeAll(async () => {
    platform = await startPlatform({
      VPP_SIM_SITES: '40',
      VPP_SIM_INTERVAL_MS: '1000',
      VPP_DEVICE_INTERVAL_MS: '1000',
      VPP_DISPATCH_LOOP_MS: String(LOOP_MS),
    });
    // Connected is not enough: every battery must have reported its figures before it can be planned with.
    await eventually(async () => {
      const { items } = (await (await platform.api('/api/v1/devices')).json()) as { items: Array<{ id: string; type: string }> };
      const batteries = await Promise.all(
        items.filter((d) => d.type === 'battery').map(async (d) => (await (await platform.api(`/api/v1/devices/${d.id}`)).json()) as { metrics: Record<string, number> }),
      );
      return batteries.length === 40 && batteries.every((b) => b.metrics.maxDischargeW !== undefined) ? true : undefined;
    }, 30_000, 'every battery reporting');
  }, 60_000);
  afterAll(() => platform.stop());

  const post = (path: string, body: unknown) => platform.api(path, { method: 'POST', body: JSON.stringify(body) });
  const get = async (id: string) => (await (await platform.api(`/api/v1/dispatches/${id}`)).json()) as DispatchView;

  it('plans a dry run without sending, then reaches and holds a region’s target, covering for batteries that drop off', { timeout: 120_000 }, async () => {
    const request = { target: { region: 'north' }, durationSeconds: 600 };
    const dry = await post('/api/v1/dispatches?dryRun=true', { ...request, powerW: 1_000_000 });
    expect(dry.status).toBe(200);
    const capacity = ((await dry.json()) as { plan: Plan }).plan;
    expect(capacity.feasible).toBe(false);
    expect(capacity.availableW).toBeGreaterThan(0);
    expect((await (await platform.api('/api/v1/dispatches')).json()) as { dispatches: unknown[] }).toMatchObject({ dispatches: [] });
    expect(platform.dispatch.sender.counters().sent).toBe(0);

    // Half of what the region can hold for the window.
    const targetW = Math.round(capacity.availableW / 2);
    const created = await post('/api/v1/dispatches', { ...request, powerW: targetW });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as DispatchView;
    const startedAt = Date.now();

    const within = (share: number) => (view: DispatchView) => {
      const latest = view.measured.at(-1);
      return latest !== undefined && Math.abs(latest.measuredW - targetW) <= share * Math.abs(targetW);
    };
    const reached = await eventually(async () => {
      const view = await get(id);
      return within(0.05)(view) ? view : undefined;
    }, 30 * LOOP_MS, '95 % of the target');
    const cyclesToReach = Math.ceil((Date.now() - startedAt) / LOOP_MS);
    expect(cyclesToReach).toBeLessThanOrEqual(20);
    expect(reached.state).toBe('active');
    expect(reached.allocation.length).toBeGreaterThan(0);

    // It holds: the next few samples stay within 5 %.
    const held = await eventually(async () => {
      const view = await get(id);
      return view.measured.length >= reached.measured.length + 5 ? view : undefined;
    }, 20 * LOOP_MS, 'five more samples');
    const since = held.measured.slice(reached.measured.length);
    for (const sample of since) expect(Math.abs(sample.measuredW - targetW) / Math.abs(targetW)).toBeLessThan(0.05);

    // A tenth of the dispatched batteries drop off: the others pick up the shortfall.
    const dispatched = held.allocation.filter((a) => a.setpointW > 0).map((a) => a.deviceId);
    const dropped = dispatched.slice(0, Math.max(1, Math.round(dispatched.length / 10)));
    for (const deviceId of dropped) platform.sim!.fleet.setOffline(deviceId, true);
    const droppedAt = (await get(id)).measured.length;
    const recovered = await eventually(async () => {
      const view = await get(id);
      const after = view.measured.slice(droppedAt);
      // Count only samples taken once the dropped batteries were seen gone.
      return after.length >= 3 && within(0.05)(view) ? view : undefined;
    }, 30 * LOOP_MS, 'the target again without the dropped batteries');
    const asked = new Map(recovered.allocation.map((a) => [a.deviceId, a.setpointW]));
    expect(dropped.every((deviceId) => (asked.get(deviceId) ?? 0) === 0)).toBe(true);

    // Cancelled: every dispatched battery goes back to local control.
    const cancelled = await post(`/api/v1/dispatches/${id}/cancel`, {});
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as DispatchView).state).toBe('cancelled');
    expect((await post(`/api/v1/dispatches/${id}/cancel`, {})).status).toBe(409);
    for (const deviceId of dropped) platform.sim!.fleet.setOffline(deviceId, false);
    const online = dispatched.filter((d) => !dropped.includes(d));
    await eventually(async () => {
      const states = await Promise.all(
        online.map(async (deviceId) => ((await (await platform.api(`/api/v1/devices/${deviceId}`)).json()) as { control: { reported: { mode?: string } | null } }).control.reported?.mode),
      );
      return states.every((mode) => mode === 'selfConsumption') ? true : undefined;
    }, 15_000, 'every battery back to self-consumption');
  });
});
