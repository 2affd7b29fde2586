/**
 * The control API as a fastify app, built by a function so tests can
 * `inject` and the caller decides where it listens. Plugins load in a
 * fixed order: external (OpenAPI), then app services (error handling),
 * then routes. A request goes validate (schemas, time ranges) → authorize
 * (bearer hook) → command or query → presenter, each a plain function.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ControlDeps } from './deps.ts';
import { ControlError } from './errors.ts';
import { registerErrorHandlers } from './plugins/errors.ts';
import { registerExternalPlugins } from './plugins/external.ts';
import { createBearerAuthorizer } from './plugins/auth.ts';
import { API_PREFIX, apiRoutes } from './routes/api.ts';
import { healthRoutes } from './routes/health.ts';
import type { TypeBoxTypeProvider } from './type-provider.ts';

/**
 * What control's logs may show of requests and replies. The serializers
 * replace whatever the platform logger has (pino's standard request
 * serializer, for one, logs every header): a request is logged without its
 * headers (no Authorization, no cookies) and a reply by its status only,
 * never its body (provisioning and rotation answers carry device secrets).
 * Redaction is the second line: should a log call ever pass a header or a
 * secret-bearing object, those fields are censored.
 */
const CONTROL_LOG_OPTIONS = {
  serializers: {
    req: (request: FastifyRequest) => ({
      method: request.method,
      url: request.url,
      host: request.host,
      remoteAddress: request.ip,
      remotePort: request.socket?.remotePort,
    }),
    res: (reply: FastifyReply) => ({ statusCode: reply.statusCode }),
  },
  redact: {
    paths: [
      'authorization',
      'headers.authorization',
      'headers.cookie',
      '*.headers.authorization',
      '*.headers.cookie',
      'secret',
      '*.secret',
      'password',
      '*.password',
      '*.*.password',
      'body',
      '*.body',
    ],
    censor: '[redacted]',
  },
};

/** Largest request body; provisioning and site bodies are a few hundred bytes. */
const BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Builds the app, neither ready nor listening: the caller may register more
 * plugins (a dashboard, a stream) before `listen` or `inject` makes it ready.
 * Throws when the admin token is too short.
 */
export async function buildControlApp(deps: ControlDeps): Promise<FastifyInstance> {
  // Fail at boot, not at the first request.
  createBearerAuthorizer(deps.adminToken);
  if (!Number.isSafeInteger(deps.secretGraceMs) || deps.secretGraceMs < 0) {
    throw new ControlError('invalid-config', `secretGraceMs: must be a non-negative integer, not ${deps.secretGraceMs}`);
  }
  const logger: FastifyBaseLogger = deps.logger.child({ component: 'control' }, CONTROL_LOG_OPTIONS);
  const base = Fastify({
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT_BYTES,
    ajv: {
      // Report unknown body properties (typos) instead of silently dropping them.
      customOptions: { removeAdditional: false },
    },
  });

  await registerExternalPlugins(base);
  registerErrorHandlers(base);
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  await app.register(healthRoutes, { deps });
  await app.register(apiRoutes, { deps, prefix: API_PREFIX });
  return base;
}
