/** Test data shared by the control tests; no I/O. */
import { aggregateTopic, encodeJson, type AggregateSnapshot } from '../protocol/index.ts';
import type { FeedableLiveView } from './live-view.ts';

/** 2024-03-01T12:00:00Z */
export const T0 = Date.UTC(2024, 2, 1, 12, 0, 0);

/** A live aggregate as ingest publishes it, with the given coverage. */
export function makeSnapshot(
  level: AggregateSnapshot['level'],
  id: string,
  ts: number,
  coverage: { devicesReporting: number; devicesTotal: number },
): AggregateSnapshot {
  const { devicesReporting, devicesTotal } = coverage;
  return {
    level,
    id,
    ts,
    windowMs: 30_000,
    coverage: { devicesReporting, devicesTotal, ratio: devicesTotal === 0 ? 0 : devicesReporting / devicesTotal },
    metrics: {
      batteryPowerW: 2_000 * devicesReporting,
      solarPowerW: 1_500,
      gridPowerW: -500,
      loadW: 1_000,
      energyWh: 6_000 * devicesReporting,
      capacityWh: 13_500 * devicesReporting,
      socPct: devicesReporting === 0 ? null : 44.4,
    },
  };
}

/** Feeds a snapshot to the live view as the MQTT message it would be. */
export function publishSnapshot(live: FeedableLiveView, snapshot: AggregateSnapshot): void {
  live.apply(aggregateTopic(snapshot.level, snapshot.id), encodeJson(snapshot));
}
