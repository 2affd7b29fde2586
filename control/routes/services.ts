/**
 * GET /api/v1/services: every platform service's latest heartbeat (broker,
 * ingest), with its counters (received, committed, rejected by reason,
 * dead letters suppressed, connections refused by reason, …) and, for
 * ingest, the pipeline's liveness. Behind the token: counters tell an
 * attacker how the platform is doing.
 */
import { Type } from '@sinclair/typebox';
import { ServiceHealthSchema } from '../../protocol/index.ts';
import type { ControlPlugin } from '../type-provider.ts';
import { BEARER_SECURITY, errorResponses } from '../schemas/common.ts';

const ServiceListSchema = Type.Object({ services: Type.Array(ServiceHealthSchema) });

export const serviceRoutes: ControlPlugin = async (app, { deps }) => {
  app.get(
    '/services',
    {
      schema: {
        tags: ['health'],
        summary: 'Heartbeats of the platform services, with their counters',
        security: BEARER_SECURITY,
        response: { 200: ServiceListSchema, ...errorResponses(401) },
      },
    },
    async () => ({ services: deps.live.listServiceHealth() }),
  );
};
