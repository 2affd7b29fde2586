/**
 * Which role each route under /api/v1 needs: the one place where that is
 * decided. A route registered under the prefix without an entry here makes
 * the app fail at startup, so a new route cannot forget to say who may call
 * it; access.test.ts checks that the table names no route that does not
 * exist, and that README's Access table says the same.
 *
 * viewer reads everything but tokens and the audit log (secrets are never
 * readable: they are shown once, by the call that makes them); operator
 * also sends commands, creates and cancels dispatches, and acknowledges and
 * resolves alerts; admin also changes everything else (devices, sites,
 * tokens) and reads tokens and the audit log.
 */
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { OperatorRole } from '../../store/types.ts';
import { ControlError } from '../errors.ts';

export const ROUTE_ROLES: Readonly<Record<string, OperatorRole>> = {
  'GET /api/v1/devices': 'viewer',
  'POST /api/v1/devices': 'admin',
  'GET /api/v1/devices/:id': 'viewer',
  'DELETE /api/v1/devices/:id': 'admin',
  'POST /api/v1/devices/:id/secret': 'admin',
  'GET /api/v1/devices/:id/telemetry': 'viewer',
  'POST /api/v1/devices/:id/commands': 'operator',
  'GET /api/v1/sites': 'viewer',
  'POST /api/v1/sites': 'admin',
  'GET /api/v1/sites/overview': 'viewer',
  'GET /api/v1/sites/:id': 'viewer',
  'GET /api/v1/sites/:id/history': 'viewer',
  'GET /api/v1/regions/:id/history': 'viewer',
  'GET /api/v1/fleet': 'viewer',
  'GET /api/v1/fleet/history': 'viewer',
  'GET /api/v1/dead-letters': 'viewer',
  'GET /api/v1/services': 'viewer',
  'GET /api/v1/alerts': 'viewer',
  'GET /api/v1/alerts/:id': 'viewer',
  'POST /api/v1/alerts/:id/ack': 'operator',
  'POST /api/v1/alerts/:id/resolve': 'operator',
  'GET /api/v1/alert-rules': 'viewer',
  'GET /api/v1/alert-deliveries': 'viewer',
  'GET /api/v1/commands': 'viewer',
  'GET /api/v1/commands/:id': 'viewer',
  'POST /api/v1/dispatches': 'operator',
  'GET /api/v1/dispatches': 'viewer',
  'GET /api/v1/dispatches/:id': 'viewer',
  'POST /api/v1/dispatches/:id/cancel': 'operator',
  'GET /api/v1/me': 'viewer',
  'GET /api/v1/tokens': 'admin',
  'POST /api/v1/tokens': 'admin',
  'DELETE /api/v1/tokens/:id': 'admin',
  'GET /api/v1/audit': 'admin',
  'GET /api/v1/stream': 'viewer',
  'POST /api/v1/stream/tickets': 'viewer',
  'GET /api/v1/stream/stats': 'viewer',
};

/**
 * `METHOD /pattern` of a route, the key of ROUTE_ROLES and the action of
 * the audit log. A HEAD route made by fastify for a GET counts as the GET.
 */
export function routeKey(method: string, url: string): string {
  return `${method === 'HEAD' ? 'GET' : method} ${url}`;
}

/** The key of the route that matched the request; undefined when no route did (a 404). */
export function requestRouteKey(request: FastifyRequest): string | undefined {
  const { url } = request.routeOptions;
  return url === undefined ? undefined : routeKey(request.method, url);
}

/** The role the matched route needs; undefined when no route matched. */
export function requiredRole(request: FastifyRequest, table: Readonly<Record<string, OperatorRole>> = ROUTE_ROLES): OperatorRole | undefined {
  const key = requestRouteKey(request);
  return key === undefined ? undefined : table[key];
}

/** Added to the OpenAPI responses of every route under the prefix (the guard can answer them anywhere). */
const GUARD_STATUSES = [401, 403, 429] as const;

/**
 * Makes every route registered in `app` (and its children) from now on
 * need an entry in `table`: registering one without throws, which fails
 * the app's startup. Each route's OpenAPI description gets the role it
 * needs, and its responses the guard's 401, 403 and 429.
 */
export function declareRouteRoles(
  app: FastifyInstance,
  errorSchema: (status: number) => object,
  table: Readonly<Record<string, OperatorRole>> = ROUTE_ROLES,
): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      const key = routeKey(method, route.url);
      const role = table[key];
      if (role === undefined) {
        throw new ControlError('invalid-config', `${key}: no role declared for this route (add it to ROUTE_ROLES in control/routes/access.ts)`);
      }
      if (route.schema !== undefined && method !== 'HEAD') {
        const response = { ...(route.schema.response as Record<number, unknown> | undefined) };
        for (const status of GUARD_STATUSES) response[status] ??= errorSchema(status);
        const needs = `Needs the **${role}** role (or above).`;
        const description = typeof route.schema.description === 'string' ? `${route.schema.description}\n\n${needs}` : needs;
        route.schema = { ...route.schema, description, response };
      }
    }
  });
}
