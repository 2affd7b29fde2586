/**
 * Every site in one columnar answer for the sites table: registry, live
 * aggregate and open alerts side by side. A pure function of the registry,
 * the live view and the alert store, so the stream can call it with just the
 * sites that changed and send the same columns.
 */
import type { Alert } from '../../protocol/index.ts';
import type { AlertStore, Registry, Site } from '../../store/types.ts';
import type { LiveView } from '../deps.ts';
import { appendSiteOverview, emptySitesOverview, type SiteAlertCounts, type SitesOverviewColumns } from '../presenters/sites-overview.ts';

export type { SitesOverviewColumns };

export interface SitesOverviewDeps {
  registry: Pick<Registry, 'listSites' | 'getSite' | 'getDevice' | 'countActiveDevices'>;
  live: Pick<LiveView, 'getAggregate'>;
  alerts: Pick<AlertStore, 'listOpenAlerts'>;
}

/**
 * Up to this many sites asked for by id are read one keyed lookup each;
 * more are read as the whole list, filtered (one query beats thousands).
 */
const SITE_LOOKUPS_MAX = 100;

/** The sites asked for (all when `siteIds` is absent; unknown ids are left out), in id order. */
function selectSites(registry: SitesOverviewDeps['registry'], siteIds: ReadonlySet<string> | undefined): Site[] {
  if (siteIds === undefined) return registry.listSites();
  if (siteIds.size > SITE_LOOKUPS_MAX) return registry.listSites().filter((s) => siteIds.has(s.id));
  const sites: Site[] = [];
  for (const id of [...siteIds].sort()) {
    const site = registry.getSite(id);
    if (site) sites.push(site);
  }
  return sites;
}

/**
 * The site an open alert counts against: its subject for a site alert; for
 * a device alert, the device's site, from the `siteId` label the rules put
 * on every device alert, or the registry for one without it. Region and
 * fleet alerts belong to no one site.
 */
function siteOfAlert(alert: Alert, registry: SitesOverviewDeps['registry']): string | undefined {
  if (alert.subjectKind === 'site') return alert.subjectId;
  if (alert.subjectKind !== 'device') return undefined;
  return alert.labels.siteId ?? registry.getDevice(alert.subjectId)?.siteId;
}

function countOpenAlerts(deps: SitesOverviewDeps, wanted: ReadonlySet<string> | undefined): Map<string, SiteAlertCounts> {
  const bySite = new Map<string, SiteAlertCounts>();
  for (const alert of deps.alerts.listOpenAlerts()) {
    const siteId = siteOfAlert(alert, deps.registry);
    if (siteId === undefined || (wanted !== undefined && !wanted.has(siteId))) continue;
    let counts = bySite.get(siteId);
    if (!counts) bySite.set(siteId, (counts = { open: 0, critical: 0 }));
    counts.open++;
    if (alert.severity === 'critical') counts.critical++;
  }
  return bySite;
}

export function querySitesOverview(deps: SitesOverviewDeps, siteIds?: ReadonlySet<string>): SitesOverviewColumns {
  const sites = selectSites(deps.registry, siteIds);
  const alerts = countOpenAlerts(deps, siteIds);
  // Needed only for a site without a live aggregate (before ingest published one), so counted only then, once.
  let activeBySite: Map<string, number> | undefined;
  const columns = emptySitesOverview();
  for (const site of sites) {
    const activeDevices = () => (activeBySite ??= deps.registry.countActiveDevices().bySite).get(site.id) ?? 0;
    appendSiteOverview(columns, site, deps.live.getAggregate('site', site.id), activeDevices, alerts.get(site.id));
  }
  return columns;
}
