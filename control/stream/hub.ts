/**
 * The fan-out of the live stream (Server-Sent Events). Clients say which
 * topics they watch; an event is published once per topic, serialized once
 * into its SSE frame, and written to that topic's clients: one fan-out per
 * topic, whatever the number of clients.
 *
 * Resuming: every published event gets an id `<run>-<seq>`, where `seq`
 * grows across all topics and `run` names this hub's life. A topic holds its
 * newest events (bounded by count and bytes) while it has clients and for
 * `topicGraceMs` after the last one left, so a client that reconnects with
 * `Last-Event-ID` gets every event it missed. When the topic no longer holds
 * them (evicted, the topic was not watched in between, or another run made
 * the id), the client gets a `reset` event for that topic and knows to read
 * its state again.
 *
 * Bounds: at most `maxClients` connections, and `maxClientsPerOwner` of
 * one token, so that one client cannot take the others' places; a client whose unsent backlog
 * (the socket's writable buffer) exceeds `maxBufferedBytes` is dropped at
 * once rather than allowed to grow the server's memory; a heartbeat comment
 * every `heartbeatMs` keeps idle connections open through proxies.
 *
 * Time comes from the injected clock and scheduler, so tests run it in
 * virtual time.
 */
import { randomBytes } from 'node:crypto';
import { asyncScheduler, interval, type SchedulerLike, type Subscription } from 'rxjs';

/** Where one client's frames go: an HTTP response in production, a buffer in tests. */
export interface StreamSink {
  /** Queues a chunk for the peer; never blocks. */
  write(chunk: string): void;
  /** Bytes written but not yet taken by the peer (the socket's writable backlog). */
  bufferedBytes(): number;
  /** Ends the connection at once. */
  close(): void;
}

export interface StreamHubOptions {
  clock: () => number;
  scheduler?: SchedulerLike;
  heartbeatMs: number;
  /** A client whose backlog grows beyond this is dropped. */
  maxBufferedBytes: number;
  maxClients: number;
  /** Most connections of one owner (token). */
  maxClientsPerOwner: number;
  /** Newest events a topic holds for resuming clients. */
  historyPerTopic: number;
  historyBytesPerTopic: number;
  /** How long a topic keeps its events after its last client left. */
  topicGraceMs: number;
  /** What the client's EventSource waits before reconnecting (the SSE `retry` field). */
  retryMs: number;
  /** Runs the writes queued in a turn of the event loop (setImmediate; tests pass their own). */
  defer?: (flush: () => void) => void;
  /** Most clients written to per turn of the event loop (1 000). */
  flushSliceClients?: number;
  /** A topic gained its first client (sources start feeding it). */
  onTopicActive?: (topic: string) => void;
  /** A topic was forgotten (sources stop feeding it). */
  onTopicGone?: (topic: string) => void;
}

/** An event a topic sends a fresh client first: its current state, without an id. */
export interface StateEvent {
  type: string;
  data: Record<string, unknown>;
}

export interface StreamStats {
  clients: number;
  topics: number;
  published: number;
  /** Frames written to clients (events and heartbeats). */
  framesWritten: number;
  bytesWritten: number;
  connected: number;
  resumed: number;
  resets: number;
  droppedSlow: number;
  refusedFull: number;
  /** Connections refused because their token had maxClientsPerOwner open. */
  refusedPerOwner: number;
}

interface HeldEvent {
  seq: number;
  frame: string;
}

interface Topic {
  name: string;
  clients: Set<StreamClient>;
  held: HeldEvent[];
  heldBytes: number;
  /** Every event with a seq above this was seen by the topic (it existed since). */
  sinceSeq: number;
  /** Highest seq of an event the topic no longer holds. */
  evictedThroughSeq: number;
  idleSinceMs: number | null;
}

export class StreamClient {
  closed = false;
  /** Chunks queued in this turn of the event loop, written together at its end. */
  pending: string[] = [];
  pendingBytes = 0;
  constructor(
    readonly sink: StreamSink,
    readonly topics: readonly string[],
    /** Whose connection it is (a token id), to end it when that owner loses access. */
    readonly owner: string | undefined,
  ) {}
}

export class StreamHubFullError extends Error {
  constructor(
    message: string,
    /** `full`: the hub has maxClients; `owner`: the token has maxClientsPerOwner. */
    readonly limit: 'full' | 'owner',
  ) {
    super(message);
    this.name = 'StreamHubFullError';
  }
}

