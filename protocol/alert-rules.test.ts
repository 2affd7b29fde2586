/**
 * The rules file's validation: a good file gives typed rules with defaults
 * filled in; a bad one lists every problem with its path, at once; no input
 * whatsoever makes it throw (fuzzed).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FLAP_WINDOW_SECONDS, fillSummary, validateAlertRules } from './alert-rules.ts';

const hot = {
  id: 'battery-overheat',
  severity: 'critical',
  subject: 'device',
  filter: { deviceTypes: ['battery'] },
  summary: 'Battery {subjectId} at {value} °C',
  threshold: { metric: 'tempC', above: 55, forSeconds: 30, clearBelow: 50 },
};

describe('validateAlertRules', () => {
  it('accepts a good file and fills in the defaults', () => {
    const result = validateAlertRules({
      rules: [hot, { id: 'offline', severity: 'warning', subject: 'device', summary: '{subjectId} offline', offline: {} }],
      routes: [{ integration: 'pagerduty', severities: ['critical'] }],
    });
    expect(result).toEqual({
      ok: true,
      config: {
        rules: [
          { ...hot, kind: 'threshold', flapWindowSeconds: DEFAULT_FLAP_WINDOW_SECONDS },
          { id: 'offline', severity: 'warning', subject: 'device', filter: {}, summary: '{subjectId} offline', kind: 'offline', offline: { forSeconds: 0 }, flapWindowSeconds: DEFAULT_FLAP_WINDOW_SECONDS },
        ],
        routes: [{ integration: 'pagerduty', severities: ['critical'] }],
      },
    });
  });

  it('defaults the clear bound of a threshold to its firing bound', () => {
    const result = validateAlertRules({ rules: [{ ...hot, threshold: { metric: 'tempC', below: 5 } }] });
    expect(result.ok && result.config.rules[0]).toMatchObject({ threshold: { metric: 'tempC', below: 5, clearAbove: 5, forSeconds: 0 } });
  });

  it('lists every problem of a bad file at once, each with its path', () => {
    const result = validateAlertRules({
      flapWindowSeconds: -1,
      rules: [
        { ...hot, id: 'Bad Id', severity: 'fatal', summary: 'at {temp}' },
        { ...hot, threshold: { metric: 'tempC', above: 55, clearBelow: 60, forSeconds: 'long' } },
        { ...hot, id: 'two-conditions', offline: { forSeconds: 1 } },
        { id: 'agg', severity: 'info', subject: 'region', summary: 'x', threshold: { metric: 'tempC', below: 1 } },
        { id: 'frozen-region', severity: 'info', subject: 'region', summary: 'x', frozen: { metric: 'socPct', forSeconds: 0 } },
        { ...hot, id: 'battery-overheat' },
        'not a rule',
      ],
      routes: [{ integration: 'fax' }],
      extra: true,
    });
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems;
    for (const expected of [
      'flapWindowSeconds: must be a number of seconds',
      'rules[0].id: must match',
      'rules[0].severity: must be one of critical, warning, info',
      'rules[0].summary: unknown placeholder {temp}',
      'rules[1].threshold.forSeconds: must be a number of seconds',
      'rules[1].threshold.clearBelow: must be at most above (55)',
      'rules[2]: needs exactly one condition of threshold, rateOfChange, frozen, offline, stale (has threshold, offline)',
      'rules[3].threshold.metric: must be one of batteryPowerW',
      'rules[4].subject: a frozen rule applies to devices only',
      'rules[4].frozen.forSeconds: must be positive',
      'rules[5].id: "battery-overheat" is used by an earlier rule',
      'rules[6]: must be an object',
      'routes[0].integration: must be one of webhook, slack, pagerduty, alertmanager',
      'extra: unknown key',
    ]) {
      expect(problems.some((p) => p.startsWith(expected)), `${expected}\nin:\n${problems.join('\n')}`).toBe(true);
    }
  });

  it('refuses a rate rule without a bound and a threshold with both directions', () => {
    const result = validateAlertRules({
      rules: [
        { id: 'rate', severity: 'info', subject: 'device', summary: 'x', rateOfChange: { metric: 'socPct', powerMetric: 'powerW' } },
        { ...hot, threshold: { metric: 'tempC', above: 1, below: 0 } },
      ],
    });
    expect(result.ok ? [] : result.problems).toEqual(
      expect.arrayContaining([
        'rules[0].rateOfChange: "powerMetric" and "capacityMetric" go together',
        'rules[1].threshold: needs exactly one of "above" and "below"',
      ]),
    );
  });

  it('never throws, whatever it is given', () => {
    const runs = Number(process.env.VPP_FUZZ_RUNS ?? 2000);
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withObjectString: true }), (input) => {
        const result = validateAlertRules(input);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: runs },
    );
    fc.assert(
      fc.property(
        fc.record({
          id: fc.oneof(fc.string(), fc.constant('ok-id')),
          severity: fc.oneof(fc.string(), fc.constantFrom('critical', 'warning', 'info')),
          subject: fc.oneof(fc.string(), fc.constantFrom('device', 'site', 'region', 'fleet')),
          summary: fc.string(),
          threshold: fc.anything(),
          frozen: fc.option(fc.anything(), { nil: undefined }),
          filter: fc.option(fc.anything(), { nil: undefined }),
        }),
        (rule) => {
          const result = validateAlertRules({ rules: [rule] });
          if (!result.ok) expect(result.problems.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: runs },
    );
  });
});

describe('fillSummary', () => {
  it('replaces known placeholders and leaves missing ones empty', () => {
    expect(fillSummary('{subjectId} at {value} °C in {region}', { subjectId: 'b1', value: '56' })).toBe('b1 at 56 °C in ');
  });
});
