/**
 * Alerting as part of the ingest service: the rule engine fed with what the
 * pipeline committed, the live aggregates and a clock tick, its decisions
 * stored through the AlertStore port (rule state, alert transitions and the
 * notification outbox in one transaction), and `onEvents` told of every
 * stored transition (the process wakes its notifier with it).
 *
 * At start the engine resumes from the saved rule states; states of rules
 * no longer in the rules file are removed and their open alerts resolved
 * ("rule removed"), so nothing stays open that nothing can clear.
 *
 * Lifecycle: `input` may be called until `stop()`; `stop()` stops the tick,
 * then waits until every queued output is stored (a store that stays down
 * is given up on after `stopTimeoutMs`: the engine's state for what was not
 * stored is lost, and the next samples raise it again).
 */
import { merge, Subject, takeUntil, type SchedulerLike } from 'rxjs';
import type { Logger } from 'pino';
import { RULE_ACTOR, type AlertEvent, type AlertRule } from '../../protocol/index.ts';
import { StoreError, type AlertStore } from '../../store/types.ts';
import type { IngestCounters } from '../counters.ts';
import { applyRules, ruleTicks$, storeRuleOutputs } from './evaluate-rules.ts';
import { RuleEngine, type RuleEngineDeps, type RuleInput } from './rule-engine.ts';

export interface AlertingOptions {
  rules: readonly AlertRule[];
  alerts: AlertStore;
  deps: RuleEngineDeps;
  counters: IngestCounters;
  clock: () => number;
  logger: Logger;
  /** How often presence rules are checked. */
  tickMs: number;
  /** See RuleEngineDeps.startupGraceMs: from this start, presence rules do not fire and aggregates are not judged for this long. */
  startupGraceMs: number;
  retryDelayMs: number;
  stopTimeoutMs: number;
  onEvents?(events: readonly AlertEvent[]): void;
  scheduler?: SchedulerLike;
}

export interface Alerting {
  readonly engine: RuleEngine;
  input(input: RuleInput): void;
  stop(): Promise<void>;
}

export function startAlerting(options: AlertingOptions): Alerting {
  const { alerts, counters, logger } = options;
  const saved = alerts.loadRuleStates();
  retireRemovedRules(options, saved.length > 0 ? RuleEngine.orphanStates(options.rules, saved) : []);
  const engine = new RuleEngine(options.rules, { ...options.deps, startedAtMs: options.clock(), startupGraceMs: options.startupGraceMs }, saved);
  const inputs = new Subject<RuleInput>();
  const stopTicks = new Subject<void>();
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const subscription = merge(inputs, ruleTicks$(options.tickMs, options.clock, options.scheduler).pipe(takeUntil(stopTicks)))
    .pipe(
      applyRules(engine),
      storeRuleOutputs({
        apply: (output) => {
          counters.alertSignals += output.signals.length;
          return alerts.applyRuleResults(output);
        },
        isTransient: (error) => error instanceof StoreError && error.code === 'unavailable',
        retryDelayMs: options.retryDelayMs,
        maxRetryDelayMs: 30_000,
        onRetry: (error, attempt) => {
          counters.alertWriteFailures++;
          logger.error({ err: error, attempt }, 'storing alert decisions failed; retrying');
        },
        onRefused: (error, output) => {
          counters.alertOutputsRefused++;
          logger.error({ err: error, signals: output.signals.length }, 'the store refused alert decisions; they are lost');
        },
        scheduler: options.scheduler,
      }),
    )
    .subscribe({
      next: (events) => {
        counters.alertTransitions += events.length;
        if (events.length > 0) options.onEvents?.(events);
      },
      error: (error: unknown) => {
        logger.error({ err: error }, 'alerting stopped');
        resolveDone();
      },
      complete: () => resolveDone(),
    });
  return {
    engine,
    input: (input) => inputs.next(input),
    async stop() {
      stopTicks.next();
      inputs.complete();
      let timeout: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([done, new Promise<void>((resolve) => (timeout = setTimeout(resolve, options.stopTimeoutMs)))]);
      clearTimeout(timeout);
      subscription.unsubscribe();
    },
  };
}

function retireRemovedRules(options: AlertingOptions, orphans: ReturnType<typeof RuleEngine.orphanStates>): void {
  const known = new Set(options.rules.map((r) => r.id));
  const events: AlertEvent[] = [];
  for (const alert of options.alerts.listOpenAlerts()) {
    if (known.has(alert.ruleId)) continue;
    events.push(options.alerts.resolveAlert(alert.id, { actor: RULE_ACTOR, reason: 'rule removed from the rules file', atMs: options.clock() }));
  }
  if (orphans.length > 0) options.alerts.applyRuleResults({ signals: [], remove: orphans });
  if (events.length > 0) {
    options.logger.info({ alerts: events.length }, 'resolved open alerts of rules no longer configured');
    options.onEvents?.(events);
  }
}
