import { describe, expect, it } from 'vitest';
import { decodeAck, decodeCommand, decodeStatus, decodeTelemetry, parseDeviceTopic, deviceTopic, isValidDeviceId } from './index.ts';

describe('protocol codecs', () => {
  it('accepts a command with a UUID id and refuses other ids', () => {
    const command = { id: '7d0c6b8e-3f9a-4f57-a0c5-2f1f4b1f9c11', type: 'setPower', params: { powerW: 3000 }, expiresAt: 1 };
    expect(decodeCommand(JSON.stringify(command))).toEqual({ ok: true, value: command });
    expect(decodeCommand(JSON.stringify({ ...command, id: 'x'.repeat(36) }))).toMatchObject({ ok: false, reason: 'schema' });
  });

  it('decodes acks, statuses and telemetry, and names the failing field', () => {
    expect(decodeAck('{"commandId":"c1","status":"completed"}')).toMatchObject({ ok: true });
    expect(decodeAck('{"commandId":"c1","status":"done"}')).toMatchObject({ ok: false, reason: 'schema' });
    expect(decodeStatus('{"online":true,"firmware":"1.0","extra":1}')).toMatchObject({ ok: true });
    const bad = decodeTelemetry('{"ts":1,"seq":1,"metrics":{"Power W":1}}');
    expect(bad).toMatchObject({ ok: false, reason: 'schema' });
    expect(!bad.ok && bad.detail).toMatch(/metrics/);
    expect(decodeTelemetry(Buffer.from('not json'))).toMatchObject({ ok: false, reason: 'not-json' });
  });

  it('builds and parses device topics, refusing ids that are not one topic level', () => {
    expect(parseDeviceTopic(deviceTopic('site-0001-battery', 'telemetry'))).toEqual({ deviceId: 'site-0001-battery', channel: 'telemetry' });
    expect(parseDeviceTopic('vpp/v1/devices/a/b/telemetry')).toBeUndefined();
    expect(parseDeviceTopic('vpp/v1/devices/a/other')).toBeUndefined();
    for (const id of ['a/b', 'a+b', '#', '', 'x'.repeat(65), ' a']) expect(isValidDeviceId(id), id).toBe(false);
  });
});

describe('acks', () => {
  it('accept what a device applied under metric-like names only', () => {
    const ack = (applied: unknown) => decodeAck(Buffer.from(JSON.stringify({ commandId: 'c1', status: 'accepted', applied })));
    expect(ack({ powerW: 5000 }).ok).toBe(true);
    expect(ack({ PowerW: 5000 }).ok).toBe(false);
    expect(ack({ powerW: { nested: 1 } }).ok).toBe(false);
    expect(ack(Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, i]))).ok).toBe(false);
  });
});
