import type { Registry, Site } from '../../store/types.ts';

/** Creates a site or updates its region and name; `created` says which. */
export function saveSite(deps: { registry: Registry }, site: Site): { site: Site; created: boolean } {
  const created = deps.registry.getSite(site.id) === undefined;
  deps.registry.upsertSite(site);
  return { site, created };
}
