/**
 * Security headers and CORS for every answer of the app, registered before
 * any route. The API answers JSON only, so its Content-Security-Policy
 * allows nothing (`default-src 'none'`, no framing); the Swagger UI under
 * /docs sets its own looser policy (plugins/external.ts). CORS is closed
 * unless origins are configured: then those origins only, never `*`, and
 * without credentials (the API takes bearer tokens, not cookies).
 */
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

export const API_CSP_DIRECTIVES = {
  'default-src': ["'none'"],
  'frame-ancestors': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
};

export async function registerSecurityPlugins(app: FastifyInstance, corsOrigins: readonly string[]): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: API_CSP_DIRECTIVES },
    frameguard: { action: 'deny' },
  });
  await app.register(cors, {
    // false sends no CORS header at all, so a browser keeps every other origin out.
    origin: corsOrigins.length === 0 ? false : [...corsOrigins],
    methods: ['GET', 'HEAD', 'POST', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'idempotency-key'],
    exposedHeaders: ['location', 'retry-after', 'idempotent-replayed', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'],
    credentials: false,
    maxAge: 600,
  });
}
