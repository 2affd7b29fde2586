import { describe, expect, it } from 'vitest';
import { MAX_STATUS_EXTRAS, StatusCheck } from '../protocol/index.ts';
import { controlStatus, setpointChanged } from './reported-control.ts';
import { LOCAL_CONTROL } from './site.ts';

const COMMAND = { id: '0b7e3c1a-9f1e-4f8e-9a57-2b1c3d4e5f60', expiresAtMs: 1_700_000_060_000 };

describe('controlStatus', () => {
  it('says local control with every field null when no command runs', () => {
    expect(controlStatus('battery', LOCAL_CONTROL, null, null)).toEqual({
      mode: 'selfConsumption',
      setpointW: null,
      clippedBy: null,
      commandId: null,
      commandUntil: null,
    });
    expect(controlStatus('solar', LOCAL_CONTROL, null, null)).toEqual({ curtailW: null, commandId: null, commandUntil: null });
    expect(controlStatus('meter', LOCAL_CONTROL, null, null)).toEqual({});
  });

  it('reports the setpoint actually run at and why it is clipped, with the command and its end', () => {
    const control = { battery: { mode: 'setpoint' as const, powerW: 5_000 }, curtailW: null };
    expect(controlStatus('battery', control, COMMAND, { setpointW: 0, clippedBy: 'reserve' })).toEqual({
      mode: 'setpoint',
      setpointW: 0,
      clippedBy: 'reserve',
      commandId: COMMAND.id,
      commandUntil: COMMAND.expiresAtMs,
    });
  });

  it('reports a mode without a setpoint, and a curtailment on the inverter only', () => {
    const control = { battery: { mode: 'idle' as const }, curtailW: 1_200 };
    expect(controlStatus('battery', control, COMMAND, null)).toMatchObject({ mode: 'idle', setpointW: null, clippedBy: null, commandId: COMMAND.id });
    expect(controlStatus('solar', control, COMMAND, null)).toEqual({ curtailW: 1_200, commandId: COMMAND.id, commandUntil: COMMAND.expiresAtMs });
  });

  it('keeps the whole status within the protocol bounds', () => {
    const control = { battery: { mode: 'setpoint' as const, powerW: -3_000 }, curtailW: 500 };
    for (const type of ['battery', 'solar', 'meter'] as const) {
      const extras = controlStatus(type, control, COMMAND, { setpointW: -3_000, clippedBy: 'powerLimit' });
      const status = { online: true, firmware: 'sim-1.0.0', type, ...extras };
      expect(StatusCheck.Check(status), JSON.stringify(status)).toBe(true);
      expect(Object.keys(status).length - 2).toBeLessThanOrEqual(MAX_STATUS_EXTRAS);
    }
  });
});

describe('setpointChanged', () => {
  const LIMIT = 5_000;

  it('ignores moves within 1 % of the power limit', () => {
    expect(setpointChanged({ setpointW: 5_000, clippedBy: null }, { setpointW: 4_950, clippedBy: null }, LIMIT)).toBe(false);
    expect(setpointChanged({ setpointW: -2_000, clippedBy: 'full' }, { setpointW: -2_040, clippedBy: 'full' }, LIMIT)).toBe(false);
  });

  it('reports moves beyond 1 % of the power limit', () => {
    expect(setpointChanged({ setpointW: 5_000, clippedBy: null }, { setpointW: 4_949, clippedBy: null }, LIMIT)).toBe(true);
    expect(setpointChanged({ setpointW: 100, clippedBy: 'reserve' }, { setpointW: 0, clippedBy: 'reserve' }, LIMIT)).toBe(true);
  });

  it('reports a change of the reason whatever the value', () => {
    expect(setpointChanged({ setpointW: 0, clippedBy: 'powerLimit' }, { setpointW: 0, clippedBy: 'reserve' }, LIMIT)).toBe(true);
    expect(setpointChanged({ setpointW: 3_000, clippedBy: null }, { setpointW: 3_000, clippedBy: 'reserve' }, LIMIT)).toBe(true);
  });
});
