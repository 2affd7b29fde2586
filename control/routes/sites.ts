/** /api/v1/sites and /api/v1/regions: the asset hierarchy below the fleet. */
import { sendHistory } from '../presenters/history.ts';
import type { ControlPlugin } from '../type-provider.ts';
import { saveSite } from '../commands/save-site.ts';
import { notFound } from '../errors.ts';
import { operatorOf } from '../plugins/auth.ts';
import { isoTime, presentDevices, presentDeviceTwin } from '../presenters/device.ts';
import { queryAggregateHistory } from '../queries/aggregate-history.ts';
import { queryDeviceControls } from '../queries/commands.ts';
import { querySitesOverview } from '../queries/sites-overview.ts';
import { BEARER_SECURITY, IdParamsSchema, errorResponses } from '../schemas/common.ts';
import { AGGREGATE_HISTORY_DESCRIPTION, AggregateHistorySchema, HistoryQuerySchema } from '../schemas/history.ts';
import { SiteBodySchema, SiteDetailSchema, SiteListSchema, SiteSchema, SitesOverviewSchema } from '../schemas/sites.ts';

export const siteRoutes: ControlPlugin = async (app, { deps }) => {
  app.get(
    '/sites',
    {
      schema: {
        tags: ['sites'],
        summary: 'List sites with device counts and live aggregates',
        security: BEARER_SECURITY,
        response: { 200: SiteListSchema, ...errorResponses(401) },
      },
    },
    async () => {
      const counts = deps.registry.countActiveDevices().bySite;
      const items = deps.registry.listSites().map((site) => ({
        ...site,
        deviceCount: counts.get(site.id) ?? 0,
        live: deps.live.getAggregate('site', site.id) ?? null,
      }));
      return { items };
    },
  );

  app.post(
    '/sites',
    {
      schema: {
        tags: ['sites'],
        summary: 'Create or update a site',
        description: '201 when the site is new, 200 when an existing site got a new region or name.',
        security: BEARER_SECURITY,
        body: SiteBodySchema,
        response: { 200: SiteSchema, 201: SiteSchema, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => {
      const { site, created } = saveSite(deps, request.body);
      request.log.info({ siteId: site.id, region: site.region, created, actor: operatorOf(request) }, 'site saved');
      return reply.code(created ? 201 : 200).send(site);
    },
  );

  // A static segment wins over a parameter in fastify's router, whatever the order of registration, so
  // /sites/overview never reaches /sites/:id. The price: a site whose id is `overview` is not readable there.
  app.get(
    '/sites/overview',
    {
      schema: {
        tags: ['sites'],
        summary: 'Every site in one columnar answer: registry, live aggregate and open alerts',
        description:
          'One array per field, index i of each being site i, sites in id order. `devicesReporting` / `devicesTotal` is the live coverage; ' +
          'power and `socPct` come from the site\'s live aggregate (0 and null before ingest published one). ' +
          '`openAlerts` counts open alerts (firing or acknowledged) whose subject is the site or one of its devices, `criticalAlerts` those of them that are critical.',
        security: BEARER_SECURITY,
        response: { 200: SitesOverviewSchema, ...errorResponses(401) },
      },
    },
    async () => {
      const columns = querySitesOverview(deps);
      return { at: isoTime(deps.clock()), count: columns.id.length, columns };
    },
  );

  app.get(
    '/sites/:id',
    {
      schema: {
        tags: ['sites'],
        summary: 'A site, its devices with their twins, and its live aggregate',
        security: BEARER_SECURITY,
        params: IdParamsSchema,
        response: { 200: SiteDetailSchema, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const site = deps.registry.getSite(request.params.id);
      if (!site) throw notFound(`site '${request.params.id}' does not exist`);
      const devices = deps.registry.listDevices({ siteId: site.id });
      const states = deps.twins.listDeviceStates(devices.map((d) => d.id));
      return {
        ...site,
        deviceCount: devices.filter((d) => d.revokedAtMs === null).length,
        live: deps.live.getAggregate('site', site.id) ?? null,
        devices: presentDevices(devices, states, queryDeviceControls(deps, devices, states), presentDeviceTwin),
      };
    },
  );

  const historySchema = {
    description: AGGREGATE_HISTORY_DESCRIPTION,
    security: BEARER_SECURITY,
    params: IdParamsSchema,
    querystring: HistoryQuerySchema,
    response: { 200: AggregateHistorySchema, ...errorResponses(400, 401, 404) },
  };

  app.get(
    '/sites/:id/history',
    { schema: { tags: ['sites'], summary: 'Rollups of a site', ...historySchema } },
    async (request, reply) => {
      const { resolution = '1m', format = 'points', ...range } = request.query;
      return sendHistory(reply, await queryAggregateHistory(deps, 'site', request.params.id, { ...range, resolution, format }));
    },
  );

  app.get(
    '/regions/:id/history',
    { schema: { tags: ['sites'], summary: 'Rollups of a region', ...historySchema } },
    async (request, reply) => {
      const { resolution = '1m', format = 'points', ...range } = request.query;
      return sendHistory(reply, await queryAggregateHistory(deps, 'region', request.params.id, { ...range, resolution, format }));
    },
  );
};
