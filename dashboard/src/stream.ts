/**
 * The live stream client: one Server-Sent-Events connection per page.
 *
 *   ticket (POST /api/v1/stream/tickets) → EventSource(/api/v1/stream?topics=…&ticket=…)
 *     open            → live; the page refetches change-only topics (`onOpen`)
 *     named events    → `onEvent` (aggregate, site-devices, device, alert, dispatch, sites)
 *     reset           → `onReset(topic)`: the page refetches that topic over REST
 *     error, CONNECTING → the browser reconnects by itself (Last-Event-ID header): reconnecting
 *     error, CLOSED   → the server refused (ticket expired, restart, 503): a new ticket,
 *                       reopened with &lastEventId=<last id seen>, after a backoff of
 *                       1 s doubling to 30 s; reset to 1 s once a connection opens
 *   a refused ticket (401) → `onAuthError` and the client stops: the token is gone
 *
 * The state is `live` while open, `reconnecting` while trying, and `offline`
 * once the stream has been down for OFFLINE_AFTER_MS (the page polls the API
 * meanwhile). Everything the browser provides (EventSource, timers, clock) is
 * passed in, so the whole cycle runs in unit tests without a DOM.
 */
import type { StreamEventData, StreamEventName } from './api-types.ts';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'offline' | 'closed';

export const STREAM_EVENT_NAMES: readonly StreamEventName[] = ['aggregate', 'site-devices', 'device', 'alert', 'dispatch', 'sites', 'reset'];

export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_MAX_MS = 30_000;
/** How long the stream may be down (never opened, or lost) before the state says offline rather than reconnecting. */
export const OFFLINE_AFTER_MS = 10_000;
export const STREAM_PATH = '/api/v1/stream';

/** EventSource.CLOSED */
export const READY_STATE_CLOSED = 2;

/** What the client needs of an EventSource. */
export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEventLike) => void): void;
  close(): void;
}

export interface MessageEventLike {
  data?: unknown;
  lastEventId?: string;
}

export interface StreamDeps {
  /** A fresh ticket; rejects with TicketRefusedError when the token is not accepted. */
  getTicket(): Promise<string>;
  openEventSource(url: string): EventSourceLike;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  now(): number;
}

/** The token behind the ticket request was refused (401): retrying will not help. */
export class TicketRefusedError extends Error {
  constructor(message = 'the token was not accepted') {
    super(message);
    this.name = 'TicketRefusedError';
  }
}

export type StreamMessage = { [N in Exclude<StreamEventName, 'reset'>]: { name: N; data: StreamEventData[N]; id: string | null } }[Exclude<
  StreamEventName,
  'reset'
>];

export interface StreamHandlers {
  onEvent?(message: StreamMessage): void;
  onReset?(topic: string, reason: string): void;
  /** The connection opened; `resumed` when it carried on from a last event id (missed events are replayed or reset). */
  onOpen?(info: { resumed: boolean }): void;
  onState?(state: ConnectionState): void;
  onAuthError?(): void;
}

/** 1 s, 2 s, 4 s, … capped at 30 s, for the n-th failure in a row (n ≥ 1). */
export function backoffDelayMs(failures: number, baseMs = BACKOFF_BASE_MS, maxMs = BACKOFF_MAX_MS): number {
  const n = Math.max(1, Math.floor(failures));
  return Math.min(maxMs, baseMs * 2 ** Math.min(n - 1, 30));
}

export function streamUrl(topics: readonly string[], ticket: string, lastEventId: string | null): string {
  const params = new URLSearchParams({ topics: topics.join(','), ticket });
  if (lastEventId !== null && lastEventId !== '') params.set('lastEventId', lastEventId);
  return `${STREAM_PATH}?${params.toString()}`;
}

export class StreamClient {
  private source: EventSourceLike | null = null;
  private timer: unknown = null;
  private offlineTimer: unknown = null;
  /** Since when the stream has been down (from the start until the first open); null while open. */
  private downSince: number | null = null;
  /** Failures of our own reopening in a row, which set the backoff. */
  private reopenFailures = 0;
  private lastId: string | null = null;
  private readonly lastAt = new Map<string, number>();
  private current: ConnectionState = 'closed';
  /** Bumped by every connect and by close, so a late ticket answer does nothing. */
  private generation = 0;
  private running = false;
  readonly startedAtMs: number;

