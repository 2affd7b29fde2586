import type { ControlPlugin } from '../type-provider.ts';
import type { ControlDeps, HealthReport } from '../deps.ts';
import { HealthReportSchema } from '../schemas/health.ts';

/** A failing check is itself a finding, reported like any unhealthy component. */
export async function checkHealth(health: ControlDeps['health']): Promise<HealthReport> {
  try {
    return await health.check();
  } catch (err) {
    return { ok: false, components: { health: { ok: false, detail: `health check failed: ${(err as Error).message}` } } };
  }
}

/** GET /healthz: no auth, for load balancers and orchestrators; 503 when anything is unhealthy. */
export const healthRoutes: ControlPlugin = async (app, { deps }) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Health of broker, pipeline and store',
        response: { 200: HealthReportSchema, 503: HealthReportSchema },
      },
    },
    async (_request, reply) => {
      const report = await checkHealth(deps.health);
      return reply.code(report.ok ? 200 : 503).send(report);
    },
  );
};
