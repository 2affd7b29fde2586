/** /api/v1/tokens: an admin makes, lists and revokes the API tokens of operators. */
import { Type } from '@sinclair/typebox';
import type { ControlPlugin } from '../type-provider.ts';
import { createToken } from '../commands/create-token.ts';
import { revokeToken } from '../commands/revoke-token.ts';
import { operatorOf } from '../plugins/auth.ts';
import { setNoStore, withNoStoreHeader } from '../plugins/no-store.ts';
import { presentToken } from '../presenters/access.ts';
import { CreatedTokenSchema, CreateTokenBodySchema, SMALL_BODY_LIMIT_BYTES, TokenListSchema } from '../schemas/access.ts';
import { BEARER_SECURITY, IdParamsSchema, errorResponses } from '../schemas/common.ts';

export const tokenRoutes: ControlPlugin = async (app, { deps }) => {
  app.post(
    '/tokens',
    {
      bodyLimit: SMALL_BODY_LIMIT_BYTES,
      schema: {
        tags: ['access'],
        summary: 'Make an API token',
        description:
          'Answers 201 with the bearer token (`vpp_…`), shown only in this answer: the platform keeps only its SHA-256. ' +
          'A name an active token has is a 409; `expiresAt` must be in the future.',
        security: BEARER_SECURITY,
        body: CreateTokenBodySchema,
        response: { 201: withNoStoreHeader(CreatedTokenSchema), ...errorResponses(400, 401, 409, 413) },
      },
      onSend: setNoStore,
    },
    async (request, reply) => {
      const { token, secret } = createToken(deps, request.body);
      request.log.info({ tokenId: token.id, name: token.name, role: token.role, actor: operatorOf(request) }, 'token created');
      const { id, name, role, createdAt, expiresAt } = presentToken(token, deps.clock());
      return reply.code(201).send({ id, name, role, createdAt, expiresAt, token: secret });
    },
  );

  app.get(
    '/tokens',
    {
      schema: {
        tags: ['access'],
        summary: 'API tokens, newest first, without their secrets',
        security: BEARER_SECURITY,
        response: { 200: TokenListSchema, ...errorResponses(401) },
      },
    },
    async () => {
      const nowMs = deps.clock();
      return { tokens: deps.tokens.listTokens().map((token) => presentToken(token, nowMs)) };
    },
  );

  app.delete(
    '/tokens/:id',
    {
      schema: {
        tags: ['access'],
        summary: 'Revoke an API token',
        description: 'The next request with the token is a 401. A token already revoked is a 409; the configured admin token cannot be revoked here (404).',
        security: BEARER_SECURITY,
        params: IdParamsSchema,
        response: { 204: Type.Null({ description: 'revoked' }), ...errorResponses(401, 404, 409) },
      },
    },
    async (request, reply) => {
      revokeToken(deps, request.params.id);
      request.log.info({ tokenId: request.params.id, actor: operatorOf(request) }, 'token revoked');
      return reply.code(204).send(null);
    },
  );
};
