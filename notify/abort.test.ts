import { describe, expect, it } from 'vitest';
import { deadlineSignal } from './abort.ts';

describe('deadlineSignal', () => {
  it('aborts at the deadline and says so', async () => {
    const deadline = deadlineSignal(undefined, 20);
    await new Promise((resolve) => deadline.signal.addEventListener('abort', resolve));
    expect(deadline.timedOut()).toBe(true);
    deadline.dispose();
  });

  it('aborts with its parent, not as a timeout', () => {
    const parent = new AbortController();
    const deadline = deadlineSignal(parent.signal, 60_000);
    parent.abort(new Error('stopping'));
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.timedOut()).toBe(false);
    expect((deadline.signal.reason as Error).message).toBe('stopping');
    deadline.dispose();
  });

  it('is aborted at once under an aborted parent', () => {
    const parent = new AbortController();
    parent.abort();
    const deadline = deadlineSignal(parent.signal, 60_000);
    expect(deadline.signal.aborted).toBe(true);
    deadline.dispose();
  });

  it('dispose() detaches it from the parent and stops the timer', async () => {
    const parent = new AbortController();
    const deadline = deadlineSignal(parent.signal, 20);
    deadline.dispose();
    parent.abort();
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(deadline.signal.aborted).toBe(false);
  });
});
