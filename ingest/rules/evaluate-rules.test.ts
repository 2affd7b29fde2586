/**
 * The rules in virtual time (RxJS TestScheduler; one frame = 1 ms, so rule
 * durations are given in fractions of a second): each rule type fires after
 * its duration and not before, hysteresis holds an alert until the value is
 * back past the clear bound, presence rules follow ticks, aggregate rules
 * follow snapshots, and an engine rebuilt from the saved states resumes
 * where the first one stood. storeRuleOutputs keeps order through
 * transient store failures and drops what the store refuses.
 */
import { map, of, throwError, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { validateAlertRules, type AggregateSnapshot, type AlertEvent, type AlertRule } from '../../protocol/index.ts';
import { StoreError, type Presence, type RuleSubjectState } from '../../store/types.ts';
import type { DeviceRef } from '../types.ts';
import { applyRules, ruleTicks$, storeRuleOutputs } from './evaluate-rules.ts';
import { RuleEngine, type DevicePresence, type RuleInput, type RuleOutput } from './rule-engine.ts';

const newScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

const BATTERY: DeviceRef = { id: 'b1', type: 'battery', siteId: 's1' };
const METER: DeviceRef = { id: 'm1', type: 'meter', siteId: 's1' };

function rules(...raw: unknown[]): AlertRule[] {
  const result = validateAlertRules({ rules: raw, flapWindowSeconds: 0 });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.config.rules;
}

function engineFor(ruleList: AlertRule[], presences: DevicePresence[] = [], saved: RuleSubjectState[] = []): RuleEngine {
  return new RuleEngine(ruleList, { regionOf: (siteId) => (siteId === 's1' ? 'north' : undefined), presences: () => presences }, saved);
}

/** Signals as `fire:<subject>=<value>` / `clear:<subject>`. */
function signalsOf(output: RuleOutput): string {
  return output.signals.map((s) => (s.signal === 'fire' ? `fire:${s.subjectId}=${s.value}` : `clear:${s.subjectId}`)).join(',');
}

type Make = (nowMs: number) => RuleInput;
const sample = (device: DeviceRef, metrics: Record<string, number>): Make => (ts) => ({ kind: 'samples', samples: [{ device, ts, metrics }] });

function run(scheduler: TestScheduler, engine: RuleEngine, input$: Observable<Make>): Observable<string> {
  return input$.pipe(
    map((make) => make(scheduler.now())),
    applyRules(engine),
    map(signalsOf),
  );
}

const overheat = {
  id: 'hot',
  severity: 'critical',
  subject: 'device',
  filter: { deviceTypes: ['battery'] },
  summary: '{subjectId} at {value} °C in {region}',
  threshold: { metric: 'tempC', above: 55, clearBelow: 50, forSeconds: 0.03 },
};

describe('threshold rules (marbles)', () => {
  it('fire once the condition has held for the duration, not before', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const engine = engineFor(rules(overheat));
      const t = (tempC: number) => sample(BATTERY, { tempC });
      // Hot from 10 ms: pending at 10, 20 and 30 ms (20 ms held), fires at 40 (30 ms held).
      const input$ = cold('a 9ms b 9ms c 9ms d 9ms e 9ms f', { a: t(40), b: t(56), c: t(57), d: t(58), e: t(59), f: t(60) });
      expectObservable(run(scheduler, engine, input$).pipe(map((s) => s || 'state'))).toBe('- 9ms a 9ms - 9ms - 9ms b', {
        a: 'state',
        b: 'fire:b1=59',
      });
    });
  });

  it('start the duration again when the value dips back in between', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const engine = engineFor(rules(overheat));
      const t = (tempC: number) => sample(BATTERY, { tempC });
      const input$ = cold('a 9ms b 9ms c 9ms d 9ms e 9ms f 9ms g', { a: t(56), b: t(57), c: t(54), d: t(56), e: t(57), f: t(58), g: t(59) });
      // Pending at 0, idle at 20, pending again at 30, fires at 60 (30 ms held since 30).
      expectObservable(run(scheduler, engine, input$).pipe(map((s) => s || 'state'))).toBe('a 19ms a 9ms a 29ms b', {
        a: 'state',
        b: 'fire:b1=59',
      });
    });
  });

  it('hold the alert until the value is back below the clear bound (hysteresis)', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const engine = engineFor(rules({ ...overheat, threshold: { metric: 'tempC', above: 55, clearBelow: 50, forSeconds: 0 } }));
      const t = (tempC: number) => sample(BATTERY, { tempC });
      const input$ = cold('a 9ms b 9ms c 9ms d 9ms e', { a: t(56), b: t(54), c: t(51), d: t(49.5), e: t(56) });
      expectObservable(run(scheduler, engine, input$)).toBe('a 29ms b 9ms c', { a: 'fire:b1=56', b: 'clear:b1', c: 'fire:b1=56' });
    });
  });

  it('ignore devices the filter leaves out and samples without the metric', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const engine = engineFor(rules({ ...overheat, threshold: { metric: 'tempC', above: 55, forSeconds: 0 } }));
      const input$ = cold('a 9ms b', { a: sample(METER, { tempC: 80 }), b: sample(BATTERY, { socPct: 80 }) });
      expectObservable(run(scheduler, engine, input$)).toBe('');
    });
  });

  it('fill the summary template with the subject, the value and its labels', () => {
    const engine = engineFor(rules({ ...overheat, threshold: { metric: 'tempC', above: 55, forSeconds: 0 } }));
    const output = engine.step({ kind: 'samples', samples: [{ device: BATTERY, ts: 1, metrics: { tempC: 61.23456 } }] });
    expect(output.signals[0]).toMatchObject({
      summary: 'b1 at 61.235 °C in north',
      severity: 'critical',
      subjectKind: 'device',
      labels: { deviceType: 'battery', siteId: 's1', region: 'north' },
    });
  });
});

