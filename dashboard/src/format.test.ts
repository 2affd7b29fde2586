import { describe, expect, it } from 'vitest';
import {
  formatAgo,
  formatDuration,
  formatEnergy,
  formatMetric,
  formatPercent,
  formatPower,
  formatPowerTick,
  formatRatio,
  joinUnit,
  metricLabel,
  metricUnit,
  parseIso,
} from './format.ts';

const en = { locale: 'en-US' };

describe('formatPower', () => {
  it('scales W, kW, MW and GW with about three significant digits', () => {
    expect(formatPower(0, en)).toEqual({ text: '0', unit: 'W' });
    expect(formatPower(487, en)).toEqual({ text: '487', unit: 'W' });
    expect(formatPower(6959, en)).toEqual({ text: '6.96', unit: 'kW' });
    expect(formatPower(12_345.6, en)).toEqual({ text: '12.3', unit: 'kW' });
    expect(formatPower(245_000, en)).toEqual({ text: '245', unit: 'kW' });
    expect(formatPower(2_000_000, en)).toEqual({ text: '2.00', unit: 'MW' });
    expect(formatPower(3.5e9, en)).toEqual({ text: '3.50', unit: 'GW' });
  });

  it('switches unit before a rounding would show 1,000', () => {
    expect(formatPower(999.4, en)).toEqual({ text: '999', unit: 'W' });
    expect(formatPower(999.7, en)).toEqual({ text: '1.00', unit: 'kW' });
    expect(joinUnit(formatPower(999_800, en))).toBe('1.00 MW');
  });

  it('shows the sign of flows when asked, never "-0"', () => {
    expect(formatPower(-3200, { ...en, signed: true }).text).toBe('-3.20');
    expect(formatPower(3200, { ...en, signed: true }).text).toBe('+3.20');
    expect(formatPower(0, { ...en, signed: true }).text).toBe('0');
    expect(formatPower(-0.3, en).text).toBe('0');
    expect(formatPower(-0.3, { ...en, signed: true }).text).toBe('0');
  });

  it('marks a missing value', () => {
    expect(formatPower(null).text).toBe('—');
    expect(formatPower(undefined).text).toBe('—');
    expect(formatPower(Number.NaN).text).toBe('—');
    expect(joinUnit(formatPower(null))).toBe('—');
  });
});

describe('formatEnergy, formatPercent, formatRatio', () => {
  it('scales energy', () => {
    expect(formatEnergy(155_027.5, en)).toEqual({ text: '155', unit: 'kWh' });
    expect(formatEnergy(850, en)).toEqual({ text: '850', unit: 'Wh' });
    expect(formatEnergy(12_500_000, en)).toEqual({ text: '12.5', unit: 'MWh' });
  });

  it('formats percentages and ratios', () => {
    expect(formatPercent(63.276, en)).toEqual({ text: '63.3', unit: '%' });
    expect(formatPercent(100, en)).toEqual({ text: '100', unit: '%' });
    expect(formatPercent(null, en).text).toBe('—');
    expect(formatRatio(0.975, en)).toEqual({ text: '98', unit: '%' });
  });
});

describe('metric units from names', () => {
  it('reads the unit suffix, energy before power', () => {
    expect(metricUnit('powerW')).toEqual({ kind: 'power', unit: 'W' });
    expect(metricUnit('maxDischargeW')).toEqual({ kind: 'power', unit: 'W' });
    expect(metricUnit('energyTodayWh')).toEqual({ kind: 'energy', unit: 'Wh' });
    expect(metricUnit('socPct')).toEqual({ kind: 'percent', unit: '%' });
    expect(metricUnit('tempC')).toEqual({ kind: 'temperature', unit: '°C' });
    expect(metricUnit('voltageV')).toEqual({ kind: 'voltage', unit: 'V' });
    expect(metricUnit('uptimeMs')).toEqual({ kind: 'duration', unit: 'ms' });
    expect(metricUnit('cycles').kind).toBe('plain');
  });

  it('names metrics for people', () => {
    expect(metricLabel('socPct')).toBe('state of charge');
    expect(metricLabel('maxDischargeW')).toBe('max discharge');
    expect(metricLabel('cellSpreadV')).toBe('cell spread');
    expect(metricLabel('firmwareBuild')).toBe('firmware build');
    expect(metricLabel('W')).toBe('w');
  });

  it('formats any metric by its unit', () => {
    expect(joinUnit(formatMetric('powerW', -3200, en))).toBe('-3.20 kW');
    expect(joinUnit(formatMetric('capacityWh', 14_000, en))).toBe('14.0 kWh');
    expect(joinUnit(formatMetric('tempC', 31.25, en))).toBe('31.3 °C');
    expect(joinUnit(formatMetric('voltageV', 227.1, en))).toBe('227.1 V');
    expect(joinUnit(formatMetric('reservePct', 30, en))).toBe('30.0 %');
    expect(joinUnit(formatMetric('cycles', 412, en))).toBe('412');
  });
});

describe('durations and times', () => {
  it('reads like a person would say it', () => {
    expect(formatDuration(12_400)).toBe('12 s');
    expect(formatDuration(12 * 60_000 + 5_000)).toBe('12 min');
    expect(formatDuration(3 * 3_600_000 + 5 * 60_000)).toBe('3 h 05 min');
    expect(formatDuration(50 * 3_600_000)).toBe('2 d 2 h');
    expect(formatDuration(-5)).toBe('0 s');
  });

  it('says how long ago', () => {
    expect(formatAgo(10_000, 22_000)).toBe('12 s ago');
    expect(formatAgo(82_000, 22_000)).toBe('in 1 min');
    expect(formatAgo(21_500, 22_000)).toBe('just now');
    expect(formatAgo(null, 22_000)).toBe('never');
  });

  it('parses the API times', () => {
    expect(parseIso('2026-11-30T03:12:00.330Z')).toBe(Date.UTC(2026, 10, 30, 3, 12, 0, 330));
    expect(parseIso(null)).toBeNull();
    expect(parseIso('nonsense')).toBeNull();
  });
});

describe('chart ticks', () => {
  it('labels axes in the unit of the magnitude', () => {
    expect(formatPowerTick(0, 'en-US')).toBe('0');
    expect(formatPowerTick(500, 'en-US')).toBe('500 W');
    expect(formatPowerTick(1500, 'en-US')).toBe('1.5 kW');
    expect(formatPowerTick(-2_000_000, 'en-US')).toBe('-2 MW');
    expect(formatPowerTick(12_500, 'en-US')).toBe('12.5 kW');
  });
});
