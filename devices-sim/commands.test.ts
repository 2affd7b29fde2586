import { describe, expect, it } from 'vitest';
import { AckCheck, MAX_COMMAND_POWER_W, checkCommandParams } from '../protocol/index.ts';
import {
  CONNECTION_LOST_REASON,
  CURTAILMENT_LIFTED_REASON,
  CommandLedger,
  clipSetpoint,
  decideCommand,
  dueCommandEnd,
  type CommandDecision,
  type CommandTarget,
} from './commands.ts';

const ID = '0b7e3c1a-9f1e-4f8e-9a57-2b1c3d4e5f60';
const NOW = 1_700_000_000_000;
const EXPIRES = NOW + 60_000;
const BATTERY: CommandTarget = { type: 'battery', battery: { maxChargeW: 4_000, maxDischargeW: 5_000 } };
const SOLAR: CommandTarget = { type: 'solar' };
const METER: CommandTarget = { type: 'meter' };

const command = (overrides: Record<string, unknown> = {}): string =>
  JSON.stringify({ id: ID, type: 'setPower', params: { powerW: -2_000 }, expiresAt: EXPIRES, ...overrides });
const setMode = (mode: unknown): string => command({ type: 'setMode', params: { mode } });
const curtail = (maxPowerW: unknown): string => command({ type: 'curtail', params: { maxPowerW } });

describe('decideCommand: setPower', () => {
  it('runs a setpoint within the power limit as asked, acked accepted without applied', () => {
    expect(decideCommand(command(), BATTERY, NOW)).toEqual({
      kind: 'run',
      commandId: ID,
      type: 'setPower',
      expiresAtMs: EXPIRES,
      control: { battery: { mode: 'setpoint', powerW: -2_000 } },
      clipped: false,
      ack: { commandId: ID, status: 'accepted' },
    });
    // Exactly at the limit is not clipped.
    expect(decideCommand(command({ params: { powerW: 5_000 } }), BATTERY, NOW)).toMatchObject({ clipped: false, ack: { commandId: ID, status: 'accepted' } });
  });

  it('clips a discharge beyond the limit and says so in the ack', () => {
    const decision = decideCommand(command({ params: { powerW: 12_000 } }), BATTERY, NOW);
    expect(decision).toMatchObject({ kind: 'run', control: { battery: { mode: 'setpoint', powerW: 5_000 } }, clipped: true });
    const ack = decision.kind === 'run' ? decision.ack : undefined;
    expect(ack).toEqual({ commandId: ID, status: 'accepted', reason: 'clipped to the power limit of 5000 W', applied: { powerW: 5_000 } });
    expect(AckCheck.Check(ack)).toBe(true);
  });

  it('clips a charge beyond the (charge) limit', () => {
    expect(decideCommand(command({ params: { powerW: -MAX_COMMAND_POWER_W } }), BATTERY, NOW)).toMatchObject({
      control: { battery: { mode: 'setpoint', powerW: -4_000 } },
      clipped: true,
      ack: { status: 'accepted', reason: 'clipped to the power limit of 4000 W', applied: { powerW: -4_000 } },
    });
  });

  it('clipSetpoint leaves setpoints alone without limits, and never gives -0', () => {
    expect(clipSetpoint(99_000, undefined)).toEqual({ powerW: 99_000, clippedToW: null });
    expect(Object.is(clipSetpoint(-10, { maxChargeW: 0, maxDischargeW: 0 }).powerW, 0)).toBe(true);
  });

  it('rejects bad powers with the protocol problem', () => {
    const problem = (params: unknown): string => {
      const checked = checkCommandParams('setPower', 'battery', params);
      return checked.ok ? '' : checked.problem;
    };
    for (const params of [{ powerW: 'lots' }, {}, { powerW: MAX_COMMAND_POWER_W + 1 }, { powerW: 1, extra: 2 }]) {
      expect(decideCommand(command({ params }), BATTERY, NOW)).toEqual({ kind: 'reject', commandId: ID, reason: problem(params) });
    }
    expect(decideCommand(command({ params: { powerW: 'lots' } }), BATTERY, NOW)).toMatchObject({ reason: expect.stringContaining('params.powerW') });
  });
});

