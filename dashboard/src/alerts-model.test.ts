import { describe, expect, it } from 'vitest';
import type { Alert } from './api-types.ts';
import type { AlertRule } from './api-types.ts';
import { alertValueText, appendPage, groupBySeverity, subjectSiteId } from './alerts-model.ts';

function alert(id: string, over: Partial<Alert> = {}): Alert {
  return {
    id,
    ruleId: 'battery-overheat',
    severity: 'warning',
    subjectKind: 'device',
    subjectId: 'site-0001-battery',
    state: 'firing',
    summary: 'hot',
    value: 60,
    labels: { siteId: 'site-0001', region: 'north', deviceType: 'battery' },
    openedAt: '2026-01-01T00:00:00Z',
    firedAt: '2026-01-01T00:00:00Z',
    acknowledgedAt: null,
    acknowledgedBy: null,
    acknowledgeNote: null,
    resolvedAt: null,
    resolvedBy: null,
    resolveReason: null,
    reopenCount: 0,
    ...over,
  };
}

describe('groupBySeverity', () => {
  it('puts critical first, then firing before acknowledged, then newest first', () => {
    const groups = groupBySeverity([
      alert('1', { severity: 'info' }),
      alert('2', { severity: 'critical', firedAt: '2026-01-01T00:01:00Z' }),
      alert('3', { severity: 'critical', firedAt: '2026-01-01T00:05:00Z', state: 'acknowledged' }),
      alert('4', { severity: 'critical', firedAt: '2026-01-01T00:02:00Z' }),
    ]);
    expect(groups.map((g) => g.severity)).toEqual(['critical', 'info']);
    expect(groups[0]?.alerts.map((a) => a.id)).toEqual(['4', '2', '3']);
  });

  it('answers no groups for no alerts', () => {
    expect(groupBySeverity([])).toEqual([]);
  });
});

describe('subjectSiteId', () => {
  it('finds the site of site and device alerts', () => {
    expect(subjectSiteId(alert('1'))).toBe('site-0001');
    expect(subjectSiteId(alert('1', { subjectKind: 'site', subjectId: 'site-0002', labels: {} }))).toBe('site-0002');
    expect(subjectSiteId(alert('1', { subjectKind: 'region', subjectId: 'north', labels: {} }))).toBeNull();
  });
});

describe('appendPage', () => {
  it('adds older alerts without repeats', () => {
    expect(appendPage([alert('9'), alert('8')], [alert('8'), alert('7')]).map((a) => a.id)).toEqual(['9', '8', '7']);
  });
});

describe('alertValueText', () => {
  const base = { id: 'r', severity: 'warning', subject: 'device', filter: {}, summary: '', flapWindowSeconds: 120 } as const;
  it('gives the value the unit of the rule\'s metric', () => {
    const threshold: AlertRule = { ...base, kind: 'threshold', threshold: { metric: 'tempC', above: 55, forSeconds: 30 } };
    const rate: AlertRule = { ...base, kind: 'rateOfChange', rateOfChange: { metric: 'socPct', tolerance: 1.5, slackPerMinute: 1, noise: 0.5 } };
    const offline: AlertRule = { ...base, kind: 'offline', offline: { forSeconds: 60 } };
    expect(alertValueText(65, threshold)).toBe('65.0 °C');
    expect(alertValueText(12, rate)).toBe('12.0 %/min');
    expect(alertValueText(null, offline)).toBe('—');
    expect(alertValueText(3, undefined)).toBe('3.00');
  });
});