describe('rate-of-change rules (marbles)', () => {
  const socRate = {
    id: 'soc-rate',
    severity: 'warning',
    subject: 'device',
    summary: '{value} %/min',
    rateOfChange: { metric: 'socPct', powerMetric: 'powerW', capacityMetric: 'capacityWh', tolerance: 1.5, slackPerMinute: 0, noise: 0.5 },
  };

  it('fire when the state of charge moves faster than the power allows, clear on the next plausible interval', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const engine = engineFor(rules(socRate));
      const s = (socPct: number) => sample(BATTERY, { socPct, powerW: 6000, capacityWh: 10_000 });
      // 6 kW on 10 kWh allows 1 %/min × 1.5 = 1.5 %/min, + 0.5 % noise; one minute apart.
      const input$ = cold('a 59999ms b 59999ms c 59999ms d', { a: s(50), b: s(51.9), c: s(90), d: s(91) });
      expectObservable(run(scheduler, engine, input$)).toBe('120000ms a 59999ms b', { a: 'fire:b1=38.1', b: 'clear:b1' });
    });
  });

  it('tolerate a rounding step between close samples and skip samples out of order', () => {
    const engine = engineFor(rules(socRate));
    const at = (ts: number, socPct: number) => engine.step({ kind: 'samples', samples: [{ device: BATTERY, ts, metrics: { socPct, powerW: 0, capacityWh: 10_000 } }] });
    expect(signalsOf(at(1_000, 50))).toBe('');
    expect(signalsOf(at(1_001, 50.4))).toBe('');
    expect(signalsOf(at(500, 10))).toBe('');
    expect(signalsOf(at(1_002, 60))).toBe('fire:b1=576000');
  });
});

describe('frozen-value rules (marbles)', () => {
  const frozen = {
    id: 'soc-frozen',
    severity: 'warning',
    subject: 'device',
    summary: 'stuck at {value}',
    frozen: { metric: 'socPct', forSeconds: 0.03, onlyWhile: { metric: 'powerW', absAtLeast: 500 } },
  };

  it('fire when the value has not moved for the duration while power flows; clear when it moves', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const engine = engineFor(rules(frozen));
      const s = (socPct: number, powerW = 2000) => sample(BATTERY, { socPct, powerW });
      const input$ = cold('a 9ms b 9ms c 9ms d 9ms e', { a: s(50), b: s(50), c: s(50), d: s(50), e: s(50.1) });
      expectObservable(run(scheduler, engine, input$).pipe(map((x) => x || 'state'))).toBe('- 9ms a 19ms b 9ms c', {
        a: 'state',
        b: 'fire:b1=50',
        c: 'clear:b1',
      });
    });
  });

  it('not count the time at rest, when the value may stand still', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const engine = engineFor(rules(frozen));
      const s = (powerW: number) => sample(BATTERY, { socPct: 50, powerW });
      // At rest until 20 ms; power flows from 30: fires at 60 (30 ms under the gate).
      const input$ = cold('a 9ms b 9ms c 9ms d 9ms e 9ms f 9ms g', { a: s(0), b: s(0), c: s(0), d: s(900), e: s(900), f: s(900), g: s(900) });
      expectObservable(run(scheduler, engine, input$).pipe(map((x) => x || 'state'))).toBe('- 39ms a 19ms b', { a: 'state', b: 'fire:b1=50' });
    });
  });
});

