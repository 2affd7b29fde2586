/** Reads of the audit log. */
import type { AuditStore } from '../../store/types.ts';
import { presentAuditRecord } from '../presenters/access.ts';
import { badRequest } from '../errors.ts';
import { parseTime } from '../time-range.ts';

export interface AuditPageParams {
  limit: number;
  actor?: string | undefined;
  action?: string | undefined;
  target?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  before?: string | undefined;
}

/** One page, newest first; `next` (the smallest id of the page) continues it, null on the last page. */
export function queryAudit(deps: { audit: Pick<AuditStore, 'listAudit'> }, params: AuditPageParams) {
  const { limit, actor, action, target, from, to, before } = params;
  const fromMs = from === undefined ? undefined : parseTime('from', from);
  const toMs = to === undefined ? undefined : parseTime('to', to);
  if (fromMs !== undefined && toMs !== undefined && fromMs >= toMs) throw badRequest('from: must be before to');
  // One more than asked tells whether another page exists, so the last page says so.
  const found = deps.audit.listAudit({
    limit: limit + 1,
    ...(actor === undefined ? {} : { actor }),
    ...(action === undefined ? {} : { action }),
    ...(target === undefined ? {} : { target }),
    ...(fromMs === undefined ? {} : { fromMs }),
    ...(toMs === undefined ? {} : { toMs }),
    ...(before === undefined ? {} : { beforeId: Number(before) }),
  });
  const records = found.slice(0, limit);
  return { records: records.map(presentAuditRecord), next: found.length > limit ? String(records.at(-1)!.id) : null };
}
