/**
 * sharedCollection: however often /metrics is asked, the parts pay for at
 * most one collection per METRICS_REUSE_MS; a failed collection is not reused.
 */
import { describe, expect, it } from 'vitest';
import { METRICS_REUSE_MS, sharedCollection } from './metrics.ts';

function fakeRegistry() {
  const calls: Array<{ resolve: (text: string) => void; reject: (error: Error) => void }> = [];
  return {
    calls,
    metrics: () => new Promise<string>((resolve, reject) => calls.push({ resolve, reject })),
  };
}

describe('sharedCollection', () => {
  it('shares one collection among concurrent requests and reuses it for a second after it settled', async () => {
    const registry = fakeRegistry();
    let now = 0;
    const collect = sharedCollection(registry, () => now);
    const [a, b] = [collect(), collect()];
    expect(registry.calls).toHaveLength(1);
    registry.calls[0]!.resolve('first');
    expect(await a).toBe('first');
    expect(await b).toBe('first');
    now += METRICS_REUSE_MS - 1;
    expect(await collect()).toBe('first');
    expect(registry.calls).toHaveLength(1);
    now += 1;
    const c = collect();
    expect(registry.calls).toHaveLength(2);
    registry.calls[1]!.resolve('second');
    expect(await c).toBe('second');
  });

  it('collects again after a failure', async () => {
    const registry = fakeRegistry();
    const collect = sharedCollection(registry, () => 0);
    const failed = collect();
    registry.calls[0]!.reject(new Error('collector threw'));
    await expect(failed).rejects.toThrow('collector threw');
    const again = collect();
    expect(registry.calls).toHaveLength(2);
    registry.calls[1]!.resolve('ok');
    expect(await again).toBe('ok');
  });
});
