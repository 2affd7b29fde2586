import { describe, expect, it } from 'vitest';
import { decodeMessage } from './decode.ts';
import { validateEnvelope, type ValidateOptions } from './validate.ts';

const NOW = 1_700_000_000_000;
const options: ValidateOptions = {
  findDevice: (id) => (id === 'b1' ? { id, type: 'battery', siteId: 's1' } : id === 'm1' ? { id, type: 'meter', siteId: 's1' } : undefined),
  clock: () => NOW,
  maxFutureMs: 60_000,
  maxAgeMs: 86_400_000,
  maxMetricsPerDevice: 64,
  wouldExceedMetrics: () => false,
};

function validateTelemetry(deviceId: string, body: unknown) {
  const decoded = decodeMessage({
    topic: `vpp/v1/devices/${deviceId}/telemetry`,
    payload: Buffer.from(JSON.stringify(body)),
    clientId: deviceId,
    retained: false,
    receivedAtMs: NOW,
    ack: () => undefined,
  });
  return validateEnvelope(decoded, options);
}

describe('validate', () => {
  it('accepts a plausible sample and attaches the registered device', () => {
    const out = validateTelemetry('b1', { ts: NOW - 1000, seq: 1, metrics: { socPct: 40, powerW: 2000, newMetricW: 1 } });
    expect(out).toMatchObject({ kind: 'telemetry', device: { id: 'b1', type: 'battery', siteId: 's1' } });
  });

  it('rejects an unknown device', () => {
    expect(validateTelemetry('ghost', { ts: NOW, seq: 1, metrics: { powerW: 1 } })).toMatchObject({ kind: 'rejected', reason: 'unknown-device' });
  });

  it.each([
    [{ socPct: 140 }, 'socPct=140'],
    [{ powerW: 5e6 }, 'powerW=5000000'],
    [{ customW: 1e15 }, 'customW'],
  ])('rejects absurd values %j', (metrics, mention) => {
    const out = validateTelemetry('b1', { ts: NOW, seq: 1, metrics });
    expect(out).toMatchObject({ kind: 'rejected', reason: 'absurd-value' });
    expect(out.kind === 'rejected' && out.detail).toContain(mention);
  });

  it('checks ranges per device type: a meter may import 150 kW, a battery may not', () => {
    expect(validateTelemetry('m1', { ts: NOW, seq: 1, metrics: { powerW: 150_000 } }).kind).toBe('telemetry');
    expect(validateTelemetry('b1', { ts: NOW, seq: 1, metrics: { powerW: 150_000 } }).kind).toBe('rejected');
  });

  it('rejects timestamps far in the future or too old, but not small clock drift', () => {
    expect(validateTelemetry('b1', { ts: NOW + 30_000, seq: 1, metrics: { powerW: 1 } }).kind).toBe('telemetry');
    expect(validateTelemetry('b1', { ts: NOW + 120_000, seq: 1, metrics: { powerW: 1 } })).toMatchObject({ reason: 'future-timestamp' });
    expect(validateTelemetry('b1', { ts: NOW - 2 * 86_400_000, seq: 1, metrics: { powerW: 1 } })).toMatchObject({ reason: 'stale-timestamp' });
  });

  it('rejects a whole buffered flush when one sample is bad', () => {
    const samples = [
      { ts: NOW - 2000, seq: 1, metrics: { socPct: 50 } },
      { ts: NOW - 1000, seq: 2, metrics: { socPct: -3 } },
    ];
    expect(validateTelemetry('b1', { samples })).toMatchObject({ kind: 'rejected', reason: 'absurd-value' });
  });
});
