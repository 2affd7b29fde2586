/** An admin revokes an API token: refused from the next request on. */
import type { TokenStore } from '../../store/types.ts';
import { conflict, notFound } from '../errors.ts';
import { isoTime } from '../presenters/device.ts';

/** Throws 404 for an unknown id (the configured admin token is not a stored token) and 409 when already revoked. */
export function revokeToken(deps: { tokens: Pick<TokenStore, 'revokeToken' | 'listTokens'>; clock: () => number }, id: string): void {
  if (deps.tokens.revokeToken(id, deps.clock())) return;
  const token = deps.tokens.listTokens().find((t) => t.id === id);
  if (token?.revokedAtMs != null) throw conflict(`token '${id}' (${token.name}) is already revoked (at ${isoTime(token.revokedAtMs)})`);
  throw notFound(`token '${id}' does not exist`);
}
