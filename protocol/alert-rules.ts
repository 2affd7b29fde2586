/**
 * Alert rules: the shape of the rules file (VPP_ALERT_RULES, YAML or JSON)
 * and its validation. Pure: the caller reads and parses the file; this
 * checks the parsed value and reports every problem at once, each with its
 * path (`rules[2].threshold.above: …`), so an operator fixes the file in one
 * go. Ingest evaluates the rules, control lists them, notifications route
 * by them.
 */
import { ALERT_SEVERITIES, ALERT_SUBJECT_KINDS, type AlertSeverity, type AlertSubjectKind } from './alerts.ts';
import { DEVICE_TYPES, METRIC_NAME_PATTERN, type DeviceType } from './metrics.ts';

export const RULE_ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,63}$';
export const MAX_RULES = 200;
export const MAX_RULE_SECONDS = 7 * 86_400;
/** Summary placeholders: `{name}` is replaced when the alert fires. */
export const SUMMARY_PLACEHOLDERS = ['ruleId', 'subjectId', 'subjectKind', 'value', 'deviceType', 'siteId', 'region', 'severity'] as const;
export const DEFAULT_FLAP_WINDOW_SECONDS = 300;
export const NOTIFICATION_INTEGRATIONS = ['webhook', 'slack', 'pagerduty', 'alertmanager'] as const;
export type NotificationIntegration = (typeof NOTIFICATION_INTEGRATIONS)[number];

/** Aggregate metrics a site/region/fleet rule may watch; `coverage` is devicesReporting / devicesTotal (0..1). */
export const AGGREGATE_RULE_METRICS = ['batteryPowerW', 'solarPowerW', 'gridPowerW', 'loadW', 'energyWh', 'capacityWh', 'socPct', 'coverage'] as const;

/**
 * The condition holds while the value is beyond `above` (or `below`); it
 * fires once it has held for `forSeconds`, and clears once the value is
 * back past `clearBelow` (or `clearAbove`), the hysteresis bound, which
 * defaults to the firing bound. Device rules read a device metric from its
 * samples (sample time); site, region and fleet rules read the live
 * aggregates (platform time).
 */
export interface ThresholdCondition {
  metric: string;
  above?: number;
  below?: number;
  clearBelow?: number;
  clearAbove?: number;
  forSeconds: number;
}

/**
 * The metric moves faster than allowed between two consecutive samples.
 * Either a fixed bound (`maxPerMinute`), or, for state of charge, what the
 * battery's power allows: |Δmetric| per minute may not exceed
 * `tolerance` × 100 × max(|power|) / capacity × 60 / 3600 + `slackPerMinute`,
 * with power and capacity read from `powerMetric` and `capacityMetric` of
 * the same samples. A change of at most `noise` (in the metric's unit) is
 * always allowed, so a reading's rounding between two close samples does
 * not look like a jump. Fires on the first implausible interval; clears on
 * the next plausible one.
 */
export interface RateOfChangeCondition {
  metric: string;
  maxPerMinute?: number;
  powerMetric?: string;
  capacityMetric?: string;
  tolerance: number;
  slackPerMinute: number;
  noise: number;
}

/**
 * The metric has kept exactly the same value for `forSeconds` while the
 * device reports (sample time). With `onlyWhile`, only while |that metric|
 * is at least `absAtLeast` (a state of charge that does not move while
 * power flows is a stuck sensor; one that does not move at rest is not).
 */
export interface FrozenCondition {
  metric: string;
  forSeconds: number;
  onlyWhile?: { metric: string; absAtLeast: number };
}

/** The device has been offline (or stale: connected but silent) for `forSeconds` (platform time); coming back clears it. */
export interface PresenceCondition {
  forSeconds: number;
}

export interface RuleFilter {
  deviceTypes?: DeviceType[];
  regions?: string[];
  siteIds?: string[];
}

interface RuleBase {
  id: string;
  severity: AlertSeverity;
  subject: AlertSubjectKind;
  filter: RuleFilter;
  summary: string;
  /** See RuleSignal.flapWindowMs in store/types.ts. */
  flapWindowSeconds: number;
}

