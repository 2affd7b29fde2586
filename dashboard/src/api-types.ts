/**
 * The shapes the dashboard reads from the control API (control/README.md and
 * the dashboard contract), written from the browser's side. Types only;
 * protocol's types are imported as types, so nothing of protocol/ (TypeBox,
 * its compiled validators) reaches the bundle.
 */
import type {
  AggregateSnapshot,
  AlertRule,
  AlertSeverity,
  AlertState,
  AlertSubjectKind,
  AlertTransitionKind,
  CommandState,
  CommandType,
  DeviceType,
  DispatchState,
  DispatchTarget,
} from '../../protocol/index.ts';

export type { AggregateSnapshot, AlertRule, AlertSeverity, AlertState, DispatchState, DispatchTarget, DeviceType };
export type AggregateMetricName = keyof AggregateSnapshot['metrics'];
export type Role = 'viewer' | 'operator' | 'admin';

export interface Me {
  name: string;
  role: Role;
}

export interface ApiErrorBody {
  code: string;
  message: string;
  plan?: PlannedDispatch;
}

export interface FleetLive {
  fleet: AggregateSnapshot | null;
  regions: AggregateSnapshot[];
}

export interface ColumnSeries {
  metric: string;
  ts: number[];
  mean: number[];
  min: number[];
  max: number[];
  last: number[];
  count: number[];
  devicesReporting?: number[];
  devicesTotal?: number[];
  coverage?: number[];
}

export interface ColumnHistory {
  kind: 'site' | 'region' | 'fleet';
  id: string;
  resolution: Resolution;
  from: string;
  to: string;
  format: 'columns';
  series: ColumnSeries[];
}

export type Resolution = '1m' | '5m' | '15m' | '1h';

export interface SitesOverviewColumns {
  id: string[];
  name: string[];
  region: string[];
  devicesTotal: number[];
  devicesReporting: number[];
  socPct: (number | null)[];
  batteryPowerW: number[];
  solarPowerW: number[];
  gridPowerW: number[];
  loadW: number[];
  openAlerts: number[];
  criticalAlerts: number[];
  updatedAt: (number | null)[];
}

export interface SitesOverview {
  at: string;
  count: number;
  columns: SitesOverviewColumns;
}

export type Presence = 'online' | 'stale' | 'offline';

export interface DesiredControl {
  commandId: string;
  type: CommandType;
  params: Record<string, unknown>;
  state: 'pending' | 'sent' | 'accepted';
  until: string;
}

export interface ReportedControl {
  mode?: string;
  setpointW?: number | null;
  curtailW?: number | null;
  commandId?: string | null;
  until?: string | null;
}

export interface DeviceControl {
  desired: DesiredControl | null;
  reported: ReportedControl | null;
  agree: boolean | null;
}

export interface DeviceTwin {
  id: string;
  type: DeviceType;
  siteId: string;
  createdAt: string;
  revoked: boolean;
  revokedAt: string | null;
  online: boolean;
  presence: Presence;
  presenceSince: string | null;
  lastSeen: string | null;
  lastSeenMs: number | null;
  lastTs: number | null;
  lastSeq: number | null;
  control: DeviceControl;
  metrics: Record<string, number>;
  status: Record<string, unknown> | null;
}

export interface SiteDetail {
  id: string;
  region: string;
  name: string;
  deviceCount: number;
  live: AggregateSnapshot | null;
  devices: DeviceTwin[];
}

export interface Alert {
  id: string;
  ruleId: string;
  severity: AlertSeverity;
  subjectKind: AlertSubjectKind;
  subjectId: string;
  state: AlertState;
  summary: string;
  value: number | null;
  labels: Record<string, string>;
  openedAt: string;
  firedAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  acknowledgeNote: string | null;
  resolvedAt: string | null;
  resolvedBy: string | null;
  resolveReason: string | null;
  reopenCount: number;
}

export interface AlertTransition {
  seq: number;
  kind: AlertTransitionKind;
  at: string;
  actor: string;
  note: string | null;
  notify: boolean;
}

export interface AlertWithTransitions extends Alert {
  transitions: AlertTransition[];
}

export interface AlertRules {
  rules: AlertRule[];
}

export interface AlertPage {
  alerts: Alert[];
  next: string | null;
}

export interface DispatchPlanFields {
  feasible: boolean;
  availableW: number;
  shortfallW: number;
  marginW: number;
  marginWh: number;
  devicesUsed: number;
  explanation: string;
}

export interface PlannedDispatch extends DispatchPlanFields {
  setpoints: Record<string, number>;
}

export interface DispatchSummary {
  id: string;
  target: DispatchTarget;
  powerW: number;
  startAt: string;
  endAt: string;
  durationSeconds: number;
  state: DispatchState;
  allowPartial: boolean;
  createdAt: string;
  updatedAt: string;
  reason: string | null;
  plan: DispatchPlanFields;
}

export interface DispatchAllocation {
  deviceId: string;
  setpointW: number | null;
  command: { id: string; state: CommandState | string; reason: string | null } | null;
}

export interface DispatchSample {
  at: string;
  targetW: number;
  measuredW: number;
  confidence: number;
}

export interface Dispatch extends DispatchSummary {
  allocation: DispatchAllocation[];
  measured: DispatchSample[];
  energy: { requestedWh: number; deliveredWh: number; shareDelivered: number };
  tracking: { latestErrorW: number | null; meanAbsErrorPct: number | null; confidence: number | null };
}

export interface DispatchPage {
  dispatches: DispatchSummary[];
  next: string | null;
}

export interface DispatchBody {
  target: DispatchTarget;
  powerW: number;
  durationSeconds: number;
  startAt?: string;
  allowPartial?: boolean;
}

export interface StreamTicket {
  ticket: string;
  expiresAt: string;
}

/** Events of the live stream, by `event:` name (the dashboard contract). */
export interface StreamEventData {
  aggregate: { topic: string; snapshot: AggregateSnapshot };
  'site-devices': { topic: string; devices: DeviceTwin[] };
  device: { topic: string; device: DeviceTwin };
  alert: { topic: string; alert: Alert; transition: AlertTransition };
  dispatch: { topic: string; dispatch: Dispatch };
  sites: { topic: string; columns: Partial<SitesOverviewColumns> };
  reset: { topic: string; reason: string };
}
export type StreamEventName = keyof StreamEventData;
