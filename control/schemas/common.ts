/**
 * Schemas shared by every route. TypeBox gives validation, static types
 * and the OpenAPI document from one definition; response schemas also
 * filter output (fastify serialises only the listed properties).
 */
import { Type, type TSchema, type TUnsafe } from '@sinclair/typebox';

/** Every error body of the API. */
export const ErrorSchema = Type.Object(
  {
    code: Type.String({ description: 'machine-readable, e.g. bad-request, unauthorized, not-found, conflict' }),
    message: Type.String({ description: 'what went wrong, naming the field or resource at fault' }),
  },
  { title: 'Error' },
);

/**
 * A string from a fixed list, as a plain JSON Schema `enum` (TypeBox's
 * union of literals would give `anyOf`, whose validation errors do not say
 * which values are allowed).
 */
export function StringEnum<const T extends readonly string[]>(values: T, options: { description?: string; default?: T[number] } = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

export function Nullable<T extends TSchema>(schema: T) {
  return Type.Union([schema, Type.Null()]);
}

export const IsoTimeSchema = Type.String({ format: 'date-time', description: 'ISO 8601, UTC' });

/** `from`/`to` of history queries. */
export const TimeParamSchema = Type.String({
  minLength: 1,
  maxLength: 40,
  description: 'ISO 8601 time or milliseconds since the Unix epoch',
});

/** Path parameter of a device, site or region. Unknown ids are a 404, so the check is loose. */
export const IdParamsSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'the request is not valid; the message names the field and the rule',
  401: 'no token, or one that is unknown, revoked or expired',
  403: 'the token\'s role is below the one the route needs; the message names it',
  404: 'no such resource',
  409: 'conflicts with the current state',
  413: 'the body is larger than the route takes',
  429: 'too many requests (per token or per address) or too many failed authentications from this address; see Retry-After',
  502: 'done, but the broker could not be told; see the message',
};

/** Error responses of a route, by status; always JSON `{ code, message }`. */
export function errorResponses<const S extends readonly number[]>(...statuses: S): Record<S[number], typeof ErrorSchema> {
  const out = {} as Record<S[number], typeof ErrorSchema>;
  for (const status of statuses) {
    out[status as S[number]] = { ...ErrorSchema, description: ERROR_DESCRIPTIONS[status] ?? 'error' };
  }
  return out;
}

/** The bearer token of everything under /api/v1 (see the OpenAPI security scheme). */
export const BEARER_SECURITY = [{ bearerAuth: [] }];

/** `limit` of a paged list: 1 to `maximum`, 100 by default. */
export function PageLimitSchema(maximum: number, items: string) {
  return Type.Optional(Type.Integer({ minimum: 1, maximum, default: 100, description: `most ${items} in one page` }));
}

/** `before` of a list the store pages with a cursor of its own making. */
export const OpaqueCursorSchema = Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'the `next` of the previous page' }));

/** `next` of a page: the cursor of the next one, null on the last; `pattern` when the cursor has a known form. */
export function NextCursorSchema(pattern?: string) {
  const description = 'pass as `before` for the next page; null on the last page';
  return Nullable(Type.String(pattern === undefined ? { description } : { pattern, description }));
}
