/**
 * Dispatch: the form (target, power with its sign explained, duration,
 * optional start), "Check" (a dry run: the plan, feasible or not, with its
 * margins), "Dispatch" (commits; an infeasible plan needs "allow partial",
 * else the API's 409 shows the plan's explanation), then the dispatch's own
 * page. Below, the recent dispatches. Live context from the `fleet` topic.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, describeError } from '../api.ts';
import type { AggregateSnapshot, DispatchPage, FleetLive, PlannedDispatch } from '../api-types.ts';
import { useSession } from '../context.ts';
import {
  EMPTY_DISPATCH_FORM,
  buildDispatchBody,
  describeTarget,
  parseDecimal,
  type DispatchFormErrors,
  type DispatchFormInput,
} from '../dispatch-form.ts';
import { formatCount, formatDateTime, formatDuration, formatEnergy, formatPercent, formatPower, joinUnit, parseIso } from '../format.ts';
import { navigate, useLoad, useStream } from '../hooks.ts';
import { href } from '../route.ts';
import { Badge, CoverageBar, Empty, ErrorBox, Field, Loading, Num, PageHead, onActivate } from '../ui.tsx';
import { withSnapshot } from './fleet.tsx';

const RECENT_LIMIT = 25;
const RECENT_REFRESH_MS = 10_000;

export function DispatchesPage() {
  const { api, canAct } = useSession();
  const fleet = useLoad<FleetLive>('dispatch-fleet', (signal) => api.fleet(signal));
  useStream(['fleet'], {
    onEvent: (message) => {
      if (message.name === 'aggregate') fleet.setData((previous) => withSnapshot(previous, message.data.snapshot));
    },
    refetch: () => void fleet.reload(),
  });
  const recent = useLoad<DispatchPage>('dispatches', (signal) => api.dispatches({ limit: RECENT_LIMIT }, signal));
  const { reload: reloadRecent } = recent;
  useEffect(() => {
    const timer = window.setInterval(() => void reloadRecent(), RECENT_REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [reloadRecent]);

  return (
    <div class="page page-dispatch">
      <PageHead title="Dispatch" sub="Ask the batteries of the fleet, a region or some sites for power over a window." />
      {canAct ? (
        <DispatchForm fleet={fleet.data} />
      ) : (
        <div class="state state-empty">Your role is viewer: you can follow dispatches but not create or cancel them.</div>
      )}
      <section aria-labelledby="recent-title">
        <h2 id="recent-title" class="section-title">
          Recent dispatches
        </h2>
        {recent.loading && !recent.data ? <Loading what="dispatches" /> : null}
        {recent.error ? <ErrorBox error={recent.error} onRetry={() => void recent.reload()} /> : null}
        {recent.data && recent.data.dispatches.length === 0 ? <Empty>No dispatches yet.</Empty> : null}
        {recent.data && recent.data.dispatches.length > 0 ? (
          <table class="table">
            <thead>
              <tr>
                <th scope="col">State</th>
                <th scope="col">Target</th>
                <th scope="col" class="num-col">
                  Power
                </th>
                <th scope="col">Start</th>
                <th scope="col" class="num-col">
                  Duration
                </th>
                <th scope="col">Plan</th>
              </tr>
            </thead>
            <tbody>
              {recent.data.dispatches.map((d) => {
                const open = () => navigate(href({ page: 'dispatch', id: d.id }));
                return (
                  <tr key={d.id} tabIndex={0} class="row-link" data-testid={`dispatch-row-${d.id}`} onClick={open} onKeyDown={onActivate(open)}>
                    <td>
                      <Badge kind={d.state}>{d.state}</Badge>
                    </td>
                    <td>
                      <a href={href({ page: 'dispatch', id: d.id })} tabIndex={-1} onClick={(e) => e.stopPropagation()}>
                        {describeTarget(d.target)}
                      </a>
                    </td>
                    <td class="num-col">
                      <Num f={formatPower(d.powerW, { signed: true })} value={d.powerW} />
                    </td>
                    <td>{formatDateTime(parseIso(d.startAt))}</td>
                    <td class="num-col">{formatDuration(d.durationSeconds * 1000)}</td>
                    <td>{d.plan.feasible ? <span class="muted">feasible</span> : <Badge kind="warn">partial</Badge>}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : null}
      </section>
    </div>
  );
}

type TargetChoice = 'fleet' | `region:${string}` | 'sites';

function choiceOf(form: DispatchFormInput): TargetChoice {
  return form.targetKind === 'region' ? `region:${form.region}` : form.targetKind;
}

function DispatchForm({ fleet }: { fleet: FleetLive | null }) {
  const { api } = useSession();
  const [form, setForm] = useState<DispatchFormInput>(EMPTY_DISPATCH_FORM);
  const [errors, setErrors] = useState<DispatchFormErrors>({});
  const [plan, setPlan] = useState<PlannedDispatch | null>(null);
  const [busy, setBusy] = useState<'check' | 'submit' | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const regions = fleet?.regions.map((r) => r.id) ?? [];

  const update = (patch: Partial<DispatchFormInput>) => {
    setForm((f) => ({ ...f, ...patch }));
    setPlan(null);
    setFailure(null);
  };
  const onTarget = (value: string) => {
    if (value === 'fleet' || value === 'sites') update({ targetKind: value });
    else if (value.startsWith('region:')) update({ targetKind: 'region', region: value.slice('region:'.length) });
  };

  const bodyOrErrors = () => {
    const result = buildDispatchBody(form, Date.now());
    setErrors(result.ok ? {} : result.errors);
    return result.ok ? result.body : null;
  };

  const check = async () => {
    const body = bodyOrErrors();
    if (!body) return;
    setBusy('check');
    setFailure(null);
    try {
      setPlan((await api.planDispatch({ ...body, allowPartial: undefined })).plan);
    } catch (err) {
      setFailure(describeError(err));
    } finally {
      setBusy(null);
    }
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    const body = bodyOrErrors();
    if (!body) return;
    setBusy('submit');
    setFailure(null);
    try {
      const created = await api.createDispatch(body);
      navigate(href({ page: 'dispatch', id: created.id }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && err.body?.plan) {
        setPlan(err.body.plan);
        setFailure(`Not dispatched: ${err.message}`);
      } else setFailure(describeError(err));
      setBusy(null);
    }
  };

  const kw = parseDecimal(form.powerKw);
  const direction = kw === null || kw === 0 ? null : kw > 0 ? 'deliver' : 'absorb';
  const context = contextFor(form, fleet);

  return (
    <form class="dispatch-layout" onSubmit={(e) => void submit(e)} noValidate>
      <section class="panel dispatch-form" aria-labelledby="new-dispatch-title">
        <h2 id="new-dispatch-title">New dispatch</h2>
        <Field id="dispatch-target" label="Target" error={errors.target}>
          <select id="dispatch-target" data-testid="dispatch-target" value={choiceOf(form)} onChange={(e) => onTarget(e.currentTarget.value)}>
            <option value="fleet">The whole fleet</option>
            {form.targetKind === 'region' && !regions.includes(form.region) && form.region !== '' ? (
              <option value={`region:${form.region}`}>Region {form.region}</option>
            ) : null}
            {regions.map((r) => (
              <option value={`region:${r}`} key={r}>
                Region {r}
              </option>
            ))}
            <option value="sites">Some sites…</option>
          </select>
        </Field>
        {form.targetKind === 'sites' ? (
          <Field id="dispatch-site-ids" label="Site ids" hint="separated by commas, spaces or new lines (at most 10,000)">
            <textarea
              id="dispatch-site-ids"
              data-testid="dispatch-site-ids"
              rows={3}
              value={form.siteIds}
              onInput={(e) => update({ siteIds: e.currentTarget.value })}
              spellcheck={false}
            />
          </Field>
        ) : null}
        <div class="field-row">
          <Field
            id="dispatch-power"
            label="Power (kW)"
            error={errors.power}
            hint={
              <>
                <strong>+</strong> delivers to the grid (batteries discharge) · <strong>−</strong> absorbs (batteries charge)
              </>
            }
          >
            <input
              id="dispatch-power"
              data-testid="dispatch-power"
              type="text"
              inputMode="decimal"
              placeholder="e.g. 20 or -5"
              value={form.powerKw}
              onInput={(e) => update({ powerKw: e.currentTarget.value })}
              aria-describedby="dispatch-power-hint"
              autocomplete="off"
            />
          </Field>
          <Field id="dispatch-duration" label="Duration (minutes)" error={errors.duration} hint="1 to 1,440">
            <input
              id="dispatch-duration"
              data-testid="dispatch-duration"
              type="number"
              min={1}
              max={1440}
              step={1}
              value={form.durationMin}
              onInput={(e) => update({ durationMin: e.currentTarget.value })}
            />
          </Field>
          <Field id="dispatch-start" label="Start (optional)" error={errors.startAt} hint="empty: now; at most 7 days ahead">
            <input id="dispatch-start" data-testid="dispatch-start" type="datetime-local" value={form.startAt} onInput={(e) => update({ startAt: e.currentTarget.value })} />
          </Field>
        </div>
        <p class="dispatch-sentence" aria-live="polite">
          {direction === null || kw === null
            ? 'Enter a power: positive to deliver to the grid, negative to absorb.'
            : `${direction === 'deliver' ? 'Deliver' : 'Absorb'} ${joinUnit(formatPower(Math.abs(kw) * 1000))} ${direction === 'deliver' ? 'to' : 'from'} the grid with the batteries of ${
                form.targetKind === 'fleet' ? 'the fleet' : form.targetKind === 'region' ? `region ${form.region || '…'}` : 'the listed sites'
              } for ${form.durationMin || '…'} min, ${form.startAt === '' ? 'starting now' : `from ${formatDateTime(new Date(form.startAt).getTime())}`}.`}
        </p>
        {context ? (
          <div class="dispatch-context">
            <span class="muted">Now in {context.label}:</span> battery{' '}
            <Num f={formatPower(context.snapshot.metrics.batteryPowerW, { signed: true })} value={context.snapshot.metrics.batteryPowerW} /> · state of charge{' '}
            <Num f={formatPercent(context.snapshot.metrics.socPct)} value={context.snapshot.metrics.socPct} /> · stored{' '}
            <Num f={formatEnergy(context.snapshot.metrics.energyWh)} value={context.snapshot.metrics.energyWh} />
            <CoverageBar reporting={context.snapshot.coverage.devicesReporting} total={context.snapshot.coverage.devicesTotal} compact />
          </div>
        ) : null}
        <div class="form-buttons">
          <button type="button" class="btn" data-testid="dispatch-check" onClick={() => void check()} disabled={busy !== null}>
            {busy === 'check' ? 'Checking…' : 'Check'}
          </button>
          <button type="submit" class="btn btn-primary" data-testid="dispatch-submit" disabled={busy !== null}>
            {busy === 'submit' ? 'Dispatching…' : 'Dispatch'}
          </button>
          {plan && !plan.feasible ? (
            <label class="check">
              <input
                type="checkbox"
                data-testid="dispatch-allow-partial"
                checked={form.allowPartial}
                onChange={(e) => setForm((f) => ({ ...f, allowPartial: e.currentTarget.checked }))}
              />
              Dispatch anyway with what the fleet can do (allow partial)
            </label>
          ) : null}
        </div>
        {failure !== null ? (
          <div class="state state-error" role="alert" data-testid="dispatch-error">
            {failure}
          </div>
        ) : null}
      </section>
      <PlanView plan={plan} />
    </form>
  );
}

function contextFor(form: DispatchFormInput, fleet: FleetLive | null): { label: string; snapshot: AggregateSnapshot } | null {
  if (!fleet) return null;
  if (form.targetKind === 'fleet') return fleet.fleet ? { label: 'the fleet', snapshot: fleet.fleet } : null;
  if (form.targetKind === 'region') {
    const region = fleet.regions.find((r) => r.id === form.region);
    return region ? { label: `region ${region.id}`, snapshot: region } : null;
  }
  return null;
}

function PlanView({ plan }: { plan: PlannedDispatch | null }) {
  if (!plan) {
    return (
      <section class="panel plan plan-empty" aria-label="Plan">
        <h2>Plan</h2>
        <p class="muted">"Check" asks the platform what the batteries can do now. Nothing is sent until you dispatch.</p>
      </section>
    );
  }
  return (
    <section class={`panel plan ${plan.feasible ? 'plan-ok' : 'plan-short'}`} data-testid="dispatch-plan" data-feasible={String(plan.feasible)} aria-label="Plan">
      <div class="panel-head">
        <h2>Plan</h2>
        {plan.feasible ? <Badge kind="ok">feasible</Badge> : <Badge kind="bad">not feasible</Badge>}
      </div>
      <p class="plan-explanation">{plan.explanation}</p>
      <dl class="facts">
        <dt>Available</dt>
        <dd>
          <Num f={formatPower(plan.availableW)} value={plan.availableW} testid="dispatch-plan-available" />
        </dd>
        <dt>Shortfall</dt>
        <dd>
          <Num f={formatPower(plan.shortfallW)} value={plan.shortfallW} testid="dispatch-plan-shortfall" />
        </dd>
        <dt>Power margin</dt>
        <dd>
          <Num f={formatPower(plan.marginW)} value={plan.marginW} testid="dispatch-plan-margin-w" />
        </dd>
        <dt>Energy margin</dt>
        <dd>
          <Num f={formatEnergy(plan.marginWh)} value={plan.marginWh} testid="dispatch-plan-margin-wh" />
        </dd>
        <dt>Batteries</dt>
        <dd data-testid="dispatch-plan-devices" data-value={String(plan.devicesUsed)}>
          {formatCount(plan.devicesUsed)}
        </dd>
      </dl>
    </section>
  );
}