describe('presence rules (marbles)', () => {
  const offline = { id: 'offline', severity: 'warning', subject: 'device', summary: '{subjectId} offline', offline: { forSeconds: 0.03 } };
  const stale = { id: 'stale', severity: 'warning', subject: 'device', summary: '{subjectId} silent', stale: { forSeconds: 0 } };

  function presenceScript(scheduler: TestScheduler, changes: Record<number, { presence: Presence; sinceMs: number | null } | 'revoked'>) {
    let current: DevicePresence[] = [];
    return {
      list: (): DevicePresence[] => {
        for (const [at, change] of Object.entries(changes)) {
          if (Number(at) === scheduler.now()) current = change === 'revoked' ? [] : [{ device: BATTERY, ...change }];
        }
        return current;
      },
    };
  }

  it('fire after the device was offline for the duration, clear when it is back', () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable }) => {
      const script = presenceScript(scheduler, {
        10: { presence: 'offline', sinceMs: 5 },
        60: { presence: 'online', sinceMs: 60 },
      });
      const engine = new RuleEngine(rules(offline), { regionOf: () => 'north', presences: () => script.list() });
      const ticks$ = ruleTicks$(10, () => scheduler.now(), scheduler).pipe(applyRules(engine), map(signalsOf));
      // Offline since 5: pending at the 10 ms tick, fires at the 40 ms tick (35 ms ≥ 30), clears at 60.
      expectObservable(ticks$.pipe(map((x) => x || 'state')), '^ 100ms !').toBe('10ms a 29ms b 19ms c', { a: 'state', b: 'fire:b1=null', c: 'clear:b1' });
    });
  });

  it('fire stale at once, hand over to offline when the connection closes, and clear a revoked device', () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable }) => {
      const script = presenceScript(scheduler, {
        10: { presence: 'stale', sinceMs: 10 },
        20: { presence: 'offline', sinceMs: 20 },
        70: 'revoked',
      });
      const engine = new RuleEngine(rules(offline, stale), { regionOf: () => 'north', presences: () => script.list() });
      const ticks$ = ruleTicks$(10, () => scheduler.now(), scheduler).pipe(applyRules(engine), map(signalsOf));
      expectObservable(ticks$.pipe(map((x) => x || 'state')), '^ 100ms !').toBe('10ms a 9ms b 29ms c 19ms d', {
        a: 'fire:b1=null',
        b: 'clear:b1',
        c: 'fire:b1=null',
        d: 'clear:b1',
      });
    });
  });

  it('count a device never seen from when the engine first saw it', () => {
    const engine = new RuleEngine(rules(offline), { regionOf: () => 'north', presences: () => [{ device: BATTERY, presence: 'offline', sinceMs: null }] });
    expect(signalsOf(engine.step({ kind: 'tick', nowMs: 1_000 }))).toBe('');
    expect(signalsOf(engine.step({ kind: 'tick', nowMs: 1_020 }))).toBe('');
    expect(signalsOf(engine.step({ kind: 'tick', nowMs: 1_030 }))).toBe('fire:b1=null');
  });
});

