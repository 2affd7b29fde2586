/** Test data shared by the control tests; no I/O. */
import { aggregateTopic, encodeJson, validateAlertRules, type AggregateSnapshot, type AlertRulesConfig } from '../protocol/index.ts';
import type { FeedableLiveView } from './live-view.ts';

/** 2024-03-01T12:00:00Z */
export const T0 = Date.UTC(2024, 2, 1, 12, 0, 0);

/** A live aggregate as ingest publishes it, with the given coverage. */
export function makeSnapshot(
  level: AggregateSnapshot['level'],
  id: string,
  ts: number,
  coverage: { devicesReporting: number; devicesTotal: number },
): AggregateSnapshot {
  const { devicesReporting, devicesTotal } = coverage;
  return {
    level,
    id,
    ts,
    windowMs: 30_000,
    coverage: { devicesReporting, devicesTotal, ratio: devicesTotal === 0 ? 0 : devicesReporting / devicesTotal },
    metrics: {
      batteryPowerW: 2_000 * devicesReporting,
      solarPowerW: 1_500,
      gridPowerW: -500,
      loadW: 1_000,
      energyWh: 6_000 * devicesReporting,
      capacityWh: 13_500 * devicesReporting,
      socPct: devicesReporting === 0 ? null : 44.4,
    },
  };
}

/** Feeds a snapshot to the live view as the MQTT message it would be. */
export function publishSnapshot(live: FeedableLiveView, snapshot: AggregateSnapshot): void {
  live.apply(aggregateTopic(snapshot.level, snapshot.id), encodeJson(snapshot));
}

/** The alert rules of the control tests: one rule of each kind and two routes, checked as a rules file would be. */
export const ALERT_RULES: AlertRulesConfig = (() => {
  const checked = validateAlertRules({
    flapWindowSeconds: 120,
    routes: [{ integration: 'pagerduty', severities: ['critical'] }, { integration: 'slack', subjectKinds: ['site', 'region'], ruleIds: ['site-coverage'] }],
    rules: [
      {
        id: 'battery-overheat',
        severity: 'critical',
        subject: 'device',
        filter: { deviceTypes: ['battery'] },
        summary: 'Battery {subjectId} is overheating: {value} °C',
        threshold: { metric: 'tempC', above: 55, forSeconds: 30, clearBelow: 50 },
      },
      {
        id: 'soc-implausible-change',
        severity: 'warning',
        subject: 'device',
        summary: 'State of charge of {subjectId} jumps',
        rateOfChange: { metric: 'socPct', powerMetric: 'powerW', capacityMetric: 'capacityWh', tolerance: 1.5, slackPerMinute: 1 },
      },
      {
        id: 'soc-frozen',
        severity: 'warning',
        subject: 'device',
        summary: 'State of charge of {subjectId} stuck at {value} %',
        frozen: { metric: 'socPct', forSeconds: 300, onlyWhile: { metric: 'powerW', absAtLeast: 500 } },
      },
      { id: 'device-offline', severity: 'warning', subject: 'device', summary: '{subjectId} is offline', offline: { forSeconds: 15 } },
      { id: 'device-stale', severity: 'info', subject: 'device', summary: '{subjectId} is silent', stale: { forSeconds: 0 }, flapWindowSeconds: 0 },
      {
        id: 'site-coverage',
        severity: 'warning',
        subject: 'site',
        filter: { regions: ['north'] },
        summary: 'Only part of {subjectId} reports',
        threshold: { metric: 'coverage', below: 0.5, forSeconds: 60 },
      },
    ],
  });
  if (!checked.ok) throw new Error(`test alert rules: ${checked.problems.join('; ')}`);
  return checked.config;
})();
