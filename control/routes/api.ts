/**
 * Everything under /api/v1. The guard (plugins/access.ts: throttles, rate
 * limits, authentication, the route's role) runs as the first hook of this
 * scope, before body parsing and validation, so a caller without a valid
 * token learns nothing about the API beyond the 401. Every route must have
 * a role in ROUTE_ROLES (routes/access.ts), or the app does not start. The
 * audit hook records what changed and what was refused after each answer.
 */
import type { FastifyPluginAsync, FastifyRequest, RawServerDefault } from 'fastify';
import type { AccessOptions, ControlDeps } from '../deps.ts';
import { notFound } from '../errors.ts';
import { registerGuard } from '../plugins/access.ts';
import { registerAudit, type AuditWriter } from '../plugins/audit.ts';
import type { Authentication } from '../plugins/auth.ts';
import type { LiveStream } from '../stream/index.ts';
import { errorResponses } from '../schemas/common.ts';
import type { TypeBoxTypeProvider } from '../type-provider.ts';
import { declareRouteRoles } from './access.ts';
import { alertRoutes } from './alerts.ts';
import { auditRoutes } from './audit.ts';
import { commandRoutes } from './commands.ts';
import { deadLetterRoutes } from './dead-letters.ts';
import { deviceRoutes } from './devices.ts';
import { dispatchRoutes } from './dispatches.ts';
import { fleetRoutes } from './fleet.ts';
import { meRoutes } from './me.ts';
import { serviceRoutes } from './services.ts';
import { siteRoutes } from './sites.ts';
import { STREAM_PATH, streamRoutes } from './stream.ts';
import { tokenRoutes } from './tokens.ts';

export const API_PREFIX = '/api/v1';

export interface ApiOptions {
  deps: ControlDeps;
  access: Required<AccessOptions>;
  auditWriter: AuditWriter;
  stream: LiveStream;
}

/** A stream ticket authenticates GET /api/v1/stream, and nothing else. */
function ticketOf(stream: LiveStream): (request: FastifyRequest) => Authentication | undefined {
  return (request) => {
    if (request.method !== 'GET' || request.routeOptions.url !== `${API_PREFIX}${STREAM_PATH}`) return undefined;
    const { ticket } = request.query as { ticket?: unknown };
    return typeof ticket === 'string' ? stream.tickets.verify(ticket) : undefined;
  };
}

export const apiRoutes: FastifyPluginAsync<ApiOptions, RawServerDefault, TypeBoxTypeProvider> = async (app, { deps, access, auditWriter, stream }) => {
  await registerGuard(app, deps, access, ticketOf(stream));
  registerAudit(app, auditWriter, deps.clock);
  declareRouteRoles(app, (status) => errorResponses(status)[status]!);
  // Unknown paths under the prefix pass the guard too (it runs for this scope's 404), so they do not reveal which routes exist.
  app.setNotFoundHandler(async (request) => {
    throw notFound(`no route ${request.method} ${request.url.split('?')[0]}`);
  });
  await app.register(deviceRoutes, { deps });
  await app.register(siteRoutes, { deps });
  await app.register(fleetRoutes, { deps });
  await app.register(deadLetterRoutes, { deps });
  await app.register(alertRoutes, { deps });
  await app.register(commandRoutes, { deps });
  await app.register(dispatchRoutes, { deps });
  await app.register(serviceRoutes, { deps });
  await app.register(tokenRoutes, { deps });
  await app.register(meRoutes, { deps });
  await app.register(auditRoutes, { deps, auditWriter });
  await app.register(streamRoutes, { deps, stream });
};
