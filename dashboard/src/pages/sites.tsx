/**
 * Sites: every site in one virtualized table (only the visible rows and a
 * margin are in the DOM, so 10,000 sites scroll smoothly), searchable by id,
 * name and region, sortable by any column (headers are buttons), live from
 * the `sites` topic's changed rows. Rows are focusable: Enter opens the site,
 * arrows, Page Up/Down, Home and End move between rows.
 */
import type { JSX } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { SitesOverviewColumns } from '../api-types.ts';
import { useSession } from '../context.ts';
import { MISSING, formatAgo, formatCount, formatPercent, formatPower } from '../format.ts';
import { navigate, useFreshness, useNow, useStream } from '../hooks.ts';
import { href } from '../route.ts';
import { SitesModel, coverageLevel, type SortKey, type SortOrder } from '../sites-model.ts';
import { ErrorBox, Loading, Num, PageHead, StaleNote } from '../ui.tsx';
import { scrollToReveal, virtualWindow } from '../virtual.ts';

interface Column {
  key: SortKey;
  label: string;
  numeric: boolean;
  /** Sorting a number column starts with the largest. */
  title?: string;
}

const COLUMNS: readonly Column[] = [
  { key: 'id', label: 'Site', numeric: false },
  { key: 'region', label: 'Region', numeric: false },
  { key: 'coverage', label: 'Online', numeric: true, title: 'devices reporting / devices' },
  { key: 'socPct', label: 'SoC', numeric: true, title: 'state of charge' },
  { key: 'batteryPowerW', label: 'Battery', numeric: true, title: '+ discharging to the grid, − charging' },
  { key: 'solarPowerW', label: 'Solar', numeric: true },
  { key: 'gridPowerW', label: 'Grid', numeric: true, title: '+ importing from the grid, − exporting' },
  { key: 'loadW', label: 'Load', numeric: true },
  { key: 'openAlerts', label: 'Alerts', numeric: true, title: 'open alerts (critical in red)' },
  { key: 'updatedAt', label: 'Updated', numeric: true },
];

const OVERSCAN = 8;
/** Fewer re-sorts than updates: changes are applied at once, the view follows at most this often. */
const VIEW_REFRESH_MS = 300;

function rowHeightForScreen(): number {
  return window.matchMedia('(min-width: 1800px)').matches ? 46 : 38;
}

export function SitesPage({ initialQuery }: { initialQuery: string }) {
  const { api } = useSession();
  const model = useRef(new SitesModel());
  const [loaded, setLoaded] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [loadedAt, setLoadedAt] = useState<number | null>(null);
  const [version, setVersion] = useState(0);
  const [query, setQuery] = useState(initialQuery);
  const [order, setOrder] = useState<SortOrder>({ key: 'id', dir: 'asc' });
  /** Changes that arrive before the first overview, merged once it is in. */
  const pending = useRef<Partial<SitesOverviewColumns>[]>([]);
  const loading = useRef<AbortController | null>(null);
  const refreshTimer = useRef<number | undefined>(undefined);

  useEffect(() => setQuery(initialQuery), [initialQuery]);

  const scheduleView = useCallback(() => {
    if (refreshTimer.current !== undefined) return;
    refreshTimer.current = window.setTimeout(() => {
      refreshTimer.current = undefined;
      setVersion(model.current.version);
    }, VIEW_REFRESH_MS);
  }, []);
  useEffect(() => () => window.clearTimeout(refreshTimer.current), []);

  const fetchOverview = useCallback(async () => {
    loading.current?.abort();
    const abort = new AbortController();
    loading.current = abort;
    try {
      const overview = await api.sitesOverview(abort.signal);
      if (abort.signal.aborted) return;
      const m = model.current;
      m.load(overview.columns);
      for (const columns of pending.current) m.merge(columns);
      pending.current = [];
      setLoaded(true);
      setLoadError(null);
      setLoadedAt(Date.now());
      setVersion(m.version);
    } catch (err) {
      if (!abort.signal.aborted) setLoadError(err);
    }
  }, [api]);
  useEffect(() => () => loading.current?.abort(), []);

  const stream = useStream(
    ['sites'],
    {
      onEvent: (message) => {
        if (message.name !== 'sites') return;
        if (!loaded) pending.current.push(message.data.columns);
        else if (model.current.merge(message.data.columns) > 0) scheduleView();
      },
      refetch: () => void fetchOverview(),
    },
    { changeOnly: true },
  );
  const expectLive = loaded && model.current.reportingDevices() > 0;
  const freshness = useFreshness(stream, 'sites', expectLive, loadedAt);

  const rows = useMemo(() => model.current.view(query, order), [version, query, order]);

  const onSort = (key: SortKey, numeric: boolean) =>
    setOrder((o) => (o.key === key ? { key, dir: o.dir === 'asc' ? 'desc' : 'asc' } : { key, dir: numeric ? 'desc' : 'asc' }));

  if (!loaded && loadError === null) return <Loading what="sites" />;
  if (!loaded) return <ErrorBox error={loadError} onRetry={() => void fetchOverview()} />;
  const total = model.current.size;

  return (
    <div class={`page page-sites${freshness.stale ? ' is-stale' : ''}`}>
      <PageHead
        title="Sites"
        sub={
          <>
            <span data-testid="sites-count" data-value={String(rows.length)}>
              {rows.length === total ? `${formatCount(total)} sites` : `${formatCount(rows.length)} of ${formatCount(total)} sites`}
            </span>{' '}
            <StaleNote freshness={freshness} />
          </>
        }
      >
        <label class="search">
          <span class="visually-hidden">Search sites by id, name or region</span>
          <input
            type="search"
            placeholder="Search id, name, region…"
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
            data-testid="sites-search"
            autocomplete="off"
            spellcheck={false}
          />
        </label>
      </PageHead>
      {loadError ? <ErrorBox error={loadError} onRetry={() => void fetchOverview()} /> : null}
      <SitesTable model={model.current} rows={rows} order={order} onSort={onSort} version={version} />
    </div>
  );
}

