/**
 * A dispatch across a crash of the platform, as a user runs it: `vpp up`
 * (no simulator of its own) and `vpp sim` (the fleet, which keeps running
 * and reconnects) as separate processes. `vpp up` is killed (SIGKILL)
 * while the dispatch tracks its target, and started again: the dispatch
 * is still active, the loop picks up from the stored state and tracks the
 * target again, and no battery that kept running its setpoint is sent it
 * a second time.
 */
import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, eventually } from './support/platform.ts';
import { useProcessTestBed } from './support/process-bed.ts';
import { stopVpp } from './support/processes.ts';

interface DispatchView {
  id: string;
  state: string;
  measured: Array<{ at: string; measuredW: number }>;
}
interface CommandView {
  id: string;
  deviceId: string;
  params: { powerW?: number };
  createdAt: string;
}

describe('dispatch across a crash', () => {
  const bed = useProcessTestBed();

  it('resumes tracking after a SIGKILL and sends nothing twice', { timeout: 150_000 }, async () => {
    const { env: base, mqttPort, httpPort } = await bed.env({
      VPP_SIM_INTERVAL_MS: '1000',
      VPP_DEVICE_INTERVAL_MS: '1000',
      VPP_DISPATCH_LOOP_MS: '1000',
      VPP_ALERT_STARTUP_GRACE_SECONDS: '600',
    });
    const env = { ...base, VPP_MQTT_URL: `mqtt://127.0.0.1:${mqttPort}` };
    const first = bed.spawn('up', { ...env, VPP_SIM_SITES: '0' });
    await first.waitForOutput(/virtual power plant is up/);
    const sim = bed.spawn('sim', { ...env, VPP_SIM_SITES: '12', VPP_LOG_LEVEL: 'info' });
    await sim.waitForOutput(/simulated fleet connected/);

    const api = `http://127.0.0.1:${httpPort}/api/v1`;
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    const json = async <T>(path: string, init: RequestInit = {}) => (await (await fetch(`${api}${path}`, { ...init, headers })).json()) as T;
    // Connected is not enough: every battery must have reported its figures before it can be planned with.
    await eventually(async () => {
      const { items } = await json<{ items: Array<{ id: string; type: string }> }>('/devices');
      const batteries = await Promise.all(items.filter((d) => d.type === 'battery').map((d) => json<{ metrics: Record<string, number> }>(`/devices/${d.id}`)));
      return batteries.length === 12 && batteries.every((b) => b.metrics.maxDischargeW !== undefined) ? true : undefined;
    }, 30_000, 'every battery reporting');

    const plan = (await json<{ plan: { availableW: number } }>('/dispatches?dryRun=true', { method: 'POST', body: JSON.stringify({ target: { fleet: true }, powerW: 1e6, durationSeconds: 900 }) })).plan;
    const targetW = Math.round(plan.availableW / 2);
    const created = await fetch(`${api}/dispatches`, { method: 'POST', headers, body: JSON.stringify({ target: { fleet: true }, powerW: targetW, durationSeconds: 900 }) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as DispatchView;
    const tracking = (view: DispatchView) => {
      const latest = view.measured.at(-1);
      return latest !== undefined && Math.abs(latest.measuredW - targetW) <= 0.05 * targetW;
    };
    await eventually(async () => (tracking(await json<DispatchView>(`/dispatches/${id}`)) ? true : undefined), 30_000, 'the target reached');
    const commandsOf = async () => (await json<{ commands: CommandView[] }>(`/commands?dispatchId=${id}&limit=500`)).commands;
    const beforeKill = await commandsOf();

    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const second = bed.spawn('up', { ...env, VPP_SIM_SITES: '0' });
    await second.waitForOutput(/virtual power plant is up/);
    const samplesAtRestart = (await json<DispatchView>(`/dispatches/${id}`)).measured.length;

    // Still active, tracking again from the stored state.
    const resumed = await eventually(async () => {
      const view = await json<DispatchView>(`/dispatches/${id}`);
      return view.measured.length >= samplesAtRestart + 3 && tracking(view) ? view : undefined;
    }, 40_000, 'tracking again after the restart');
    expect(resumed.state).toBe('active');

    // Nothing sent twice: a battery is sent a command after the restart only when its setpoint changed.
    const latestBefore = new Map<string, CommandView>();
    for (const command of beforeKill) if (!latestBefore.has(command.deviceId)) latestBefore.set(command.deviceId, command);
    const known = new Set(beforeKill.map((c) => c.id));
    const after = (await commandsOf()).filter((c) => !known.has(c.id));
    for (const command of after) {
      expect(command.params.powerW, `${command.deviceId} sent its unchanged setpoint again`).not.toBe(latestBefore.get(command.deviceId)?.params.powerW);
    }

    expect(await stopVpp(sim, 'SIGTERM')).toBe(0);
    expect(await stopVpp(second, 'SIGINT')).toBe(0);
  });
});
