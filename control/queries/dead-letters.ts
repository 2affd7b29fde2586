/** One page of dead letters, newest first, bounded in count and in payload bytes. */
import type { DeadLetterStore } from '../../store/types.ts';
import { presentDeadLetter } from '../presenters/dead-letter.ts';

/**
 * Most stored payload bytes in one page. A letter's stored payload is
 * bounded by the store, but a page of a thousand of them is not; past this
 * budget the page ends early and `nextBefore` continues it.
 */
export const DEAD_LETTER_PAGE_MAX_BYTES = 1024 * 1024;

export interface DeadLetterPageParams {
  limit: number;
  reason?: string | undefined;
  before?: number | undefined;
}

export function queryDeadLetters(deps: { deadLetters: DeadLetterStore }, params: DeadLetterPageParams) {
  const { limit, reason, before } = params;
  // One more than asked tells whether another page exists, unless the byte budget ended the page first.
  const letters = deps.deadLetters.listDeadLetters({ limit: limit + 1, reason, beforeId: before, maxBytes: DEAD_LETTER_PAGE_MAX_BYTES });
  const page = letters.slice(0, limit);
  const last = page.at(-1);
  let more = letters.length > limit;
  if (!more && last) {
    // The page may have ended at the byte budget: ask for one letter past it (a budget of one byte still returns one).
    more = deps.deadLetters.listDeadLetters({ limit: 1, reason, beforeId: last.id, maxBytes: 1 }).length > 0;
  }
  return {
    items: page.map(presentDeadLetter),
    countsByReason: deps.deadLetters.countDeadLettersByReason(),
    nextBefore: more && last ? last.id : null,
  };
}
