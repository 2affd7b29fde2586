/**
 * Operator authentication for /api/v1: `Authorization: Bearer <adminToken>`.
 * Both sides are hashed before the constant-time comparison, so neither the
 * token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ControlError } from '../errors.ts';

export const MIN_ADMIN_TOKEN_LENGTH = 16;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Returns a check of an Authorization header value against the admin token. */
export function createBearerAuthorizer(adminToken: string): (authorization: string | undefined) => void {
  if (adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new ControlError('invalid-config', `adminToken: must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  }
  const expected = digest(adminToken);
  return (authorization) => {
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) throw new ControlError('unauthorized', 'Authorization: send "Bearer <admin token>"');
    if (!timingSafeEqual(digest(match[1]!), expected)) throw new ControlError('unauthorized', 'Authorization: the token is not valid');
  };
}

/**
 * Who an authorized request acts as, recorded as the actor of what it
 * changes (an alert's acknowledgement or resolution). There is one admin
 * token, so every operator is `admin`; named tokens will answer their name
 * here, and nowhere else needs to change.
 */
export function operatorOf(_request: FastifyRequest): string {
  return 'admin';
}
