import { pino } from 'pino';
import { firstValueFrom, of, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type Rollup, type SqliteStore, type TelemetryStore } from '../../store/index.ts';
import { IngestCounters } from '../counters.ts';
import { writeRollups } from './write-rollups.ts';

const row = (i: number): Rollup => ({
  kind: 'device', entityId: 'd1', metric: 'powerW', bucketStartMs: i * 60_000,
  min: i, max: i, mean: i, last: i, count: 1, devicesReporting: 1, devicesTotal: 1,
});

describe('writeRollups', () => {
  let store: SqliteStore;
  afterEach(() => store.close());

  it('writes in chunks, retries a failed chunk, and counts what was written', async () => {
    store = openSqliteStore({ file: ':memory:' });
    const sizes: number[] = [];
    let failOnce = true;
    const telemetry: TelemetryStore = {
      writeTelemetry: (p) => store.writeTelemetry(p),
      queryTelemetry: (q) => store.queryTelemetry(q),
      queryRollups: (q) => store.queryRollups(q),
    queryRollupColumns: (q) => store.queryRollupColumns(q),
      checkHealth: () => store.checkHealth(),
      close: async () => undefined,
      writeRollups: async (rows) => {
        if (sizes.length === 1 && failOnce) {
          failOnce = false;
          throw new Error('busy');
        }
        sizes.push(rows.length);
        return store.writeRollups(rows);
      },
    };
    const counters = new IngestCounters();
    const written = await firstValueFrom(
      of([0, 1, 2, 3, 4].map(row)).pipe(
        writeRollups({ telemetry, counters, logger: pino({ level: 'silent' }), retryDelayMs: 1, maxAttempts: 3, chunkRows: 2 }),
        toArray(),
      ),
    );
    expect(sizes).toEqual([2, 2, 1]);
    expect(written).toEqual([2, 2, 1]);
    expect(counters.rollupsWritten).toBe(5);
    // The newest minute written, what the rollup-lag metric reads.
    expect(counters.lastRollupMinuteMs).toBe(240_000);
    const stored = await store.queryRollups({ kind: 'device', entityId: 'd1', fromMs: 0, toMs: 300_000, bucketMs: 60_000 });
    expect(stored.map((r) => r.mean)).toEqual([0, 1, 2, 3, 4]);
  });
});
