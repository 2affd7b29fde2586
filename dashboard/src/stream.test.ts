import { describe, expect, it } from 'vitest';
import {
  OFFLINE_AFTER_MS,
  READY_STATE_CLOSED,
  StreamClient,
  TicketRefusedError,
  backoffDelayMs,
  streamUrl,
  type ConnectionState,
  type EventSourceLike,
  type MessageEventLike,
  type StreamMessage,
} from './stream.ts';

class FakeEventSource implements EventSourceLike {
  readyState = 0;
  closed = false;
  private readonly listeners = new Map<string, Array<(event: MessageEventLike) => void>>();
  constructor(readonly url: string) {}
  addEventListener(type: string, listener: (event: MessageEventLike) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close(): void {
    this.closed = true;
    this.readyState = READY_STATE_CLOSED;
  }
  emit(type: string, event: MessageEventLike = {}): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
  open(): void {
    this.readyState = 1;
    this.emit('open');
  }
  send(name: string, data: unknown, id?: string): void {
    this.emit(name, { data: JSON.stringify(data), lastEventId: id ?? '' });
  }
  /** The browser will retry by itself (network error). */
  drop(): void {
    this.readyState = 0;
    this.emit('error');
  }
  /** The browser gave up (a non-200 answer: ticket expired, restart). */
  refuse(): void {
    this.readyState = READY_STATE_CLOSED;
    this.emit('error');
  }
}

/** A clock and timers driven by the test, an EventSource per open, tickets on demand. */
function harness(options: { tickets?: Array<string | Error> } = {}) {
  let now = 1_000;
  const timers: Array<{ at: number; fn: () => void; id: number }> = [];
  let nextTimer = 1;
  const sources: FakeEventSource[] = [];
  const tickets = options.tickets ?? [];
  let ticketCalls = 0;
  const states: ConnectionState[] = [];
  const events: StreamMessage[] = [];
  const resets: string[] = [];
  const opens: boolean[] = [];
  let authErrors = 0;
  const client = new StreamClient(
    ['fleet', 'alerts'],
    {
      async getTicket() {
        const next = tickets[ticketCalls] ?? `st_${ticketCalls + 1}`;
        ticketCalls++;
        if (next instanceof Error) throw next;
        return next;
      },
      openEventSource(url) {
        const source = new FakeEventSource(url);
        sources.push(source);
        return source;
      },
      setTimer(fn, ms) {
        const id = nextTimer++;
        timers.push({ at: now + ms, fn, id });
        return id;
      },
      clearTimer(handle) {
        const i = timers.findIndex((t) => t.id === handle);
        if (i >= 0) timers.splice(i, 1);
      },
      now: () => now,
    },
    {
      onEvent: (m) => events.push(m),
      onReset: (topic) => resets.push(topic),
      onOpen: ({ resumed }) => opens.push(resumed),
      onState: (s) => states.push(s),
      onAuthError: () => authErrors++,
    },
  );
  const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
  return {
    client,
    sources,
    states,
    events,
    resets,
    opens,
    get authErrors() {
      return authErrors;
    },
    get ticketCalls() {
      return ticketCalls;
    },
    get allTimers() {
      return timers.length;
    },
    /** The delay until the next connection attempt: advances the clock 1 ms at a time until a ticket is asked for. */
    async nextAttemptDelay(limitMs = 60_000): Promise<number | null> {
      const before = ticketCalls;
      for (let waited = 1; waited <= limitMs; waited++) {
        now += 1;
        for (const timer of timers.filter((t) => t.at <= now)) {
          timers.splice(timers.indexOf(timer), 1);
          timer.fn();
        }
        if (ticketCalls > before) {
          await settle();
          return waited;
        }
      }
      return null;
    },
    last: () => sources[sources.length - 1] as FakeEventSource,
    settle,
    /** Moves the clock and runs the timers that came due. */
    async advance(ms: number) {
      now += ms;
      for (const timer of timers.filter((t) => t.at <= now)) {
        timers.splice(timers.indexOf(timer), 1);
        timer.fn();
      }
      await settle();
    },
  };
}

describe('backoffDelayMs', () => {
  it('doubles from 1 s to at most 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 100].map((n) => backoffDelayMs(n))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(backoffDelayMs(0)).toBe(1_000);
  });
});

describe('streamUrl', () => {
  it('names the topics and the ticket, and the last event id when resuming', () => {
    expect(streamUrl(['fleet', 'site:site-0001'], 'st_a', null)).toBe('/api/v1/stream?topics=fleet%2Csite%3Asite-0001&ticket=st_a');
    expect(streamUrl(['fleet'], 'st_b', '17-3')).toBe('/api/v1/stream?topics=fleet&ticket=st_b&lastEventId=17-3');
  });
});

