/**
 * Numbers with units, as operators read them: power and energy auto-scaled
 * (W → kW → MW → GW), about three significant digits, the sign shown where
 * it carries meaning. Pure; every function takes the locale so tests are
 * deterministic (the page passes the browser's).
 *
 * A formatted value is `{ text, unit }` so the page can set the unit in a
 * smaller type next to the figure; `joinUnit` gives the plain string.
 */

export interface Formatted {
  /** The figure, e.g. "12.3", "+1,204", "—" for a missing value. */
  text: string;
  /** The unit, e.g. "kW", "%", "" when none. */
  unit: string;
}

export const MISSING = '—';

const formatters = new Map<string, Intl.NumberFormat>();

function numberFormat(locale: string | undefined, fractionDigits: number, signed: boolean): Intl.NumberFormat {
  const key = `${locale ?? ''}|${fractionDigits}|${signed ? 1 : 0}`;
  let nf = formatters.get(key);
  if (!nf) {
    nf = new Intl.NumberFormat(locale, {
      minimumFractionDigits: fractionDigits,
      maximumFractionDigits: fractionDigits,
      signDisplay: signed ? 'exceptZero' : 'auto',
    });
    formatters.set(key, nf);
  }
  return nf;
}

/** Digits after the decimal point for about three significant digits. */
function fractionDigitsFor(scaled: number): number {
  const abs = Math.abs(scaled);
  if (abs >= 100) return 0;
  if (abs >= 10) return 1;
  return 2;
}

