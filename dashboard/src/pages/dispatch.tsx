/**
 * One dispatch: its state, target versus measured power (live from the
 * `dispatch:<id>` topic, and the control loop's samples as a chart), energy,
 * tracking error, the allocation per battery, and Cancel for operators.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, describeError } from '../api.ts';
import type { Dispatch, DispatchAllocation } from '../api-types.ts';
import { SERIES_COLORS, TimeChart, type ChartData, type ChartSeries } from '../chart.tsx';
import { useSession } from '../context.ts';
import { describeTarget, isOverState } from '../dispatch-form.ts';
import { MISSING, formatAgo, formatCount, formatDateTime, formatDuration, formatEnergy, formatPercent, formatPower, formatRatio, formatTime, joinUnit, parseIso } from '../format.ts';
import { useFreshness, useLoad, useNow, useStream } from '../hooks.ts';
import { href } from '../route.ts';
import { Badge, Dialog, Empty, ErrorBox, Loading, Num, PageHead, StaleNote, Tile } from '../ui.tsx';

const CHART_SERIES: readonly ChartSeries[] = [
  { label: 'Target', color: SERIES_COLORS.target, kind: 'power', dash: [6, 4] },
  { label: 'Measured', color: SERIES_COLORS.measured, kind: 'power', fill: true },
];
/** Rows of the allocation table shown at once; the counts cover all of them. */
const ALLOCATION_ROWS = 300;

