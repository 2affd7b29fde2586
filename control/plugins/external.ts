/** External plugins, registered first: the OpenAPI document (/docs/json) and its UI (/docs). */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/** The Content-Security-Policy of /docs. */
export const DOCS_CSP =
  "default-src 'self'; base-uri 'self'; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; form-action 'self'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' 'unsafe-inline'";

export async function registerExternalPlugins(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Virtual power plant control API',
        description:
          'Registry, provisioning, device twins, history and live aggregates of the fleet, and alerts. Everything under /api/v1 needs `Authorization: Bearer <token>`: the configured admin token, or an API token (`vpp_…`) made by `POST /api/v1/tokens`. Each route needs a role (viewer, operator, admin), named in its description.',
        version: '1.0.0',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'the configured admin token (role admin) or an API token `vpp_…`' } },
      },
      tags: [
        { name: 'health', description: 'liveness of broker, pipeline and store' },
        { name: 'devices', description: 'registry, provisioning, twins and telemetry of devices' },
        { name: 'sites', description: 'sites, regions and their history' },
        { name: 'fleet', description: 'live aggregates and fleet history' },
        { name: 'dead-letters', description: 'messages the pipeline could not accept' },
        { name: 'alerts', description: 'alerts raised by the rules, their acknowledgement and resolution, the rules and notification deliveries' },
        { name: 'access', description: 'API tokens and the audit log (admin)' },
      ],
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // The UI is a page with its own scripts, styles and images, which the API's
    // `default-src 'none'` would block; this policy, scoped to /docs, lets them
    // load from this origin only. Framing stays forbidden.
    staticCSP: DOCS_CSP,
    uiConfig: { validatorUrl: null },
  });
}
