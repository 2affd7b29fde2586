import { describe, expect, it } from 'vitest';
import { decodeMessage } from './decode.ts';
import type { InboundMessage } from '../types.ts';

function message(topic: string, payload: string | Buffer, clientId: string | null = null): InboundMessage {
  return { topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), clientId, retained: false, receivedAtMs: 1, ack: () => undefined };
}

describe('decode', () => {
  it('decodes one telemetry sample into a list of one', () => {
    const out = decodeMessage(message('vpp/v1/devices/b1/telemetry', '{"ts":5,"seq":1,"metrics":{"powerW":-3200}}', 'b1'));
    expect(out).toMatchObject({ kind: 'telemetry', deviceId: 'b1', samples: [{ ts: 5, seq: 1, metrics: { powerW: -3200 } }] });
  });

  it('decodes a buffered flush into all its samples', () => {
    const samples = [1, 2, 3].map((i) => ({ ts: i * 1000, seq: i, metrics: { socPct: 50 + i } }));
    const out = decodeMessage(message('vpp/v1/devices/b1/telemetry', JSON.stringify({ samples })));
    expect(out.kind).toBe('telemetry');
    expect(out.kind === 'telemetry' && out.samples.map((s) => s.seq)).toEqual([1, 2, 3]);
  });

  it('decodes a status message', () => {
    const out = decodeMessage(message('vpp/v1/devices/b1/status', '{"online":false}'));
    expect(out).toMatchObject({ kind: 'status', deviceId: 'b1', status: { online: false } });
  });

  it.each([
    ['not-json', 'vpp/v1/devices/b1/telemetry', '{"ts":', null],
    ['not-json', 'vpp/v1/devices/b1/telemetry', Buffer.from([0xff, 0xfe, 0x00]), null],
    ['schema', 'vpp/v1/devices/b1/telemetry', '{"ts":1,"seq":1}', null],
    ['schema', 'vpp/v1/devices/b1/telemetry', '{"ts":1,"seq":1,"metrics":{"powerW":"high"}}', null],
    ['schema', 'vpp/v1/devices/b1/telemetry', '{"ts":-5,"seq":1,"metrics":{"powerW":1}}', null],
    ['schema', 'vpp/v1/devices/b1/telemetry', '{"samples":[]}', null],
    ['schema', 'vpp/v1/devices/b1/status', '{"online":"yes"}', null],
    ['unexpected-topic', 'vpp/v1/devices/b1/acks', '{}', null],
    ['unexpected-topic', 'somewhere/else', '{}', null],
    ['wrong-client', 'vpp/v1/devices/b1/telemetry', '{"ts":1,"seq":1,"metrics":{"powerW":1}}', 'b2'],
  ] as const)('rejects %s: %s %s', (reason, topic, payload, clientId) => {
    const out = decodeMessage(message(topic, payload, clientId));
    expect(out.kind).toBe('rejected');
    expect(out.kind === 'rejected' && out.reason).toBe(reason);
    expect(out.kind === 'rejected' && out.detail.length).toBeGreaterThan(0);
  });
});