export type AlertRule = RuleBase &
  (
    | { kind: 'threshold'; threshold: ThresholdCondition }
    | { kind: 'rateOfChange'; rateOfChange: RateOfChangeCondition }
    | { kind: 'frozen'; frozen: FrozenCondition }
    | { kind: 'offline'; offline: PresenceCondition }
    | { kind: 'stale'; stale: PresenceCondition }
  );
export type AlertRuleKind = AlertRule['kind'];
export const ALERT_RULE_KINDS: readonly AlertRuleKind[] = ['threshold', 'rateOfChange', 'frozen', 'offline', 'stale'];

export interface NotificationRoute {
  integration: NotificationIntegration;
  severities?: AlertSeverity[];
  subjectKinds?: AlertSubjectKind[];
  ruleIds?: string[];
}

export interface AlertRulesConfig {
  rules: AlertRule[];
  /** With no route naming an integration, a configured integration gets every alert. */
  routes: NotificationRoute[];
}

export type RulesValidation = { ok: true; config: AlertRulesConfig } | { ok: false; problems: string[] };

/** Checks a parsed rules file. Unknown keys are problems too, to catch typos. */
export function validateAlertRules(input: unknown): RulesValidation {
  const problems: string[] = [];
  const at = (path: string, message: string) => problems.push(`${path}: ${message}`);
  if (!isRecord(input)) return { ok: false, problems: ['the rules file must be an object with a "rules" list'] };
  checkKeys(input, ['rules', 'routes', 'flapWindowSeconds'], '', at);
  const defaultFlap = input.flapWindowSeconds === undefined ? DEFAULT_FLAP_WINDOW_SECONDS : seconds(input.flapWindowSeconds, 'flapWindowSeconds', at);
  const rules: AlertRule[] = [];
  if (!Array.isArray(input.rules)) at('rules', 'must be a list');
  else if (input.rules.length > MAX_RULES) at('rules', `at most ${MAX_RULES} rules`);
  else {
    const seen = new Set<string>();
    input.rules.forEach((raw: unknown, index) => {
      const rule = checkRule(raw, `rules[${index}]`, defaultFlap ?? DEFAULT_FLAP_WINDOW_SECONDS, at);
      const id = isRecord(raw) && typeof raw.id === 'string' ? raw.id : undefined;
      if (id !== undefined && seen.has(id)) at(`rules[${index}].id`, `"${id}" is used by an earlier rule`);
      if (id !== undefined) seen.add(id);
      if (rule) rules.push(rule);
    });
  }
  const routes: NotificationRoute[] = [];
  if (input.routes !== undefined) {
    if (!Array.isArray(input.routes)) at('routes', 'must be a list');
    else input.routes.forEach((raw: unknown, index) => {
      const route = checkRoute(raw, `routes[${index}]`, at);
      if (route) routes.push(route);
    });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config: { rules, routes } };
}

type Report = (path: string, message: string) => void;

