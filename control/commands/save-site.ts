import type { Registry, Site } from '../../store/types.ts';
import { badRequest } from '../errors.ts';

/** Site ids that are path segments of the API under /sites (GET /sites/overview), so no site can be read there. */
export const RESERVED_SITE_IDS: ReadonlySet<string> = new Set(['overview']);

/** Throws 400 for a site id the API could not address. */
export function checkNewSiteId(id: string): void {
  if (RESERVED_SITE_IDS.has(id)) throw badRequest(`id: '${id}' is reserved (GET /api/v1/sites/${id} is another route); choose another site id`);
}

/** Creates a site or updates its region and name; `created` says which. */
export function saveSite(deps: { registry: Registry }, site: Site): { site: Site; created: boolean } {
  checkNewSiteId(site.id);
  const created = deps.registry.getSite(site.id) === undefined;
  deps.registry.upsertSite(site);
  return { site, created };
}
