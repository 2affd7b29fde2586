/**
 * What feeds the stream's topics, only while someone watches them:
 *
 * - live aggregates (fleet, region and site topics) come from the live view,
 *   itself fed by the aggregates ingest publishes on MQTT, coalesced to at
 *   most one per entity per `minIntervalMs` whatever their rate;
 * - a site's devices, a device and a dispatch are read from the stores every
 *   `pollMs` (one read per watched topic, not per client) and published
 *   when they changed, so they show committed state only;
 * - alert transitions are followed in the alert store by their seq, every
 *   `pollMs`, told to integrations or not;
 * - the sites table gets the rows of the sites overview that changed, every
 *   `sitesIntervalMs`.
 *
 * A read that fails (the store busy or gone) is counted and tried again at
 * the next tick; it never ends a source.
 */
import { Observable, filter, interval, type SchedulerLike, type Subscription } from 'rxjs';
import type { Logger } from 'pino';
import type { AggregateSnapshot } from '../../protocol/index.ts';
import type { ControlDeps } from '../deps.ts';
import { presentAlert, presentAlertTransition } from '../presenters/alert.ts';
import { presentDevices, presentDeviceTwin } from '../presenters/device.ts';
import { queryDeviceControl, queryDeviceControls } from '../queries/commands.ts';
import { queryDispatch } from '../queries/dispatches.ts';
import { querySitesOverview, type SitesOverviewColumns } from '../queries/sites-overview.ts';
import { coalesceLatest } from './coalesce.ts';
import type { StateEvent, StreamHub } from './hub.ts';
import { aggregateTopics, parseTopics, type ParsedTopic, type TopicKind } from './topics.ts';

export type StreamSourceDeps = Pick<ControlDeps, 'registry' | 'twins' | 'commands' | 'dispatches' | 'alerts' | 'live' | 'clock'>;

export interface StreamSourceOptions {
  minIntervalMs: number;
  pollMs: number;
  sitesIntervalMs: number;
  scheduler?: SchedulerLike;
  logger?: Logger;
}

/** Topics fed by live aggregates. */
const AGGREGATE_KINDS: ReadonlySet<TopicKind> = new Set(['fleet', 'region', 'site']);

/** Most alert transitions published per poll; the rest follow at the next ones. */
const ALERT_TRANSITIONS_PER_POLL = 200;

export class StreamSources {
  private readonly subscriptions: Subscription[] = [];
  /** JSON of the latest state published per polled topic, to publish changes only. */
  private readonly lastPublished = new Map<string, string>();
  private alertsAfterSeq = 0;
  /** Row signature per site id, as last published on the sites topic. */
  private siteRows = new Map<string, string>();
  private failedReads = 0;
  private aggregates: Subscription | undefined;
  /** The topics the hub holds, parsed once when they became active. */
  private readonly active = new Map<string, ParsedTopic>();

  constructor(
    private readonly hub: StreamHub,
    private readonly deps: StreamSourceDeps,
    private readonly options: StreamSourceOptions,
  ) {}

  start(): void {
    this.subscriptions.push(
      interval(this.options.pollMs, this.options.scheduler).subscribe(() => this.poll()),
      interval(this.options.sitesIntervalMs, this.options.scheduler).subscribe(() => {
        if (this.hub.hasTopic('sites')) this.read('sites', () => this.publishSiteChanges());
      }),
    );
  }

  /** Follows the live view's aggregates while a fleet, region or site topic is held. */
  private followAggregates(): void {
    if (this.aggregates !== undefined) return;
    const { live } = this.deps;
    const aggregates$ = new Observable<AggregateSnapshot>((subscriber) => live.onAggregate((snapshot) => subscriber.next(snapshot)));
    this.aggregates = aggregates$
      .pipe(
        filter((s) => aggregateTopics(s.level, s.id).some((topic) => this.hub.hasTopic(topic))),
        coalesceLatest((s) => `${s.level}/${s.id}`, this.options.minIntervalMs, this.options.scheduler),
      )
      .subscribe({
        next: (snapshot) => {
          for (const topic of aggregateTopics(snapshot.level, snapshot.id)) this.hub.publish(topic, 'aggregate', { snapshot });
        },
        error: (error: unknown) => {
          this.failedReads++;
          this.aggregates = undefined;
          this.options.logger?.error({ err: error }, 'stream: following live aggregates failed; followed again when a topic needs them');
        },
      });
  }

  stop(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
    this.aggregates?.unsubscribe();
    this.aggregates = undefined;
  }

  /** Reads that failed so far (each tried again at the next tick). */
  failures(): number {
    return this.failedReads;
  }

  /** A topic got its first client: remember where its changes start. */
  topicActive(name: string): void {
    const topic = parseTopic(name);
    this.active.set(name, topic);
    if (AGGREGATE_KINDS.has(topic.kind)) this.followAggregates();
    if (topic.kind === 'alerts') this.read(name, () => (this.alertsAfterSeq = this.deps.alerts.latestTransitionSeq()));
    if (topic.kind === 'sites') this.read(name, () => (this.siteRows = siteRowSignatures(querySitesOverview(this.deps))));
  }

