/**
 * `Cache-Control: no-store` for responses that carry a secret, so no
 * browser, proxy or client cache keeps a copy. Added as an onSend hook of
 * the route, so it is on every answer of that route, errors included.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox';

export async function setNoStore<P>(_request: FastifyRequest, reply: FastifyReply, payload: P): Promise<P> {
  reply.header('cache-control', 'no-store');
  return payload;
}

/** Documents the header in the OpenAPI response (the `headers` keyword is read by the OpenAPI generator only). */
export function withNoStoreHeader<T extends TSchema>(schema: T): T {
  return {
    ...schema,
    headers: { 'cache-control': Type.Literal('no-store', { description: 'the response carries a secret; keep no copy' }) },
  };
}
