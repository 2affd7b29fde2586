/**
 * The window of a virtualized list of fixed-height rows: which rows are in
 * the DOM (the visible ones plus `overscan` on each side) and the space the
 * others take above and below, so the scrollbar stays true. Pure.
 */

export interface VirtualInput {
  count: number;
  rowHeight: number;
  scrollTop: number;
  viewportHeight: number;
  /** Rows kept in the DOM beyond each edge of the viewport. */
  overscan: number;
}

export interface VirtualWindow {
  /** First row in the DOM (inclusive). */
  start: number;
  /** Row after the last one in the DOM (exclusive); start === end when empty. */
  end: number;
  /** Height of the rows above `start`. */
  padTop: number;
  /** Height of the rows from `end` on. */
  padBottom: number;
  totalHeight: number;
}

export function virtualWindow({ count, rowHeight, scrollTop, viewportHeight, overscan }: VirtualInput): VirtualWindow {
  const rows = Math.max(0, Math.floor(count));
  const height = rowHeight > 0 ? rowHeight : 1;
  const totalHeight = rows * height;
  if (rows === 0) return { start: 0, end: 0, padTop: 0, padBottom: 0, totalHeight: 0 };
  const viewport = Math.max(0, viewportHeight);
  // A scroll position past the end (the list shrank under a filter) counts as the end.
  const top = Math.min(Math.max(0, scrollTop), Math.max(0, totalHeight - viewport));
  const margin = Math.max(0, Math.floor(overscan));
  const first = Math.floor(top / height);
  const last = Math.ceil((top + viewport) / height);
  const start = Math.max(0, first - margin);
  const end = Math.min(rows, Math.max(last, first + 1) + margin);
  return { start, end, padTop: start * height, padBottom: (rows - end) * height, totalHeight };
}

/**
 * The scroll position that brings row `index` fully into view with as little
 * movement as possible, or null when it is already visible. `headerHeight` is
 * the part of the viewport a sticky header covers.
 */
export function scrollToReveal(index: number, rowHeight: number, scrollTop: number, viewportHeight: number, headerHeight = 0): number | null {
  const rowTop = index * rowHeight;
  const rowBottom = rowTop + rowHeight;
  const visibleTop = scrollTop;
  const visibleBottom = scrollTop + viewportHeight - headerHeight;
  if (rowTop < visibleTop) return rowTop;
  if (rowBottom > visibleBottom) return rowBottom - (viewportHeight - headerHeight);
  return null;
}