describe('the start-up grace', () => {
  const offline = { id: 'offline', severity: 'warning', subject: 'device', summary: '{subjectId} offline', offline: { forSeconds: 1 } };
  const coverage = { id: 'coverage', severity: 'critical', subject: 'fleet', summary: '{value}', threshold: { metric: 'coverage', below: 0.9, forSeconds: 0 } };

  it('keeps presence rules from firing and aggregate rules from judging until devices had time to reconnect', () => {
    const engine = new RuleEngine(rules(offline, coverage), {
      regionOf: () => 'north',
      presences: () => [{ device: BATTERY, presence: 'offline', sinceMs: 1_000 }],
      startedAtMs: 1_000,
      startupGraceMs: 60_000,
    });
    const fleet = (ts: number, reporting: number): RuleInput => ({
      kind: 'aggregates',
      snapshots: [
        {
          level: 'fleet',
          id: 'fleet',
          ts,
          windowMs: 30_000,
          coverage: { devicesReporting: reporting, devicesTotal: 10, ratio: reporting / 10 },
          metrics: { batteryPowerW: 0, solarPowerW: 0, gridPowerW: 0, loadW: 0, energyWh: 0, capacityWh: 0, socPct: null },
        },
      ],
    });
    // Offline for far longer than the rule's second, but within the grace: pending only.
    const during = engine.step({ kind: 'tick', nowMs: 30_000 });
    expect(signalsOf(during)).toBe('');
    expect(during.save).toMatchObject([{ ruleId: 'offline', status: 'pending', sinceMs: 1_000 }]);
    expect(signalsOf(engine.step(fleet(30_000, 0)))).toBe('');
    expect(engine.statusOf('coverage', 'fleet')).toBe('idle');
    // Once the grace is over, what still holds fires.
    expect(signalsOf(engine.step({ kind: 'tick', nowMs: 61_000 }))).toBe('fire:b1=null');
    expect(signalsOf(engine.step(fleet(61_000, 0)))).toBe('fire:fleet=0');
  });

  it('leaves alone what had fired before the restart', () => {
    const engine = new RuleEngine(
      rules(offline),
      { regionOf: () => 'north', presences: () => [{ device: BATTERY, presence: 'online', sinceMs: 20_000 }], startedAtMs: 0, startupGraceMs: 60_000 },
      [{ ruleId: 'offline', subjectId: 'b1', status: 'active', sinceMs: -100_000, data: {} }],
    );
    // The device came back during the grace: its alert clears at once.
    expect(signalsOf(engine.step({ kind: 'tick', nowMs: 21_000 }))).toBe('clear:b1');
  });
});

describe('aggregate rules (marbles)', () => {
  const coverage = {
    id: 'coverage',
    severity: 'critical',
    subject: 'region',
    filter: { regions: ['north'] },
    summary: '{subjectId} at {value}',
    threshold: { metric: 'coverage', below: 0.9, clearAbove: 0.95, forSeconds: 0.06 },
  };
  const snapshot = (level: AggregateSnapshot['level'], id: string, devicesReporting: number, devicesTotal: number) => (ts: number): RuleInput => ({
    kind: 'aggregates',
    snapshots: [
      {
        level,
        id,
        ts,
        windowMs: 30_000,
        coverage: { devicesReporting, devicesTotal, ratio: devicesTotal === 0 ? 0 : devicesReporting / devicesTotal },
        metrics: { batteryPowerW: 0, solarPowerW: 0, gridPowerW: 0, loadW: 0, energyWh: 0, capacityWh: 0, socPct: null },
      },
    ],
  });

  it('fire when a region’s coverage stays below the fraction for the duration, clear above the clear bound', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const engine = engineFor(rules(coverage));
      const n = (reporting: number) => snapshot('region', 'north', reporting, 100);
      const input$ = cold('a 19ms b 19ms c 19ms d 19ms e 19ms f 19ms g', { a: n(100), b: n(80), c: n(85), d: n(70), e: n(88), f: n(93), g: n(96) });
      // Below from 20 ms: fires at 80 (60 ms held); 93 % is not yet above 95 %; clears at 120.
      expectObservable(run(scheduler, engine, input$).pipe(map((x) => x || 'state'))).toBe('20ms a 59ms b 39ms c', {
        a: 'state',
        b: 'fire:north=0.88',
        c: 'clear:north',
      });
    });
  });

  it('leave out other regions, other levels and regions without devices', () => {
    const engine = engineFor(rules({ ...coverage, threshold: { metric: 'coverage', below: 0.9, forSeconds: 0 } }));
    expect(signalsOf(engine.step(snapshot('region', 'south', 0, 10)(0)))).toBe('');
    expect(signalsOf(engine.step(snapshot('site', 's1', 0, 10)(0)))).toBe('');
    expect(signalsOf(engine.step(snapshot('region', 'north', 0, 0)(0)))).toBe('');
    expect(signalsOf(engine.step(snapshot('region', 'north', 1, 10)(0)))).toBe('fire:north=0.1');
  });

  it('watch a fleet aggregate metric', () => {
    const engine = engineFor(
      rules({ id: 'fleet-export', severity: 'info', subject: 'fleet', summary: '{value} W', threshold: { metric: 'batteryPowerW', above: 1000, forSeconds: 0 } }),
    );
    const fleet = (batteryPowerW: number): RuleInput => {
      const input = snapshot('fleet', 'fleet', 1, 1)(0);
      if (input.kind === 'aggregates') input.snapshots[0]!.metrics.batteryPowerW = batteryPowerW;
      return input;
    };
    expect(signalsOf(engine.step(fleet(500)))).toBe('');
    expect(signalsOf(engine.step(fleet(1500)))).toBe('fire:fleet=1500');
  });
});

