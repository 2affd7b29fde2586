/**
 * One error shape for the whole API: `{ code, message }`. Validation errors
 * name the field and the rule; storage errors map to 404/409; anything
 * unexpected is logged here (and only here) and answered with a bare 500.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ControlError, fromStoreError, isStoreError, type ControlErrorCode } from '../errors.ts';

interface ValidationIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** `site.region: must match pattern "…"`, `resolution: must be one of raw, 1m, …`. */
export function describeValidationError(issues: readonly ValidationIssue[], context: string | undefined): string {
  const issue = issues[0];
  if (!issue) return 'request is not valid';
  const path = (issue.instancePath ?? '').split('/').filter(Boolean);
  const params = issue.params ?? {};
  if (issue.keyword === 'required' && typeof params.missingProperty === 'string') path.push(params.missingProperty);
  if (issue.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    path.push(params.additionalProperty);
  }
  // The context (body, querystring, params) is left out: field names do not repeat across them here.
  const field = path.join('.') || context || 'request';
  let rule = issue.message ?? 'is not valid';
  if (issue.keyword === 'enum' && Array.isArray(params.allowedValues)) rule = `must be one of ${params.allowedValues.join(', ')}`;
  if (issue.keyword === 'required') rule = 'is required';
  if (issue.keyword === 'additionalProperties') rule = 'is not a known property';
  return `${field}: ${rule}`;
}

const CODE_BY_CLIENT_STATUS: Record<number, ControlErrorCode> = {
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not-found',
  409: 'conflict',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
  429: 'too-many-requests',
};

/** Turns any thrown value into the status and body the client sees. */
export function toErrorReply(err: unknown): { status: number; body: { code: string; message: string }; unexpected: boolean } {
  if (err instanceof ControlError) return { status: err.statusCode, body: { code: err.code, message: err.message }, unexpected: false };
  if (isStoreError(err)) {
    const mapped = fromStoreError(err);
    return { status: mapped.statusCode, body: { code: mapped.code, message: mapped.message }, unexpected: mapped.statusCode >= 500 };
  }
  const fastifyError = err as Partial<FastifyError>;
  if (fastifyError.validation) {
    return {
      status: 400,
      body: { code: 'bad-request', message: describeValidationError(fastifyError.validation, fastifyError.validationContext) },
      unexpected: false,
    };
  }
  const status = fastifyError.statusCode;
  // fastify's own 4xx errors (malformed JSON, wrong content type, body too large) carry messages meant for the client.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return {
      status,
      body: { code: CODE_BY_CLIENT_STATUS[status] ?? 'bad-request', message: fastifyError.message ?? 'bad request' },
      unexpected: false,
    };
  }
  return { status: 500, body: { code: 'internal', message: 'internal error; see the server log' }, unexpected: true };
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body, unexpected } = toErrorReply(err);
    if (unexpected) request.log.error({ err }, 'request failed');
    else if (status >= 500) request.log.warn({ code: body.code, detail: body.message }, 'request failed');
    return reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({ code: 'not-found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });
}
