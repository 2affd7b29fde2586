import { describe, expect, it } from 'vitest';
import { MAX_PACKET_BYTES, MAX_SAMPLES_PER_MESSAGE, decodeTelemetry, samplesOf } from '../protocol/index.ts';
import { encodeBatch, splitIntoBatches, type EncodedSample } from './batches.ts';

function samples(count: number, metricCount = 3): EncodedSample[] {
  return Array.from({ length: count }, (_, seq) => {
    const metrics = Object.fromEntries(Array.from({ length: metricCount }, (_unused, i) => [`metric${i}W`, seq * 1.5 + i]));
    return { seq, json: JSON.stringify({ ts: 1_700_000_000_000 + seq, seq, metrics }) };
  });
}

describe('splitIntoBatches', () => {
  it('keeps a buffer within the limits in one message', () => {
    const batches = splitIntoBatches(samples(1_500));
    expect(batches).toHaveLength(1);
    const decoded = decodeTelemetry(encodeBatch(batches[0]!));
    expect(decoded.ok && samplesOf(decoded.value).map((s) => s.seq)).toEqual(Array.from({ length: 1_500 }, (_, i) => i));
  });

  it('splits above MAX_SAMPLES_PER_MESSAGE, in order', () => {
    const batches = splitIntoBatches(samples(2 * MAX_SAMPLES_PER_MESSAGE + 10));
    expect(batches.map((b) => b.length)).toEqual([MAX_SAMPLES_PER_MESSAGE, MAX_SAMPLES_PER_MESSAGE, 10]);
    expect(batches.flat().map((s) => s.seq)).toEqual(Array.from({ length: 2 * MAX_SAMPLES_PER_MESSAGE + 10 }, (_, i) => i));
    for (const batch of batches) expect(decodeTelemetry(encodeBatch(batch)).ok).toBe(true);
  });

  it('splits by size so that no message exceeds the broker packet limit', () => {
    const big = samples(1_000, 20);
    const batches = splitIntoBatches(big);
    expect(batches.length).toBeGreaterThan(1);
    for (const batch of batches) {
      const payload = encodeBatch(batch);
      expect(Buffer.byteLength(payload)).toBeLessThanOrEqual(MAX_PACKET_BYTES - 512);
      expect(decodeTelemetry(payload).ok).toBe(true);
    }
    expect(batches.flat()).toHaveLength(1_000);
  });

  it('respects given limits exactly', () => {
    const five = samples(5);
    const oneByte = splitIntoBatches(five, { maxSamples: 100, maxPayloadBytes: 1 });
    expect(oneByte.map((b) => b.length)).toEqual([1, 1, 1, 1, 1]);
    const exact = Buffer.byteLength(encodeBatch(five.slice(0, 2)));
    expect(splitIntoBatches(five, { maxSamples: 100, maxPayloadBytes: exact }).map((b) => b.length)).toEqual([2, 2, 1]);
  });
});
