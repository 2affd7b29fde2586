import { Type } from '@sinclair/typebox';
import { BATTERY_MODES, COMMAND_STATES, COMMAND_TYPES, MAX_COMMAND_POWER_W } from '../../protocol/index.ts';
import { IsoTimeSchema, NextCursorSchema, Nullable, OpaqueCursorSchema, PageLimitSchema, StringEnum } from './common.ts';

export const MAX_COMMAND_LIMIT = 500;
export const DEFAULT_COMMAND_TTL_SECONDS = 300;
/** A command runs for at most a day: anything longer is a schedule, not a command. */
export const MAX_COMMAND_TTL_SECONDS = 86_400;
export const MAX_IDEMPOTENCY_KEY_CHARS = 255;

/** Command ids are UUIDs; the API checks the form so that any other id is a 404 without asking the store. */
export const COMMAND_ID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

const CommandTypeSchema = StringEnum(COMMAND_TYPES, { description: 'setPower and setMode (battery), curtail (solar)' });
const CommandStateSchema = StringEnum(COMMAND_STATES, {
  description:
    'pending (stored, not yet sent), sent (published, maybe more than once), accepted (the device follows it), rejected, completed, expired (not accepted before its expiry), failed (every try spent)',
});

const PARAMS_DESCRIPTION =
  `setPower: \`{"powerW": number}\` (watts, positive = discharge, |powerW| ≤ ${MAX_COMMAND_POWER_W}); ` +
  `setMode: \`{"mode": ${BATTERY_MODES.map((m) => `"${m}"`).join(' | ')}}\`; ` +
  `curtail: \`{"maxPowerW": number | null}\` (0 to ${MAX_COMMAND_POWER_W} watts; null lifts the curtailment). No other keys.`;

export const CreateCommandBodySchema = Type.Object(
  {
    type: CommandTypeSchema,
    // Checked per type and device type by the protocol (checkCommandParams), whose messages say what is wrong.
    params: Type.Record(Type.String(), Type.Unknown(), { description: PARAMS_DESCRIPTION }),
    ttlSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_COMMAND_TTL_SECONDS,
        default: DEFAULT_COMMAND_TTL_SECONDS,
        description: 'how long the command runs from now; then the device goes back to local control',
      }),
    ),
  },
  { additionalProperties: false },
);

export const CreateCommandHeadersSchema = Type.Object({
  // Node lowercases header names; printable ASCII so that the key survives any proxy unchanged.
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: MAX_IDEMPOTENCY_KEY_CHARS,
      pattern: '^[\\x20-\\x7E]*$',
      description:
        'repeating a request with the same key for the same device answers the command made the first time (200, `Idempotent-Replayed: true`), whatever became of it; the same key with another body is a 409',
    }),
  ),
});

export const CommandTransitionSchema = Type.Object(
  {
    state: CommandStateSchema,
    at: IsoTimeSchema,
    detail: Nullable(Type.String({ description: 'the device\'s reason, why it expired or failed, or which resend it was' })),
  },
  { title: 'CommandTransition' },
);

export const CommandSchema = Type.Object(
  {
    id: Type.String({ pattern: COMMAND_ID_PATTERN, description: 'a UUID, also what the device acknowledges' }),
    deviceId: Type.String(),
    type: CommandTypeSchema,
    params: Type.Record(Type.String(), Type.Unknown(), { description: 'as normalised: exactly the documented keys' }),
    state: CommandStateSchema,
    createdAt: IsoTimeSchema,
    expiresAt: { ...IsoTimeSchema, description: 'when the command ends; the device then goes back to local control' },
    attempts: Type.Integer({ minimum: 0, description: 'publishes so far, resends included' }),
    nextAttemptAt: Nullable({ ...IsoTimeSchema, description: 'when the next (re)send is due while pending or sent; null otherwise' }),
    reason: Nullable(Type.String({ description: 'the device\'s reason on rejected or completed' })),
    applied: Nullable(
      Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Null()]), {
        description: 'what the device says it applied, when it differs from what was asked (a clipped setpoint)',
      }),
    ),
    dispatchId: Nullable(Type.String({ description: 'the dispatch this command belongs to' })),
    transitions: Type.Array(CommandTransitionSchema, { description: 'oldest first' }),
  },
  { title: 'Command' },
);

/**
 * The answer of POST /devices/:id/commands, with its headers documented (the
 * `headers` keyword is read by the OpenAPI generator only).
 */
export const CreatedCommandSchema = {
  ...CommandSchema,
  description: 'a new command',
  headers: { location: Type.String({ description: '/api/v1/commands/<id>' }) },
};
export const ReplayedCommandSchema = {
  ...CommandSchema,
  description: 'the command made by the first request with this Idempotency-Key',
  headers: { 'idempotent-replayed': Type.Literal('true') },
};

export const CommandIdParamsSchema = Type.Object({
  // Loose on purpose: an id that is not a UUID is a 404 like any unknown one.
  id: Type.String({ minLength: 1, maxLength: 128 }),
});

export const CommandListQuerySchema = Type.Object({
  deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  state: Type.Optional(CommandStateSchema),
  dispatchId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  limit: PageLimitSchema(MAX_COMMAND_LIMIT, 'commands'),
  before: OpaqueCursorSchema,
});

export const CommandPageSchema = Type.Object({
  commands: Type.Array(CommandSchema, { description: 'newest first' }),
  next: NextCursorSchema(),
});

// ---- Desired versus reported, on a device --------------------------------------

export const DesiredControlSchema = Type.Object(
  {
    commandId: Type.String(),
    type: CommandTypeSchema,
    params: Type.Record(Type.String(), Type.Unknown()),
    state: StringEnum(['pending', 'sent', 'accepted'] as const),
    until: { ...IsoTimeSchema, description: 'the command\'s expiry' },
  },
  { title: 'DesiredControl', description: 'the command the device should be following' },
);

export const ReportedControlSchema = Type.Object(
  {
    mode: Type.Optional(Type.String({ description: '`setpoint` while following a setPower; otherwise the battery\'s mode' })),
    setpointW: Type.Optional(Nullable(Type.Number({ description: 'the setpoint followed, after clipping to the device\'s limits' }))),
    curtailW: Type.Optional(Nullable(Type.Number({ description: 'the curtailment in force on a solar inverter' }))),
    commandId: Type.Optional(Nullable(Type.String({ description: 'the command followed; null under local control' }))),
    until: Type.Optional(Nullable({ ...IsoTimeSchema, description: 'until when the command runs; null under local control' })),
  },
  { title: 'ReportedControl', description: 'what the device says it does (its latest status); a field it does not send is absent' },
);

export const DeviceControlSchema = Type.Object(
  {
    desired: Nullable(DesiredControlSchema),
    reported: Nullable(ReportedControlSchema),
    agree: Nullable(
      Type.Boolean({
        description: 'whether the device follows the desired command (or, with none desired, local control); null while it reports nothing',
      }),
    ),
  },
  {
    title: 'DeviceControl',
    description:
      'desired: the device\'s newest command while it is pending, sent or accepted and not expired; null means local control is desired',
  },
);
