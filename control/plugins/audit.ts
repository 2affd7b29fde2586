/**
 * The audit log of /api/v1: every request that changes state (POST, PUT,
 * PATCH, DELETE) and every refused one (401, 403, 429), whatever its
 * method, becomes an AuditRecord after its response is sent (onResponse),
 * so no request waits for it. Records are collected and appended in
 * batches (every FLUSH_INTERVAL_MS, or at once when MAX_BATCH are waiting).
 *
 * A failed append never fails a request: it is logged at error level (an
 * operator must know the log has a gap) and retried with backoff; should
 * MAX_PENDING records pile up, the oldest are dropped, and that is logged
 * too. Retention is the process's: control never deletes a record.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditRecord, AuditStore } from '../../store/types.ts';
import { requestRouteKey } from '../routes/access.ts';
import { findOperator } from './auth.ts';

export const FLUSH_INTERVAL_MS = 250;
export const MAX_BATCH = 100;
export const MAX_PENDING = 10_000;
const MAX_RETRY_DELAY_MS = 10_000;

/** Keys whose values never reach the audit log, at any depth, whatever their case. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['secret', 'token', 'password', 'authorization']);
/** Longest string and array kept in a summary; the store cuts the whole to 1 KiB. */
const MAX_SUMMARY_STRING_CHARS = 200;
const MAX_SUMMARY_ARRAY_ITEMS = 10;
const MAX_SUMMARY_DEPTH = 4;
/** Longest action kept for a path no route matched (a 401 or 404 on a made-up path). */
const MAX_UNMATCHED_PATH_CHARS = 120;

const STATE_CHANGING_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const REFUSED_STATUSES: ReadonlySet<number> = new Set([401, 403, 429]);

function compact(value: unknown, depth: number): unknown {
  if (typeof value === 'string') {
    return value.length > MAX_SUMMARY_STRING_CHARS ? `${value.slice(0, MAX_SUMMARY_STRING_CHARS)}… (${value.length} characters)` : value;
  }
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_SUMMARY_DEPTH) return Array.isArray(value) ? `[${value.length} items]` : '{…}';
  if (Array.isArray(value)) {
    const kept = value.slice(0, MAX_SUMMARY_ARRAY_ITEMS).map((item) => compact(item, depth + 1));
    // A dispatch may name 10 000 sites: the first few and the count say enough.
    return value.length > MAX_SUMMARY_ARRAY_ITEMS ? [...kept, `… ${value.length - MAX_SUMMARY_ARRAY_ITEMS} more`] : kept;
  }
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (SECRET_KEYS.has(key.toLowerCase())) continue;
    out[key] = compact(inner, depth + 1);
  }
  return out;
}

/**
 * The body as the audit log keeps it: keys named secret, token, password or
 * authorization dropped at any depth, long strings and arrays shortened;
 * null when there was no body object. The store cuts it to 1 KiB of JSON.
 */
export function summarizeBody(body: unknown): Record<string, unknown> | null {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return null;
  return compact(body, 0) as Record<string, unknown>;
}

export function outcomeOf(status: number): AuditRecord['outcome'] {
  if (REFUSED_STATUSES.has(status)) return 'refused';
  return status >= 400 ? 'failed' : 'ok';
}

/** Whether a request with this method and answer is audited. */
export function isAudited(method: string, status: number): boolean {
  return STATE_CHANGING_METHODS.has(method) || REFUSED_STATUSES.has(status);
}

/** The record of one answered request. */
export function auditRecordOf(request: FastifyRequest, reply: FastifyReply, atMs: number): AuditRecord {
  const operator = findOperator(request);
  const params = request.params as Record<string, unknown> | undefined;
  const target = typeof params?.id === 'string' ? params.id : null;
  const status = reply.statusCode;
  return {
    atMs,
    actor: operator?.name ?? null,
    role: operator?.role ?? null,
    address: request.ip,
    action: requestRouteKey(request) ?? `${request.method} ${request.url.split('?')[0]!.slice(0, MAX_UNMATCHED_PATH_CHARS)}`,
    target,
    summary: summarizeBody(request.body),
    status,
    outcome: outcomeOf(status),
  };
}

/** Collects records and appends them in batches; see the module comment. */
export class AuditWriter {
  private pending: AuditRecord[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private failures = 0;
  /** Records dropped since the last report: logged once per flush, not once per request. */
  private dropped = 0;
  private readonly store: Pick<AuditStore, 'appendAudit'>;
  private readonly logger: FastifyBaseLogger;

  constructor(store: Pick<AuditStore, 'appendAudit'>, logger: FastifyBaseLogger) {
    this.store = store;
    this.logger = logger;
  }

  add(record: AuditRecord): void {
    this.pending.push(record);
    this.dropOverflow();
    if (this.pending.length >= MAX_BATCH && this.failures === 0) {
      this.immediate ??= setImmediate(() => this.flush());
    } else {
      this.schedule(FLUSH_INTERVAL_MS);
    }
  }

  /** Records waiting to be appended: at most MAX_PENDING. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Appends every waiting record now; never throws. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    this.reportDropped();
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      this.store.appendAudit(batch);
      if (this.failures > 0) this.logger.info({ records: batch.length }, 'audit log written again');
      this.failures = 0;
    } catch (err) {
      this.failures += 1;
      this.pending = batch.concat(this.pending);
      this.dropOverflow();
      this.reportDropped();
      const retryMs = Math.min(MAX_RETRY_DELAY_MS, FLUSH_INTERVAL_MS * 2 ** this.failures);
      this.logger.error({ err, records: this.pending.length, retryMs }, 'audit records could not be written; retrying');
      this.schedule(retryMs);
    }
  }

  /** Writes what is waiting and stops the timers (the app is closing). */
  close(): void {
    this.flush();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs: number): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => this.flush(), delayMs);
    // Waiting records must not keep a process alive that is otherwise done; close() writes them.
    this.timer.unref();
  }

  private dropOverflow(): void {
    const excess = this.pending.length - MAX_PENDING;
    if (excess <= 0) return;
    this.pending.splice(0, excess);
    this.dropped += excess;
  }

  private reportDropped(): void {
    if (this.dropped === 0) return;
    this.logger.error({ dropped: this.dropped }, 'audit records dropped: the audit log could not be written for too long');
    this.dropped = 0;
  }
}

const writers = new WeakMap<FastifyInstance, AuditWriter>();

/** Ties the writer to the app buildControlApp returns, for flushAudit. */
export function trackAuditWriter(app: FastifyInstance, writer: AuditWriter): void {
  writers.set(app, writer);
}

/**
 * Writes the audit records `app` (as buildControlApp returned it) is
 * holding now, rather than at the next batch; tests do it before they
 * change stores.
 */
export function flushAudit(app: FastifyInstance): void {
  writers.get(app)?.flush();
}

/** Registers the audit hook on `scope` (the /api/v1 scope); closing the app writes what is waiting. */
export function registerAudit(scope: FastifyInstance, writer: AuditWriter, clock: () => number): void {
  scope.addHook('onResponse', async (request, reply) => {
    if (!isAudited(request.method, reply.statusCode)) return;
    writer.add(auditRecordOf(request, reply, clock()));
  });
  scope.addHook('onClose', async () => writer.close());
}