export function DispatchPage({ id }: { id: string }) {
  const { api } = useSession();
  const dispatch = useLoad<Dispatch>(`dispatch:${id}`, (signal) => api.dispatch(id, signal));
  const topic = `dispatch:${id}`;
  const stream = useStream([topic], {
    onEvent: (message) => {
      if (message.name === 'dispatch' && message.data.dispatch.id === id) {
        const next = message.data.dispatch;
        dispatch.setData(() => next);
      }
    },
    refetch: () => void dispatch.reload(),
  });
  const freshness = useFreshness(stream, topic, dispatch.data?.state === 'active', dispatch.loadedAt);
  const now = useNow(1_000);

  const chart = useMemo<ChartData>(() => {
    const samples = dispatch.data?.measured ?? [];
    const ts: number[] = [];
    const target: (number | null)[] = [];
    const measured: (number | null)[] = [];
    for (const s of samples) {
      const at = parseIso(s.at);
      if (at === null) continue;
      ts.push(at / 1000);
      target.push(s.targetW);
      measured.push(s.measuredW);
    }
    return [ts, target, measured];
  }, [dispatch.data?.measured]);

  if (dispatch.loading && !dispatch.data) return <Loading what="the dispatch" />;
  if (!dispatch.data) {
    if (dispatch.error instanceof ApiError && dispatch.error.status === 404) {
      return (
        <Empty>
          No dispatch <span class="mono">{id}</span>. <a href={href({ page: 'dispatches' })}>All dispatches</a>
        </Empty>
      );
    }
    return <ErrorBox error={dispatch.error} onRetry={() => void dispatch.reload()} />;
  }
  const d = dispatch.data;
  const latest = d.measured.length > 0 ? d.measured[d.measured.length - 1] : undefined;
  const targetW = latest ? latest.targetW : d.powerW;
  const startMs = parseIso(d.startAt) ?? 0;
  const endMs = parseIso(d.endAt) ?? 0;
  const progress = d.state === 'active' && endMs > startMs ? Math.min(1, Math.max(0, (now - startMs) / (endMs - startMs))) : d.state === 'completed' ? 1 : null;

  return (
    <div class={`page page-dispatch-detail${freshness.stale ? ' is-stale' : ''}`}>
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href={href({ page: 'dispatches' })}>Dispatch</a> / <span class="mono">{d.id.slice(0, 8)}</span>
      </nav>
      <PageHead
        title={
          <>
            {d.powerW > 0 ? 'Deliver' : 'Absorb'} {joinUnit(formatPower(Math.abs(d.powerW)))} · {describeTarget(d.target)}
          </>
        }
        sub={
          <>
            <Badge kind={d.state} testid="dispatch-state" value={d.state}>
              {d.state}
            </Badge>{' '}
            {formatDateTime(startMs)} → {formatDateTime(endMs)} ({formatDuration(d.durationSeconds * 1000)})
            {d.state === 'scheduled' ? ` · starts ${formatAgo(startMs, now)}` : ''}
            {d.state === 'active' ? ` · ends ${formatAgo(endMs, now)}` : ''}
            {d.reason ? ` · ${d.reason}` : ''} <StaleNote freshness={freshness} />
          </>
        }
      >
        <CancelButton dispatch={d} onCancelled={(next) => dispatch.setData(() => next)} />
      </PageHead>
      {dispatch.error ? <ErrorBox error={dispatch.error} onRetry={() => void dispatch.reload()} /> : null}
      {progress !== null ? <Progress ratio={progress} /> : null}

      <div class="figures figures-md">
        <Tile label="Target" size="md" hint={d.powerW > 0 ? '+ delivering to the grid' : '− absorbing from the grid'}>
          <Num f={formatPower(targetW, { signed: true })} value={targetW} testid="dispatch-target-w" />
        </Tile>
        <Tile label="Measured" tone="battery" size="md" hint={latest ? `at ${formatTime(parseIso(latest.at))}` : 'no sample yet'}>
          <Num f={formatPower(latest?.measuredW, { signed: true })} value={latest?.measuredW} testid="dispatch-measured" />
        </Tile>
        <Tile label="Tracking error" size="md" hint={d.tracking.meanAbsErrorPct === null ? 'mean: after the ramp-up' : `mean ${joinUnit(formatPercent(d.tracking.meanAbsErrorPct))}`}>
          <Num f={formatPower(d.tracking.latestErrorW, { signed: true })} value={d.tracking.latestErrorW} testid="dispatch-error-w" />
        </Tile>
        <Tile label="Confidence" size="md" hint="share of the target backed by batteries that accepted and report">
          <Num f={formatRatio(d.tracking.confidence)} value={d.tracking.confidence} testid="dispatch-confidence" />
        </Tile>
        <Tile label="Energy delivered" size="md" hint={`of ${joinUnit(formatEnergy(d.energy.requestedWh))} requested · ${joinUnit(formatRatio(d.energy.shareDelivered))}`}>
          <Num f={formatEnergy(d.energy.deliveredWh)} value={d.energy.deliveredWh} testid="dispatch-energy-delivered" />
        </Tile>
      </div>

      <section class="panel" aria-labelledby="dispatch-chart-title">
        <div class="panel-head">
          <h2 id="dispatch-chart-title">Target and measured power</h2>
          <span class="panel-note">control loop samples · {formatCount(d.measured.length)} shown</span>
        </div>
        <TimeChart
          data={chart}
          series={CHART_SERIES}
          xRange={endMs > startMs ? [startMs / 1000, endMs / 1000] : null}
          label="Target and measured power of the dispatch"
          testid="dispatch-chart"
          minHeight={200}
          maxHeight={380}
        />
      </section>

      <div class="two-col">
        <section class="panel">
          <h2>Plan at creation</h2>
          <p class="plan-explanation">{d.plan.explanation}</p>
          <dl class="facts">
            <dt>Feasible</dt>
            <dd>{d.plan.feasible ? 'yes' : `no${d.allowPartial ? ' (partial allowed)' : ''}`}</dd>
            <dt>Available</dt>
            <dd>{joinUnit(formatPower(d.plan.availableW))}</dd>
            <dt>Shortfall</dt>
            <dd>{joinUnit(formatPower(d.plan.shortfallW))}</dd>
            <dt>Margin</dt>
            <dd>
              {joinUnit(formatPower(d.plan.marginW))} · {joinUnit(formatEnergy(d.plan.marginWh))}
            </dd>
            <dt>Batteries</dt>
            <dd>{formatCount(d.plan.devicesUsed)}</dd>
          </dl>
        </section>
        <Allocation allocation={d.allocation} />
      </div>
    </div>
  );
}

