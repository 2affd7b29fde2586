/** /api/v1/sites and /api/v1/regions: the asset hierarchy below the fleet. */
import type { ControlPlugin } from '../type-provider.ts';
import { saveSite } from '../commands/save-site.ts';
import { notFound } from '../errors.ts';
import { operatorOf } from '../plugins/auth.ts';
import { presentDevices, presentDeviceTwin } from '../presenters/device.ts';
import { queryAggregateHistory } from '../queries/aggregate-history.ts';
import { queryDeviceControls } from '../queries/commands.ts';
import { BEARER_SECURITY, IdParamsSchema, errorResponses } from '../schemas/common.ts';
import { AggregateHistorySchema, HistoryQuerySchema } from '../schemas/history.ts';
import { SiteBodySchema, SiteDetailSchema, SiteListSchema, SiteSchema } from '../schemas/sites.ts';

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
    security: BEARER_SECURITY,
    params: IdParamsSchema,
    querystring: HistoryQuerySchema,
    response: { 200: AggregateHistorySchema, ...errorResponses(400, 401, 404) },
  };

  app.get(
    '/sites/:id/history',
    { schema: { tags: ['sites'], summary: 'Rollups of a site', ...historySchema } },
    async (request) => {
      const { resolution = '1m', ...range } = request.query;
      return queryAggregateHistory(deps, 'site', request.params.id, { ...range, resolution });
    },
  );

  app.get(
    '/regions/:id/history',
    { schema: { tags: ['sites'], summary: 'Rollups of a region', ...historySchema } },
    async (request) => {
      const { resolution = '1m', ...range } = request.query;
      return queryAggregateHistory(deps, 'region', request.params.id, { ...range, resolution });
    },
  );
};
