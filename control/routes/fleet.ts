/** /api/v1/fleet: live aggregates of the fleet and its regions, and fleet history. */
import { sendHistory } from '../presenters/history.ts';
import type { ControlPlugin } from '../type-provider.ts';
import { FLEET_ID, queryAggregateHistory } from '../queries/aggregate-history.ts';
import { BEARER_SECURITY, errorResponses } from '../schemas/common.ts';
import { AGGREGATE_HISTORY_DESCRIPTION, AggregateHistorySchema, HistoryQuerySchema } from '../schemas/history.ts';
import { FleetLiveSchema } from '../schemas/sites.ts';

export const fleetRoutes: ControlPlugin = async (app, { deps }) => {
  app.get(
    '/fleet',
    {
      schema: {
        tags: ['fleet'],
        summary: 'Live aggregates of the fleet and of every region, each with its coverage',
        description: 'Devices that have not reported within `windowMs` are left out; `coverage` says how many reported.',
        security: BEARER_SECURITY,
        response: { 200: FleetLiveSchema, ...errorResponses(401) },
      },
    },
    async () => ({
      fleet: deps.live.getAggregate('fleet', FLEET_ID) ?? null,
      regions: deps.live.listAggregates('region'),
    }),
  );

  app.get(
    '/fleet/history',
    {
      schema: {
        tags: ['fleet'],
        summary: 'Rollups of the fleet',
        description: AGGREGATE_HISTORY_DESCRIPTION,
        security: BEARER_SECURITY,
        querystring: HistoryQuerySchema,
        response: { 200: AggregateHistorySchema, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => {
      const { resolution = '1m', format = 'points', ...range } = request.query;
      return sendHistory(reply, await queryAggregateHistory(deps, 'fleet', FLEET_ID, { ...range, resolution, format }));
    },
  );
};
