/** History of one device: raw samples or rollups, within the bounds of time-range.ts. */
import type { Registry, TelemetryStore } from '../../store/types.ts';
import { badRequest, notFound } from '../errors.ts';
import { groupSeries, presentDeviceColumns, presentDevicePoint, presentSamples, type RollupColumns, type RollupPoint } from '../presenters/history.ts';
import { isoTime } from '../presenters/device.ts';
import type { HistoryFormat } from '../schemas/history.ts';
import { BUCKET_MS, ROLLUP_RESOLUTIONS, resolveTimeRange, type Resolution, type RollupResolution } from '../time-range.ts';

export interface HistoryParams {
  metric?: string[] | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

export type DeviceTelemetry =
  | {
      deviceId: string;
      resolution: 'raw';
      from: string;
      to: string;
      samples: Array<{ ts: number; seq: number; metrics: Record<string, number> }>;
      truncated: boolean;
    }
  | {
      deviceId: string;
      resolution: RollupResolution;
      from: string;
      to: string;
      series: Array<{ metric: string; points: RollupPoint[] }>;
    }
  | {
      deviceId: string;
      resolution: RollupResolution;
      from: string;
      to: string;
      format: 'columns';
      series: RollupColumns[];
    };

export async function queryDeviceTelemetry(
  deps: { registry: Registry; telemetry: TelemetryStore; clock: () => number },
  deviceId: string,
  params: HistoryParams & { resolution: Resolution; limit: number; format: HistoryFormat },
): Promise<DeviceTelemetry> {
  // Raw samples need not all carry the same metrics, so their columns would need gaps; charts read
  // rollups, and raw stays in the one form it has always had.
  if (params.format === 'columns' && params.resolution === 'raw') {
    throw badRequest(`format: columns needs a rollup resolution (${ROLLUP_RESOLUTIONS.join(', ')}); raw samples come only as points`);
  }
  const { fromMs, toMs } = resolveTimeRange(params, params.resolution, deps.clock());
  if (!deps.registry.getDevice(deviceId)) throw notFound(`device '${deviceId}' does not exist`);
  const metrics = params.metric && params.metric.length > 0 ? [...new Set(params.metric)] : undefined;
  const range = { from: isoTime(fromMs), to: isoTime(toMs) };
  if (params.resolution === 'raw') {
    // One more than asked tells whether the answer was cut.
    const points = await deps.telemetry.queryTelemetry({ deviceId, fromMs, toMs, metrics, limit: params.limit + 1 });
    const truncated = points.length > params.limit;
    return {
      deviceId,
      resolution: 'raw',
      ...range,
      samples: presentSamples(truncated ? points.slice(0, params.limit) : points),
      truncated,
    };
  }
  const query = { kind: 'device' as const, entityId: deviceId, fromMs, toMs, metrics, bucketMs: BUCKET_MS[params.resolution] };
  if (params.format === 'columns') {
    return { deviceId, resolution: params.resolution, ...range, format: 'columns', series: presentDeviceColumns(await deps.telemetry.queryRollupColumns(query)) };
  }
  return { deviceId, resolution: params.resolution, ...range, series: groupSeries(await deps.telemetry.queryRollups(query), presentDevicePoint) };
}
