/** External plugins, registered first: the OpenAPI document (/docs/json) and its UI (/docs). */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export async function registerExternalPlugins(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Virtual power plant control API',
        description:
          'Registry, provisioning, device twins, history and live aggregates of the fleet, and alerts. Everything under /api/v1 needs `Authorization: Bearer <admin token>`.',
        version: '1.0.0',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'the admin token' } },
      },
      tags: [
        { name: 'health', description: 'liveness of broker, pipeline and store' },
        { name: 'devices', description: 'registry, provisioning, twins and telemetry of devices' },
        { name: 'sites', description: 'sites, regions and their history' },
        { name: 'fleet', description: 'live aggregates and fleet history' },
        { name: 'dead-letters', description: 'messages the pipeline could not accept' },
        { name: 'alerts', description: 'alerts raised by the rules, their acknowledgement and resolution, the rules and notification deliveries' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
