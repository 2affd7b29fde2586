/**
 * /api/v1/devices/:id/commands: an operator's command to one device;
 * /api/v1/commands: every command with its fate, newest first.
 */
import type { ControlPlugin } from '../type-provider.ts';
import { createCommand } from '../commands/create-command.ts';
import { operatorOf } from '../plugins/auth.ts';
import { presentCommand } from '../presenters/command.ts';
import { queryCommand, queryCommands } from '../queries/commands.ts';
import {
  CommandIdParamsSchema,
  CommandListQuerySchema,
  CommandPageSchema,
  CommandSchema,
  CreateCommandBodySchema,
  CreateCommandHeadersSchema,
  CreatedCommandSchema,
  DEFAULT_COMMAND_TTL_SECONDS,
  MAX_COMMAND_TTL_SECONDS,
  ReplayedCommandSchema,
} from '../schemas/commands.ts';
import { BEARER_SECURITY, IdParamsSchema, errorResponses } from '../schemas/common.ts';

export const commandRoutes: ControlPlugin = async (app, { deps }) => {
  app.post(
    '/devices/:id/commands',
    {
      schema: {
        tags: ['commands'],
        summary: 'Send a command to a device',
        description:
          `Stores the command pending; the platform sends it and resends it while the device does not answer, until it is accepted, rejected or expires (\`ttlSeconds\` from now, 1 to ${MAX_COMMAND_TTL_SECONDS}, default ${DEFAULT_COMMAND_TTL_SECONDS}). ` +
          'Answers 201 with `Location`. With an `Idempotency-Key`, repeating the request answers the command made the first time (200, `Idempotent-Replayed: true`), whatever became of it since; the same key with another body is a 409. ' +
          'A type or params the device does not take is a 400; a revoked device is a 409.',
        security: BEARER_SECURITY,
        params: IdParamsSchema,
        headers: CreateCommandHeadersSchema,
        body: CreateCommandBodySchema,
        response: { 200: ReplayedCommandSchema, 201: CreatedCommandSchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const { type, params, ttlSeconds = DEFAULT_COMMAND_TTL_SECONDS } = request.body;
      const { command, created } = createCommand(
        deps,
        { deviceId: request.params.id, type, params, ttlSeconds, idempotencyKey: request.headers['idempotency-key'] },
        request.log,
      );
      if (!created) {
        return reply.code(200).header('idempotent-replayed', 'true').send(presentCommand(command));
      }
      request.log.info({ commandId: command.id, deviceId: command.deviceId, type: command.type, actor: operatorOf(request) }, 'command created');
      return reply.code(201).header('location', `${app.prefix}/commands/${command.id}`).send(presentCommand(command));
    },
  );

  app.get(
    '/commands',
    {
      schema: {
        tags: ['commands'],
        summary: 'Commands, newest first',
        description: 'Filters combine; page with `before` (the `next` of the previous page).',
        security: BEARER_SECURITY,
        querystring: CommandListQuerySchema,
        response: { 200: CommandPageSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { deviceId, state, dispatchId, limit = 100, before } = request.query;
      return queryCommands(deps, { limit, deviceId, state, dispatchId, before });
    },
  );

  app.get(
    '/commands/:id',
    {
      schema: {
        tags: ['commands'],
        summary: 'A command with its transitions',
        security: BEARER_SECURITY,
        params: CommandIdParamsSchema,
        response: { 200: CommandSchema, ...errorResponses(401, 404) },
      },
    },
    async (request) => queryCommand(deps, request.params.id),
  );
};
