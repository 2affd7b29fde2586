import { Type } from '@sinclair/typebox';
import { IsoTimeSchema, Nullable, StringEnum } from './common.ts';

export const MAX_DEAD_LETTER_LIMIT = 1000;

export const DeadLetterQuerySchema = Type.Object({
  reason: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_DEAD_LETTER_LIMIT, default: 100 })),
  before: Type.Optional(Type.Integer({ minimum: 1, description: 'only letters with a smaller id (the `nextBefore` of a previous page)' })),
});

export const DeadLetterSchema = Type.Object(
  {
    id: Type.Integer(),
    receivedAt: IsoTimeSchema,
    topic: Type.String(),
    clientId: Nullable(Type.String()),
    reason: Type.String(),
    detail: Type.String(),
    payload: Type.Object({
      encoding: StringEnum(['utf8', 'base64'] as const, { description: 'utf8 when the stored bytes are valid UTF-8 text' }),
      data: Type.String({ description: 'the stored bytes, which are only the first ones when `truncated`' }),
      bytes: Type.Integer({ minimum: 0, description: 'stored bytes shown in `data`' }),
    }),
    payloadBytes: Type.Integer({ minimum: 0, description: 'size of the payload as received' }),
    payloadSha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the payload as received, hex' }),
    truncated: Type.Boolean({ description: 'true when only the first bytes of the payload were stored' }),
  },
  { title: 'DeadLetter' },
);

export const DeadLetterPageSchema = Type.Object({
  items: Type.Array(DeadLetterSchema, { description: 'newest first; fewer than `limit` when their payloads reach the page\'s byte budget' }),
  countsByReason: Type.Record(Type.String(), Type.Integer(), { description: 'all stored letters, by reason' }),
  nextBefore: Nullable(Type.Integer({ description: 'pass as `before` for the next page; null on the last page' })),
});
