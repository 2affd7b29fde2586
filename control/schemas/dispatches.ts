import { Type } from '@sinclair/typebox';
import { DISPATCH_STATES } from '../../protocol/index.ts';
import { COMMAND_ID_PATTERN } from './commands.ts';
import { IsoTimeSchema, NextCursorSchema, Nullable, OpaqueCursorSchema, PageLimitSchema, StringEnum } from './common.ts';

/** Largest |powerW| of a dispatch: a gigawatt is far beyond any fleet, so more is a typo. */
export const MAX_DISPATCH_POWER_W = 1e9;
export const MIN_DISPATCH_SECONDS = 60;
/** A dispatch runs for at most a day; longer is a schedule of dispatches. */
export const MAX_DISPATCH_SECONDS = 86_400;
/** How far ahead a dispatch may start: plans are made with the fleet as it is now, which says little about next month. */
export const MAX_DISPATCH_LEAD_MS = 7 * 86_400_000;
/** How far in the past `startAt` may be, for clocks a little behind and requests a little slow; it then starts at once. */
export const MAX_DISPATCH_START_LAG_MS = 60_000;
export const MAX_DISPATCH_SITES = 10_000;
/** Site and region ids follow DEVICE_ID_PATTERN (at most 64 characters). */
const MAX_ID_CHARS = 64;
/** Most samples shown in `measured`: an hour at one sample each five seconds. Energy and tracking use every sample. */
export const MAX_MEASURED_SAMPLES = 720;
export const MAX_DISPATCH_LIMIT = 500;
/**
 * The body of a dispatch to 10 000 sites of 64-character ids is about
 * 680 KB, beyond the app's limit for other bodies; this route alone takes 1 MiB.
 */
export const DISPATCH_BODY_LIMIT_BYTES = 1024 * 1024;

/** Dispatch ids are UUIDs, like command ids; any other id is a 404 without asking the store. */
export const DISPATCH_ID_PATTERN = COMMAND_ID_PATTERN;

const DispatchStateSchema = StringEnum(DISPATCH_STATES, {
  description: 'scheduled (stored, not started), active (the loop runs it), completed, cancelled, failed',
});

/**
 * One object with exactly one of the three keys (checked by the route, with
 * a message saying so). A union of three objects would validate too, but
 * the validator's message for a union names the first alternative's rule,
 * whichever the operator meant.
 */
export const DispatchTargetSchema = Type.Object(
  {
    fleet: Type.Optional(Type.Literal(true, { description: 'every battery of the fleet' })),
    region: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_ID_CHARS, description: 'the batteries of the sites of this region' })),
    siteIds: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: MAX_ID_CHARS }), {
        minItems: 1,
        maxItems: MAX_DISPATCH_SITES,
        uniqueItems: true,
        description: `the batteries of these sites (1 to ${MAX_DISPATCH_SITES})`,
      }),
    ),
  },
  {
    additionalProperties: false,
    title: 'DispatchTarget',
    description: 'exactly one of `{"fleet": true}`, `{"region": "<id>"}`, `{"siteIds": ["<id>", …]}`',
  },
);

export const CreateDispatchBodySchema = Type.Object(
  {
    target: DispatchTargetSchema,
    powerW: Type.Number({
      minimum: -MAX_DISPATCH_POWER_W,
      maximum: MAX_DISPATCH_POWER_W,
      description: 'positive: deliver to the grid (discharge); negative: absorb (charge); not 0',
    }),
    startAt: Type.Optional(
      Type.String({
        format: 'date-time',
        maxLength: 40,
        description: 'ISO 8601; default now; at most 7 days ahead and at most 60 s in the past (then it starts at once)',
      }),
    ),
    durationSeconds: Type.Integer({ minimum: MIN_DISPATCH_SECONDS, maximum: MAX_DISPATCH_SECONDS }),
    allowPartial: Type.Optional(
      Type.Boolean({ default: false, description: 'store and run the dispatch even when the fleet cannot meet the whole target' }),
    ),
  },
  { additionalProperties: false },
);

export const CreateDispatchQuerySchema = Type.Object({
  dryRun: Type.Optional(Type.Boolean({ default: false, description: 'plan only: answer what the fleet can do now, store and send nothing' })),
});

const PlanFields = {
  feasible: Type.Boolean({ description: 'whether the fleet can meet the whole target' }),
  availableW: Type.Number({ description: 'what the fleet can deliver (or absorb) toward the target now' }),
  shortfallW: Type.Number({ description: 'how much of the target it cannot meet; 0 when feasible' }),
  marginW: Type.Number({ description: 'power left beyond the target' }),
  marginWh: Type.Number({ description: 'energy left beyond what the dispatch takes' }),
  devicesUsed: Type.Integer({ minimum: 0 }),
  explanation: Type.String({ description: 'the plan in plain words' }),
};

export const DispatchPlanSchema = Type.Object(PlanFields, { title: 'DispatchPlan', description: 'the plan made when the dispatch was created' });

