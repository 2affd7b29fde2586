/** API tokens and the audit log. */
import { Type } from '@sinclair/typebox';
import { OPERATOR_ROLES } from '../../store/types.ts';
import { MAX_TOKEN_NAME_CHARS } from '../../store/types.ts';
import { IsoTimeSchema, NextCursorSchema, Nullable, PageLimitSchema, StringEnum, TimeParamSchema } from './common.ts';

/** Bodies of acknowledging and resolving alerts and of making a token are a few hundred bytes at most. */
export const SMALL_BODY_LIMIT_BYTES = 8 * 1024;
export const MAX_AUDIT_LIMIT = 500;

export const OperatorRoleSchema = StringEnum(OPERATOR_ROLES, {
  description: 'viewer reads all but tokens and the audit log; operator also sends commands and dispatches and acknowledges and resolves alerts; admin does everything',
});

export const MeSchema = Type.Object(
  {
    name: Type.String({ description: 'the token\'s name, as the audit log shows it; `bootstrap` for the configured admin token' }),
    role: OperatorRoleSchema,
  },
  { title: 'Me' },
);

export const CreateTokenBodySchema = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: MAX_TOKEN_NAME_CHARS,
      description: 'who or what uses the token, shown as the actor in the audit log; unique among tokens not revoked; `bootstrap` is the configured admin token\'s',
    }),
    role: OperatorRoleSchema,
    expiresAt: Type.Optional({ ...IsoTimeSchema, description: 'when the token stops working (ISO 8601, in the future); absent: never' }),
  },
  { additionalProperties: false },
);

const tokenProperties = {
  id: Type.String({ description: 'a UUID; DELETE /api/v1/tokens/:id revokes the token' }),
  name: Type.String(),
  role: OperatorRoleSchema,
  createdAt: IsoTimeSchema,
  expiresAt: Nullable({ ...IsoTimeSchema, description: 'null: never expires' }),
};

export const CreatedTokenSchema = Type.Object(
  {
    ...tokenProperties,
    token: Type.String({ description: 'the bearer token, `vpp_…`: shown only in this answer, the platform keeps only its hash' }),
  },
  { title: 'CreatedToken' },
);

export const TokenSchema = Type.Object(
  {
    ...tokenProperties,
    lastUsedAt: Nullable({ ...IsoTimeSchema, description: 'last successful use, to the minute; null if never used' }),
    revoked: Type.Boolean(),
    revokedAt: Nullable(IsoTimeSchema),
    active: Type.Boolean({ description: 'neither revoked nor expired: the token works' }),
  },
  { title: 'Token' },
);

export const TokenListSchema = Type.Object({
  tokens: Type.Array(TokenSchema, { description: 'newest first, revoked ones included; the configured admin token is not listed' }),
});

export const AuditQuerySchema = Type.Object({
  actor: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'a token name; `bootstrap` for the configured admin token' })),
  action: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: '`METHOD /pattern`, e.g. `POST /api/v1/devices/:id/commands`' })),
  target: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'the id the call acted on' })),
  from: Type.Optional({ ...TimeParamSchema, description: 'ISO 8601 or ms since the epoch; inclusive' }),
  to: Type.Optional({ ...TimeParamSchema, description: 'ISO 8601 or ms since the epoch; exclusive' }),
  limit: PageLimitSchema(MAX_AUDIT_LIMIT, 'records'),
  before: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,15}$', description: 'the `next` of the previous page' })),
});

export const AuditRecordSchema = Type.Object(
  {
    id: Type.String(),
    at: IsoTimeSchema,
    actor: Nullable(Type.String({ description: 'the token\'s name; null when no valid token was given' })),
    role: Nullable(OperatorRoleSchema),
    address: Type.String({ description: 'the caller\'s address' }),
    action: Type.String({ description: '`METHOD /pattern`; for a path no route matches, the path itself' }),
    target: Nullable(Type.String({ description: 'the `:id` of the route, when it has one' })),
    summary: Nullable(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'the body without secrets (no key named secret, token, password or authorization), at most 1 KiB; `_truncated` says what was cut',
      }),
    ),
    status: Type.Integer({ description: 'the HTTP status answered' }),
    outcome: StringEnum(['ok', 'refused', 'failed'] as const, { description: 'refused: 401, 403 or 429; failed: any other error' }),
  },
  { title: 'AuditRecord' },
);

export const AuditPageSchema = Type.Object({
  records: Type.Array(AuditRecordSchema, { description: 'newest first' }),
  next: NextCursorSchema(),
});
