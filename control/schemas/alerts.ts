import { Type, type Static, type TLiteral, type TSchema } from '@sinclair/typebox';
import {
  AGGREGATE_RULE_METRICS,
  ALERT_SEVERITIES,
  ALERT_STATES,
  ALERT_SUBJECT_KINDS,
  ALERT_TRANSITION_KINDS,
  DEVICE_TYPES,
  NOTIFICATION_INTEGRATIONS,
  RULE_ID_PATTERN,
  type AlertRule,
  type AlertRuleKind,
  type FrozenCondition,
  type NotificationRoute,
  type PresenceCondition,
  type RateOfChangeCondition,
  type RuleFilter,
  type ThresholdCondition,
} from '../../protocol/index.ts';
import { MAX_ALERT_ID_CHARS, MAX_ALERT_NOTE_CHARS } from '../../store/alert-lifecycle.ts';
import { IsoTimeSchema, NextCursorSchema, Nullable, PageLimitSchema, StringEnum } from './common.ts';

/**
 * Longest note or reason the API takes: what the store keeps, so that
 * nothing an operator wrote is silently cut.
 */
export { MAX_ALERT_NOTE_CHARS };

export const MAX_ALERT_LIMIT = 500;

/** Alert ids are positive integers, passed as strings; every safe integer has at most 16 digits. */
export const ALERT_ID_PATTERN = '^[1-9][0-9]{0,15}$';

export const AlertSeveritySchema = StringEnum(ALERT_SEVERITIES, { description: 'critical, warning or info' });
const AlertSubjectKindSchema = StringEnum(ALERT_SUBJECT_KINDS, { description: 'what the alert is about' });

export const AlertListQuerySchema = Type.Object({
  state: Type.Optional(
    StringEnum([...ALERT_STATES, 'open'] as const, { description: '`open` is firing or acknowledged' }),
  ),
  severity: Type.Optional(AlertSeveritySchema),
  subject: Type.Optional(
    Type.String({ minLength: 1, maxLength: MAX_ALERT_ID_CHARS, description: 'subject id: a device, site or region id, or `fleet`' }),
  ),
  rule: Type.Optional(Type.String({ pattern: RULE_ID_PATTERN, description: 'rule id, as in the rules file' })),
  limit: PageLimitSchema(MAX_ALERT_LIMIT, 'alerts'),
  before: Type.Optional(
    Type.String({ pattern: ALERT_ID_PATTERN, description: 'only alerts with a smaller id (the `next` of a previous page)' }),
  ),
});

export const AlertSchema = Type.Object(
  {
    id: Type.String({ pattern: ALERT_ID_PATTERN, description: 'stable for the alert\'s whole life, reopenings included' }),
    ruleId: Type.String(),
    severity: AlertSeveritySchema,
    subjectKind: AlertSubjectKindSchema,
    subjectId: Type.String(),
    state: StringEnum(ALERT_STATES, {
      description: 'firing: nobody has taken it; acknowledged: an operator took it, still open; resolved: the rule cleared or an operator resolved it',
    }),
    summary: Type.String({ description: 'the rule\'s summary at the latest firing' }),
    value: Nullable(Type.Number({ description: 'the value that made the condition hold at the latest firing; null when the rule has none' })),
    labels: Type.Record(Type.String(), Type.String(), { description: 'deviceType, siteId, region where they apply' }),
    openedAt: { ...IsoTimeSchema, description: 'when the alert first fired' },
    firedAt: { ...IsoTimeSchema, description: 'when it last fired or was reopened' },
    acknowledgedAt: Nullable(IsoTimeSchema),
    acknowledgedBy: Nullable(Type.String()),
    acknowledgeNote: Nullable(Type.String()),
    resolvedAt: Nullable(IsoTimeSchema),
    resolvedBy: Nullable(Type.String({ description: '`rule` when the condition cleared, else the operator' })),
    resolveReason: Nullable(Type.String()),
    reopenCount: Type.Integer({ minimum: 0, description: 'how often the alert fired again within its flapping window' }),
  },
  { title: 'Alert' },
);

export const AlertTransitionSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 1, description: 'increases across all alerts, in the order transitions were stored' }),
    kind: StringEnum(ALERT_TRANSITION_KINDS),
    at: IsoTimeSchema,
    actor: Type.String({ description: '`rule`, or the operator who acknowledged or resolved' }),
    note: Nullable(Type.String({ description: 'the acknowledgement note or the resolution reason' })),
    notify: Type.Boolean({ description: 'whether notification integrations are told of it' }),
  },
  { title: 'AlertTransition' },
);

export const AlertWithTransitionsSchema = Type.Object(
  {
    ...AlertSchema.properties,
    transitions: Type.Array(AlertTransitionSchema, { description: 'oldest first' }),
  },
  { title: 'AlertWithTransitions' },
);

export const AlertPageSchema = Type.Object({
  alerts: Type.Array(AlertSchema, { description: 'newest first' }),
  next: NextCursorSchema(ALERT_ID_PATTERN),
});

export const AlertIdParamsSchema = Type.Object({
  // Loose on purpose: an id that is not an alert id is a 404 like any unknown one.
  id: Type.String({ minLength: 1, maxLength: 128 }),
});

export const AcknowledgeAlertBodySchema = Type.Object(
  {
    note: Type.Optional(Type.String({ maxLength: MAX_ALERT_NOTE_CHARS, description: 'what the operator is doing about it' })),
  },
  { additionalProperties: false, description: 'may be empty or absent' },
);