export const PlannedDispatchSchema = Type.Object(
  {
    ...PlanFields,
    setpoints: Type.Record(Type.String(), Type.Number(), { description: 'what each battery would be asked (device id → W)' }),
  },
  { title: 'PlannedDispatch' },
);

export const DryRunSchema = Type.Object({ plan: PlannedDispatchSchema }, { description: 'the plan; nothing stored, nothing sent' });

/** The 409 of an infeasible dispatch: the error shape with the plan, so the operator sees what the fleet can do. */
export const InfeasibleDispatchSchema = Type.Object(
  {
    code: Type.Literal('conflict'),
    message: Type.String({ description: 'the plan\'s explanation' }),
    plan: PlannedDispatchSchema,
  },
  { description: 'the fleet cannot meet the target and allowPartial is false; nothing stored' },
);

const DispatchTargetViewSchema = Type.Union(
  [
    Type.Object({ fleet: Type.Literal(true) }),
    Type.Object({ region: Type.String() }),
    Type.Object({ siteIds: Type.Array(Type.String()) }),
  ],
  { title: 'DispatchTargetView' },
);

const DispatchFields = {
  id: Type.String({ pattern: DISPATCH_ID_PATTERN, description: 'a UUID; the commands of the dispatch carry it as `dispatchId`' }),
  target: DispatchTargetViewSchema,
  powerW: Type.Number({ description: 'positive: deliver to the grid; negative: absorb' }),
  startAt: IsoTimeSchema,
  endAt: IsoTimeSchema,
  durationSeconds: Type.Number(),
  state: DispatchStateSchema,
  allowPartial: Type.Boolean(),
  createdAt: IsoTimeSchema,
  updatedAt: { ...IsoTimeSchema, description: 'when it reached its current state' },
  reason: Nullable(Type.String({ description: 'why it was cancelled or failed' })),
  plan: DispatchPlanSchema,
};

export const DispatchSummarySchema = Type.Object(DispatchFields, { title: 'DispatchSummary' });

export const AllocationSchema = Type.Object(
  {
    deviceId: Type.String(),
    setpointW: Nullable(Type.Number({ description: 'what the battery is asked now; null once it is no longer part of the dispatch (cancelled, finished)' })),
    command: Nullable(
      Type.Object(
        {
          id: Type.String(),
          state: Type.String({ description: 'see Command' }),
          reason: Nullable(Type.String()),
        },
        { description: 'the newest command of the dispatch to this device; null before one is sent' },
      ),
    ),
  },
  { title: 'DispatchAllocation' },
);

export const MeasuredSampleSchema = Type.Object(
  {
    at: IsoTimeSchema,
    targetW: Type.Number(),
    measuredW: Type.Number({ description: 'sum of the measured power of the dispatched batteries that report' }),
    confidence: Type.Number({ description: 'share of the target backed by devices that accepted and report (0..1)' }),
  },
  { title: 'DispatchSample' },
);

export const DispatchSchema = Type.Object(
  {
    ...DispatchFields,
    allocation: Type.Array(AllocationSchema, {
      description: 'each battery asked now or sent a command by this dispatch, in device id order',
    }),
    measured: Type.Array(MeasuredSampleSchema, { description: `the control loop's samples, oldest first; the last ${MAX_MEASURED_SAMPLES} at most` }),
    energy: Type.Object({
      requestedWh: Type.Number({ description: '|powerW| × duration' }),
      deliveredWh: Type.Number({
        description: 'measured power integrated over every sample (trapezoids), counted positive in the direction of the target',
      }),
      shareDelivered: Type.Number({ description: 'deliveredWh / requestedWh' }),
    }),
    tracking: Type.Object({
      latestErrorW: Nullable(Type.Number({ description: 'target − measured of the latest sample; null without samples' })),
      meanAbsErrorPct: Nullable(
        Type.Number({
          description: 'mean |target − measured| / |target| in %, from the first sample whose measured power reached 95 % of its target; null before that',
        }),
      ),
      confidence: Nullable(Type.Number({ description: 'of the latest sample; null without samples' })),
    }),
  },
  { title: 'Dispatch' },
);

/** The answer of a created dispatch, with its Location documented (read by the OpenAPI generator only). */
export const CreatedDispatchSchema = {
  ...DispatchSchema,
  description: 'the dispatch, stored scheduled',
  headers: { location: Type.String({ description: '/api/v1/dispatches/<id>' }) },
};

export const DispatchIdParamsSchema = Type.Object({
  // Loose on purpose: an id that is not a UUID is a 404 like any unknown one.
  id: Type.String({ minLength: 1, maxLength: 128 }),
});

export const DispatchListQuerySchema = Type.Object({
  state: Type.Optional(DispatchStateSchema),
  limit: PageLimitSchema(MAX_DISPATCH_LIMIT, 'dispatches'),
  before: OpaqueCursorSchema,
});

export const DispatchPageSchema = Type.Object({
  dispatches: Type.Array(DispatchSummarySchema, { description: 'newest first; GET /dispatches/:id adds allocation, measured, energy and tracking' }),
  next: NextCursorSchema(),
});
