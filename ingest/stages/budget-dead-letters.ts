/**
 * budgetDeadLetters: decides, per rejected message, whether its dead letter
 * is stored or only counted, from its publisher's budget (see
 * dead-letter-budget.ts). Decided once here, so that retries and batch
 * splits downstream never spend a budget twice.
 */
import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import { parseDeviceTopic } from '../../protocol/index.ts';
import type { IngestCounters } from '../counters.ts';
import type { DeadLetterBudget } from '../dead-letter-budget.ts';
import type { ValidatedEnvelope } from '../types.ts';

export function budgetDeadLetters(budget: DeadLetterBudget, counters: IngestCounters, clock: () => number): MonoTypeOperatorFunction<ValidatedEnvelope> {
  return tap((envelope) => {
    if (envelope.kind !== 'rejected') return;
    const { message } = envelope;
    const key = message.clientId ?? parseDeviceTopic(message.topic)?.deviceId ?? message.topic;
    envelope.storeLetter = budget.take(key, clock());
    if (!envelope.storeLetter) counters.deadLettersSuppressed++;
  });
}