function isNumber(value: number | null | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

const POWER_UNITS = ['W', 'kW', 'MW', 'GW'] as const;
const ENERGY_UNITS = ['Wh', 'kWh', 'MWh', 'GWh'] as const;

/** Chooses the unit step (0 = base, 1 = kilo, …) for a magnitude in base units. */
export function scaleStep(abs: number, steps: number): number {
  let step = 0;
  // 999.6 W rounds to "1,000 W": switch a little early so it reads "1.00 kW".
  while (step < steps - 1 && abs >= 999.5 * 1000 ** step) step++;
  return step;
}

function scaled(value: number, units: readonly string[], signed: boolean, locale: string | undefined): Formatted {
  const step = scaleStep(Math.abs(value), units.length);
  const v = value / 1000 ** step;
  // Whole watts and watt-hours: a fraction of a watt is noise.
  const digits = step === 0 ? 0 : fractionDigitsFor(v);
  const rounded = Number(v.toFixed(digits));
  return { text: numberFormat(locale, digits, signed).format(rounded === 0 ? 0 : v), unit: units[step] ?? '' };
}

export interface FormatOptions {
  /** Show "+" on positive values (for signed flows: battery, grid). */
  signed?: boolean;
  locale?: string;
}

/** Power in W, shown in W, kW, MW or GW. */
export function formatPower(watts: number | null | undefined, options: FormatOptions = {}): Formatted {
  if (!isNumber(watts)) return { text: MISSING, unit: 'kW' };
  return scaled(watts, POWER_UNITS, options.signed ?? false, options.locale);
}

/** Energy in Wh, shown in Wh, kWh, MWh or GWh. */
export function formatEnergy(wattHours: number | null | undefined, options: FormatOptions = {}): Formatted {
  if (!isNumber(wattHours)) return { text: MISSING, unit: 'kWh' };
  return scaled(wattHours, ENERGY_UNITS, options.signed ?? false, options.locale);
}

/** A percentage given in percent (62.5 → "62.5 %"). */
export function formatPercent(pct: number | null | undefined, options: FormatOptions & { digits?: number } = {}): Formatted {
  if (!isNumber(pct)) return { text: MISSING, unit: '%' };
  const digits = options.digits ?? (Math.abs(pct) >= 100 ? 0 : 1);
  return { text: numberFormat(options.locale, digits, options.signed ?? false).format(pct), unit: '%' };
}

/** A ratio 0..1 as a percentage. */
export function formatRatio(ratio: number | null | undefined, options: FormatOptions & { digits?: number } = {}): Formatted {
  return formatPercent(isNumber(ratio) ? ratio * 100 : null, { digits: 0, ...options });
}

/** A plain number with a fixed count of fraction digits and a unit. */
export function formatNumber(value: number | null | undefined, unit: string, options: FormatOptions & { digits?: number } = {}): Formatted {
  if (!isNumber(value)) return { text: MISSING, unit };
  const digits = options.digits ?? fractionDigitsFor(value);
  return { text: numberFormat(options.locale, digits, options.signed ?? false).format(value), unit };
}

/** Integers with grouping: 10000 → "10,000". */
export function formatCount(value: number | null | undefined, locale?: string): string {
  if (!isNumber(value)) return MISSING;
  return numberFormat(locale, 0, false).format(value);
}

export type MetricKind = 'power' | 'energy' | 'percent' | 'temperature' | 'voltage' | 'current' | 'duration' | 'frequency' | 'plain';

export interface MetricUnit {
  kind: MetricKind;
  /** Unit of the raw value, as named by the metric's suffix. */
  unit: string;
}

/**
 * The unit of a metric from its name: the platform's metric names end in
 * their unit (`powerW`, `energyWh`, `socPct`, `tempC`, `voltageV`,
 * `intervalMs`), which also holds for metrics firmware adds before the
 * platform's catalogue knows them.
 */
export function metricUnit(name: string): MetricUnit {
  if (/Wh$/.test(name)) return { kind: 'energy', unit: 'Wh' };
  if (/W$/.test(name)) return { kind: 'power', unit: 'W' };
  if (/Pct$/.test(name)) return { kind: 'percent', unit: '%' };
  if (/C$/.test(name)) return { kind: 'temperature', unit: '°C' };
  if (/V$/.test(name)) return { kind: 'voltage', unit: 'V' };
  if (/A$/.test(name)) return { kind: 'current', unit: 'A' };
  if (/Ms$/.test(name)) return { kind: 'duration', unit: 'ms' };
  if (/Hz$/.test(name)) return { kind: 'frequency', unit: 'Hz' };
  return { kind: 'plain', unit: '' };
}

const METRIC_LABELS: Readonly<Record<string, string>> = {
  powerW: 'power',
  socPct: 'state of charge',
  energyWh: 'stored',
  capacityWh: 'capacity',
  tempC: 'temperature',
  reservePct: 'backup reserve',
  maxChargeW: 'max charge',
  maxDischargeW: 'max discharge',
  energyTodayWh: 'today',
  loadW: 'load',
  voltageV: 'voltage',
};

/**
 * A metric's name for people: the catalogue's usual metrics by their
 * meaning, any other by its words without the unit ("cellSpreadMv" → "cell spread mv").
 */
export function metricLabel(name: string): string {
  const known = METRIC_LABELS[name];
  if (known !== undefined) return known;
  const { unit } = metricUnit(name);
  const suffix = { W: /W$/, Wh: /Wh$/, '%': /Pct$/, '°C': /C$/, V: /V$/, A: /A$/, ms: /Ms$/, Hz: /Hz$/ }[unit];
  const base = suffix ? name.replace(suffix, '') : name;
  return (base === '' ? name : base).replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
}

/** Any metric's value, formatted by the unit its name carries. */
export function formatMetric(name: string, value: number | null | undefined, options: FormatOptions = {}): Formatted {
  const { kind, unit } = metricUnit(name);
  switch (kind) {
    case 'power':
      return formatPower(value, options);
    case 'energy':
      return formatEnergy(value, options);
    case 'percent':
      return formatPercent(value, options);
    case 'temperature':
    case 'voltage':
    case 'current':
    case 'frequency':
      return formatNumber(value, unit, { ...options, digits: 1 });
    case 'duration':
      return formatNumber(value, unit, { ...options, digits: 0 });
    case 'plain':
      return formatNumber(value, unit, options);
  }
}

export function joinUnit(f: Formatted): string {
  return f.unit === '' || f.text === MISSING ? f.text : `${f.text} ${f.unit}`;
}

/** A duration for people: "45 s", "12 min", "3 h 05 min", "2 d 4 h". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${String(min % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** "12 s ago", "in 3 min", "just now". */
export function formatAgo(atMs: number | null | undefined, nowMs: number): string {
  if (!isNumber(atMs)) return 'never';
  const delta = nowMs - atMs;
  if (Math.abs(delta) < 1000) return 'just now';
  return delta > 0 ? `${formatDuration(delta)} ago` : `in ${formatDuration(-delta)}`;
}

/** Date and time, to the second, in the browser's zone. */
export function formatDateTime(atMs: number | null | undefined, locale?: string): string {
  if (!isNumber(atMs)) return MISSING;
  return new Date(atMs).toLocaleString(locale, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** Time of day, to the second. */
export function formatTime(atMs: number | null | undefined, locale?: string): string {
  if (!isNumber(atMs)) return MISSING;
  return new Date(atMs).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** ISO 8601 text (as the API sends times) to ms; null when absent or unreadable. */
export function parseIso(iso: string | null | undefined): number | null {
  if (typeof iso !== 'string') return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
}

/** Short tick labels for chart axes in W: "0", "500 W", "1.5 kW", "-2 MW". */
export function formatPowerTick(watts: number, locale?: string): string {
  if (watts === 0) return '0';
  const step = scaleStep(Math.abs(watts), POWER_UNITS.length);
  const v = watts / 1000 ** step;
  const key = `tick|${locale ?? ''}|${fractionDigitsFor(v)}`;
  let nf = formatters.get(key);
  if (!nf) formatters.set(key, (nf = new Intl.NumberFormat(locale, { maximumFractionDigits: fractionDigitsFor(v) })));
  return `${nf.format(v)} ${POWER_UNITS[step]}`;
}
