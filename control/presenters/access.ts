/** API tokens and audit records as the API shows them: times in ISO 8601, never a token's hash. */
import type { ApiToken, OperatorRole, StoredAuditRecord } from '../../store/types.ts';
import { isoTime } from './device.ts';

const isoOrNull = (ms: number | null): string | null => (ms === null ? null : isoTime(ms));

/** Who a token is: its name and role, not its id (what revoking takes, which is an admin's business). */
export function presentOperator(operator: { name: string; role: OperatorRole }): { name: string; role: OperatorRole } {
  return { name: operator.name, role: operator.role };
}

export function presentToken(token: ApiToken, nowMs: number) {
  return {
    id: token.id,
    name: token.name,
    role: token.role,
    createdAt: isoTime(token.createdAtMs),
    expiresAt: isoOrNull(token.expiresAtMs),
    lastUsedAt: isoOrNull(token.lastUsedAtMs),
    revoked: token.revokedAtMs !== null,
    revokedAt: isoOrNull(token.revokedAtMs),
    active: token.revokedAtMs === null && (token.expiresAtMs === null || token.expiresAtMs > nowMs),
  };
}

export function presentAuditRecord(record: StoredAuditRecord) {
  return {
    id: String(record.id),
    at: isoTime(record.atMs),
    actor: record.actor,
    role: record.role,
    address: record.address,
    action: record.action,
    target: record.target,
    summary: record.summary,
    status: record.status,
    outcome: record.outcome,
  };
}
