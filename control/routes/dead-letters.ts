/** /api/v1/dead-letters: what the pipeline refused, newest first, with counts by reason. */
import type { ControlPlugin } from '../type-provider.ts';
import { presentDeadLetter } from '../presenters/dead-letter.ts';
import { BEARER_SECURITY, errorResponses } from '../schemas/common.ts';
import { DeadLetterPageSchema, DeadLetterQuerySchema } from '../schemas/dead-letters.ts';

export const deadLetterRoutes: ControlPlugin = async (app, { deps }) => {
  app.get(
    '/dead-letters',
    {
      schema: {
        tags: ['dead-letters'],
        summary: 'Dead letters, newest first',
        description: 'Payloads are shown as text when they are valid UTF-8, as base64 otherwise. Page with `before`.',
        security: BEARER_SECURITY,
        querystring: DeadLetterQuerySchema,
        response: { 200: DeadLetterPageSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { reason, limit = 100, before } = request.query;
      // One more than asked tells whether another page exists.
      const letters = deps.deadLetters.listDeadLetters({ limit: limit + 1, reason, beforeId: before });
      const page = letters.slice(0, limit);
      const last = page[page.length - 1];
      return {
        items: page.map(presentDeadLetter),
        countsByReason: deps.deadLetters.countDeadLettersByReason(),
        nextBefore: letters.length > limit && last ? last.id : null,
      };
    },
  );
};
