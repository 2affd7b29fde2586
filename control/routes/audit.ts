/** /api/v1/audit: what was changed or refused, by whom, newest first (admin). */
import type { FastifyPluginAsync, RawServerDefault } from 'fastify';
import type { ControlDeps } from '../deps.ts';
import type { AuditWriter } from '../plugins/audit.ts';
import { queryAudit } from '../queries/audit.ts';
import { AuditPageSchema, AuditQuerySchema } from '../schemas/access.ts';
import { BEARER_SECURITY, errorResponses } from '../schemas/common.ts';
import type { TypeBoxTypeProvider } from '../type-provider.ts';

export const auditRoutes: FastifyPluginAsync<{ deps: ControlDeps; auditWriter: AuditWriter }, RawServerDefault, TypeBoxTypeProvider> = async (
  app,
  { deps, auditWriter },
) => {
  app.get(
    '/audit',
    {
      schema: {
        tags: ['access'],
        summary: 'The audit log, newest first',
        description:
          'Every call that changes state (POST, DELETE) and every refused call (401, 403, 429): time, actor and role, address, action (`METHOD /pattern`), target, a summary of the body without secrets, status and outcome. ' +
          'Filters combine; `from` inclusive, `to` exclusive; page with `before` (the `next` of the previous page). How long records are kept is configured where the platform runs.',
        security: BEARER_SECURITY,
        querystring: AuditQuerySchema,
        response: { 200: AuditPageSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      // Records are written in batches after the responses; an admin reading the log expects their own latest calls in it.
      auditWriter.flush();
      const { actor, action, target, from, to, limit = 100, before } = request.query;
      return queryAudit(deps, { limit, actor, action, target, from, to, before });
    },
  );
};
