/** Small building blocks of every page: numbers with units, tiles, coverage bars, states, dialogs. */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { describeError } from './api.ts';
import { formatAgo, formatCount, formatRatio, type Formatted } from './format.ts';
import type { Freshness } from './hooks.ts';
import { coverageLevel } from './sites-model.ts';

/**
 * A figure and its unit, with the raw value (W, Wh, %, a ratio …) in
 * `data-value` for tests and tools; empty when missing.
 */
export function Num({ f, value, testid, class: className }: { f: Formatted; value: number | null | undefined; testid?: string; class?: string }) {
  const raw = typeof value === 'number' && Number.isFinite(value) ? String(value) : '';
  return (
    <span class={`num${className ? ` ${className}` : ''}`} data-testid={testid} data-value={raw}>
      {f.text}
      {f.unit !== '' && f.text !== '—' ? <span class="unit"> {f.unit}</span> : null}
    </span>
  );
}

export function Tile({
  label,
  hint,
  children,
  tone,
  size = 'md',
  testid,
}: {
  label: string;
  hint?: ComponentChildren;
  children: ComponentChildren;
  tone?: 'battery' | 'solar' | 'grid' | 'load' | 'soc' | 'coverage';
  size?: 'lg' | 'md' | 'sm';
  testid?: string;
}) {
  return (
    <div class={`tile tile-${size}${tone ? ` tone-${tone}` : ''}`} data-testid={testid}>
      <div class="tile-label">{label}</div>
      <div class="tile-value">{children}</div>
      {hint !== undefined ? <div class="tile-hint">{hint}</div> : null}
    </div>
  );
}

/** Devices reporting out of the total, as a bar; `data-value` is the ratio 0..1. */
export function CoverageBar({ reporting, total, testid, compact }: { reporting: number; total: number; testid?: string; compact?: boolean }) {
  const ratio = total > 0 ? reporting / total : 0;
  const fill = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // Widths are set through the CSSOM: the page's CSP allows no inline style attributes.
    if (fill.current) fill.current.style.width = `${Math.round(Math.min(1, Math.max(0, ratio)) * 1000) / 10}%`;
  }, [ratio]);
  return (
    <div
      class={`coverage coverage-${coverageLevel(reporting, total)}${compact ? ' coverage-compact' : ''}`}
      data-testid={testid}
      data-value={total > 0 ? String(ratio) : ''}
      data-reporting={String(reporting)}
      data-total={String(total)}
    >
      <div class="coverage-text">
        <span class="num">
          {formatCount(reporting)}
          <span class="unit"> / {formatCount(total)}</span>
        </span>
        <span class="coverage-pct">{total > 0 ? `${formatRatio(ratio).text} %` : 'no devices'}</span>
      </div>
      <div class="coverage-track" role="meter" aria-valuemin={0} aria-valuemax={total} aria-valuenow={reporting} aria-label="devices reporting">
        <div class="coverage-fill" ref={fill} />
      </div>
    </div>
  );
}

export function StaleNote({ freshness, what = 'live data' }: { freshness: Freshness; what?: string }) {
  if (!freshness.stale) return null;
  return (
    <span class="stale-note" role="status">
      {freshness.ageMs === null ? `no ${what} yet` : `stale · last update ${formatAgo(Date.now() - freshness.ageMs, Date.now())}`}
    </span>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div class="state state-loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="state state-empty">{children}</div>;
}

export function ErrorBox({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  return (
    <div class="state state-error" role="alert">
      <span>{describeError(error)}</span>
      {onRetry ? (
        <button type="button" class="btn btn-small" onClick={onRetry}>
          Retry
        </button>
      ) : null}
    </div>
  );
}

export function Badge({ kind, children, testid, title, value }: { kind: string; children: ComponentChildren; testid?: string; title?: string; value?: string }) {
  return (
    <span class={`badge badge-${kind}`} data-testid={testid} title={title} data-value={value}>
      {children}
    </span>
  );
}

export function PageHead({ title, sub, children }: { title: ComponentChildren; sub?: ComponentChildren; children?: ComponentChildren }) {
  return (
    <div class="page-head">
      <div>
        <h1>{title}</h1>
        {sub !== undefined ? <div class="page-sub">{sub}</div> : null}
      </div>
      {children !== undefined ? <div class="page-head-aside">{children}</div> : null}
    </div>
  );
}

/**
 * A modal dialog on the native <dialog>: focus stays inside, Escape closes
 * it (its `cancel` event), and focus goes back where it was.
 */
export function Dialog({ open, title, onClose, children }: { open: boolean; title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const onCloseRef = useRef(onClose);
  onCloseRef.current = onClose;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
      dialog.showModal();
      const onDialogClose = () => {
        previous?.focus();
        onCloseRef.current();
      };
      dialog.addEventListener('close', onDialogClose, { once: true });
      return;
    }
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog ref={ref} class="dialog" aria-label={title}>
      {open ? (
        <div class="dialog-body">
          <h2>{title}</h2>
          {children}
        </div>
      ) : null}
    </dialog>
  );
}

export function Field({ label, hint, error, children, id }: { label: string; hint?: ComponentChildren; error?: string; children: ComponentChildren; id: string }) {
  return (
    <div class={`field${error ? ' field-invalid' : ''}`}>
      <label for={id}>{label}</label>
      {children}
      {hint !== undefined ? <div class="field-hint" id={`${id}-hint`}>{hint}</div> : null}
      {error ? (
        <div class="field-error" id={`${id}-error`} role="alert">
          {error}
        </div>
      ) : null}
    </div>
  );
}

/** Enter (and Space) on a focusable row opens it, like a click. */
export function onActivate(open: () => void): (event: JSX.TargetedKeyboardEvent<HTMLElement>) => void {
  return (event) => {
    if (event.target !== event.currentTarget) return;
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      open();
    }
  };
}
