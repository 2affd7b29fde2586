import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FAULT_KINDS,
  MAX_FAULT_SECONDS,
  MAX_FAULT_SPECS,
  faultAppliesTo,
  formatFaultSpec,
  parseFaultSpec,
  parseFaultSpecs,
  validateFaultSpec,
  type FaultSpec,
} from './faults.ts';

function problemsOf(text: string): string[] {
  const parsed = parseFaultSpecs(text);
  if (parsed.ok) throw new Error(`expected problems for ${text}`);
  return parsed.problems;
}

describe('parseFaultSpec', () => {
  it('reads the three forms, decimals, a site or a device target, and surrounding blanks', () => {
    expect(parseFaultSpec('overheat:site-0001-battery')).toEqual({ ok: true, value: { kind: 'overheat', target: 'site-0001-battery' } });
    expect(parseFaultSpec(' silent:site-0001@12 ')).toEqual({ ok: true, value: { kind: 'silent', target: 'site-0001', startSeconds: 12 } });
    expect(parseFaultSpec('frozen:site-0001-meter@1.5-3.25')).toEqual({
      ok: true,
      value: { kind: 'frozen', target: 'site-0001-meter', startSeconds: 1.5, endSeconds: 3.25 },
    });
    expect(parseFaultSpec('soc-jump:a.b_c@0-0.001')).toEqual({ ok: true, value: { kind: 'soc-jump', target: 'a.b_c', startSeconds: 0, endSeconds: 0.001 } });
    expect(parseFaultSpec(`disconnect:${'x'.repeat(64)}@${MAX_FAULT_SECONDS}`).ok).toBe(true);
  });

  it('lists every problem of one spec at once, naming it', () => {
    const parsed = parseFaultSpec('overhat:bad id@x-1');
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.problems).toHaveLength(3);
    expect(parsed.problems[0]).toMatch(/^"overhat:bad id@x-1": unknown kind "overhat"/);
    expect(parsed.problems[1]).toMatch(/bad target "bad id"/);
    expect(parsed.problems[2]).toMatch(/bad seconds "x"/);
  });

  it('reports an empty or overlong spec', () => {
    expect(parseFaultSpec('  ')).toEqual({ ok: false, problems: ['empty spec'] });
    const long = parseFaultSpec(`silent:${'a'.repeat(200)}`);
    expect(long.ok).toBe(false);
    if (!long.ok) expect(long.problems[0]).toMatch(/longer than 200 characters/);
  });
});

describe('parseFaultSpecs', () => {
  it('reads a comma-separated list; an empty string is no specs', () => {
    expect(parseFaultSpecs('')).toEqual({ ok: true, value: [] });
    expect(parseFaultSpecs('   ')).toEqual({ ok: true, value: [] });
    expect(parseFaultSpecs('silent:site-0001, overheat:site-0002@5-10')).toEqual({
      ok: true,
      value: [
        { kind: 'silent', target: 'site-0001' },
        { kind: 'overheat', target: 'site-0002', startSeconds: 5, endSeconds: 10 },
      ],
    });
  });

  it('lists every problem of every item, each naming the item and why', () => {
    const problems = problemsOf(
      [
        'silent:site-0001', // fine
        'melt:site-0001', // unknown kind
        'silent:', // missing target
        'frozen', // missing target
        'frozen:site-0001@-1', // bad seconds
        'frozen:site-0001@1.2345', // too many decimals
        'frozen:site-0001@1e3', // no exponent
        'frozen:site-0001@5-5', // end = start
        'frozen:site-0001@6-5', // end < start
        'frozen:site 0001', // bad id character
        'frozen:-site', // bad first character
        `frozen:${'s'.repeat(65)}`, // id too long
        '', // empty item
        'frozen:site-0001@1-', // missing end
      ].join(','),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^item 2 "melt:site-0001": unknown kind "melt" \(one of overheat, silent, disconnect, frozen, soc-jump\)$/),
      'item 3 "silent:": missing target',
      'item 4 "frozen": missing target',
      expect.stringMatching(/^item 5 "frozen:site-0001@-1": bad seconds "" after '@'/),
      expect.stringMatching(/^item 6 "frozen:site-0001@1.2345": bad seconds "1.2345"/),
      expect.stringMatching(/^item 7 "frozen:site-0001@1e3": bad seconds "1e3"/),
      'item 8 "frozen:site-0001@5-5": end 5 is not after start 5',
      'item 9 "frozen:site-0001@6-5": end 5 is not after start 6',
      expect.stringMatching(/^item 10 "frozen:site 0001": bad target "site 0001"/),
      expect.stringMatching(/^item 11 "frozen:-site": bad target "-site"/),
      expect.stringMatching(/^item 12 "frozen:s{65}": bad target/),
      'item 13: empty spec',
      expect.stringMatching(/^item 14 "frozen:site-0001@1-": bad end seconds ""/),
    ]);
  });

  it('bounds the list', () => {
    const many = Array.from({ length: MAX_FAULT_SPECS + 1 }, (_, i) => `silent:d${i}`).join(',');
    expect(problemsOf(many)).toEqual([`${MAX_FAULT_SPECS + 1} fault specs, at most ${MAX_FAULT_SPECS}`]);
    expect(problemsOf('x'.repeat(MAX_FAULT_SPECS * 201 + 1))[0]).toMatch(/characters long, at most/);
    expect(parseFaultSpecs(Array.from({ length: MAX_FAULT_SPECS }, (_, i) => `silent:d${i}`).join(',')).ok).toBe(true);
  });
});

