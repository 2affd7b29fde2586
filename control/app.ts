/**
 * The control API as a fastify app, built by a function so tests can
 * `inject` and the caller decides where it listens. Plugins load in a
 * fixed order: security headers and CORS, external (OpenAPI), then app
 * services (error handling), then routes. A request goes guard (throttles, rate limits, bearer token,
 * role) → validate (schemas, time ranges) → command or query → presenter,
 * each a plain function; the audit log records it after the answer.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ControlDeps } from './deps.ts';
import { ControlError } from './errors.ts';
import { rememberLiveStream } from './metrics.ts';
import { resolveAccess } from './plugins/access.ts';
import { AuditWriter, trackAuditWriter } from './plugins/audit.ts';
import { checkAdminToken } from './plugins/auth.ts';
import { registerErrorHandlers } from './plugins/errors.ts';
import { registerExternalPlugins } from './plugins/external.ts';
import { registerSecurityPlugins } from './plugins/security.ts';
import { API_PREFIX, apiRoutes } from './routes/api.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { healthRoutes } from './routes/health.ts';
import { createLiveStream } from './stream/index.ts';
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
      // A stream ticket is a credential for a minute: not for the logs.
      url: request.url.replace(/([?&]ticket=)[^&]*/g, '$1[redacted]'),
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

/**
 * Largest request body of a route that says nothing else; provisioning and
 * site bodies are a few hundred bytes. Dispatches take 1 MiB (10 000 site
 * ids), alert acknowledgements and resolutions and new tokens 8 KiB.
 */
const BODY_LIMIT_BYTES = 64 * 1024;

/** How long closing the app waits for open connections before it ends them. */
const SHUTDOWN_GRACE_MS = 5_000;

export interface ControlAppOptions {
  /** Serve HTTPS with this key and certificate (PEM); plain HTTP when absent. */
  https?: { key: string | Buffer; cert: string | Buffer };
}

/**
 * Builds the app, neither ready nor listening: the caller may register more
 * plugins (a dashboard, a stream) before `listen` or `inject` makes it ready.
 * Throws when the admin token is too short, the grace period or an access
 * limit is not a proper integer, or a CORS origin is malformed.
 */
export async function buildControlApp(deps: ControlDeps, options: ControlAppOptions = {}): Promise<FastifyInstance> {
  // Fail at boot, not at the first request.
  checkAdminToken(deps.adminToken);
  if (!Number.isSafeInteger(deps.secretGraceMs) || deps.secretGraceMs < 0) {
    throw new ControlError('invalid-config', `secretGraceMs: must be a non-negative integer, not ${deps.secretGraceMs}`);
  }
  const access = resolveAccess(deps.access);
  const logger: FastifyBaseLogger = deps.logger.child({ component: 'control' }, CONTROL_LOG_OPTIONS);
  const serverOptions = {
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT_BYTES,
    ajv: {
      // Report unknown body properties (typos) instead of silently dropping them.
      customOptions: { removeAdditional: false },
    },
  };
  // An HTTPS instance differs only in the type of its raw server; callers listen,
  // inject and close, which both have, so it is returned as the one type.
  const base =
    options.https === undefined
      ? Fastify(serverOptions)
      : (Fastify({ ...serverOptions, https: { key: options.https.key, cert: options.https.cert } }) as unknown as FastifyInstance);

  await registerSecurityPlugins(base, access.corsOrigins);
  await registerExternalPlugins(base);
  registerErrorHandlers(base);
  const auditWriter = new AuditWriter(deps.audit, logger);
  trackAuditWriter(base, auditWriter);
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  await app.register(healthRoutes, { deps });
  await base.register(dashboardRoutes, { dir: deps.dashboardDir });
  const stream = createLiveStream(base, deps);
  // Closing waits for open connections, and one that never sends a request (a client's spare, or a
  // slow-loris) would hold it for the server's headers timeout: after a grace, every connection is ended.
  let forceClose: NodeJS.Timeout | undefined;
  base.addHook('preClose', async () => {
    forceClose = setTimeout(() => base.server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
  });
  base.addHook('onClose', async () => clearTimeout(forceClose));
  rememberLiveStream(base, stream);
  await app.register(apiRoutes, { deps, access, auditWriter, stream, prefix: API_PREFIX });
  return base;
}