/** The data of an SSE frame: JSON has no raw newline, so one `data:` line. */
export function sseFrame(type: string, data: Record<string, unknown>, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

const HEARTBEAT_FRAME = ': heartbeat\n\n';

export class StreamHub {
  /** Names this hub's run in event ids: ids of another run (a restart) cannot resume. */
  readonly run: string;
  private seq = 0;
  private readonly topics = new Map<string, Topic>();
  private readonly clients = new Set<StreamClient>();
  /** Open connections per owner; an owner without one is absent. */
  private readonly perOwner = new Map<string, number>();
  private readonly ticker: Subscription;
  private readonly dirty = new Set<StreamClient>();
  private flushScheduled = false;
  private readonly counts = { published: 0, framesWritten: 0, bytesWritten: 0, connected: 0, resumed: 0, resets: 0, droppedSlow: 0, refusedFull: 0, refusedPerOwner: 0 };

  constructor(private readonly options: StreamHubOptions) {
    this.run = `${options.clock().toString(36)}${randomBytes(3).toString('hex')}`;
    this.ticker = interval(options.heartbeatMs, options.scheduler ?? asyncScheduler).subscribe(() => this.tick());
  }

  /**
   * Connects a client to `topics` (validated by the caller). Without
   * `lastEventId`, each topic's current state (`stateOf`) is written first;
   * with one, what the topics hold after it is replayed in order, and a
   * topic that cannot replay gets a `reset` followed by its current state.
   * Throws StreamHubFullError at maxClients, or when `owner` has
   * maxClientsPerOwner open (see admit, to ask before answering).
   */
  connect(
    sink: StreamSink,
    topics: readonly string[],
    lastEventId: string | undefined,
    stateOf: (topic: string) => StateEvent[],
    owner?: string,
  ): StreamClient {
    const refused = this.admit(owner);
    if (refused) throw refused;
    const client = new StreamClient(sink, topics, owner);
    this.clients.add(client);
    if (owner !== undefined) this.perOwner.set(owner, (this.perOwner.get(owner) ?? 0) + 1);
    this.counts.connected++;
    const last = this.parseEventId(lastEventId);
    const chunks: string[] = [`retry: ${this.options.retryMs}\n\n`];
    const replay: HeldEvent[] = [];
    for (const name of topics) {
      const topic = this.topicFor(name);
      if (last === undefined) {
        for (const event of stateOf(name)) chunks.push(sseFrame(event.type, { topic: name, ...event.data }));
      } else if (last !== null && last >= topic.sinceSeq && last >= topic.evictedThroughSeq) {
        for (const event of topic.held) if (event.seq > last) replay.push(event);
      } else {
        this.counts.resets++;
        chunks.push(sseFrame('reset', { topic: name, reason: last === null ? 'restart' : 'gap' }));
        for (const event of stateOf(name)) chunks.push(sseFrame(event.type, { topic: name, ...event.data }));
      }
      topic.clients.add(client);
      topic.idleSinceMs = null;
    }
    if (last !== undefined) this.counts.resumed++;
    replay.sort((a, b) => a.seq - b.seq);
    for (const event of replay) chunks.push(event.frame);
    this.write(client, chunks.join(''));
    return client;
  }

  /** Why a connection of `owner` would be refused now (counted as refused), or undefined when it is welcome. */
  admit(owner?: string): StreamHubFullError | undefined {
    if (this.clients.size >= this.options.maxClients) {
      this.counts.refusedFull++;
      return new StreamHubFullError(`the live stream has its ${this.options.maxClients} clients; try again later`, 'full');
    }
    if (owner !== undefined && (this.perOwner.get(owner) ?? 0) >= this.options.maxClientsPerOwner) {
      this.counts.refusedPerOwner++;
      return new StreamHubFullError(`this token has ${this.options.maxClientsPerOwner} live streams open; close one first`, 'owner');
    }
    return undefined;
  }

  disconnect(client: StreamClient): void {
    if (!this.clients.delete(client)) return;
    if (client.owner !== undefined) {
      const open = (this.perOwner.get(client.owner) ?? 1) - 1;
      if (open > 0) this.perOwner.set(client.owner, open);
      else this.perOwner.delete(client.owner);
    }
    client.closed = true;
    client.pending = [];
    this.dirty.delete(client);
    const nowMs = this.options.clock();
    for (const name of client.topics) {
      const topic = this.topics.get(name);
      if (!topic) continue;
      topic.clients.delete(client);
      if (topic.clients.size === 0) topic.idleSinceMs = nowMs;
    }
  }

  /** The owners of the open connections. */
  owners(): string[] {
    return [...this.perOwner.keys()];
  }

  /** Ends every connection of `owner`; returns how many. */
  closeOwner(owner: string): number {
    let closed = 0;
    for (const client of [...this.clients]) {
      if (client.owner !== owner) continue;
      this.disconnect(client);
      client.sink.close();
      closed++;
    }
    return closed;
  }

  /** Whether anyone watches `topic` (or watched it within the grace period). */
  hasTopic(topic: string): boolean {
    return this.topics.has(topic);
  }

  /** Publishes an event to a topic's clients; nothing happens for a topic nobody holds. */
  publish(topicName: string, type: string, data: Record<string, unknown>): void {
    const topic = this.topics.get(topicName);
    if (!topic) return;
    const seq = ++this.seq;
    const frame = sseFrame(type, { topic: topicName, ...data }, `${this.run}-${seq}`);
    this.counts.published++;
    topic.held.push({ seq, frame });
    topic.heldBytes += frame.length;
    while (topic.held.length > this.options.historyPerTopic || (topic.heldBytes > this.options.historyBytesPerTopic && topic.held.length > 1)) {
      const evicted = topic.held.shift()!;
      topic.heldBytes -= evicted.frame.length;
      topic.evictedThroughSeq = evicted.seq;
    }
    for (const client of topic.clients) this.write(client, frame);
  }

  stats(): StreamStats {
    return { clients: this.clients.size, topics: this.topics.size, ...this.counts };
  }

  /** Ends every connection and the heartbeat. */
  close(): void {
    this.ticker.unsubscribe();
    for (const client of [...this.clients]) {
      this.disconnect(client);
      client.sink.close();
    }
  }

  /** undefined: no id given; null: an id of another run (or not ours); else the seq. */
  private parseEventId(id: string | undefined): number | null | undefined {
    if (id === undefined || id === '') return undefined;
    const dash = id.lastIndexOf('-');
    if (dash < 0 || id.slice(0, dash) !== this.run) return null;
    const seq = Number(id.slice(dash + 1));
    return Number.isSafeInteger(seq) && seq >= 0 && seq <= this.seq ? seq : null;
  }

  private topicFor(name: string): Topic {
    let topic = this.topics.get(name);
    if (!topic) {
      topic = { name, clients: new Set(), held: [], heldBytes: 0, sinceSeq: this.seq, evictedThroughSeq: 0, idleSinceMs: null };
      this.topics.set(name, topic);
      this.options.onTopicActive?.(name);
    }
    return topic;
  }

  /**
   * Queues a chunk for a client; what a client gets within one turn of the
   * event loop goes out in one write at the end of it (the fleet and its
   * regions are five events a second, one system call), and the writes of a
   * large fan-out go out in slices of `flushSliceClients`, each in its own
   * turn, so new connections and API requests get turns in between.
   */
  private write(client: StreamClient, chunk: string): void {
    if (client.closed) return;
    client.pending.push(chunk);
    client.pendingBytes += chunk.length;
    this.counts.framesWritten++;
    this.counts.bytesWritten += chunk.length;
    // Bounded before it reaches the socket too: a backlog this large will not be read in time.
    if (client.pendingBytes + client.sink.bufferedBytes() > this.options.maxBufferedBytes) return this.dropSlow(client);
    this.dirty.add(client);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      (this.options.defer ?? setImmediate)(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    let written = 0;
    for (const client of this.dirty) {
      this.dirty.delete(client);
      if (client.closed || client.pending.length === 0) continue;
      const chunk = client.pending.length === 1 ? client.pending[0]! : client.pending.join('');
      client.pending = [];
      client.pendingBytes = 0;
      client.sink.write(chunk);
      // A client that does not read keeps the socket's buffer growing: drop it before it costs memory.
      if (client.sink.bufferedBytes() > this.options.maxBufferedBytes) this.dropSlow(client);
      if (++written >= (this.options.flushSliceClients ?? 1_000) && this.dirty.size > 0) {
        this.flushScheduled = true;
        (this.options.defer ?? setImmediate)(() => this.flush());
        return;
      }
    }
  }

  private dropSlow(client: StreamClient): void {
    this.counts.droppedSlow++;
    this.disconnect(client);
    client.sink.close();
  }

  private tick(): void {
    for (const client of [...this.clients]) this.write(client, HEARTBEAT_FRAME);
    const nowMs = this.options.clock();
    for (const topic of [...this.topics.values()]) {
      if (topic.idleSinceMs !== null && nowMs - topic.idleSinceMs >= this.options.topicGraceMs) {
        this.topics.delete(topic.name);
        this.options.onTopicGone?.(topic.name);
      }
    }
  }
}