  topicGone(name: string): void {
    this.active.delete(name);
    this.lastPublished.delete(name);
    if (name === 'sites') this.siteRows.clear();
    if (![...this.active.values()].some((other) => AGGREGATE_KINDS.has(other.kind))) {
      this.aggregates?.unsubscribe();
      this.aggregates = undefined;
    }
  }

  /** The current state of a topic, sent first to a fresh client. */
  stateOf(name: string): StateEvent[] {
    const topic = this.active.get(name) ?? parseTopic(name);
    const { live } = this.deps;
    switch (topic.kind) {
      case 'fleet': {
        const snapshots = [live.getAggregate('fleet', 'fleet'), ...live.listAggregates('region')];
        return snapshots.filter((s) => s !== undefined).map((snapshot) => ({ type: 'aggregate', data: { snapshot } }));
      }
      case 'region':
      case 'site': {
        const snapshot = live.getAggregate(topic.kind, topic.id!);
        const events: StateEvent[] = snapshot ? [{ type: 'aggregate', data: { snapshot } }] : [];
        if (topic.kind === 'site') events.push(...this.polledState(topic));
        return events;
      }
      case 'device':
      case 'dispatch':
        return this.polledState(topic);
      default:
        return [];
    }
  }

  private polledState(topic: ParsedTopic): StateEvent[] {
    const event = this.read(topic.name, () => this.readPolled(topic));
    if (event === undefined) return [];
    this.lastPublished.set(topic.name, JSON.stringify(event.data));
    return [event];
  }

  private readPolled(topic: ParsedTopic): StateEvent | undefined {
    const deps = this.deps;
    const id = topic.id!;
    if (topic.kind === 'site') {
      const devices = deps.registry.listDevices({ siteId: id });
      const states = deps.twins.listDeviceStates(devices.map((d) => d.id));
      return { type: 'site-devices', data: { devices: presentDevices(devices, states, queryDeviceControls(deps, devices, states), presentDeviceTwin) } };
    }
    if (topic.kind === 'device') {
      const device = deps.registry.getDevice(id);
      if (!device) return undefined;
      const state = deps.twins.getDeviceState(id);
      return { type: 'device', data: { device: presentDeviceTwin(device, state, queryDeviceControl(deps, device, state)) } };
    }
    if (topic.kind === 'dispatch') {
      if (!deps.dispatches.getDispatch(id)) return undefined;
      return { type: 'dispatch', data: { dispatch: queryDispatch(deps, id) } };
    }
    return undefined;
  }

  private poll(): void {
    for (const [name, topic] of this.active) {
      if (topic.kind === 'alerts') {
        this.read(name, () => this.publishAlertTransitions());
      } else if (topic.kind === 'site' || topic.kind === 'device' || topic.kind === 'dispatch') {
        const event = this.read(name, () => this.readPolled(topic));
        if (event === undefined) continue;
        const json = JSON.stringify(event.data);
        if (this.lastPublished.get(name) === json) continue;
        this.lastPublished.set(name, json);
        this.hub.publish(name, event.type, event.data);
      }
    }
  }

  private publishAlertTransitions(): void {
    const events = this.deps.alerts.transitionsAfter(this.alertsAfterSeq, ALERT_TRANSITIONS_PER_POLL);
    for (const event of events) {
      this.alertsAfterSeq = event.transition.seq;
      this.hub.publish('alerts', 'alert', { alert: presentAlert(event.alert), transition: presentAlertTransition(event.transition) });
    }
  }

  private publishSiteChanges(): void {
    const columns = querySitesOverview(this.deps);
    const rows = siteRowSignatures(columns);
    const changed: number[] = [];
    columns.id.forEach((id, index) => {
      if (this.siteRows.get(id) !== rows.get(id)) changed.push(index);
    });
    this.siteRows = rows;
    if (changed.length > 0) this.hub.publish('sites', 'sites', { columns: pickRows(columns, changed) });
  }

  private read<T>(what: string, read: () => T): T | undefined {
    try {
      return read();
    } catch (error) {
      this.failedReads++;
      this.options.logger?.warn({ err: error, topic: what }, 'stream: reading a topic failed; tried again at the next tick');
      return undefined;
    }
  }
}

function parseTopic(name: string): ParsedTopic {
  const parsed = parseTopics(name);
  // Topics reach the hub only after the route parsed them.
  if ('problem' in parsed) throw new Error(`stream: topic '${name}' was not validated: ${parsed.problem}`);
  return parsed.topics[0]!;
}

/**
 * One string per site of everything its row shows but its update time (a
 * new aggregate of the same values is no change), to tell which rows changed.
 */
function siteRowSignatures(columns: SitesOverviewColumns): Map<string, string> {
  const fields = (Object.keys(columns) as (keyof SitesOverviewColumns)[]).filter((field) => field !== 'updatedAt');
  const rows = new Map<string, string>();
  columns.id.forEach((id, index) => {
    rows.set(id, fields.map((field) => String(columns[field][index])).join('\u0001'));
  });
  return rows;
}

/** The columns of the given rows only. */
export function pickRows(columns: SitesOverviewColumns, indexes: readonly number[]): SitesOverviewColumns {
  const picked: Record<string, unknown[]> = {};
  for (const [field, values] of Object.entries(columns) as [string, unknown[]][]) picked[field] = indexes.map((i) => values[i]);
  return picked as unknown as SitesOverviewColumns;
}
