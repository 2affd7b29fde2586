/** /api/v1/dead-letters: what the pipeline refused, newest first, with counts by reason. */
import type { ControlPlugin } from '../type-provider.ts';
import { DEAD_LETTER_PAGE_MAX_BYTES, queryDeadLetters } from '../queries/dead-letters.ts';
import { BEARER_SECURITY, errorResponses } from '../schemas/common.ts';
import { DeadLetterPageSchema, DeadLetterQuerySchema } from '../schemas/dead-letters.ts';

export const deadLetterRoutes: ControlPlugin = async (app, { deps }) => {
  app.get(
    '/dead-letters',
    {
      schema: {
        tags: ['dead-letters'],
        summary: 'Dead letters, newest first',
        description: `Payloads are shown as text when they are valid UTF-8, as base64 otherwise; \`payloadBytes\`, \`payloadSha256\` and \`truncated\` describe the payload as received. A page holds at most \`limit\` letters and ends early once their stored payloads reach ${DEAD_LETTER_PAGE_MAX_BYTES} bytes (at least one letter). Page with \`before\`.`,
        security: BEARER_SECURITY,
        querystring: DeadLetterQuerySchema,
        response: { 200: DeadLetterPageSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { reason, limit = 100, before } = request.query;
      return queryDeadLetters(deps, { limit, reason, before });
    },
  );
};
