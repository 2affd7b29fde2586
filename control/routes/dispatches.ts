/**
 * /api/v1/dispatches: an operator asks the fleet for power over a time
 * window (planned by the dispatcher, run by its control loop), follows how
 * the batteries track it, and calls it off.
 */
import type { ControlPlugin } from '../type-provider.ts';
import { cancelDispatch } from '../commands/cancel-dispatch.ts';
import { createDispatch } from '../commands/create-dispatch.ts';
import { operatorOf } from '../plugins/auth.ts';
import { presentPlannedDispatch } from '../presenters/dispatch.ts';
import { queryDispatch, queryDispatches, viewDispatch } from '../queries/dispatches.ts';
import { BEARER_SECURITY, errorResponses } from '../schemas/common.ts';
import {
  CreateDispatchBodySchema,
  CreateDispatchQuerySchema,
  CreatedDispatchSchema,
  DISPATCH_BODY_LIMIT_BYTES,
  DispatchIdParamsSchema,
  DispatchListQuerySchema,
  DispatchPageSchema,
  DispatchSchema,
  DryRunSchema,
  InfeasibleDispatchSchema,
  MAX_DISPATCH_POWER_W,
  MAX_DISPATCH_SECONDS,
  MAX_DISPATCH_SITES,
  MIN_DISPATCH_SECONDS,
} from '../schemas/dispatches.ts';

export const dispatchRoutes: ControlPlugin = async (app, { deps }) => {
  app.post(
    '/dispatches',
    {
      bodyLimit: DISPATCH_BODY_LIMIT_BYTES,
      schema: {
        tags: ['dispatches'],
        summary: 'Ask the fleet for power over a time window',
        description:
          `\`target\`: exactly one of the fleet, a region, or 1 to ${MAX_DISPATCH_SITES} site ids, all known (else 400 naming them). ` +
          `\`powerW\`: positive delivers to the grid, negative absorbs; not 0, |powerW| ≤ ${MAX_DISPATCH_POWER_W}. ` +
          `\`startAt\` (ISO 8601) defaults to now, at most 7 days ahead and 60 s in the past; \`durationSeconds\` ${MIN_DISPATCH_SECONDS} to ${MAX_DISPATCH_SECONDS}. ` +
          'With `dryRun=true` answers 200 with the plan and stores nothing. Otherwise stores the dispatch scheduled and answers 201 with `Location`; ' +
          'when the fleet cannot meet the target and `allowPartial` is not true, answers 409 with the plan and stores nothing.',
        security: BEARER_SECURITY,
        querystring: CreateDispatchQuerySchema,
        body: CreateDispatchBodySchema,
        response: { 200: DryRunSchema, 201: CreatedDispatchSchema, 409: InfeasibleDispatchSchema, ...errorResponses(400, 401, 413) },
      },
    },
    async (request, reply) => {
      const result = createDispatch(deps, request.body, { dryRun: request.query.dryRun ?? false });
      switch (result.kind) {
        case 'planned':
          return reply.code(200).send({ plan: presentPlannedDispatch(result.plan) });
        case 'infeasible':
          return reply.code(409).send({ code: 'conflict', message: result.plan.explanation, plan: presentPlannedDispatch(result.plan) });
        case 'created': {
          const { dispatch } = result;
          request.log.info({ dispatchId: dispatch.id, powerW: dispatch.powerW, startAtMs: dispatch.startAtMs, actor: operatorOf(request) }, 'dispatch created');
          return reply.code(201).header('location', `${app.prefix}/dispatches/${dispatch.id}`).send(viewDispatch(deps, dispatch));
        }
      }
    },
  );

  app.get(
    '/dispatches',
    {
      schema: {
        tags: ['dispatches'],
        summary: 'Dispatches, newest first',
        description: 'Without allocation and tracking (see GET /dispatches/:id). Page with `before` (the `next` of the previous page).',
        security: BEARER_SECURITY,
        querystring: DispatchListQuerySchema,
        response: { 200: DispatchPageSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { state, limit = 100, before } = request.query;
      return queryDispatches(deps, { limit, state, before });
    },
  );

  app.get(
    '/dispatches/:id',
    {
      schema: {
        tags: ['dispatches'],
        summary: 'A dispatch with its allocation, measurements, energy and tracking',
        security: BEARER_SECURITY,
        params: DispatchIdParamsSchema,
        response: { 200: DispatchSchema, ...errorResponses(401, 404) },
      },
    },
    async (request) => queryDispatch(deps, request.params.id),
  );

  app.post(
    '/dispatches/:id/cancel',
    {
      schema: {
        tags: ['dispatches'],
        summary: 'Cancel a scheduled or active dispatch',
        description:
          'Every battery of the dispatch is sent back to local control (commands carrying the dispatch id, shown in `allocation`). ' +
          'Answers the dispatch after the cancellation; 409 when it is already completed, cancelled or failed.',
        security: BEARER_SECURITY,
        params: DispatchIdParamsSchema,
        response: { 200: DispatchSchema, ...errorResponses(401, 404, 409) },
      },
    },
    async (request) => {
      const dispatch = cancelDispatch(deps, request.params.id);
      request.log.info({ dispatchId: dispatch.id, actor: operatorOf(request) }, 'dispatch cancelled');
      return viewDispatch(deps, dispatch);
    },
  );
};
