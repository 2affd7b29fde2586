/**
 * Everything under /api/v1. Authorization runs as the first hook of this
 * scope, before body parsing and validation, so an anonymous caller learns
 * nothing about the API beyond the 401.
 */
import type { FastifyRequest } from 'fastify';
import type { ControlPlugin } from '../type-provider.ts';
import { notFound } from '../errors.ts';
import { createBearerAuthorizer } from '../plugins/auth.ts';
import { alertRoutes } from './alerts.ts';
import { commandRoutes } from './commands.ts';
import { deadLetterRoutes } from './dead-letters.ts';
import { deviceRoutes } from './devices.ts';
import { dispatchRoutes } from './dispatches.ts';
import { fleetRoutes } from './fleet.ts';
import { serviceRoutes } from './services.ts';
import { siteRoutes } from './sites.ts';

export const API_PREFIX = '/api/v1';

export const apiRoutes: ControlPlugin = async (app, { deps }) => {
  const authorize = createBearerAuthorizer(deps.adminToken);
  app.addHook('onRequest', async (request) => authorize(request.headers.authorization));
  // Unknown paths under the prefix need the token too, so they do not reveal which routes exist.
  app.setNotFoundHandler(
    { preHandler: async (request: FastifyRequest) => authorize(request.headers.authorization) },
    async (request) => {
      throw notFound(`no route ${request.method} ${request.url.split('?')[0]}`);
    },
  );
  await app.register(deviceRoutes, { deps });
  await app.register(siteRoutes, { deps });
  await app.register(fleetRoutes, { deps });
  await app.register(deadLetterRoutes, { deps });
  await app.register(alertRoutes, { deps });
  await app.register(commandRoutes, { deps });
  await app.register(dispatchRoutes, { deps });
  await app.register(serviceRoutes, { deps });
};
