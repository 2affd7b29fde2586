/**
 * Static types of requests and replies from the route schemas.
 *
 * The schemas are @sinclair/typebox 0.34 schemas, like protocol's (so
 * protocol schemas such as AggregateSnapshotSchema compose directly).
 * @fastify/type-provider-typebox 6 infers with the newer `typebox` 1.x
 * package instead and does not understand every 0.34 schema (Type.Unsafe
 * becomes `unknown`), so this is the same provider written against 0.34.
 * Validation itself is fastify's built-in Ajv, which reads plain JSON Schema.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyTypeProvider, RawServerDefault } from 'fastify';
import type { ControlDeps } from './deps.ts';

export interface TypeBoxTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
  serializer: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
}

/** A route plugin of the control API. */
export type ControlPlugin = FastifyPluginAsync<{ deps: ControlDeps }, RawServerDefault, TypeBoxTypeProvider>;
