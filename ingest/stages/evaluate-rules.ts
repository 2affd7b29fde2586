/**
 * evaluateRules: hands the samples of each committed batch (new ones only,
 * not redeliveries) to the rules; passes the batch on unchanged. Rules see
 * only what the store has committed, so an alert never rests on data that
 * a crash could take back.
 */
import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import type { RuleInput } from '../rules/rule-engine.ts';
import type { CommittedBatch } from '../types.ts';

export function evaluateRules(feed: ((input: RuleInput) => void) | undefined): MonoTypeOperatorFunction<CommittedBatch> {
  return tap((batch) => {
    if (feed && batch.newSamples.length > 0) feed({ kind: 'samples', samples: batch.newSamples });
  });
}