describe('decideCommand: setMode', () => {
  it('runs each battery mode until the expiry', () => {
    for (const mode of ['selfConsumption', 'backup', 'idle'] as const) {
      expect(decideCommand(setMode(mode), BATTERY, NOW)).toEqual({
        kind: 'run',
        commandId: ID,
        type: 'setMode',
        expiresAtMs: EXPIRES,
        control: { battery: { mode } },
        clipped: false,
        ack: { commandId: ID, status: 'accepted' },
      });
    }
  });

  it('rejects an unknown mode and a setpoint passed as a mode', () => {
    expect(decideCommand(setMode('turbo'), BATTERY, NOW)).toMatchObject({ kind: 'reject', reason: expect.stringContaining('params.mode must be one of') });
    expect(decideCommand(setMode('setpoint'), BATTERY, NOW)).toMatchObject({ kind: 'reject' });
    expect(decideCommand(command({ type: 'setMode', params: { powerW: 1 } }), BATTERY, NOW)).toMatchObject({ kind: 'reject', reason: expect.stringContaining('params.powerW is not a parameter of setMode') });
  });
});

describe('decideCommand: curtail', () => {
  it('caps a solar inverter until the expiry', () => {
    expect(decideCommand(curtail(1_500), SOLAR, NOW)).toEqual({
      kind: 'run',
      commandId: ID,
      type: 'curtail',
      expiresAtMs: EXPIRES,
      control: { curtailW: 1_500 },
      clipped: false,
      ack: { commandId: ID, status: 'accepted' },
    });
    expect(decideCommand(curtail(0), SOLAR, NOW)).toMatchObject({ kind: 'run', control: { curtailW: 0 } });
  });

  it('lifts a cap with null: completed at once, nothing runs', () => {
    const lift = { kind: 'complete', commandId: ID, type: 'curtail', control: { curtailW: null }, ack: { commandId: ID, status: 'completed', reason: CURTAILMENT_LIFTED_REASON } };
    expect(decideCommand(curtail(null), SOLAR, NOW)).toEqual(lift);
    // The protocol reads an absent maxPowerW as null.
    expect(decideCommand(command({ type: 'curtail', params: {} }), SOLAR, NOW)).toEqual(lift);
  });

  it('rejects negative or absurd caps', () => {
    expect(decideCommand(curtail(-1), SOLAR, NOW)).toMatchObject({ kind: 'reject', reason: expect.stringContaining('params.maxPowerW') });
    expect(decideCommand(curtail(MAX_COMMAND_POWER_W + 1), SOLAR, NOW)).toMatchObject({ kind: 'reject' });
    expect(decideCommand(curtail('half'), SOLAR, NOW)).toMatchObject({ kind: 'reject' });
  });
});

describe('decideCommand: refusals', () => {
  it('rejects a command type the device does not take', () => {
    expect(decideCommand(command(), SOLAR, NOW)).toEqual({ kind: 'reject', commandId: ID, reason: 'a solar does not take setPower (only battery)' });
    expect(decideCommand(setMode('idle'), METER, NOW)).toEqual({ kind: 'reject', commandId: ID, reason: 'a meter does not take setMode (only battery)' });
    expect(decideCommand(curtail(100), BATTERY, NOW)).toEqual({ kind: 'reject', commandId: ID, reason: 'a battery does not take curtail (only solar)' });
  });

  it('rejects an unknown type, naming it and the known ones', () => {
    expect(decideCommand(command({ type: 'reboot' }), BATTERY, NOW)).toEqual({
      kind: 'reject',
      commandId: ID,
      reason: 'unknown command type reboot (known: setPower, setMode, curtail)',
    });
  });

  it('rejects an expired command of every type', () => {
    expect(decideCommand(command({ expiresAt: NOW }), BATTERY, NOW)).toEqual({ kind: 'reject', commandId: ID, reason: 'expired' });
    expect(decideCommand(command({ type: 'setMode', params: { mode: 'idle' }, expiresAt: NOW - 1 }), BATTERY, NOW)).toMatchObject({ reason: 'expired' });
    expect(decideCommand(command({ type: 'curtail', params: { maxPowerW: null }, expiresAt: NOW }), SOLAR, NOW)).toMatchObject({ reason: 'expired' });
  });

  it('rejects malformed commands that carry an id', () => {
    expect(decideCommand(command({ expiresAt: 'soon' }), BATTERY, NOW)).toMatchObject({ kind: 'reject', reason: expect.stringContaining('expiresAt') });
    expect(decideCommand(command({ extra: 1 }), BATTERY, NOW)).toMatchObject({ kind: 'reject', reason: expect.stringContaining('extra') });
    expect(decideCommand(command({ params: [1] }), BATTERY, NOW)).toMatchObject({ kind: 'reject', reason: expect.stringContaining('params') });
    expect(decideCommand(command({ id: 'not-a-uuid' }), BATTERY, NOW)).toMatchObject({ kind: 'reject', commandId: 'not-a-uuid' });
  });

  it('ignores what it cannot acknowledge', () => {
    expect(decideCommand('{not json', BATTERY, NOW).kind).toBe('ignore');
    expect(decideCommand('[1,2]', BATTERY, NOW).kind).toBe('ignore');
    expect(decideCommand(command({ id: 42 }), BATTERY, NOW).kind).toBe('ignore');
    expect(decideCommand(command({ id: 'x'.repeat(65) }), BATTERY, NOW).kind).toBe('ignore');
  });

  it('keeps every ack it builds within the protocol schema', () => {
    const payloads = [command(), command({ params: { powerW: 9e5 } }), setMode('idle'), curtail(null), command({ type: 'x'.repeat(64) }), command({ expiresAt: 0 })];
    for (const payload of payloads) {
      const decision = decideCommand(payload, BATTERY, NOW);
      const ack = decision.kind === 'run' || decision.kind === 'complete' ? decision.ack : decision.kind === 'reject' ? { commandId: decision.commandId, status: 'rejected', reason: decision.reason } : undefined;
      expect(AckCheck.Check(ack), JSON.stringify(ack)).toBe(true);
    }
  });
});

