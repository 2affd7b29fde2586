/** One alert with its transitions (oldest first), refetched when the `alerts` topic tells of a change to it. */
import { Fragment } from 'preact';
import { ApiError } from '../api.ts';
import type { AlertWithTransitions } from '../api-types.ts';
import { alertValueText, subjectSiteId } from '../alerts-model.ts';
import { useSession } from '../context.ts';
import { MISSING, formatAgo, formatDateTime, parseIso } from '../format.ts';
import { useDebounced, useLoad, useNow, useStream } from '../hooks.ts';
import { href } from '../route.ts';
import { Badge, Empty, ErrorBox, Loading, PageHead } from '../ui.tsx';
import { AlertActions } from './alert-actions.tsx';
import { ALERT_REFETCH_DEBOUNCE_MS } from './alerts.tsx';

export function AlertPage({ id }: { id: string }) {
  const { api } = useSession();
  const alert = useLoad<AlertWithTransitions>(`alert:${id}`, (signal) => api.alert(id, signal));
  // The rule gives the value its unit; without it (an old rule, an error) the number stands alone.
  const rules = useLoad('alert-rules', (signal) => api.alertRules(signal));
  const refetchSoon = useDebounced(() => void alert.reload(), ALERT_REFETCH_DEBOUNCE_MS);
  useStream(
    ['alerts'],
    {
      onEvent: (message) => {
        if (message.name === 'alert' && message.data.alert.id === id) refetchSoon();
      },
      refetch: () => void alert.reload(),
    },
    { changeOnly: true },
  );
  const now = useNow(1_000);

  if (alert.loading && !alert.data) return <Loading what={`alert ${id}`} />;
  if (!alert.data) {
    if (alert.error instanceof ApiError && alert.error.status === 404) {
      return (
        <Empty>
          No alert {id}. <a href={href({ page: 'alerts' })}>All alerts</a>
        </Empty>
      );
    }
    return <ErrorBox error={alert.error} onRetry={() => void alert.reload()} />;
  }
  const a = alert.data;
  const site = subjectSiteId(a);
  const rows: [string, string | null, string | null][] = [
    ['Opened', a.openedAt, null],
    ['Last fired', a.firedAt, a.reopenCount > 0 ? `reopened ${a.reopenCount}×` : null],
    ['Acknowledged', a.acknowledgedAt, a.acknowledgedBy === null ? null : `by ${a.acknowledgedBy}${a.acknowledgeNote ? `: “${a.acknowledgeNote}”` : ''}`],
    ['Resolved', a.resolvedAt, a.resolvedBy === null ? null : `by ${a.resolvedBy}${a.resolveReason ? `: “${a.resolveReason}”` : ''}`],
  ];

  return (
    <div class="page page-alert">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href={href({ page: 'alerts' })}>Alerts</a> / <span class="mono">{a.id}</span>
      </nav>
      <PageHead
        title={a.summary}
        sub={
          <>
            <span class={`sev sev-${a.severity}`}>{a.severity}</span>{' '}
            <Badge kind={a.state} testid="alert-state">
              {a.state}
            </Badge>{' '}
            rule <span class="mono">{a.ruleId}</span>
          </>
        }
      >
        <AlertActions alert={a} onDone={() => void alert.reload()} size="normal" />
      </PageHead>
      {alert.error ? <ErrorBox error={alert.error} onRetry={() => void alert.reload()} /> : null}

      <div class="two-col">
        <section class="panel">
          <h2>Subject</h2>
          <dl class="facts">
            <dt>Kind</dt>
            <dd>{a.subjectKind}</dd>
            <dt>Id</dt>
            <dd class="mono">{site !== null ? <a href={href({ page: 'site', id: site })}>{a.subjectId}</a> : a.subjectId}</dd>
            <dt>Value</dt>
            <dd data-testid="alert-value" data-value={a.value === null ? '' : String(a.value)}>
              {alertValueText(a.value, rules.data?.rules.find((r) => r.id === a.ruleId))}
            </dd>
            {Object.entries(a.labels).map(([key, value]) => (
              <Fragment key={key}>
                <dt>{key}</dt>
                <dd>{value}</dd>
              </Fragment>
            ))}
          </dl>
        </section>
        <section class="panel">
          <h2>Lifecycle</h2>
          <dl class="facts">
            {rows.map(([label, iso, detail]) => {
              const at = parseIso(iso);
              return (
                <Fragment key={label}>
                  <dt>{label}</dt>
                  <dd>
                    {at === null ? (
                      <span class="muted">{MISSING}</span>
                    ) : (
                      <>
                        {formatDateTime(at)} <span class="muted">({formatAgo(at, now)})</span>
                        {detail ? <div>{detail}</div> : null}
                      </>
                    )}
                  </dd>
                </Fragment>
              );
            })}
          </dl>
        </section>
      </div>

      <section class="panel">
        <h2>Transitions</h2>
        <ol class="timeline" data-testid="alert-transitions">
          {a.transitions.map((t) => {
            const at = parseIso(t.at);
            return (
              <li key={t.seq} class={`timeline-item kind-${t.kind}`} data-kind={t.kind}>
                <span class="timeline-kind">{t.kind}</span>
                <span class="timeline-at" title={t.at}>
                  {formatDateTime(at)}
                </span>
                <span class="timeline-actor">by {t.actor}</span>
                {t.note ? <span class="timeline-note">“{t.note}”</span> : null}
                {t.notify ? null : <span class="muted small">integrations not told</span>}
              </li>
            );
          })}
        </ol>
      </section>
    </div>
  );
}
