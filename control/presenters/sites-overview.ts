/** The sites table as columns: one array per field, index i of each being site i. */
import type { Static } from '@sinclair/typebox';
import type { AggregateSnapshot } from '../../protocol/index.ts';
import type { Site } from '../../store/types.ts';
import type { SitesOverviewColumnsSchema } from '../schemas/sites.ts';

export type SitesOverviewColumns = Static<typeof SitesOverviewColumnsSchema>;

/** Open alerts of one site: all of them and the critical ones. */
export interface SiteAlertCounts {
  open: number;
  critical: number;
}

export function emptySitesOverview(): SitesOverviewColumns {
  return {
    id: [],
    name: [],
    region: [],
    devicesTotal: [],
    devicesReporting: [],
    socPct: [],
    batteryPowerW: [],
    solarPowerW: [],
    gridPowerW: [],
    loadW: [],
    openAlerts: [],
    criticalAlerts: [],
    updatedAt: [],
  };
}

/**
 * Appends one site. Without a live aggregate (ingest has published none
 * yet), its figures are zeros and null, and `devicesTotal` is
 * `activeDevices`, so the table says "none reporting" rather than "no devices".
 */
export function appendSiteOverview(
  columns: SitesOverviewColumns,
  site: Site,
  live: AggregateSnapshot | undefined,
  activeDevices: () => number,
  alerts: SiteAlertCounts | undefined,
): void {
  columns.id.push(site.id);
  columns.name.push(site.name);
  columns.region.push(site.region);
  columns.devicesTotal.push(live ? live.coverage.devicesTotal : activeDevices());
  columns.devicesReporting.push(live ? live.coverage.devicesReporting : 0);
  columns.socPct.push(live ? live.metrics.socPct : null);
  columns.batteryPowerW.push(live ? live.metrics.batteryPowerW : 0);
  columns.solarPowerW.push(live ? live.metrics.solarPowerW : 0);
  columns.gridPowerW.push(live ? live.metrics.gridPowerW : 0);
  columns.loadW.push(live ? live.metrics.loadW : 0);
  columns.openAlerts.push(alerts?.open ?? 0);
  columns.criticalAlerts.push(alerts?.critical ?? 0);
  columns.updatedAt.push(live ? live.ts : null);
}
