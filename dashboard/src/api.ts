/**
 * The control API from the browser: `fetch` with the bearer token, JSON in
 * and out, every failure an ApiError with the API's `{code, message}` (or
 * `network` when the platform cannot be reached). A 401 on any call but the
 * sign-in check calls `onUnauthorized`: the token was revoked or expired.
 */
import type {
  AlertPage,
  AlertRules,
  AlertState,
  AlertWithTransitions,
  Alert,
  ApiErrorBody,
  ColumnHistory,
  Dispatch,
  DispatchBody,
  DispatchPage,
  FleetLive,
  Me,
  PlannedDispatch,
  Resolution,
  SiteDetail,
  SitesOverview,
  StreamTicket,
} from './api-types.ts';

export const API_PREFIX = '/api/v1';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: ApiErrorBody | null = null,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

/** A sentence for the page: what went wrong, and what to do when there is something to do. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 0) return 'The platform cannot be reached. Retrying when the connection is back.';
    if (err.status === 429) return `Too many requests${err.retryAfterSeconds !== null ? `; try again in ${err.retryAfterSeconds} s` : ''}.`;
    if (err.status === 403) return `Not allowed: ${err.message}`;
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

type Query = Record<string, string | number | boolean | null | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  /** A 401 is the answer, not a lost session (the sign-in check). */
  expect401?: boolean;
}

export interface HistoryOptions {
  resolution: Resolution;
  fromMs: number;
  toMs?: number;
  signal?: AbortSignal;
}

export function createApi(token: string, onUnauthorized: () => void) {
  async function request<T>(method: 'GET' | 'POST', path: string, options: RequestOptions = {}): Promise<T> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== null) params.set(key, String(value));
    }
    const search = params.toString();
    const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
    // Bodiless POSTs (tickets, cancel) send no content type: fastify refuses an empty JSON body.
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${API_PREFIX}${path}${search === '' ? '' : `?${search}`}`, {
        method,
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
        signal: options.signal ?? null,
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (err) {
      if (isAbort(err)) throw err;
      throw new ApiError(0, 'network', 'the platform cannot be reached');
    }
    const text = await response.text();
    let json: unknown = null;
    if (text !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
    }
    if (!response.ok) {
      const body = json !== null && typeof json === 'object' && typeof (json as ApiErrorBody).message === 'string' ? (json as ApiErrorBody) : null;
      const retryAfter = Number(response.headers.get('Retry-After'));
      if (response.status === 401 && !options.expect401) onUnauthorized();
      throw new ApiError(
        response.status,
        body?.code ?? `http-${response.status}`,
        body?.message ?? `${response.status} ${response.statusText}`,
        body,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null,
      );
    }
    return json as T;
  }

  const history = (path: string, o: HistoryOptions) =>
    request<ColumnHistory>('GET', path, {
      query: { format: 'columns', resolution: o.resolution, from: new Date(o.fromMs).toISOString(), to: o.toMs === undefined ? undefined : new Date(o.toMs).toISOString() },
      signal: o.signal,
    });

  return {
    me: (signal?: AbortSignal) => request<Me>('GET', '/me', { signal, expect401: true }),
    streamTicket: () => request<StreamTicket>('POST', '/stream/tickets'),

    fleet: (signal?: AbortSignal) => request<FleetLive>('GET', '/fleet', { signal }),
    fleetHistory: (o: HistoryOptions) => history('/fleet/history', o),
    sitesOverview: (signal?: AbortSignal) => request<SitesOverview>('GET', '/sites/overview', { signal }),
    site: (id: string, signal?: AbortSignal) => request<SiteDetail>('GET', `/sites/${encodeURIComponent(id)}`, { signal }),
    siteHistory: (id: string, o: HistoryOptions) => history(`/sites/${encodeURIComponent(id)}/history`, o),

    alerts: (q: { state: AlertState | 'open'; limit?: number; before?: string | null }, signal?: AbortSignal) =>
      request<AlertPage>('GET', '/alerts', { query: { state: q.state, limit: q.limit, before: q.before }, signal }),
    alertRules: (signal?: AbortSignal) => request<AlertRules>('GET', '/alert-rules', { signal }),
    alert: (id: string, signal?: AbortSignal) => request<AlertWithTransitions>('GET', `/alerts/${encodeURIComponent(id)}`, { signal }),
    acknowledgeAlert: (id: string, note: string) =>
      request<Alert>('POST', `/alerts/${encodeURIComponent(id)}/ack`, { body: note.trim() === '' ? {} : { note: note.trim() } }),
    resolveAlert: (id: string, reason: string) => request<Alert>('POST', `/alerts/${encodeURIComponent(id)}/resolve`, { body: { reason: reason.trim() } }),

    dispatches: (q: { limit?: number; before?: string | null } = {}, signal?: AbortSignal) =>
      request<DispatchPage>('GET', '/dispatches', { query: { limit: q.limit, before: q.before }, signal }),
    dispatch: (id: string, signal?: AbortSignal) => request<Dispatch>('GET', `/dispatches/${encodeURIComponent(id)}`, { signal }),
    planDispatch: (body: DispatchBody) => request<{ plan: PlannedDispatch }>('POST', '/dispatches', { query: { dryRun: true }, body }),
    createDispatch: (body: DispatchBody) => request<Dispatch>('POST', '/dispatches', { body }),
    cancelDispatch: (id: string) => request<Dispatch>('POST', `/dispatches/${encodeURIComponent(id)}/cancel`),
  };
}

export type Api = ReturnType<typeof createApi>;
