/**
 * Stream tickets: how a browser's EventSource, which cannot send an
 * Authorization header, authenticates to GET /api/v1/stream. A signed-in
 * page asks `POST /api/v1/stream/tickets` with its bearer token and puts
 * the ticket in the stream's URL.
 *
 * Chosen over a cookie session on purpose: a ticket is no ambient
 * credential (the browser never attaches it by itself, so no other site can
 * make it open a stream), it is good for one purpose (the stream, read
 * only), and it lives 60 s: long enough for EventSource's own reconnects,
 * short enough that one copied out of a URL or a log is soon worthless.
 * Control's logs show the URL with the ticket masked.
 *
 * A ticket is `st_<payload>.<mac>`: the payload names the token (id, name,
 * role) and the expiry, the MAC is an HMAC-SHA256 under a key derived from
 * the admin token, so every control process of a deployment accepts the
 * tickets of the others and nothing is stored. Each use checks again that
 * the token is still active: revoking the token ends its tickets.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { OPERATOR_ROLES, isTokenActive, type TokenStore } from '../../store/types.ts';
import { BOOTSTRAP_TOKEN_NAME, type Authentication, type Operator } from '../plugins/auth.ts';

export const TICKET_PREFIX = 'st_';
export const TICKET_TTL_MS = 60_000;
const MAX_TICKET_CHARS = 512;

interface TicketPayload {
  /** token id */
  i: string;
  /** token name */
  n: string;
  /** role */
  r: string;
  /** expiry, ms since the epoch */
  e: number;
}

export interface StreamTickets {
  issue(operator: Operator): { ticket: string; expiresAtMs: number };
  verify(ticket: string): Authentication;
}

export function createStreamTickets(deps: { adminToken: string; tokens: Pick<TokenStore, 'getToken'>; clock: () => number }): StreamTickets {
  const key = createHmac('sha256', deps.adminToken).update('vpp stream tickets v1').digest();
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest('base64url');
  return {
    issue(operator) {
      const expiresAtMs = deps.clock() + TICKET_TTL_MS;
      const payload = Buffer.from(JSON.stringify({ i: operator.id, n: operator.name, r: operator.role, e: expiresAtMs } satisfies TicketPayload)).toString('base64url');
      return { ticket: `${TICKET_PREFIX}${payload}.${mac(payload)}`, expiresAtMs };
    },
    verify(ticket) {
      if (ticket.length > MAX_TICKET_CHARS || !ticket.startsWith(TICKET_PREFIX)) return { kind: 'invalid' };
      const [payload, signature, ...rest] = ticket.slice(TICKET_PREFIX.length).split('.');
      if (payload === undefined || signature === undefined || rest.length > 0) return { kind: 'invalid' };
      const expected = Buffer.from(mac(payload));
      const given = Buffer.from(signature);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { kind: 'invalid' };
      let decoded: TicketPayload;
      try {
        decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TicketPayload;
      } catch {
        return { kind: 'invalid' };
      }
      const nowMs = deps.clock();
      if (typeof decoded.e !== 'number' || decoded.e <= nowMs || !(OPERATOR_ROLES as readonly string[]).includes(decoded.r)) return { kind: 'invalid' };
      if (decoded.i === BOOTSTRAP_TOKEN_NAME) return { kind: 'ok', operator: { id: BOOTSTRAP_TOKEN_NAME, name: BOOTSTRAP_TOKEN_NAME, role: 'admin' } };
      const token = deps.tokens.getToken(decoded.i);
      if (token === undefined || !isTokenActive(token, nowMs)) return { kind: 'invalid' };
      return { kind: 'ok', operator: { id: token.id, name: token.name, role: token.role } };
    },
  };
}