  constructor(
    readonly topics: readonly string[],
    private readonly deps: StreamDeps,
    private readonly handlers: StreamHandlers = {},
  ) {
    this.startedAtMs = deps.now();
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** The id of the newest event seen, sent as lastEventId when reopening. */
  get lastEventId(): string | null {
    return this.lastId;
  }

  /** When the newest event of `topic` arrived (the client's clock), null before any. */
  lastEventAt(topic: string): number | null {
    return this.lastAt.get(topic) ?? null;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.setState('connecting');
    this.markDown();
    void this.connect();
  }

  close(): void {
    this.running = false;
    this.generation++;
    if (this.timer !== null) this.deps.clearTimer(this.timer);
    this.timer = null;
    this.clearOfflineTimer();
    this.source?.close();
    this.source = null;
    this.setState('closed');
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    let ticket: string;
    try {
      ticket = await this.deps.getTicket();
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof TicketRefusedError) {
        this.close();
        this.handlers.onAuthError?.();
        return;
      }
      this.retry();
      return;
    }
    if (generation !== this.generation) return;
    const source = this.deps.openEventSource(streamUrl(this.topics, ticket, this.lastId));
    this.source = source;
    source.addEventListener('open', () => {
      if (this.source !== source) return;
      this.reopenFailures = 0;
      this.downSince = null;
      this.clearOfflineTimer();
      this.setState('live');
      this.handlers.onOpen?.({ resumed: this.lastId !== null });
    });
    source.addEventListener('error', () => this.failed(source));
    for (const name of STREAM_EVENT_NAMES) source.addEventListener(name, (event) => this.receive(source, name, event));
  }

  private failed(source: EventSourceLike): void {
    if (this.source !== source) return;
    this.markDown();
    if (source.readyState === READY_STATE_CLOSED) {
      // The browser gave up on this one (a non-200 answer): our turn.
      source.close();
      this.source = null;
      this.retry();
    } else {
      // The browser retries by itself, sending Last-Event-ID.
      this.setState(this.downState());
    }
  }

  /** Notes since when the stream is down, and makes sure the state turns offline in time without another event. */
  private markDown(): void {
    const now = this.deps.now();
    if (this.downSince === null) this.downSince = now;
    if (this.offlineTimer === null && now - this.downSince < OFFLINE_AFTER_MS) {
      this.offlineTimer = this.deps.setTimer(() => {
        this.offlineTimer = null;
        if (this.running && this.downSince !== null && this.current !== 'live') this.setState(this.downState());
      }, this.downSince + OFFLINE_AFTER_MS - now);
    }
  }

  private downState(): ConnectionState {
    const down = this.downSince === null ? 0 : this.deps.now() - this.downSince;
    return down >= OFFLINE_AFTER_MS ? 'offline' : 'reconnecting';
  }

  private clearOfflineTimer(): void {
    if (this.offlineTimer !== null) this.deps.clearTimer(this.offlineTimer);
    this.offlineTimer = null;
  }

  private retry(): void {
    if (!this.running) return;
    this.reopenFailures++;
    this.markDown();
    this.setState(this.downState());
    const delay = backoffDelayMs(this.reopenFailures);
    this.timer = this.deps.setTimer(() => {
      this.timer = null;
      if (this.running) void this.connect();
    }, delay);
  }

  private receive(source: EventSourceLike, name: StreamEventName, event: MessageEventLike): void {
    if (this.source !== source) return;
    let data: unknown;
    try {
      data = typeof event.data === 'string' ? JSON.parse(event.data) : event.data;
    } catch {
      return; // not JSON: nothing a page could use
    }
    if (typeof data !== 'object' || data === null) return;
    if (typeof event.lastEventId === 'string' && event.lastEventId !== '') this.lastId = event.lastEventId;
    const topic = (data as { topic?: unknown }).topic;
    if (typeof topic === 'string') this.lastAt.set(topic, this.deps.now());
    if (this.current !== 'live') this.setState('live');
    if (name === 'reset') {
      const reason = (data as { reason?: unknown }).reason;
      if (typeof topic === 'string') this.handlers.onReset?.(topic, typeof reason === 'string' ? reason : '');
      return;
    }
    this.handlers.onEvent?.({ name, data, id: event.lastEventId || null } as StreamMessage);
  }

  private setState(state: ConnectionState): void {
    if (state === this.current) return;
    this.current = state;
    this.handlers.onState?.(state);
  }
}