describe('validateFaultSpec', () => {
  it('accepts what the written form accepts, and reconnectAfterSeconds on a disconnect', () => {
    expect(validateFaultSpec({ kind: 'disconnect', target: 'site-0001', startSeconds: 1, endSeconds: 2, reconnectAfterSeconds: 5 })).toEqual([]);
  });

  it('lists every problem of a built spec', () => {
    const spec = { kind: 'melt', target: 'a b', startSeconds: Number.NaN, endSeconds: -1, reconnectAfterSeconds: 0 } as unknown as FaultSpec;
    const problems = validateFaultSpec(spec);
    expect(problems).toEqual([
      expect.stringMatching(/unknown kind "melt"/),
      expect.stringMatching(/bad target "a b"/),
      expect.stringMatching(/bad start NaN/),
      expect.stringMatching(/bad end -1/),
      'reconnectAfterSeconds applies to disconnect only',
      expect.stringMatching(/bad reconnectAfterSeconds 0: seconds more than 0/),
    ]);
    expect(validateFaultSpec({ kind: 'silent', target: 'a', endSeconds: 3 })).toEqual(['an end needs a start']);
    expect(validateFaultSpec({ kind: 'silent', target: 'a', startSeconds: 3, endSeconds: 3 })).toEqual(['end 3 is not after start 3']);
    expect(validateFaultSpec({ kind: 'silent', target: 'a', startSeconds: 0.0001 })).toEqual([expect.stringMatching(/at most 3 decimals/)]);
  });

  it('knows which kinds are for batteries only', () => {
    expect(faultAppliesTo('overheat', 'battery')).toBe(true);
    expect(faultAppliesTo('overheat', 'solar')).toBe(false);
    expect(faultAppliesTo('soc-jump', 'meter')).toBe(false);
    for (const kind of ['silent', 'disconnect', 'frozen'] as const) expect(faultAppliesTo(kind, 'meter')).toBe(true);
  });
});

const target = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
// Whole milliseconds: what the written form carries (at most three decimals).
const seconds = fc.integer({ min: 0, max: MAX_FAULT_SECONDS * 1_000 }).map((ms) => ms / 1_000);
const spec: fc.Arbitrary<FaultSpec> = fc
  .record({ kind: fc.constantFrom(...FAULT_KINDS), target, a: fc.option(seconds), b: fc.option(seconds) })
  .map(({ kind, target, a, b }) => {
    const built: FaultSpec = { kind, target };
    if (a !== null) built.startSeconds = a;
    if (a !== null && b !== null && a !== b) {
      built.startSeconds = Math.min(a, b);
      built.endSeconds = Math.max(a, b);
    }
    return built;
  });

describe('fault specs, properties', () => {
  it('parse(format(spec)) gives the spec back, alone and in a list', () => {
    fc.assert(
      fc.property(spec, (built) => {
        expect(validateFaultSpec(built)).toEqual([]);
        expect(parseFaultSpec(formatFaultSpec(built))).toEqual({ ok: true, value: built });
      }),
      { numRuns: 2_000 },
    );
    fc.assert(
      fc.property(fc.array(spec, { maxLength: 20 }), (list) => {
        expect(parseFaultSpecs(list.map(formatFaultSpec).join(','))).toEqual({ ok: true, value: list });
      }),
    );
  });

  it('never throws on arbitrary input, and whatever parses formats back to itself', () => {
    const grammarish = fc
      .array(fc.constantFrom('overheat', 'silent', 'soc-jump', ':', '@', '-', ',', '.', ' ', '0', '12', '1.5', 'site-0001', '', '\n', 'é', '\u0000'), { maxLength: 30 })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), grammarish), (text) => {
        const one = parseFaultSpec(text);
        const list = parseFaultSpecs(text);
        if (one.ok) expect(parseFaultSpec(formatFaultSpec(one.value))).toEqual(one);
        else expect(one.problems.length).toBeGreaterThan(0);
        if (!list.ok) expect(list.problems.length).toBeGreaterThan(0);
      }),
      { numRuns: 3_000 },
    );
  });

  it('never throws validating arbitrary shapes', () => {
    fc.assert(
      fc.property(
        fc.record(
          { kind: fc.anything(), target: fc.anything(), startSeconds: fc.anything(), endSeconds: fc.anything(), reconnectAfterSeconds: fc.anything() },
          { requiredKeys: [] },
        ),
        (shape) => {
          expect(Array.isArray(validateFaultSpec(shape as unknown as FaultSpec))).toBe(true);
        },
      ),
    );
  });
});
