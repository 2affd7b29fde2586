/**
 * The sites table's data: the columnar answer of `GET /api/v1/sites/overview`
 * kept as columns (10,000 sites are 13 arrays, not 10,000 objects), merged
 * with the `sites` stream's partial columns, and viewed through a search and
 * a sort as a list of row indices. Pure; the page decides when to recompute.
 */
import type { SitesOverviewColumns } from './api-types.ts';

export const NUMERIC_COLUMNS = [
  'devicesTotal',
  'devicesReporting',
  'socPct',
  'batteryPowerW',
  'solarPowerW',
  'gridPowerW',
  'loadW',
  'openAlerts',
  'criticalAlerts',
  'updatedAt',
] as const;
export type NumericColumn = (typeof NUMERIC_COLUMNS)[number];
export const TEXT_COLUMNS = ['id', 'name', 'region'] as const;
export type TextColumn = (typeof TEXT_COLUMNS)[number];

/** What the table sorts by: a column, or `coverage` (reporting / total). */
export type SortKey = TextColumn | NumericColumn | 'coverage';
export interface SortOrder {
  key: SortKey;
  dir: 'asc' | 'desc';
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

function emptyColumns(): SitesOverviewColumns {
  return {
    id: [],
    name: [],
    region: [],
    devicesTotal: [],
    devicesReporting: [],
    socPct: [],
    batteryPowerW: [],
    solarPowerW: [],
    gridPowerW: [],
    loadW: [],
    openAlerts: [],
    criticalAlerts: [],
    updatedAt: [],
  };
}

export class SitesModel {
  readonly columns: SitesOverviewColumns = emptyColumns();
  /** Row index by site id. */
  private readonly rowOf = new Map<string, number>();
  /** Lower-cased "id name region" per row, for the search. */
  private readonly haystack: string[] = [];
  /** Bumped on every change, so views can tell whether to recompute. */
  version = 0;

  get size(): number {
    return this.columns.id.length;
  }

  indexOf(id: string): number | undefined {
    return this.rowOf.get(id);
  }

  /** Replaces everything with a full overview. */
  load(columns: SitesOverviewColumns): void {
    for (const key of [...TEXT_COLUMNS, ...NUMERIC_COLUMNS]) this.columns[key].length = 0;
    this.rowOf.clear();
    this.haystack.length = 0;
    this.merge(columns, true);
  }

  /**
   * Merges partial columns (the `sites` stream's changed sites, or an
   * overview fetched while updates were arriving): a known site's row is
   * replaced unless the incoming row is older than the one held (by
   * `updatedAt`), so updates and fetches may arrive in any order; an unknown
   * site is added. Answers how many rows changed.
   */
  merge(columns: Partial<SitesOverviewColumns>, force = false): number {
    const ids = columns.id;
    if (!Array.isArray(ids)) return 0;
    let changed = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== 'string') continue;
      let row = this.rowOf.get(id);
      if (row !== undefined && !force) {
        const held = this.columns.updatedAt[row] ?? null;
        const incoming = columns.updatedAt?.[i] ?? null;
        if (held !== null && incoming !== null && incoming < held) continue;
      }
      if (row === undefined) {
        row = this.columns.id.length;
        this.rowOf.set(id, row);
        this.columns.id.push(id);
        this.columns.name.push(id);
        this.columns.region.push('');
        for (const key of NUMERIC_COLUMNS) (this.columns[key] as (number | null)[]).push(key === 'socPct' || key === 'updatedAt' ? null : 0);
        this.haystack.push('');
      }
      for (const key of TEXT_COLUMNS) {
        const value = columns[key]?.[i];
        if (typeof value === 'string') this.columns[key][row] = value;
      }
      for (const key of NUMERIC_COLUMNS) {
        const source = columns[key] as (number | null)[] | undefined;
        if (source === undefined || i >= source.length) continue;
        const value = source[i];
        if (value === null || typeof value === 'number') (this.columns[key] as (number | null)[])[row] = value ?? null;
      }
      this.haystack[row] = `${this.columns.id[row]} ${this.columns.name[row]} ${this.columns.region[row]}`.toLowerCase();
      changed++;
    }
    if (changed > 0) this.version++;
    return changed;
  }

  /** Sites whose devices report, summed: zero means nothing here should be moving. */
  reportingDevices(): number {
    let sum = 0;
    for (const n of this.columns.devicesReporting) sum += n;
    return sum;
  }

  /**
   * Row indices matching `query` (every whitespace-separated term must occur
   * in the id, name or region, case-insensitively), in `order`. Missing
   * values (no state of charge, never updated) sort last either way; ties
   * keep id order.
   */
  view(query: string, order: SortOrder): number[] {
    const terms = query.toLowerCase().split(/\s+/).filter((t) => t !== '');
    const rows: number[] = [];
    for (let row = 0; row < this.haystack.length; row++) {
      const text = this.haystack[row] ?? '';
      if (terms.every((t) => text.includes(t))) rows.push(row);
    }
    const sign = order.dir === 'asc' ? 1 : -1;
    const ids = this.columns.id;
    const byId = (a: number, b: number) => collator.compare(ids[a] ?? '', ids[b] ?? '');
    if (order.key === 'id' || order.key === 'name' || order.key === 'region') {
      const col = this.columns[order.key];
      rows.sort((a, b) => sign * collator.compare(col[a] ?? '', col[b] ?? '') || byId(a, b));
      return rows;
    }
    const valueOf = this.numericAccessor(order.key);
    rows.sort((a, b) => {
      const va = valueOf(a);
      const vb = valueOf(b);
      if (va === null || vb === null) return va === vb ? byId(a, b) : va === null ? 1 : -1;
      return sign * (va - vb) || byId(a, b);
    });
    return rows;
  }

  private numericAccessor(key: NumericColumn | 'coverage'): (row: number) => number | null {
    if (key === 'coverage') {
      const reporting = this.columns.devicesReporting;
      const total = this.columns.devicesTotal;
      return (row) => {
        const t = total[row] ?? 0;
        return t > 0 ? (reporting[row] ?? 0) / t : null;
      };
    }
    const col = this.columns[key] as (number | null)[];
    return (row) => {
      const v = col[row];
      return typeof v === 'number' && Number.isFinite(v) ? v : null;
    };
  }
}

/** The health of a site's reporting, for its colour: all, some or none of its devices report. */
export function coverageLevel(reporting: number, total: number): 'full' | 'partial' | 'none' | 'empty' {
  if (total <= 0) return 'empty';
  if (reporting >= total) return 'full';
  return reporting > 0 ? 'partial' : 'none';
}