describe('StreamClient', () => {
  it('gets a ticket, opens the stream, goes live and hands events to the page', async () => {
    const h = harness();
    h.client.start();
    expect(h.client.state).toBe('connecting');
    await h.settle();
    expect(h.last().url).toBe('/api/v1/stream?topics=fleet%2Calerts&ticket=st_1');
    h.last().open();
    expect(h.client.state).toBe('live');
    expect(h.opens).toEqual([false]);
    const snapshot = { level: 'fleet', id: 'fleet' };
    h.last().send('aggregate', { topic: 'fleet', snapshot }, 'e1');
    expect(h.events).toEqual([{ name: 'aggregate', data: { topic: 'fleet', snapshot }, id: 'e1' }]);
    expect(h.client.lastEventId).toBe('e1');
    expect(h.client.lastEventAt('fleet')).toBe(1_000);
    expect(h.client.lastEventAt('alerts')).toBeNull();
  });

  it('calls the page back on reset and ignores what is not JSON', async () => {
    const h = harness();
    h.client.start();
    await h.settle();
    h.last().open();
    h.last().send('reset', { topic: 'alerts', reason: 'restarted' }, 'e2');
    h.last().emit('alert', { data: '{not json', lastEventId: 'e3' });
    expect(h.resets).toEqual(['alerts']);
    expect(h.events).toEqual([]);
    expect(h.client.lastEventId).toBe('e2');
  });

  it('lets the browser retry a dropped connection by itself', async () => {
    const h = harness();
    h.client.start();
    await h.settle();
    h.last().open();
    h.last().drop();
    expect(h.client.state).toBe('reconnecting');
    expect(h.sources).toHaveLength(1);
    h.last().open();
    expect(h.client.state).toBe('live');
  });

  it('after a refusal gets a new ticket and resumes from the last event id, backing off 1 s, 2 s, 4 s … 30 s', async () => {
    const h = harness();
    h.client.start();
    await h.settle();
    h.last().open();
    h.last().send('aggregate', { topic: 'fleet', snapshot: {} }, '41');
    h.last().refuse();
    expect(h.last().closed).toBe(true);
    expect(h.client.state).toBe('reconnecting');
    expect(await h.nextAttemptDelay()).toBe(1_000);
    expect(h.sources).toHaveLength(2);
    expect(h.last().url).toBe('/api/v1/stream?topics=fleet%2Calerts&ticket=st_2&lastEventId=41');

    const delays: Array<number | null> = [];
    for (let i = 0; i < 6; i++) {
      h.last().refuse();
      delays.push(await h.nextAttemptDelay());
    }
    expect(delays).toEqual([2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect(h.client.state).toBe('offline');

    h.last().open();
    expect(h.client.state).toBe('live');
    expect(h.opens).toEqual([false, true]);
    // a success starts the backoff again at 1 s
    h.last().refuse();
    expect(await h.nextAttemptDelay()).toBe(1_000);
  });

  it('says reconnecting while down, offline once down for 10 s, live again on open', async () => {
    const h = harness();
    h.client.start();
    await h.settle();
    h.last().open();
    await h.advance(5_000);
    h.last().drop();
    expect(h.client.state).toBe('reconnecting');
    await h.advance(4_000);
    h.last().drop();
    expect(h.client.state).toBe('reconnecting');
    await h.advance(OFFLINE_AFTER_MS - 4_000);
    // no event needed: the clock alone turns it offline
    expect(h.client.state).toBe('offline');
    h.last().open();
    expect(h.client.state).toBe('live');
    expect(h.states).toEqual(['connecting', 'live', 'reconnecting', 'offline', 'live']);
    // nothing left to fire once live
    expect(h.allTimers).toBe(0);
  });

  it('says offline when the first connection never comes', async () => {
    const h = harness();
    h.client.start();
    await h.settle();
    expect(h.client.state).toBe('connecting');
    await h.advance(OFFLINE_AFTER_MS);
    expect(h.client.state).toBe('offline');
  });

  it('retries when a ticket cannot be had, and stops when the token is refused', async () => {
    const h = harness({ tickets: [new Error('network'), 'st_ok', new TicketRefusedError()] });
    h.client.start();
    await h.settle();
    expect(h.sources).toHaveLength(0);
    expect(await h.nextAttemptDelay()).toBe(1_000);
    expect(h.sources).toHaveLength(1);
    h.last().open();
    h.last().refuse();
    await h.advance(1_000);
    expect(h.authErrors).toBe(1);
    expect(h.client.state).toBe('closed');
    expect(h.allTimers).toBe(0);
  });

  it('closes for good: no timer, no late connection, no more events', async () => {
    const h = harness();
    h.client.start();
    h.client.close();
    await h.settle();
    expect(h.sources).toHaveLength(0);

    const g = harness();
    g.client.start();
    await g.settle();
    g.last().open();
    const source = g.last();
    source.refuse();
    g.client.close();
    expect(g.allTimers).toBe(0);
    source.send('aggregate', { topic: 'fleet', snapshot: {} }, 'x');
    expect(g.events).toEqual([]);
    expect(g.client.state).toBe('closed');
  });
});
