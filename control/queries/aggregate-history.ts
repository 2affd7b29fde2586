/** History of a site, a region or the fleet, from rollups of that kind. */
import type { Registry, TelemetryStore } from '../../store/types.ts';
import { notFound } from '../errors.ts';
import { isoTime } from '../presenters/device.ts';
import { groupSeries, presentAggregateColumns, presentAggregatePoint, type AggregateColumns, type AggregatePoint } from '../presenters/history.ts';
import type { HistoryFormat } from '../schemas/history.ts';
import { BUCKET_MS, resolveTimeRange, type RollupResolution } from '../time-range.ts';
import type { HistoryParams } from './device-telemetry.ts';

export type AggregateKind = 'site' | 'region' | 'fleet';

/** Entity id of the fleet in rollups. */
export const FLEET_ID = 'fleet';

interface AggregateHistoryHeader {
  kind: AggregateKind;
  id: string;
  resolution: RollupResolution;
  from: string;
  to: string;
}

/** The points form (the original one, without `format`) or the columns form. */
export type AggregateHistory =
  | (AggregateHistoryHeader & { series: Array<{ metric: string; points: AggregatePoint[] }> })
  | (AggregateHistoryHeader & { format: 'columns'; series: AggregateColumns[] });

/** Regions exist through their sites; the fleet always exists. */
function checkEntityExists(registry: Registry, kind: AggregateKind, id: string): void {
  if (kind === 'site' && !registry.getSite(id)) throw notFound(`site '${id}' does not exist`);
  if (kind === 'region' && !registry.listSites().some((s) => s.region === id)) {
    throw notFound(`region '${id}' has no sites`);
  }
}

export async function queryAggregateHistory(
  deps: { registry: Registry; telemetry: TelemetryStore; clock: () => number },
  kind: AggregateKind,
  id: string,
  params: HistoryParams & { resolution: RollupResolution; format: HistoryFormat },
): Promise<AggregateHistory> {
  const { fromMs, toMs } = resolveTimeRange(params, params.resolution, deps.clock());
  checkEntityExists(deps.registry, kind, id);
  const metrics = params.metric && params.metric.length > 0 ? [...new Set(params.metric)] : undefined;
  const query = { kind, entityId: id, fromMs, toMs, metrics, bucketMs: BUCKET_MS[params.resolution] };
  const header = { kind, id, resolution: params.resolution, from: isoTime(fromMs), to: isoTime(toMs) };
  if (params.format === 'columns') return { ...header, format: 'columns', series: presentAggregateColumns(await deps.telemetry.queryRollupColumns(query)) };
  return { ...header, series: groupSeries(await deps.telemetry.queryRollups(query), presentAggregatePoint) };
}
