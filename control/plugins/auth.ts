/**
 * Operator authentication for /api/v1: `Authorization: Bearer <token>`,
 * where the token is either the configured admin token (role admin, named
 * `bootstrap`) or an API token `vpp_<random>` made by POST /api/v1/tokens.
 *
 * The admin token is compared in constant time after hashing both sides,
 * so neither its content nor its length leaks through timing. An API token
 * is found by the SHA-256 of the whole token (hashTokenSecret), one keyed
 * lookup: the hash of a 256-bit random token tells nothing about another.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { hashTokenSecret } from '../../store/credentials.ts';
import type { OperatorRole, TokenStore } from '../../store/types.ts';
import { ControlError } from '../errors.ts';

export const MIN_ADMIN_TOKEN_LENGTH = 16;
/** What every API token starts with, so a leaked one is recognisable (secret scanners, logs). */
export const API_TOKEN_PREFIX = 'vpp_';
/** The name of the configured admin token, as the audit log and `operatorOf` show it. */
export const BOOTSTRAP_TOKEN_NAME = 'bootstrap';

/** Who a request acts as. */
export interface Operator {
  /** The token's id; `bootstrap` for the configured admin token. Rate limits count by it. */
  id: string;
  name: string;
  role: OperatorRole;
}

export type Authentication =
  /** No Authorization header, or not of the Bearer form: nothing was guessed. */
  | { kind: 'missing' }
  /** A bearer token that is unknown, revoked or expired: counted by the failed-authentication throttle. */
  | { kind: 'invalid' }
  | { kind: 'ok'; operator: Operator };

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function checkAdminToken(adminToken: string): void {
  if (adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new ControlError('invalid-config', `adminToken: must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  }
}

/** Returns the check of an Authorization header value against the admin token and the token store. */
export function createAuthenticator(deps: {
  adminToken: string;
  tokens: Pick<TokenStore, 'authenticate'>;
  clock: () => number;
}): (authorization: string | undefined) => Authentication {
  checkAdminToken(deps.adminToken);
  const expected = digest(deps.adminToken);
  const bootstrap: Operator = { id: BOOTSTRAP_TOKEN_NAME, name: BOOTSTRAP_TOKEN_NAME, role: 'admin' };
  return (authorization) => {
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) return { kind: 'missing' };
    const token = match[1]!;
    if (timingSafeEqual(digest(token), expected)) return { kind: 'ok', operator: bootstrap };
    // Only issued tokens have the prefix; anything else cannot be in the store, so it costs no lookup.
    if (!token.startsWith(API_TOKEN_PREFIX)) return { kind: 'invalid' };
    const found = deps.tokens.authenticate(hashTokenSecret(token), deps.clock());
    if (found === undefined) return { kind: 'invalid' };
    return { kind: 'ok', operator: { id: found.id, name: found.name, role: found.role } };
  };
}

// Kept beside the request rather than as a fastify decoration, so the type of
// every FastifyRequest in the project does not grow a field only /api/v1 sets.
const operators = new WeakMap<FastifyRequest, Operator>();

export function setOperator(request: FastifyRequest, operator: Operator): void {
  operators.set(request, operator);
}

/** The operator of an authenticated request; undefined before authentication or when it failed. */
export function findOperator(request: FastifyRequest): Operator | undefined {
  return operators.get(request);
}

/**
 * Who an authorized request acts as: the token's name (`bootstrap` for the
 * configured admin token), recorded as the actor of what it changes (an
 * alert's acknowledgement or resolution) and in the logs of commands and
 * dispatches.
 */
export function operatorOf(request: FastifyRequest): string {
  const operator = operators.get(request);
  // Every route under /api/v1 runs behind the guard, so this is a bug, not a client error.
  if (operator === undefined) throw new Error(`operatorOf: ${request.method} ${request.url} was not authenticated`);
  return operator.name;
}
