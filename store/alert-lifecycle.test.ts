/** The lifecycle decisions and input checks on their own, with no store. */
import { describe, expect, it } from 'vitest';
import type { Alert } from '../protocol/index.ts';
import {
  checkAcknowledgeInput,
  checkResolveInput,
  checkRuleSignal,
  checkRuleSubjectState,
  cutText,
  decideAcknowledge,
  decideResolve,
  decideSignal,
  MAX_FLAP_WINDOW_MS,
  type LatestAlert,
} from './alert-lifecycle.ts';
import { StoreError, type RuleSignal, type RuleSubjectState } from './types.ts';

const WINDOW_MS = 10_000;

function signal(values: Partial<RuleSignal> & Pick<RuleSignal, 'signal' | 'atMs'>): RuleSignal {
  return {
    ruleId: 'soc-low',
    severity: 'warning',
    subjectKind: 'device',
    subjectId: 'dev-1',
    summary: 'low',
    value: 4,
    labels: { siteId: 's1' },
    flapWindowMs: WINDOW_MS,
    ...values,
  };
}

const firing: Alert = {
  id: '7',
  ruleId: 'soc-low',
  severity: 'warning',
  subjectKind: 'device',
  subjectId: 'dev-1',
  state: 'firing',
  summary: 'low',
  value: 4,
  labels: { siteId: 's1' },
  openedAtMs: 1_000,
  firedAtMs: 1_000,
  acknowledgedAtMs: null,
  acknowledgedBy: null,
  acknowledgeNote: null,
  resolvedAtMs: null,
  resolvedBy: null,
  resolveReason: null,
  reopenCount: 0,
};

const acknowledged: Alert = { ...firing, state: 'acknowledged', acknowledgedAtMs: 1_500, acknowledgedBy: 'ops', acknowledgeNote: 'on it' };
const resolvedByRule: Alert = { ...acknowledged, state: 'resolved', resolvedAtMs: 2_000, resolvedBy: 'rule' };
const resolvedByOperator: Alert = { ...firing, state: 'resolved', resolvedAtMs: 2_000, resolvedBy: 'ops', resolveReason: 'fixed' };

function invalidCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof StoreError ? error.code : 'not a StoreError';
  }
  return undefined;
}

