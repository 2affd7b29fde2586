/**
 * GET /api/v1/me: who the bearer token is, name and role. A client checks a
 * token with it (401: wrong token) and hides what the role may not do; it
 * needs only the lowest role, so every valid token can ask.
 */
import type { ControlPlugin } from '../type-provider.ts';
import { findOperator } from '../plugins/auth.ts';
import { presentOperator } from '../presenters/access.ts';
import { MeSchema } from '../schemas/access.ts';
import { BEARER_SECURITY, errorResponses } from '../schemas/common.ts';

export const meRoutes: ControlPlugin = async (app) => {
  app.get(
    '/me',
    {
      schema: {
        tags: ['access'],
        summary: 'The name and role of the calling token',
        security: BEARER_SECURITY,
        response: { 200: MeSchema, ...errorResponses(401) },
      },
    },
    async (request) => {
      const operator = findOperator(request);
      // Every route under /api/v1 runs behind the guard, so this is a bug, not a client error (as in operatorOf).
      if (operator === undefined) throw new Error(`GET /me: ${request.url} was not authenticated`);
      return presentOperator(operator);
    },
  );
};