export const ResolveAlertBodySchema = Type.Object(
  {
    reason: Type.String({ minLength: 1, maxLength: MAX_ALERT_NOTE_CHARS, description: 'why the alert is resolved; required' }),
  },
  { additionalProperties: false },
);

// ---- Rules and routes, as configured -----------------------------------------

const MetricNameSchema = Type.String({ description: `a device metric name, or for site, region and fleet rules one of ${AGGREGATE_RULE_METRICS.join(', ')}` });
const SecondsSchema = Type.Number({ minimum: 0 });

const RuleFilterSchema = Type.Object({
  deviceTypes: Type.Optional(Type.Array(StringEnum(DEVICE_TYPES))),
  regions: Type.Optional(Type.Array(Type.String())),
  siteIds: Type.Optional(Type.Array(Type.String())),
});

const ThresholdConditionSchema = Type.Object({
  metric: MetricNameSchema,
  above: Type.Optional(Type.Number()),
  below: Type.Optional(Type.Number()),
  clearBelow: Type.Optional(Type.Number({ description: 'with `above`: clears once the value is back below this' })),
  clearAbove: Type.Optional(Type.Number({ description: 'with `below`: clears once the value is back above this' })),
  forSeconds: SecondsSchema,
});

const RateOfChangeConditionSchema = Type.Object({
  metric: MetricNameSchema,
  maxPerMinute: Type.Optional(Type.Number()),
  powerMetric: Type.Optional(Type.String()),
  capacityMetric: Type.Optional(Type.String()),
  tolerance: Type.Number(),
  slackPerMinute: Type.Number(),
  noise: Type.Number({ minimum: 0, description: 'a change of at most this much is always allowed' }),
});

const FrozenConditionSchema = Type.Object({
  metric: MetricNameSchema,
  forSeconds: SecondsSchema,
  onlyWhile: Type.Optional(Type.Object({ metric: Type.String(), absAtLeast: Type.Number({ minimum: 0 }) })),
});

const PresenceConditionSchema = Type.Object({ forSeconds: SecondsSchema });

const RuleBaseSchema = Type.Object({
  id: Type.String({ pattern: RULE_ID_PATTERN }),
  severity: AlertSeveritySchema,
  subject: AlertSubjectKindSchema,
  filter: RuleFilterSchema,
  summary: Type.String({ description: 'template; `{name}` placeholders are filled in when the alert fires' }),
  flapWindowSeconds: Type.Number({ minimum: 0, description: 'a firing this soon after the resolution reopens the same alert' }),
});

/** One rule object per condition kind; `kind` tells which condition property is present. */
function ruleOf<K extends AlertRuleKind, C extends TSchema>(kind: K, condition: C) {
  return Type.Object({ ...RuleBaseSchema.properties, kind: Type.Literal(kind), [kind]: condition } as typeof RuleBaseSchema.properties & {
    kind: TLiteral<K>;
  } & { [P in K]: C });
}

export const AlertRuleSchema = Type.Union(
  [
    ruleOf('threshold', ThresholdConditionSchema),
    ruleOf('rateOfChange', RateOfChangeConditionSchema),
    ruleOf('frozen', FrozenConditionSchema),
    ruleOf('offline', PresenceConditionSchema),
    ruleOf('stale', PresenceConditionSchema),
  ],
  { title: 'AlertRule' },
);

/**
 * The response schema lists each property of a rule (fastify serialises
 * only listed ones), so a property added to the protocol's rule types
 * would silently vanish from GET /alert-rules. These fail to compile when
 * the schemas and the protocol's types name different properties.
 */
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
type Check<T extends true> = T;
export type _RuleSchemasMatchProtocol = [
  Check<SameKeys<Static<typeof ThresholdConditionSchema>, ThresholdCondition>>,
  Check<SameKeys<Static<typeof RateOfChangeConditionSchema>, RateOfChangeCondition>>,
  Check<SameKeys<Static<typeof FrozenConditionSchema>, FrozenCondition>>,
  Check<SameKeys<Static<typeof PresenceConditionSchema>, PresenceCondition>>,
  Check<SameKeys<Static<typeof RuleFilterSchema>, RuleFilter>>,
  Check<SameKeys<Static<typeof RuleBaseSchema>, Omit<AlertRule, AlertRuleKind | 'kind'>>>,
  Check<SameKeys<Static<typeof NotificationRouteSchema>, NotificationRoute>>,
];

export const NotificationRouteSchema = Type.Object(
  {
    integration: StringEnum(NOTIFICATION_INTEGRATIONS),
    severities: Type.Optional(Type.Array(AlertSeveritySchema)),
    subjectKinds: Type.Optional(Type.Array(AlertSubjectKindSchema)),
    ruleIds: Type.Optional(Type.Array(Type.String())),
  },
  { title: 'NotificationRoute', description: 'an integration hears the alerts matching every list given' },
);

export const AlertRulesSchema = Type.Object({
  rules: Type.Array(AlertRuleSchema),
  routes: Type.Array(NotificationRouteSchema, { description: 'an integration no route names gets every alert' }),
});

const DeliveryCountsSchema = Type.Object({
  pending: Type.Integer({ minimum: 0, description: 'waiting for their first or next attempt' }),
  delivered: Type.Integer({ minimum: 0 }),
  dead: Type.Integer({ minimum: 0, description: 'given up after the last attempt failed' }),
});

export const AlertDeliveriesSchema = Type.Object({
  integrations: Type.Record(Type.String(), DeliveryCountsSchema, { description: 'deliveries by integration; an integration with none is absent' }),
});