describe('state across a restart', () => {
  it('resume a pending duration from the saved state and never fire an active condition twice', () => {
    const ruleList = rules(overheat);
    const first = engineFor(ruleList);
    const saved = new Map<string, RuleSubjectState>();
    const keep = (output: RuleOutput) => {
      for (const s of output.save) saved.set(`${s.ruleId}/${s.subjectId}`, s);
      for (const r of output.remove) saved.delete(`${r.ruleId}/${r.subjectId}`);
      return signalsOf(output);
    };
    const hot = (ts: number) => ({ kind: 'samples' as const, samples: [{ device: BATTERY, ts, metrics: { tempC: 60 } }] });
    expect(keep(first.step(hot(0)))).toBe('');
    expect(keep(first.step(hot(10)))).toBe('');
    // Restart: the pending state says since 0, so 30 ms fires.
    const second = engineFor(ruleList, [], [...saved.values()]);
    expect(keep(second.step(hot(30)))).toBe('fire:b1=60');
    // Restart again while active: still hot, nothing fires twice.
    const third = engineFor(ruleList, [], [...saved.values()]);
    expect(keep(third.step(hot(40)))).toBe('');
    expect(keep(third.step({ kind: 'samples', samples: [{ device: BATTERY, ts: 50, metrics: { tempC: 40 } }] }))).toBe('clear:b1');
    expect(saved.size).toBe(0);
  });

  it('leave saved states of rules no longer configured to be removed', () => {
    const saved: RuleSubjectState[] = [
      { ruleId: 'hot', subjectId: 'b1', status: 'active', sinceMs: 0, data: {} },
      { ruleId: 'gone', subjectId: 'b1', status: 'pending', sinceMs: 0, data: {} },
    ];
    expect(RuleEngine.orphanStates(rules(overheat), saved)).toEqual([{ ruleId: 'gone', subjectId: 'b1' }]);
    expect(engineFor(rules(overheat), [], saved).statusOf('gone', 'b1')).toBe('idle');
    expect(engineFor(rules(overheat), [], saved).statusOf('hot', 'b1')).toBe('active');
  });
});

describe('storeRuleOutputs (marbles)', () => {
  const output = (id: string): RuleOutput => ({
    signals: [{ ruleId: id, severity: 'info', subjectKind: 'device', subjectId: 'b1', signal: 'fire', atMs: 0, summary: '', value: null, labels: {}, flapWindowMs: 0 }],
    save: [],
    remove: [],
  });
  const event = (id: string) => ({ eventId: id }) as unknown as AlertEvent;

  it('retry a busy store with backoff, keeping later outputs behind, and drop what the store refuses', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      let busy = 2;
      const refused: string[] = [];
      const stored$ = cold('a b c', { a: output('a'), b: output('poison'), c: output('c') }).pipe(
        storeRuleOutputs({
          apply: (o) => {
            const id = o.signals[0]!.ruleId;
            if (id === 'a' && busy-- > 0) throw new StoreError('unavailable', 'busy');
            if (id === 'poison') throw new StoreError('invalid', 'refused');
            return [event(id)];
          },
          isTransient: (e) => e instanceof StoreError && e.code === 'unavailable',
          retryDelayMs: 10,
          maxRetryDelayMs: 40,
          onRefused: (_, o) => refused.push(o.signals[0]!.ruleId),
          scheduler,
        }),
        map((events) => events.map((e) => e.eventId).join()),
      );
      // a: fails at 0 and 10 (after 10), succeeds at 30 (after 20 more); c follows at once.
      expectObservable(stored$).toBe('30ms (ac)', { a: 'a', c: 'c' });
      scheduler.flush();
      expect(refused).toEqual(['poison']);
    });
  });

  it('pass on what the store returns', () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable }) => {
      const stored$ = of(output('x')).pipe(
        storeRuleOutputs({ apply: () => [event('e1'), event('e2')], isTransient: () => false, retryDelayMs: 1, maxRetryDelayMs: 1, scheduler }),
        map((events) => events.length),
      );
      expectObservable(stored$).toBe('(a|)', { a: 2 });
    });
  });

  it('surface nothing but the refusal when the store throws something unexpected', () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable }) => {
      const stored$ = throwError(() => new Error('boom')).pipe(map(() => output('x')));
      expectObservable(stored$.pipe(storeRuleOutputs({ apply: () => [], isTransient: () => false, retryDelayMs: 1, maxRetryDelayMs: 1, scheduler }))).toBe(
        '#',
        undefined,
        new Error('boom'),
      );
    });
  });
});

