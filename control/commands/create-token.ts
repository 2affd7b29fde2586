/**
 * An admin makes an API token: `vpp_` and 32 random bytes (base64url), of
 * which the store keeps only the SHA-256 (hashTokenSecret). The token is
 * returned once, to be shown once.
 */
import { randomUUID } from 'node:crypto';
import { generateSecret, hashTokenSecret } from '../../store/credentials.ts';
import type { ApiToken, OperatorRole, TokenStore } from '../../store/types.ts';
import { badRequest } from '../errors.ts';
import { API_TOKEN_PREFIX, BOOTSTRAP_TOKEN_NAME } from '../plugins/auth.ts';
import { parseTime } from '../time-range.ts';

export interface CreateTokenDeps {
  tokens: Pick<TokenStore, 'createToken'>;
  clock: () => number;
}

/** Throws 400 for a reserved name or an expiry not in the future, 409 for a name an active token has. */
export function createToken(
  deps: CreateTokenDeps,
  input: { name: string; role: OperatorRole; expiresAt?: string | undefined },
): { token: ApiToken; secret: string } {
  // The audit log would show two different tokens under one name.
  if (input.name === BOOTSTRAP_TOKEN_NAME) throw badRequest(`name: '${BOOTSTRAP_TOKEN_NAME}' is the configured admin token's name`);
  const nowMs = deps.clock();
  let expiresAtMs: number | null = null;
  if (input.expiresAt !== undefined) {
    expiresAtMs = parseTime('expiresAt', input.expiresAt);
    if (expiresAtMs <= nowMs) throw badRequest('expiresAt: must be in the future');
  }
  const secret = `${API_TOKEN_PREFIX}${generateSecret()}`;
  const token = deps.tokens.createToken(
    { id: randomUUID(), name: input.name, role: input.role, secretHash: hashTokenSecret(secret), expiresAtMs },
    nowMs,
  );
  return { token, secret };
}