describe('dueCommandEnd', () => {
  const GRACE = 60_000;

  it('runs on while connected and before the expiry; ends at the expiry without a reason', () => {
    expect(dueCommandEnd(EXPIRES, EXPIRES - 1, null, GRACE)).toBeUndefined();
    expect(dueCommandEnd(EXPIRES, EXPIRES, null, GRACE)).toEqual({ atMs: EXPIRES });
    expect(dueCommandEnd(EXPIRES, EXPIRES + 5_000, null, GRACE)).toEqual({ atMs: EXPIRES });
  });

  it('ends once the connection has been lost for the grace, at the instant the grace ran out', () => {
    const lost = NOW;
    const far = NOW + 3_600_000;
    expect(dueCommandEnd(far, lost + GRACE - 1, lost, GRACE)).toBeUndefined();
    expect(dueCommandEnd(far, lost + GRACE, lost, GRACE)).toEqual({ atMs: lost + GRACE, reason: CONNECTION_LOST_REASON });
    // Found only much later (the device reconnected after an hour): still ended when the grace ran out.
    expect(dueCommandEnd(far, far - 1, lost, GRACE)).toEqual({ atMs: lost + GRACE, reason: CONNECTION_LOST_REASON });
  });

  it('ends at the expiry when that comes first while offline', () => {
    expect(dueCommandEnd(NOW + 10_000, NOW + 100_000, NOW, GRACE)).toEqual({ atMs: NOW + 10_000 });
    expect(dueCommandEnd(NOW + GRACE, NOW + GRACE, NOW, GRACE)).toEqual({ atMs: NOW + GRACE });
  });
});

