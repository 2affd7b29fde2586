/**
 * The payload formats the integrations document, as schemas, for tests:
 * Slack's incoming-webhook message with Block Kit blocks, and PagerDuty's
 * Events API v2 event, each limit cited where it is declared. A payload
 * that passes is one the service accepts rather than answering 400.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** Composition objects: text objects. `text` is at least 1 and at most 3000 characters. */
const textObject = (type: 'plain_text' | 'mrkdwn', maxLength = 3000) =>
  Type.Object(
    {
      type: Type.Literal(type),
      text: Type.String({ minLength: 1, maxLength }),
      // `emoji` is documented for plain_text only, `verbatim` for mrkdwn only.
      ...(type === 'plain_text' ? { emoji: Type.Optional(Type.Boolean()) } : { verbatim: Type.Optional(Type.Boolean()) }),
    },
    { additionalProperties: false },
  );
const anyText = (maxLength = 3000) => Type.Union([textObject('plain_text', maxLength), textObject('mrkdwn', maxLength)]);
/** block_id: optional, at most 255 characters. */
const blockId = Type.Optional(Type.String({ minLength: 1, maxLength: 255 }));

/** Header block: plain_text only, at most 150 characters. */
const HeaderBlock = Type.Object({ type: Type.Literal('header'), text: textObject('plain_text', 150), block_id: blockId }, { additionalProperties: false });
/** Section block: `text` (at most 3000 characters) or `fields`, or both. */
const SectionWithText = Type.Object(
  {
    type: Type.Literal('section'),
    text: anyText(3000),
    /** fields: at most 10 items, each at most 2000 characters. */
    fields: Type.Optional(Type.Array(anyText(2000), { minItems: 1, maxItems: 10 })),
    block_id: blockId,
  },
  { additionalProperties: false },
);
const SectionWithFields = Type.Object(
  { type: Type.Literal('section'), fields: Type.Array(anyText(2000), { minItems: 1, maxItems: 10 }), block_id: blockId },
  { additionalProperties: false },
);
/** Context block: 1 to 10 elements, text objects (or images, not used here). */
const ContextBlock = Type.Object(
  { type: Type.Literal('context'), elements: Type.Array(anyText(3000), { minItems: 1, maxItems: 10 }), block_id: blockId },
  { additionalProperties: false },
);
const DividerBlock = Type.Object({ type: Type.Literal('divider'), block_id: blockId }, { additionalProperties: false });

/**
 * Incoming webhook message: `text` is required as the notification and
 * fallback text when blocks are given; a message has at most 50 blocks.
 */
export const SlackIncomingWebhookMessage = Type.Object(
  {
    text: Type.String({ minLength: 1 }),
    blocks: Type.Array(Type.Union([HeaderBlock, SectionWithText, SectionWithFields, ContextBlock, DividerBlock]), { minItems: 1, maxItems: 50 }),
  },
  { additionalProperties: false },
);

/** ISO 8601 date-time, as PagerDuty parses `payload.timestamp`. */
const ISO_8601 = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$';

/** The routing key is the integration key of an Events API v2 integration: 32 characters. */
const routingKey = Type.String({ minLength: 32, maxLength: 32 });
/** dedup_key: at most 255 characters. */
const dedupKey = Type.String({ minLength: 1, maxLength: 255 });

const TriggerPayload = Type.Object(
  {
    /** Required; at most 1024 characters (PagerDuty cuts longer ones). */
    summary: Type.String({ minLength: 1, maxLength: 1024 }),
    /** Required: the unique location of the affected system. */
    source: Type.String({ minLength: 1 }),
    /** Required: one of critical, error, warning, info. */
    severity: Type.Union([Type.Literal('critical'), Type.Literal('error'), Type.Literal('warning'), Type.Literal('info')]),
    timestamp: Type.Optional(Type.String({ pattern: ISO_8601 })),
    component: Type.Optional(Type.String()),
    group: Type.Optional(Type.String()),
    class: Type.Optional(Type.String()),
    custom_details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

/** trigger needs a payload; acknowledge and resolve need the dedup_key of the alert they act on. */
export const PagerDutyEventsV2 = Type.Union([
  Type.Object(
    { routing_key: routingKey, event_action: Type.Literal('trigger'), dedup_key: Type.Optional(dedupKey), payload: TriggerPayload },
    { additionalProperties: false },
  ),
  Type.Object(
    { routing_key: routingKey, event_action: Type.Union([Type.Literal('acknowledge'), Type.Literal('resolve')]), dedup_key: dedupKey },
    { additionalProperties: false },
  ),
]);

/** Every way `value` breaks `schema`, as `path: message`; empty when it conforms. */
export function formatErrors(schema: TSchema, value: unknown): string[] {
  return [...Value.Errors(schema, value)].map((e) => `${e.path}: ${e.message}`);
}