function Progress({ ratio }: { ratio: number }) {
  const fill = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // Through the CSSOM: the page's CSP allows no inline style attributes.
    fill.current?.style.setProperty('width', `${(ratio * 100).toFixed(1)}%`);
  }, [ratio]);
  return (
    <div class="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(ratio * 100)} aria-label="time elapsed">
      <div class="progress-fill" ref={fill} />
    </div>
  );
}

function Allocation({ allocation }: { allocation: DispatchAllocation[] }) {
  const counts = new Map<string, number>();
  let setpointSum = 0;
  for (const a of allocation) {
    const state = a.command?.state ?? 'no command';
    counts.set(state, (counts.get(state) ?? 0) + 1);
    setpointSum += a.setpointW ?? 0;
  }
  return (
    <section class="panel" aria-labelledby="allocation-title">
      <div class="panel-head">
        <h2 id="allocation-title">Allocation</h2>
        <span class="panel-note">
          {formatCount(allocation.length)} batteries · setpoints {joinUnit(formatPower(setpointSum, { signed: true }))}
        </span>
      </div>
      {allocation.length === 0 ? (
        <Empty>No battery is asked anything (yet).</Empty>
      ) : (
        <>
          <div class="chips">
            {[...counts.entries()].map(([state, n]) => (
              <span class="chip" key={state}>
                {state} <strong>{formatCount(n)}</strong>
              </span>
            ))}
          </div>
          <div class="table-scroll">
            <table class="table table-compact" data-testid="dispatch-allocation">
              <thead>
                <tr>
                  <th scope="col">Battery</th>
                  <th scope="col" class="num-col">
                    Setpoint
                  </th>
                  <th scope="col">Command</th>
                </tr>
              </thead>
              <tbody>
                {allocation.slice(0, ALLOCATION_ROWS).map((a) => (
                  <tr key={a.deviceId}>
                    <td class="mono">{a.deviceId}</td>
                    <td class="num-col">
                      <Num f={formatPower(a.setpointW, { signed: true })} value={a.setpointW} />
                    </td>
                    <td>
                      {a.command ? (
                        <>
                          <Badge kind={a.command.state}>{a.command.state}</Badge>
                          {a.command.reason ? <span class="muted small"> {a.command.reason}</span> : null}
                        </>
                      ) : (
                        <span class="muted">{MISSING}</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {allocation.length > ALLOCATION_ROWS ? <p class="muted small">First {ALLOCATION_ROWS} of {formatCount(allocation.length)} shown.</p> : null}
        </>
      )}
    </section>
  );
}

function CancelButton({ dispatch, onCancelled }: { dispatch: Dispatch; onCancelled: (d: Dispatch) => void }) {
  const { api, canAct } = useSession();
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!canAct || isOverState(dispatch.state)) return null;
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      onCancelled(await api.cancelDispatch(dispatch.id));
      setOpen(false);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        class="btn btn-danger"
        data-testid="dispatch-cancel"
        onClick={() => {
          setError(null);
          setOpen(true);
        }}
      >
        Cancel dispatch
      </button>
      <Dialog open={open} title="Cancel this dispatch?" onClose={() => !busy && setOpen(false)}>
        <p>Every battery of it goes back to local control. This cannot be undone.</p>
        {error !== null ? (
          <div class="field-error" role="alert">
            {error}
          </div>
        ) : null}
        <div class="dialog-buttons">
          <button type="button" class="btn btn-quiet" onClick={() => setOpen(false)} disabled={busy} autofocus>
            Keep it running
          </button>
          <button type="button" class="btn btn-danger" data-testid="dispatch-cancel-confirm" onClick={() => void confirm()} disabled={busy}>
            {busy ? 'Cancelling…' : 'Cancel dispatch'}
          </button>
        </div>
      </Dialog>
    </>
  );
}
