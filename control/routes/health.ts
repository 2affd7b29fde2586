/**
 * GET /healthz and GET /readyz: no auth, for load balancers, orchestrators
 * and monitors. Both answer the same report; /readyz is the stricter gate.
 */
import type { ControlPlugin } from '../type-provider.ts';
import { assessReadiness, checkHealth } from '../health.ts';
import { HealthReportSchema } from '../schemas/health.ts';

export const healthRoutes: ControlPlugin = async (app, { deps }) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Health of broker, pipeline and store',
        description: '503 when any reported component is unhealthy, a stalled pipeline included, or when the check itself fails.',
        response: { 200: HealthReportSchema, 503: HealthReportSchema },
      },
    },
    async (_request, reply) => {
      const report = await checkHealth(deps.health);
      return reply.code(report.ok ? 200 : 503).send(report);
    },
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Whether the platform is ready to take traffic',
        description:
          '200 only when the broker is connected, the store is writable and ingest\'s heartbeat is fresh and not stalled; 503 with the report otherwise. A component the check did not report counts as not ready.',
        response: { 200: HealthReportSchema, 503: HealthReportSchema },
      },
    },
    async (_request, reply) => {
      const report = assessReadiness(await checkHealth(deps.health));
      return reply.code(report.ok ? 200 : 503).send(report);
    },
  );
};