describe('decideSignal', () => {
  it('opens a new firing alert, told at once, when there is no alert', () => {
    const decision = decideSignal(undefined, signal({ signal: 'fire', atMs: 1_000 }));
    expect(decision).toEqual({
      action: 'open',
      alert: { ...firing, id: undefined },
      transition: { kind: 'fired', atMs: 1_000, actor: 'rule', note: null, notify: 'queued', notBeforeMs: null },
    });
    expect(decision.action === 'open' && 'id' in decision.alert).toBe(false);
  });

  it('does nothing on a fire while open (firing or acknowledged), nor on a clear with nothing open', () => {
    for (const alert of [firing, acknowledged]) expect(decideSignal({ alert, resolutionHeld: false }, signal({ signal: 'fire', atMs: 1_100 }))).toEqual({ action: 'none' });
    expect(decideSignal(undefined, signal({ signal: 'clear', atMs: 1_100 }))).toEqual({ action: 'none' });
    expect(decideSignal({ alert: resolvedByOperator, resolutionHeld: false }, signal({ signal: 'clear', atMs: 2_100 }))).toEqual({ action: 'none' });
  });

  it('resolves an open alert by the rule, held for the flapping window, or told at once with no window; the summary, value and acknowledgement stay', () => {
    const decision = decideSignal({ alert: acknowledged, resolutionHeld: false }, signal({ signal: 'clear', atMs: 2_000, summary: '', value: 9, labels: {} }));
    expect(decision).toEqual({
      action: 'update',
      alert: resolvedByRule,
      transition: { kind: 'resolved', atMs: 2_000, actor: 'rule', note: null, notify: 'held', notBeforeMs: 2_000 + WINDOW_MS },
      cancelHeldResolution: false,
    });
    const noWindow = decideSignal({ alert: firing, resolutionHeld: false }, signal({ signal: 'clear', atMs: 2_000, flapWindowMs: 0 }));
    expect(noWindow).toMatchObject({ action: 'update', transition: { notify: 'queued', notBeforeMs: null } });
  });

  it('reopens the latest alert when it was resolved less than the window before: silent and cancelling a held resolution, told after a told one', () => {
    const reopening = signal({ signal: 'fire', atMs: 2_000 + WINDOW_MS - 1, summary: 'very low', value: 1, labels: { siteId: 's1', region: 'north' } });
    const reopened: Alert = {
      ...firing,
      summary: 'very low',
      value: 1,
      labels: { siteId: 's1', region: 'north' },
      firedAtMs: 2_000 + WINDOW_MS - 1,
      reopenCount: 1,
    };
    // The held resolution is taken back whole: the acknowledgement before it stands.
    expect(decideSignal({ alert: resolvedByRule, resolutionHeld: true }, reopening)).toEqual({
      action: 'update',
      alert: {
        ...reopened,
        state: 'acknowledged',
        acknowledgedAtMs: acknowledged.acknowledgedAtMs,
        acknowledgedBy: acknowledged.acknowledgedBy,
        acknowledgeNote: acknowledged.acknowledgeNote,
      },
      transition: { kind: 'reopened', atMs: 2_000 + WINDOW_MS - 1, actor: 'rule', note: null, notify: 'silent', notBeforeMs: null },
      cancelHeldResolution: true,
    });
    expect(decideSignal({ alert: resolvedByOperator, resolutionHeld: false }, reopening)).toMatchObject({
      action: 'update',
      alert: reopened,
      transition: { kind: 'reopened', notify: 'queued' },
      cancelHeldResolution: false,
    });
    expect(decideSignal({ alert: { ...resolvedByRule, reopenCount: 4 }, resolutionHeld: true }, reopening)).toMatchObject({ alert: { reopenCount: 5 } });
    // A resolution that was told is not taken back: the reopening starts unacknowledged.
    expect(decideSignal({ alert: resolvedByRule, resolutionHeld: false }, reopening)).toMatchObject({
      alert: { state: 'firing', acknowledgedAtMs: null, acknowledgedBy: null },
      transition: { notify: 'queued' },
    });
  });

  it('opens a new alert once the window has passed, exactly at its end too, and never reopens with no window', () => {
    expect(decideSignal({ alert: resolvedByRule, resolutionHeld: true }, signal({ signal: 'fire', atMs: 2_000 + WINDOW_MS }))).toMatchObject({
      action: 'open',
      alert: { openedAtMs: 2_000 + WINDOW_MS, reopenCount: 0 },
      transition: { kind: 'fired' },
    });
    expect(decideSignal({ alert: resolvedByRule, resolutionHeld: false }, signal({ signal: 'fire', atMs: 2_000, flapWindowMs: 0 }))).toMatchObject({ action: 'open' });
  });

  it('does not change the alert it is given', () => {
    const latest: LatestAlert = { alert: structuredClone(resolvedByRule), resolutionHeld: true };
    decideSignal(latest, signal({ signal: 'fire', atMs: 2_001 }));
    decideSignal({ alert: latest.alert, resolutionHeld: false }, signal({ signal: 'clear', atMs: 2_001 }));
    expect(latest.alert).toEqual(resolvedByRule);
  });
});