function SitesTable({
  model,
  rows,
  order,
  onSort,
  version,
}: {
  model: SitesModel;
  rows: number[];
  order: SortOrder;
  onSort: (key: SortKey, numeric: boolean) => void;
  version: number;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const head = useRef<HTMLDivElement>(null);
  const body = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState({ height: 600, head: 40 });
  const [rowHeight, setRowHeight] = useState(rowHeightForScreen);
  const focusAfterRender = useRef<string | null>(null);
  const pendingScroll = useRef<number | null>(null);
  const now = useNow(5_000);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const measure = () => {
      setViewport({ height: el.clientHeight, head: head.current?.offsetHeight ?? 40 });
      setRowHeight(rowHeightForScreen());
    };
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const rowElement = (id: string) => scroller.current?.querySelector<HTMLElement>(`[data-site-id="${CSS.escape(id)}"]`) ?? null;

  // Browsers fire scroll events once per frame; Preact renders the new window before that frame is painted.
  const onScroll = () => setScrollTop(scroller.current?.scrollTop ?? 0);

  const win = virtualWindow({ count: rows.length, rowHeight, scrollTop, viewportHeight: viewport.height - viewport.head, overscan: OVERSCAN });

  // Sizes go through the CSSOM: the page's CSP allows no inline style attributes.
  useLayoutEffect(() => {
    scroller.current?.style.setProperty('--row-h', `${rowHeight}px`);
  }, [rowHeight]);
  useLayoutEffect(() => {
    const el = body.current;
    if (!el) return;
    el.style.paddingTop = `${win.padTop}px`;
    el.style.paddingBottom = `${win.padBottom}px`;
  }, [win.padTop, win.padBottom]);
  const focusRow = () => {
    const id = focusAfterRender.current;
    const row = id === null ? null : rowElement(id);
    if (row === null) return;
    focusAfterRender.current = null;
    row.focus({ preventScroll: true });
  };
  // After a keyboard move: scroll to the rendered window, then focus the row.
  useLayoutEffect(() => {
    if (pendingScroll.current !== null && scroller.current) scroller.current.scrollTop = pendingScroll.current;
    pendingScroll.current = null;
    focusRow();
  });

  /**
   * Keyboard moves: the window is rendered around the target row first, then
   * scrolled and the row focused (in the layout effect above), so the scroll
   * position is never set against rows that are not in the DOM yet.
   */
  const moveFocus = (from: number, to: number) => {
    const target = Math.min(rows.length - 1, Math.max(0, to));
    const el = scroller.current;
    const id = model.columns.id[rows[target] ?? -1];
    if (target === from || !el || id === undefined) return;
    const next = scrollToReveal(target, rowHeight, el.scrollTop, el.clientHeight, viewport.head);
    focusAfterRender.current = id;
    if (next === null) {
      focusRow();
      return;
    }
    pendingScroll.current = next;
    setScrollTop(next);
  };

  const pageRows = Math.max(1, Math.floor((viewport.height - viewport.head) / rowHeight) - 1);
  const onRowKey = (index: number, id: string) => (event: JSX.TargetedKeyboardEvent<HTMLElement>) => {
    switch (event.key) {
      case 'Enter':
        event.preventDefault();
        navigate(href({ page: 'site', id }));
        return;
      case 'ArrowDown':
        event.preventDefault();
        moveFocus(index, index + 1);
        return;
      case 'ArrowUp':
        event.preventDefault();
        moveFocus(index, index - 1);
        return;
      case 'PageDown':
        event.preventDefault();
        moveFocus(index, index + pageRows);
        return;
      case 'PageUp':
        event.preventDefault();
        moveFocus(index, index - pageRows);
        return;
      case 'Home':
        event.preventDefault();
        moveFocus(index, 0);
        return;
      case 'End':
        event.preventDefault();
        moveFocus(index, rows.length - 1);
        return;
    }
  };

  const c = model.columns;
  const visible = rows.slice(win.start, win.end);
  return (
    <div class="vtable" ref={scroller} onScroll={onScroll} role="table" aria-label="Sites" aria-rowcount={rows.length + 1} data-version={version}>
      <div class="vtable-head" ref={head} role="rowgroup">
        <div class="vrow vrow-head" role="row" aria-rowindex={1}>
          {COLUMNS.map((col) => {
            const active = order.key === col.key;
            return (
              <div
                key={col.key}
                class={`vcell${col.numeric ? ' vcell-num' : ''}`}
                role="columnheader"
                aria-sort={active ? (order.dir === 'asc' ? 'ascending' : 'descending') : 'none'}
              >
                <button type="button" class={`sort${active ? ' sort-active' : ''}`} onClick={() => onSort(col.key, col.numeric)} title={col.title}>
                  {col.label}
                  <span class="sort-mark" aria-hidden="true">
                    {active ? (order.dir === 'asc' ? '▲' : '▼') : '↕'}
                  </span>
                </button>
              </div>
            );
          })}
        </div>
      </div>
      <div class="vtable-body" role="rowgroup" ref={body}>
        {rows.length === 0 ? (
          <div class="vrow vrow-empty" role="row">
            <div class="vcell" role="cell">
              No site matches the search.
            </div>
          </div>
        ) : null}
        {visible.map((row, i) => {
          const index = win.start + i;
          const id = c.id[row] ?? '';
          const reporting = c.devicesReporting[row] ?? 0;
          const devices = c.devicesTotal[row] ?? 0;
          const open = c.openAlerts[row] ?? 0;
          const critical = c.criticalAlerts[row] ?? 0;
          const updatedAt = c.updatedAt[row] ?? null;
          return (
            <div
              key={id}
              class="vrow"
              role="row"
              tabIndex={0}
              aria-rowindex={index + 2}
              data-site-id={id}
              data-testid={`sites-row-${id}`}
              onClick={() => navigate(href({ page: 'site', id }))}
              onKeyDown={onRowKey(index, id)}
            >
              <div class="vcell vcell-site" role="cell">
                <span class="mono">{id}</span>
                <span class="muted ellipsis">{c.name[row] !== id ? c.name[row] : ''}</span>
              </div>
              <div class="vcell" role="cell">
                {c.region[row]}
              </div>
              <div class="vcell vcell-num" role="cell">
                <span class={`online online-${coverageLevel(reporting, devices)}`} data-value={String(reporting)} data-total={String(devices)}>
                  <span class="dot" aria-hidden="true" />
                  {reporting}/{devices}
                </span>
              </div>
              <div class="vcell vcell-num" role="cell">
                <Num f={formatPercent(c.socPct[row])} value={c.socPct[row]} />
              </div>
              <div class="vcell vcell-num" role="cell">
                <Num f={formatPower(c.batteryPowerW[row], { signed: true })} value={c.batteryPowerW[row]} />
              </div>
              <div class="vcell vcell-num" role="cell">
                <Num f={formatPower(c.solarPowerW[row])} value={c.solarPowerW[row]} />
              </div>
              <div class="vcell vcell-num" role="cell">
                <Num f={formatPower(c.gridPowerW[row], { signed: true })} value={c.gridPowerW[row]} />
              </div>
              <div class="vcell vcell-num" role="cell">
                <Num f={formatPower(c.loadW[row])} value={c.loadW[row]} />
              </div>
              <div class="vcell vcell-num" role="cell">
                {open === 0 ? (
                  <span class="muted">{MISSING}</span>
                ) : (
                  <span class={`alert-count ${critical > 0 ? 'alert-count-critical' : ''}`} data-value={String(open)} title={`${open} open, ${critical} critical`}>
                    {open}
                    {critical > 0 ? ` · ${critical}!` : ''}
                  </span>
                )}
              </div>
              <div class="vcell vcell-num muted" role="cell">
                {updatedAt === null ? 'never' : formatAgo(updatedAt, Math.max(now, updatedAt))}
              </div>
            </div>
          );
        })}
      </div>
    </div>
  );
}