describe('one output per input', () => {
  it('name each subject once, by its status after the whole batch', () => {
    const engine = engineFor(rules({ ...overheat, threshold: { metric: 'tempC', above: 55, clearBelow: 50, forSeconds: 10 } }));
    const at = (ts: number, tempC: number) => ({ device: BATTERY, ts, metrics: { tempC } });
    // Pending, then idle, then pending again, all in one batch: saved once, pending since the last rise.
    const output = engine.step({ kind: 'samples', samples: [at(0, 60), at(1, 40), at(2, 60)] });
    expect(output.remove).toEqual([]);
    expect(output.save).toEqual([{ ruleId: 'hot', subjectId: 'b1', status: 'pending', sinceMs: 2, data: {} }]);
    // Pending then idle: removed only.
    const cooled = engine.step({ kind: 'samples', samples: [at(3, 60), at(4, 40)] });
    expect(cooled.save).toEqual([]);
    expect(cooled.remove).toEqual([{ ruleId: 'hot', subjectId: 'b1' }]);
  });
});

describe('memory of devices no longer listed', () => {
  const offline = { id: 'offline', severity: 'warning', subject: 'device', summary: '{subjectId} offline', offline: { forSeconds: 0.03 } };
  const socRate = {
    id: 'soc-rate',
    severity: 'warning',
    subject: 'device',
    summary: '{value} %/min',
    rateOfChange: { metric: 'socPct', maxPerMinute: 1, slackPerMinute: 0, noise: 0 },
  };
  const sizes = (engine: RuleEngine) => {
    const internals = engine as unknown as { recent: Map<string, unknown>; firstSeen: Map<string, unknown> };
    return { recent: internals.recent.size, firstSeen: internals.firstSeen.size };
  };

  it('forgets the last samples of a revoked device at the next tick, even without presence rules', () => {
    let listed: DevicePresence[] = [{ device: BATTERY, presence: 'online', sinceMs: 0 }];
    const engine = new RuleEngine(rules(socRate), { regionOf: () => 'north', presences: () => listed });
    const soc = (ts: number, socPct: number) => engine.step({ kind: 'samples', samples: [{ device: BATTERY, ts, metrics: { socPct } }] });
    soc(0, 50);
    engine.step({ kind: 'tick', nowMs: 1_000 });
    expect(sizes(engine).recent).toBe(1);
    listed = [];
    engine.step({ kind: 'tick', nowMs: 2_000 });
    expect(sizes(engine).recent).toBe(0);
    // Provisioned again: its first sample has nothing stale to be compared with.
    expect(signalsOf(soc(60_000, 90))).toBe('');
  });

  it('forgets when it first saw a device once the device is no longer listed', () => {
    let listed: DevicePresence[] = [{ device: BATTERY, presence: 'offline', sinceMs: null }];
    const engine = new RuleEngine(rules(offline), { regionOf: () => 'north', presences: () => listed });
    engine.step({ kind: 'tick', nowMs: 1_000 });
    expect(sizes(engine).firstSeen).toBe(1);
    const back = listed;
    listed = [];
    engine.step({ kind: 'tick', nowMs: 1_010 });
    expect(sizes(engine).firstSeen).toBe(0);
    listed = back;
    // Counted from when it was seen again (1 020), not from 1 000.
    expect(signalsOf(engine.step({ kind: 'tick', nowMs: 1_020 }))).toBe('');
    expect(signalsOf(engine.step({ kind: 'tick', nowMs: 1_040 }))).toBe('');
    expect(signalsOf(engine.step({ kind: 'tick', nowMs: 1_050 }))).toBe('fire:b1=null');
  });
});
