import { describe, expect, it } from 'vitest';
import { decideCommand } from './commands.ts';

const ID = '0b7e3c1a-9f1e-4f8e-9a57-2b1c3d4e5f60';
const NOW = 1_700_000_000_000;
const command = (overrides: Record<string, unknown> = {}): string =>
  JSON.stringify({ id: ID, type: 'setPower', params: { powerW: -2_000 }, expiresAt: NOW + 60_000, ...overrides });

describe('decideCommand', () => {
  it('accepts setPower on a battery', () => {
    expect(decideCommand(command(), 'battery', NOW)).toEqual({ kind: 'set-power', commandId: ID, powerW: -2_000, expiresAtMs: NOW + 60_000 });
  });

  it('rejects an expired command', () => {
    expect(decideCommand(command({ expiresAt: NOW }), 'battery', NOW)).toEqual({ kind: 'reject', commandId: ID, reason: 'expired' });
  });

  it('rejects an unknown type, and setPower on a device that is not a battery', () => {
    expect(decideCommand(command({ type: 'reboot' }), 'battery', NOW)).toMatchObject({ kind: 'reject', reason: 'unknown command type reboot' });
    expect(decideCommand(command(), 'solar', NOW)).toMatchObject({ kind: 'reject', reason: 'a solar does not support setPower' });
  });

  it('rejects malformed commands that carry an id', () => {
    expect(decideCommand(command({ params: { powerW: 'lots' } }), 'battery', NOW)).toMatchObject({ kind: 'reject', commandId: ID });
    expect(decideCommand(command({ params: {} }), 'battery', NOW)).toMatchObject({ kind: 'reject' });
    expect(decideCommand(command({ expiresAt: 'soon' }), 'battery', NOW)).toMatchObject({ kind: 'reject', reason: expect.stringContaining('expiresAt') });
    expect(decideCommand(command({ extra: 1 }), 'battery', NOW)).toMatchObject({ kind: 'reject', reason: expect.stringContaining('extra') });
    expect(decideCommand(command({ id: 'not-a-uuid' }), 'battery', NOW)).toMatchObject({ kind: 'reject', commandId: 'not-a-uuid' });
  });

  it('ignores what it cannot acknowledge', () => {
    expect(decideCommand('{not json', 'battery', NOW).kind).toBe('ignore');
    expect(decideCommand('[1,2]', 'battery', NOW).kind).toBe('ignore');
    expect(decideCommand(command({ id: 42 }), 'battery', NOW).kind).toBe('ignore');
    expect(decideCommand(command({ id: 'x'.repeat(65) }), 'battery', NOW).kind).toBe('ignore');
  });
});