describe('CommandLedger: supersede and redelivery', () => {
  const A = '11111111-1111-4111-8111-111111111111';
  const B = '22222222-2222-4222-8222-222222222222';
  const C = '33333333-3333-4333-8333-333333333333';
  const decide = (id: string, overrides: Record<string, unknown> = {}, device: CommandTarget = BATTERY): Exclude<CommandDecision, { kind: 'ignore' }> => {
    const decision = decideCommand(command({ id, ...overrides }), device, NOW);
    if (decision.kind === 'ignore') throw new Error('ignored');
    return decision;
  };

  it('starts a command, and answers its redelivery with the same accepted ack (applied included) without starting it again', () => {
    const ledger = new CommandLedger();
    const first = ledger.receive(decide(A, { params: { powerW: 9_000 } }), 100);
    const accepted = { commandId: A, status: 'accepted', reason: 'clipped to the power limit of 5000 W', applied: { powerW: 5_000 } };
    expect(first).toEqual({ kind: 'apply', superseded: null, control: { battery: { mode: 'setpoint', powerW: 5_000 } }, ack: accepted });
    expect(ledger.active).toEqual({ id: A, expiresAtMs: EXPIRES, accepted, startedAtSimMs: 100, clipped: true });
    expect(ledger.receive(decide(A, { params: { powerW: 9_000 } }), 200)).toEqual({ kind: 'ack', ack: accepted });
    // Still the first run: not restarted at 200.
    expect(ledger.active?.startedAtSimMs).toBe(100);
  });

  it('a newer command supersedes the running one, of the same type or another', () => {
    const ledger = new CommandLedger();
    ledger.receive(decide(A), 0);
    const setModeStep = ledger.receive(decide(B, { type: 'setMode', params: { mode: 'backup' } }), 10);
    expect(setModeStep).toEqual({
      kind: 'apply',
      superseded: { commandId: A, status: 'completed', reason: `superseded by ${B}` },
      control: { battery: { mode: 'backup' } },
      ack: { commandId: B, status: 'accepted' },
    });
    expect(ledger.active?.id).toBe(B);
    // The superseded one, redelivered, gets its final answer and changes nothing.
    expect(ledger.receive(decide(A), 20)).toEqual({ kind: 'ack', ack: { commandId: A, status: 'completed', reason: `superseded by ${B}` } });
    expect(ledger.active?.id).toBe(B);
  });

  it('a rejection leaves the running command alone, and is answered the same when redelivered', () => {
    const ledger = new CommandLedger();
    ledger.receive(decide(A), 0);
    const rejected = { commandId: B, status: 'rejected', reason: expect.stringContaining('params.mode') };
    expect(ledger.receive(decide(B, { type: 'setMode', params: { mode: 'turbo' } }), 5)).toEqual({ kind: 'ack', ack: rejected });
    expect(ledger.active?.id).toBe(A);
    expect(ledger.receive(decide(B, { type: 'setMode', params: { mode: 'idle' } }), 6)).toEqual({ kind: 'ack', ack: rejected });
    expect(ledger.active?.id).toBe(A);
  });

  it('ends a command with its reason, and answers later redeliveries with that completed ack', () => {
    const ledger = new CommandLedger();
    ledger.receive(decide(A), 0);
    expect(ledger.end(CONNECTION_LOST_REASON)).toEqual({ commandId: A, status: 'completed', reason: CONNECTION_LOST_REASON });
    expect(ledger.active).toBeNull();
    expect(ledger.end()).toBeNull();
    expect(ledger.receive(decide(A), 50)).toEqual({ kind: 'ack', ack: { commandId: A, status: 'completed', reason: CONNECTION_LOST_REASON } });
    expect(ledger.active).toBeNull();
    ledger.receive(decide(B), 60);
    expect(ledger.end()).toEqual({ commandId: B, status: 'completed' });
  });

  it('lifting a curtailment supersedes the running cap and completes at once; a redelivered lift does nothing more', () => {
    const ledger = new CommandLedger();
    ledger.receive(decide(A, { type: 'curtail', params: { maxPowerW: 800 } }, SOLAR), 0);
    const lift = ledger.receive(decide(B, { type: 'curtail', params: { maxPowerW: null } }, SOLAR), 10);
    const completed = { commandId: B, status: 'completed', reason: CURTAILMENT_LIFTED_REASON };
    expect(lift).toEqual({ kind: 'apply', superseded: { commandId: A, status: 'completed', reason: `superseded by ${B}` }, control: { curtailW: null }, ack: completed });
    expect(ledger.active).toBeNull();
    expect(ledger.receive(decide(B, { type: 'curtail', params: { maxPowerW: null } }, SOLAR), 20)).toEqual({ kind: 'ack', ack: completed });
    // Lifting with nothing in force supersedes nothing.
    expect(ledger.receive(decide(C, { type: 'curtail', params: { maxPowerW: null } }, SOLAR), 30)).toMatchObject({ kind: 'apply', superseded: null });
  });

  it('remembers a bounded number of finished commands, oldest forgotten first', () => {
    const ledger = new CommandLedger(2);
    ledger.receive(decide(A), 0);
    ledger.receive(decide(B), 1);
    ledger.receive(decide(C), 2);
    ledger.end();
    // A, B and C finished; only the last two are remembered, so A would run again.
    expect(ledger.receive(decide(B), 3)).toMatchObject({ kind: 'ack' });
    expect(ledger.receive(decide(C), 3)).toMatchObject({ kind: 'ack' });
    expect(ledger.receive(decide(A), 3)).toMatchObject({ kind: 'apply' });
  });
});