function checkRule(raw: unknown, path: string, defaultFlap: number, at: Report): AlertRule | undefined {
  if (!isRecord(raw)) {
    at(path, 'must be an object');
    return undefined;
  }
  const before = countingReport(at);
  const report = before.report;
  checkKeys(raw, ['id', 'severity', 'subject', 'filter', 'summary', 'flapWindowSeconds', ...ALERT_RULE_KINDS], path, report);
  const id = typeof raw.id === 'string' && new RegExp(RULE_ID_PATTERN).test(raw.id) ? raw.id : undefined;
  if (id === undefined) report(`${path}.id`, `must match ${RULE_ID_PATTERN} (lower-case letters, digits, dashes)`);
  const severity = oneOf(raw.severity, ALERT_SEVERITIES, `${path}.severity`, report);
  const subject = oneOf(raw.subject, ALERT_SUBJECT_KINDS, `${path}.subject`, report);
  const filter = checkFilter(raw.filter, `${path}.filter`, report);
  let summary = '';
  if (typeof raw.summary !== 'string' || raw.summary.length === 0 || raw.summary.length > 500) report(`${path}.summary`, 'must be a text of 1 to 500 characters');
  else {
    summary = raw.summary;
    for (const match of summary.matchAll(/\{([^{}]*)\}/g)) {
      if (!(SUMMARY_PLACEHOLDERS as readonly string[]).includes(match[1]!)) {
        report(`${path}.summary`, `unknown placeholder {${match[1]}}; known: ${SUMMARY_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);
      }
    }
  }
  const flap = raw.flapWindowSeconds === undefined ? defaultFlap : seconds(raw.flapWindowSeconds, `${path}.flapWindowSeconds`, report);
  const kinds = ALERT_RULE_KINDS.filter((kind) => raw[kind] !== undefined);
  if (kinds.length !== 1) {
    report(path, `needs exactly one condition of ${ALERT_RULE_KINDS.join(', ')}${kinds.length > 1 ? ` (has ${kinds.join(', ')})` : ''}`);
    return undefined;
  }
  const kind = kinds[0]!;
  const condPath = `${path}.${kind}`;
  if (kind !== 'threshold' && subject !== undefined && subject !== 'device') report(`${path}.subject`, `a ${kind} rule applies to devices only`);
  if (filter && subject !== undefined && subject !== 'device' && filter.deviceTypes) report(`${path}.filter.deviceTypes`, `applies to device rules only`);
  if (filter && (subject === 'region' || subject === 'fleet') && filter.siteIds) report(`${path}.filter.siteIds`, `applies to device and site rules only`);
  if (filter && subject === 'fleet' && filter.regions) report(`${path}.filter.regions`, `does not apply to fleet rules`);
  const condition = checkCondition(kind, raw[kind], condPath, subject, report);
  if (before.count() > 0 || id === undefined || severity === undefined || subject === undefined || !filter || flap === undefined || !condition) return undefined;
  return { id, severity, subject, filter, summary, flapWindowSeconds: flap, ...condition } as AlertRule;
}

function checkCondition(
  kind: AlertRuleKind,
  raw: unknown,
  path: string,
  subject: AlertSubjectKind | undefined,
  at: Report,
): Partial<AlertRule> | undefined {
  if (!isRecord(raw)) {
    at(path, 'must be an object');
    return undefined;
  }
  const metricOf = (key: string, required = true): string | undefined => {
    const value = raw[key];
    if (value === undefined && !required) return undefined;
    if (subject !== undefined && subject !== 'device' && kind === 'threshold') {
      return oneOf(value, AGGREGATE_RULE_METRICS, `${path}.${key}`, at);
    }
    if (typeof value !== 'string' || !new RegExp(METRIC_NAME_PATTERN).test(value)) {
      at(`${path}.${key}`, 'must be a metric name (camelCase ending in a unit)');
      return undefined;
    }
    return value;
  };
  const num = (key: string): number | undefined => {
    const value = raw[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      at(`${path}.${key}`, 'must be a finite number');
      return undefined;
    }
    return value;
  };
  const forSeconds = (key = 'forSeconds', fallback: number | undefined = 0): number | undefined => {
    const value = raw[key];
    if (value === undefined) {
      if (fallback === undefined) at(`${path}.${key}`, 'is required');
      return fallback;
    }
    return seconds(value, `${path}.${key}`, at);
  };
  switch (kind) {
    case 'threshold': {
      checkKeys(raw, ['metric', 'above', 'below', 'clearBelow', 'clearAbove', 'forSeconds'], path, at);
      const metric = metricOf('metric');
      const above = num('above');
      const below = num('below');
      const clearBelow = num('clearBelow');
      const clearAbove = num('clearAbove');
      const holdSeconds = forSeconds();
      if ((above === undefined) === (below === undefined)) at(path, 'needs exactly one of "above" and "below"');
      if (above !== undefined && clearAbove !== undefined) at(`${path}.clearAbove`, 'goes with "below"; use clearBelow with "above"');
      if (below !== undefined && clearBelow !== undefined) at(`${path}.clearBelow`, 'goes with "above"; use clearAbove with "below"');
      if (above !== undefined && clearBelow !== undefined && clearBelow > above) at(`${path}.clearBelow`, `must be at most above (${above})`);
      if (below !== undefined && clearAbove !== undefined && clearAbove < below) at(`${path}.clearAbove`, `must be at least below (${below})`);
      if (metric === undefined || holdSeconds === undefined) return undefined;
      const threshold: ThresholdCondition = { metric, forSeconds: holdSeconds };
      if (above !== undefined) Object.assign(threshold, { above, clearBelow: clearBelow ?? above });
      if (below !== undefined) Object.assign(threshold, { below, clearAbove: clearAbove ?? below });
      return { kind, threshold };
    }
    case 'rateOfChange': {
      checkKeys(raw, ['metric', 'maxPerMinute', 'powerMetric', 'capacityMetric', 'tolerance', 'slackPerMinute', 'noise'], path, at);
      const metric = metricOf('metric');
      const maxPerMinute = num('maxPerMinute');
      const powerMetric = metricOf('powerMetric', false);
      const capacityMetric = metricOf('capacityMetric', false);
      const tolerance = num('tolerance') ?? 1;
      const slackPerMinute = num('slackPerMinute') ?? 0;
      const noise = num('noise') ?? 0;
      if (noise < 0) at(`${path}.noise`, 'must not be negative');
      const byPower = powerMetric !== undefined || capacityMetric !== undefined;
      if ((maxPerMinute === undefined) === !byPower) at(path, 'needs either "maxPerMinute" or both "powerMetric" and "capacityMetric"');
      if (byPower && (powerMetric === undefined || capacityMetric === undefined)) at(path, '"powerMetric" and "capacityMetric" go together');
      if (maxPerMinute !== undefined && maxPerMinute <= 0) at(`${path}.maxPerMinute`, 'must be positive');
      if (tolerance <= 0) at(`${path}.tolerance`, 'must be positive');
      if (slackPerMinute < 0) at(`${path}.slackPerMinute`, 'must not be negative');
      if (metric === undefined) return undefined;
      const rateOfChange: RateOfChangeCondition = { metric, tolerance, slackPerMinute, noise };
      if (maxPerMinute !== undefined) rateOfChange.maxPerMinute = maxPerMinute;
      if (powerMetric !== undefined) rateOfChange.powerMetric = powerMetric;
      if (capacityMetric !== undefined) rateOfChange.capacityMetric = capacityMetric;
      return { kind, rateOfChange };
    }
    case 'frozen': {
      checkKeys(raw, ['metric', 'forSeconds', 'onlyWhile'], path, at);
      const metric = metricOf('metric');
      const holdSeconds = forSeconds('forSeconds', undefined);
      if (holdSeconds !== undefined && holdSeconds <= 0) at(`${path}.forSeconds`, 'must be positive');
      let onlyWhile: FrozenCondition['onlyWhile'];
      if (raw.onlyWhile !== undefined) {
        const w = raw.onlyWhile;
        if (!isRecord(w) || typeof w.metric !== 'string' || !new RegExp(METRIC_NAME_PATTERN).test(w.metric) || typeof w.absAtLeast !== 'number' || !(w.absAtLeast >= 0)) {
          at(`${path}.onlyWhile`, 'must be { metric: <metric name>, absAtLeast: <number ≥ 0> }');
        } else {
          checkKeys(w, ['metric', 'absAtLeast'], `${path}.onlyWhile`, at);
          onlyWhile = { metric: w.metric, absAtLeast: w.absAtLeast };
        }
      }
      if (metric === undefined || holdSeconds === undefined) return undefined;
      return { kind, frozen: { metric, forSeconds: holdSeconds, ...(onlyWhile ? { onlyWhile } : {}) } };
    }
    case 'offline':
    case 'stale': {
      checkKeys(raw, ['forSeconds'], path, at);
      const holdSeconds = forSeconds();
      if (holdSeconds === undefined) return undefined;
      return kind === 'offline' ? { kind, offline: { forSeconds: holdSeconds } } : { kind, stale: { forSeconds: holdSeconds } };
    }
  }
}

function checkFilter(raw: unknown, path: string, at: Report): RuleFilter | undefined {
  if (raw === undefined) return {};
  if (!isRecord(raw)) {
    at(path, 'must be an object');
    return undefined;
  }
  checkKeys(raw, ['deviceTypes', 'regions', 'siteIds'], path, at);
  const filter: RuleFilter = {};
  let ok = true;
  if (raw.deviceTypes !== undefined) {
    const types = stringList(raw.deviceTypes, `${path}.deviceTypes`, at);
    const known = types?.filter((t): t is DeviceType => (DEVICE_TYPES as readonly string[]).includes(t));
    if (types && known && known.length === types.length) filter.deviceTypes = known;
    else {
      ok = false;
      if (types) at(`${path}.deviceTypes`, `each must be one of ${DEVICE_TYPES.join(', ')}`);
    }
  }
  for (const key of ['regions', 'siteIds'] as const) {
    if (raw[key] === undefined) continue;
    const list = stringList(raw[key], `${path}.${key}`, at);
    if (list) filter[key] = list;
    else ok = false;
  }
  return ok ? filter : undefined;
}

function checkRoute(raw: unknown, path: string, at: Report): NotificationRoute | undefined {
  if (!isRecord(raw)) {
    at(path, 'must be an object');
    return undefined;
  }
  checkKeys(raw, ['integration', 'severities', 'subjectKinds', 'ruleIds'], path, at);
  const integration = oneOf(raw.integration, NOTIFICATION_INTEGRATIONS, `${path}.integration`, at);
  const route: NotificationRoute = { integration: integration ?? 'webhook' };
  let ok = integration !== undefined;
  if (raw.severities !== undefined) {
    const list = stringList(raw.severities, `${path}.severities`, at);
    if (list?.every((s) => (ALERT_SEVERITIES as readonly string[]).includes(s))) route.severities = list as AlertSeverity[];
    else {
      ok = false;
      if (list) at(`${path}.severities`, `each must be one of ${ALERT_SEVERITIES.join(', ')}`);
    }
  }
  if (raw.subjectKinds !== undefined) {
    const list = stringList(raw.subjectKinds, `${path}.subjectKinds`, at);
    if (list?.every((s) => (ALERT_SUBJECT_KINDS as readonly string[]).includes(s))) route.subjectKinds = list as AlertSubjectKind[];
    else {
      ok = false;
      if (list) at(`${path}.subjectKinds`, `each must be one of ${ALERT_SUBJECT_KINDS.join(', ')}`);
    }
  }
  if (raw.ruleIds !== undefined) {
    const list = stringList(raw.ruleIds, `${path}.ruleIds`, at);
    if (list) route.ruleIds = list;
    else ok = false;
  }
  return ok ? route : undefined;
}

function countingReport(at: Report): { report: Report; count: () => number } {
  let count = 0;
  return {
    report: (path, message) => {
      count++;
      at(path, message);
    },
    count: () => count,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(value: Record<string, unknown>, known: readonly string[], path: string, at: Report): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) at(path === '' ? key : `${path}.${key}`, `unknown key; known: ${known.join(', ')}`);
  }
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], path: string, at: Report): T | undefined {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  at(path, `must be one of ${allowed.join(', ')}`);
  return undefined;
}

function seconds(value: unknown, path: string, at: Report): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_RULE_SECONDS) {
    at(path, `must be a number of seconds from 0 to ${MAX_RULE_SECONDS}`);
    return undefined;
  }
  return value;
}

function stringList(value: unknown, path: string, at: Report): string[] | undefined {
  if (!Array.isArray(value) || value.length === 0 || value.length > 1000 || !value.every((v) => typeof v === 'string' && v.length > 0 && v.length <= 64)) {
    at(path, 'must be a non-empty list of up to 1000 names of at most 64 characters');
    return undefined;
  }
  return value as string[];
}

/** Fills a summary template; `{name}` placeholders without a value become an empty string. */
export function fillSummary(template: string, values: Partial<Record<(typeof SUMMARY_PLACEHOLDERS)[number], string>>): string {
  return template.replace(/\{([A-Za-z]+)\}/g, (_, name: string) => values[name as keyof typeof values] ?? '');
}
