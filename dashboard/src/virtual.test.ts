import { describe, expect, it } from 'vitest';
import { scrollToReveal, virtualWindow } from './virtual.ts';

describe('virtualWindow', () => {
  const base = { rowHeight: 40, viewportHeight: 400, overscan: 5 };

  it('renders the visible rows plus the margin, and pads the rest', () => {
    const w = virtualWindow({ ...base, count: 10_000, scrollTop: 4_000 });
    expect(w).toEqual({ start: 95, end: 115, padTop: 95 * 40, padBottom: (10_000 - 115) * 40, totalHeight: 400_000 });
    expect(w.padTop + (w.end - w.start) * 40 + w.padBottom).toBe(w.totalHeight);
  });

  it('keeps the DOM small whatever the row count', () => {
    for (const count of [10, 1_000, 10_000, 1_000_000]) {
      const w = virtualWindow({ ...base, count, scrollTop: count * 20 });
      expect(w.end - w.start).toBeLessThanOrEqual(400 / 40 + 1 + 2 * 5);
    }
  });

  it('starts at the top and ends at the bottom', () => {
    expect(virtualWindow({ ...base, count: 10_000, scrollTop: 0 })).toMatchObject({ start: 0, end: 15, padTop: 0 });
    const bottom = virtualWindow({ ...base, count: 10_000, scrollTop: 400_000 - 400 });
    expect(bottom).toMatchObject({ end: 10_000, padBottom: 0, start: 10_000 - 10 - 5 });
  });

  it('treats a scroll position past the end (the list shrank) as the end', () => {
    const w = virtualWindow({ ...base, count: 12, scrollTop: 50_000 });
    expect(w).toMatchObject({ start: 0, end: 12, padTop: 0, padBottom: 0, totalHeight: 480 });
  });

  it('handles empty lists, short lists and a partly visible row', () => {
    expect(virtualWindow({ ...base, count: 0, scrollTop: 100 })).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0, totalHeight: 0 });
    expect(virtualWindow({ ...base, count: 3, scrollTop: 0 })).toMatchObject({ start: 0, end: 3 });
    const w = virtualWindow({ ...base, overscan: 0, count: 100, scrollTop: 20 });
    expect(w).toMatchObject({ start: 0, end: 11 });
  });

  it('renders at least one row even before the viewport is measured', () => {
    expect(virtualWindow({ ...base, overscan: 0, viewportHeight: 0, count: 100, scrollTop: 0 })).toMatchObject({ start: 0, end: 1 });
  });
});

describe('scrollToReveal', () => {
  it('scrolls as little as possible to show a row below a sticky header', () => {
    // viewport 400 with a 40 px header: rows of the body 0..360 visible
    expect(scrollToReveal(3, 40, 0, 400, 40)).toBeNull();
    expect(scrollToReveal(8, 40, 0, 400, 40)).toBeNull();
    expect(scrollToReveal(9, 40, 0, 400, 40)).toBe(40);
    expect(scrollToReveal(2, 40, 200, 400, 40)).toBe(80);
  });
});
