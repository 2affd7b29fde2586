/**
 * Alerts: the open ones grouped by severity (critical first; within a group
 * what nobody has taken yet, then the newest), refetched ~500 ms after the
 * last `alert` event of a burst; the resolved history below, paged. The
 * `alerts` topic sends only changes, so the lists are fetched after the
 * stream opens.
 */
import { useState } from 'preact/hooks';
import type { Alert, AlertPage } from '../api-types.ts';
import { appendPage, groupBySeverity, subjectSiteId } from '../alerts-model.ts';
import { useSession } from '../context.ts';
import { formatAgo, formatCount, formatDateTime, parseIso } from '../format.ts';
import { navigate, useDebounced, useLoad, useNow, useStream } from '../hooks.ts';
import { href } from '../route.ts';
import { Badge, Empty, ErrorBox, Loading, PageHead, onActivate } from '../ui.tsx';
import { AlertActions } from './alert-actions.tsx';

const OPEN_LIMIT = 500;
const HISTORY_PAGE = 50;
export const ALERT_REFETCH_DEBOUNCE_MS = 500;

export function AlertsPage() {
  const { api } = useSession();
  const open = useLoad<AlertPage>('alerts-open', (signal) => api.alerts({ state: 'open', limit: OPEN_LIMIT }, signal));
  const history = useLoad<AlertPage>('alerts-resolved', (signal) => api.alerts({ state: 'resolved', limit: HISTORY_PAGE }, signal));
  const [older, setOlder] = useState<{ alerts: Alert[]; next: string | null; loading: boolean; error: unknown } | null>(null);

  const refetch = () => {
    void open.reload();
    void history.reload();
  };
  const refetchSoon = useDebounced(refetch, ALERT_REFETCH_DEBOUNCE_MS);
  useStream(
    ['alerts'],
    {
      onEvent: (message) => {
        if (message.name === 'alert') refetchSoon();
      },
      refetch,
    },
    { changeOnly: true },
  );

  const loadOlder = async () => {
    const before = older ? older.next : (history.data?.next ?? null);
    if (before === null) return;
    setOlder((o) => ({ alerts: o?.alerts ?? [], next: before, loading: true, error: null }));
    try {
      const page = await api.alerts({ state: 'resolved', limit: HISTORY_PAGE, before });
      setOlder((o) => ({ alerts: appendPage(o?.alerts ?? [], page.alerts), next: page.next, loading: false, error: null }));
    } catch (err) {
      setOlder((o) => ({ alerts: o?.alerts ?? [], next: before, loading: false, error: err }));
    }
  };

  const openAlerts = open.data?.alerts ?? [];
  const groups = groupBySeverity(openAlerts);
  const resolved = appendPage(history.data?.alerts ?? [], older?.alerts ?? []);
  const hasMore = older ? older.next !== null : (history.data?.next ?? null) !== null;
  const firing = openAlerts.filter((a) => a.state === 'firing').length;

  return (
    <div class="page page-alerts">
      <PageHead
        title="Alerts"
        sub={
          open.data ? (
            <span data-testid="alerts-open-count" data-value={String(openAlerts.length)}>
              {formatCount(openAlerts.length)} open · {formatCount(firing)} not acknowledged
              {open.data.next !== null ? ` · showing the newest ${OPEN_LIMIT}` : ''}
            </span>
          ) : undefined
        }
      />
      <section aria-labelledby="open-title">
        <h2 id="open-title" class="visually-hidden">
          Open alerts
        </h2>
        {open.loading && !open.data ? <Loading what="open alerts" /> : null}
        {open.error ? <ErrorBox error={open.error} onRetry={() => void open.reload()} /> : null}
        {open.data && openAlerts.length === 0 ? <Empty>No open alerts. All quiet.</Empty> : null}
        {groups.map((group) => (
          <div class={`alert-group sev-group-${group.severity}`} key={group.severity}>
            <h3 class="group-title">
              <span class={`sev sev-${group.severity}`}>{group.severity}</span> {group.alerts.length}
            </h3>
            <AlertList alerts={group.alerts} onChanged={refetch} />
          </div>
        ))}
      </section>

      <section aria-labelledby="history-title" class="alert-history">
        <h2 id="history-title" class="section-title">
          Resolved
        </h2>
        {history.loading && !history.data ? <Loading what="resolved alerts" /> : null}
        {history.error ? <ErrorBox error={history.error} onRetry={() => void history.reload()} /> : null}
        {history.data && resolved.length === 0 ? <Empty>No resolved alerts.</Empty> : null}
        {resolved.length > 0 ? <AlertList alerts={resolved} onChanged={refetch} /> : null}
        {older?.error ? <ErrorBox error={older.error} onRetry={() => void loadOlder()} /> : null}
        {hasMore ? (
          <button type="button" class="btn btn-quiet load-more" onClick={() => void loadOlder()} disabled={older?.loading ?? false}>
            {older?.loading ? 'Loading…' : 'Load older'}
          </button>
        ) : null}
      </section>
    </div>
  );
}

export function AlertList({ alerts, onChanged }: { alerts: Alert[]; onChanged: () => void }) {
  const now = useNow(5_000);
  return (
    <ul class="alert-list">
      {alerts.map((alert) => {
        const site = subjectSiteId(alert);
        const openPage = () => navigate(href({ page: 'alert', id: alert.id }));
        const at = alert.state === 'resolved' ? parseIso(alert.resolvedAt) : parseIso(alert.firedAt);
        return (
          <li
            key={alert.id}
            class={`alert-row sev-row-${alert.severity} state-${alert.state}`}
            tabIndex={0}
            data-testid={`alert-row-${alert.id}`}
            data-state={alert.state}
            data-severity={alert.severity}
            onClick={openPage}
            onKeyDown={onActivate(openPage)}
            aria-label={`${alert.severity} alert: ${alert.summary}`}
          >
            <span class={`sev sev-${alert.severity}`}>{alert.severity}</span>
            <div class="alert-main">
              <a href={href({ page: 'alert', id: alert.id })} class="alert-summary" onClick={(e) => e.stopPropagation()} tabIndex={-1}>
                {alert.summary}
              </a>
              <div class="alert-meta muted">
                {alert.subjectKind}{' '}
                {site !== null ? (
                  <a href={href({ page: 'site', id: site })} class="mono" onClick={(e) => e.stopPropagation()} tabIndex={-1}>
                    {alert.subjectId}
                  </a>
                ) : (
                  <span class="mono">{alert.subjectId}</span>
                )}{' '}
                · {alert.ruleId}
                {alert.reopenCount > 0 ? ` · reopened ${alert.reopenCount}×` : ''}
              </div>
            </div>
            <div class="alert-state">
              {alert.state === 'firing' ? <Badge kind="firing">firing</Badge> : null}
              {alert.state === 'acknowledged' ? (
                <Badge kind="acknowledged" title={alert.acknowledgeNote ?? undefined}>
                  ack · {alert.acknowledgedBy}
                </Badge>
              ) : null}
              {alert.state === 'resolved' ? (
                <Badge kind="resolved" title={alert.resolveReason ?? undefined}>
                  resolved · {alert.resolvedBy}
                </Badge>
              ) : null}
            </div>
            <div class="alert-time muted" title={formatDateTime(at)}>
              {formatAgo(at, Math.max(now, at ?? 0))}
            </div>
            <AlertActions alert={alert} onDone={onChanged} />
          </li>
        );
      })}
    </ul>
  );
}