describe('operators’ decisions', () => {
  it('acknowledges a firing alert only', () => {
    expect(decideAcknowledge(firing, { actor: 'ops', note: 'on it', atMs: 1_500 })).toEqual({
      action: 'update',
      alert: acknowledged,
      transition: { kind: 'acknowledged', atMs: 1_500, actor: 'ops', note: 'on it', notify: 'queued', notBeforeMs: null },
    });
    expect(decideAcknowledge(acknowledged, { actor: 'ops', note: null, atMs: 1_600 })).toEqual({ action: 'conflict', message: 'alert 7 is already acknowledged' });
    expect(decideAcknowledge(resolvedByRule, { actor: 'ops', note: null, atMs: 2_100 })).toEqual({ action: 'conflict', message: 'alert 7 is already resolved' });
  });

  it('resolves an open alert, firing or acknowledged, told at once; a resolved one is a conflict', () => {
    expect(decideResolve(acknowledged, { actor: 'lead', reason: 'fixed', atMs: 2_000 })).toEqual({
      action: 'update',
      alert: { ...acknowledged, state: 'resolved', resolvedAtMs: 2_000, resolvedBy: 'lead', resolveReason: 'fixed' },
      transition: { kind: 'resolved', atMs: 2_000, actor: 'lead', note: 'fixed', notify: 'queued', notBeforeMs: null },
    });
    expect(decideResolve(firing, { actor: 'lead', reason: 'fixed', atMs: 2_000 })).toMatchObject({ action: 'update', alert: { state: 'resolved' } });
    expect(decideResolve(resolvedByOperator, { actor: 'lead', reason: 'again', atMs: 2_100 })).toEqual({ action: 'conflict', message: 'alert 7 is already resolved' });
  });
});

describe('input checks', () => {
  it('rounds the flapping window to whole milliseconds and cuts the summary', () => {
    const checked = checkRuleSignal(signal({ signal: 'fire', atMs: 1, flapWindowMs: 1.1 * 1000, summary: 's'.repeat(1_200) }));
    expect(checked.flapWindowMs).toBe(1_100);
    expect(checked.summary).toHaveLength(1_000);
    expect(invalidCode(() => checkRuleSignal(signal({ signal: 'fire', atMs: 1, flapWindowMs: MAX_FLAP_WINDOW_MS + 1 })))).toBe('invalid');
    expect(invalidCode(() => checkRuleSignal(signal({ signal: 'fire', atMs: Number.MAX_SAFE_INTEGER, flapWindowMs: 10 })))).toBe('invalid');
    expect(invalidCode(() => checkRuleSignal(signal({ signal: 'fire', atMs: 1, summary: 5 as unknown as string })))).toBe('invalid');
    expect(invalidCode(() => checkRuleSignal(signal({ signal: 'fire', atMs: 1, ruleId: 'r'.repeat(201) })))).toBe('invalid');
    expect(invalidCode(() => checkRuleSignal(signal({ signal: 'fire', atMs: 1, labels: [] as unknown as Record<string, string> })))).toBe('invalid');
    expect(checkRuleSignal(signal({ signal: 'fire', atMs: 1, value: null })).value).toBeNull();
  });

  it('measures rule state data in UTF-8 bytes of its JSON', () => {
    const state = (text: string): RuleSubjectState => ({ ruleId: 'r', subjectId: 's', status: 'pending', sinceMs: 0, data: { t: text } });
    // {"t":"…"} is 8 bytes around the text; é is 2 bytes.
    expect(checkRuleSubjectState(state('é'.repeat(508)))).toBe(JSON.stringify({ t: 'é'.repeat(508) }));
    expect(invalidCode(() => checkRuleSubjectState(state(`${'é'.repeat(508)}x`)))).toBe('invalid');
    expect(invalidCode(() => checkRuleSubjectState({ ...state(''), data: null as unknown as RuleSubjectState['data'] }))).toBe('invalid');
  });

  it('checks operators’ input and cuts notes and reasons', () => {
    expect(checkAcknowledgeInput({ actor: 'ops', note: 'n'.repeat(1_001), atMs: 5 }).note).toHaveLength(1_000);
    expect(checkAcknowledgeInput({ actor: 'ops', note: null, atMs: 5 }).note).toBeNull();
    expect(checkResolveInput({ actor: 'rule', reason: 'rule removed from the rules file', atMs: 5 }).reason).toBe('rule removed from the rules file');
    expect(invalidCode(() => checkResolveInput({ actor: 'ops', reason: null as unknown as string, atMs: 5 }))).toBe('invalid');
    expect(invalidCode(() => checkAcknowledgeInput({ actor: 'ops', note: 3 as unknown as string, atMs: 5 }))).toBe('invalid');
  });

  it('never cuts text inside a surrogate pair', () => {
    expect(cutText('ab😀', 3)).toBe('ab');
    expect(cutText('ab😀', 4)).toBe('ab😀');
    expect(cutText('abcd', 2)).toBe('ab');
  });
});
