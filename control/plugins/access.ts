/**
 * The guard of /api/v1, one onRequest hook that runs before body parsing
 * and validation, in this order:
 *
 * 1. failed-authentication throttle: an address that sent
 *    `failedAuthPerAddressPerMinute` bad tokens this minute gets 429 before
 *    its token is even looked at (guessing stops costing us lookups);
 * 2. rate limit per address (429);
 * 3. authentication (401; a bad token counts towards 1);
 * 4. rate limit per token (429), by token id;
 * 5. the route's role from ROUTE_ROLES (403 naming the role needed).
 *
 * Limits count in fixed one-minute windows, in this process's memory
 * (@fastify/rate-limit's local store); a 429 carries Retry-After in seconds.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { roleAtLeast, type TokenStore } from '../../store/types.ts';
import type { AccessOptions } from '../deps.ts';
import { ControlError } from '../errors.ts';
import { requestRouteKey, requiredRole } from '../routes/access.ts';
import { createAuthenticator, findOperator, setOperator, type Authentication } from './auth.ts';

export const DEFAULT_ACCESS: Readonly<Required<AccessOptions>> = {
  rateLimitPerMinute: 600,
  rateLimitPerAddressPerMinute: 1_200,
  failedAuthPerAddressPerMinute: 30,
  corsOrigins: [],
};

const WINDOW_MS = 60_000;
/** `scheme://host[:port]` as a browser sends it in Origin: no path, no trailing slash, no wildcard. */
const ORIGIN_PATTERN = /^https?:\/\/[^/\s*?#]+$/;

/** The access options with defaults filled in; throws at boot for a value that could not work. */
export function resolveAccess(options: AccessOptions | undefined): Required<AccessOptions> {
  const access = { ...DEFAULT_ACCESS, ...options };
  for (const key of ['rateLimitPerMinute', 'rateLimitPerAddressPerMinute', 'failedAuthPerAddressPerMinute'] as const) {
    const value = access[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ControlError('invalid-config', `access.${key}: must be a positive integer, not ${String(value)}`);
    }
  }
  for (const origin of access.corsOrigins) {
    // A path or a trailing slash never equals the Origin header, so such an entry would silently open nothing.
    if (typeof origin !== 'string' || !ORIGIN_PATTERN.test(origin)) {
      throw new ControlError('invalid-config', `access.corsOrigins: ${JSON.stringify(origin)} is not an origin like https://ops.example.com (scheme, host, optional port; no path)`);
    }
  }
  return access;
}

function tooManyRequests(reply: FastifyReply, ttlInSeconds: number, message: string): ControlError {
  const seconds = Math.max(1, ttlInSeconds);
  reply.header('retry-after', String(seconds));
  return new ControlError('too-many-requests', `${message}; retry in ${seconds} s`);
}

/**
 * Registers the guard on `app` (the /api/v1 scope): every route and the
 * scope's 404 answer pass through it.
 */
export async function registerGuard(
  app: FastifyInstance,
  deps: { adminToken: string; tokens: Pick<TokenStore, 'authenticate'>; clock: () => number },
  access: Required<AccessOptions>,
  /**
   * Another way a request may authenticate when it has no Authorization
   * header (the stream's ticket): undefined when it does not apply. Its
   * 'invalid' counts like a bad token.
   */
  authenticateOtherwise?: (request: FastifyRequest) => Authentication | undefined,
): Promise<void> {
  const authenticate = createAuthenticator(deps);
  // No global hook: the guard calls each limiter itself, in the order above.
  await app.register(rateLimit, { global: false });
  // Addresses are keyed by the plugin's default (IPv6 by its /64, which one host usually holds whole).
  const failures = app.createRateLimit({ max: access.failedAuthPerAddressPerMinute, timeWindow: WINDOW_MS });
  const perAddress = app.createRateLimit({ max: access.rateLimitPerAddressPerMinute, timeWindow: WINDOW_MS });
  const perToken = app.createRateLimit({
    max: access.rateLimitPerMinute,
    timeWindow: WINDOW_MS,
    keyGenerator: (request) => findOperator(request)?.id ?? '',
  });

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const failed = await failures(request, { increment: false });
    if (!failed.isAllowed && failed.remaining === 0) {
      throw tooManyRequests(reply, failed.ttlInSeconds, 'too many failed authentications from this address');
    }
    const fromAddress = await perAddress(request);
    if (!fromAddress.isAllowed && fromAddress.isExceeded) {
      throw tooManyRequests(reply, fromAddress.ttlInSeconds, `more than ${access.rateLimitPerAddressPerMinute} requests per minute from this address`);
    }

    const header = request.headers.authorization;
    const result = (header === undefined ? authenticateOtherwise?.(request) : undefined) ?? authenticate(header);
    if (result.kind === 'missing') throw new ControlError('unauthorized', 'Authorization: send "Bearer <token>"');
    if (result.kind === 'invalid') {
      const counted = await failures(request);
      if (!counted.isAllowed && counted.remaining === 0 && !counted.isExceeded) {
        // Said once per address and window, when the throttle closes: the sign of someone guessing.
        request.log.warn({ remoteAddress: request.ip }, 'failed authentications throttled for this address');
      }
      throw new ControlError('unauthorized', 'Authorization: the token is not valid (unknown, revoked or expired)');
    }
    const { operator } = result;
    setOperator(request, operator);

    const ofToken = await perToken(request);
    if (!ofToken.isAllowed) {
      reply.header('x-ratelimit-limit', String(ofToken.max));
      reply.header('x-ratelimit-remaining', String(ofToken.remaining));
      reply.header('x-ratelimit-reset', String(ofToken.ttlInSeconds));
      if (ofToken.isExceeded) {
        throw tooManyRequests(reply, ofToken.ttlInSeconds, `token "${operator.name}": more than ${access.rateLimitPerMinute} requests per minute`);
      }
    }

    const needed = requiredRole(request);
    if (needed !== undefined && !roleAtLeast(operator.role, needed)) {
      throw new ControlError('forbidden', `${requestRouteKey(request)} needs the ${needed} role; token "${operator.name}" has ${operator.role}`);
    }
  });
}
