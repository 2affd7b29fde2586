/**
 * The stream hub with in-memory sinks, in virtual time (RxJS
 * TestScheduler): fan-out per topic, state first for fresh clients, resume
 * by last event id with a reset when events are gone, heartbeats, the slow
 * client dropped beside a good one, the client limit and the topic grace.
 */
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { StreamHub, StreamHubFullError, type StateEvent, type StreamHubOptions, type StreamSink } from './hub.ts';

class MemorySink implements StreamSink {
  chunks: string[] = [];
  writes = 0;
  closed = false;
  /** What the peer has not read yet; a test sets it to play a slow client. */
  backlog = 0;
  write(chunk: string): void {
    this.writes++;
    this.chunks.push(chunk);
  }
  bufferedBytes(): number {
    return this.backlog;
  }
  close(): void {
    this.closed = true;
  }
  text(): string {
    return this.chunks.join('');
  }
  /** The events written, as [id, event, data] (data parsed). */
  events(): Array<{ id: string | undefined; event: string; data: Record<string, unknown> }> {
    return this.text()
      .split('\n\n')
      .filter((frame) => frame.includes('event: '))
      .map((frame) => {
        const field = (name: string) => frame.split('\n').find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
        return { id: field('id'), event: field('event')!, data: JSON.parse(field('data')!) as Record<string, unknown> };
      });
  }
}

function makeHub(scheduler: TestScheduler, overrides: Partial<StreamHubOptions> = {}): { hub: StreamHub; gone: string[]; active: string[] } {
  const gone: string[] = [];
  const active: string[] = [];
  const hub = new StreamHub({
    clock: () => scheduler.now(),
    scheduler,
    heartbeatMs: 1_000,
    maxBufferedBytes: 10_000,
    maxClients: 10,
    maxClientsPerOwner: 100,
    historyPerTopic: 100,
    historyBytesPerTopic: 1_000_000,
    topicGraceMs: 5_000,
    retryMs: 2_000,
    // Writes go out at once unless a test holds them.
    defer: (flush) => flush(),
    onTopicActive: (topic) => active.push(topic),
    onTopicGone: (topic) => gone.push(topic),
    ...overrides,
  });
  return { hub, gone, active };
}

const noState = (): StateEvent[] => [];
const newScheduler = () => new TestScheduler((a, b) => expect(a).toEqual(b));

describe('StreamHub', () => {
  it('sends a published event once per topic to that topic\'s clients only', () => {
    {
      const { hub } = makeHub(newScheduler());
      const [a1, a2, b] = [new MemorySink(), new MemorySink(), new MemorySink()];
      hub.connect(a1, ['site:a'], undefined, noState);
      hub.connect(a2, ['site:a', 'alerts'], undefined, noState);
      hub.connect(b, ['site:b'], undefined, noState);
      hub.publish('site:a', 'aggregate', { value: 1 });
      hub.publish('alerts', 'alert', { value: 2 });
      hub.publish('nobody', 'aggregate', { value: 3 });
      expect(a1.events().map((e) => e.data)).toEqual([{ topic: 'site:a', value: 1 }]);
      expect(a2.events().map((e) => e.data)).toEqual([{ topic: 'site:a', value: 1 }, { topic: 'alerts', value: 2 }]);
      expect(b.events()).toEqual([]);
      // An event nobody watches is not even numbered.
      expect(hub.stats().published).toBe(2);
      expect(a1.events()[0]!.id).toBe(a2.events()[0]!.id);
      expect(a1.text().startsWith('retry: 2000\n\n')).toBe(true);
    }
  });

  it('writes the current state of each topic first, without ids, to a fresh client', () => {
    const { hub } = makeHub(newScheduler());
    const sink = new MemorySink();
    hub.connect(sink, ['fleet', 'site:a'], undefined, (topic) => [{ type: 'state', data: { of: topic } }]);
    hub.publish('fleet', 'aggregate', { n: 1 });
    expect(sink.events()).toEqual([
      { id: undefined, event: 'state', data: { topic: 'fleet', of: 'fleet' } },
      { id: undefined, event: 'state', data: { topic: 'site:a', of: 'site:a' } },
      { id: `${hub.run}-1`, event: 'aggregate', data: { topic: 'fleet', n: 1 } },
    ]);
  });

  it('replays what a reconnecting client missed, in order across its topics, from its last event id', () => {
    const { hub } = makeHub(newScheduler());
    const first = new MemorySink();
    const client = hub.connect(first, ['fleet', 'alerts'], undefined, noState);
    hub.publish('fleet', 'aggregate', { n: 1 });
    const lastSeen = first.events().at(-1)!.id!;
    hub.disconnect(client);
    hub.publish('alerts', 'alert', { n: 2 });
    hub.publish('fleet', 'aggregate', { n: 3 });
    hub.publish('alerts', 'alert', { n: 4 });
    const again = new MemorySink();
    hub.connect(again, ['fleet', 'alerts'], lastSeen, () => [{ type: 'state', data: {} }]);
    expect(again.events().map((e) => [e.event, e.data.n])).toEqual([
      ['alert', 2],
      ['aggregate', 3],
      ['alert', 4],
    ]);
    expect(hub.stats()).toMatchObject({ resumed: 1, resets: 0 });
  });

  it('sends a reset and the current state when it no longer holds what the client missed', () => {
    const { hub } = makeHub(newScheduler(), { historyPerTopic: 2 });
    const state = (topic: string): StateEvent[] => [{ type: 'state', data: { of: topic } }];
    const first = new MemorySink();
    const client = hub.connect(first, ['fleet'], undefined, noState);
    hub.publish('fleet', 'aggregate', { n: 1 });
    const lastSeen = first.events()[0]!.id!;
    hub.disconnect(client);
    for (const n of [2, 3, 4]) hub.publish('fleet', 'aggregate', { n });

    // n = 2 was evicted (two held): a gap.
    const evicted = new MemorySink();
    hub.connect(evicted, ['fleet'], lastSeen, state);
    expect(evicted.events().map((e) => e.event)).toEqual(['reset', 'state']);
    expect(evicted.events()[0]!.data).toEqual({ topic: 'fleet', reason: 'gap' });

    // An id of another run (a restart) or one that is no id of ours.
    for (const id of ['0abc-3', 'garbage', `${hub.run}-999`]) {
      const other = new MemorySink();
      hub.connect(other, ['fleet'], id, state);
      expect(other.events()[0]!.data).toEqual({ topic: 'fleet', reason: 'restart' });
    }

    // A topic that did not exist when the id was made cannot tell what it missed.
    const newTopic = new MemorySink();
    hub.connect(newTopic, ['fleet', 'site:new'], `${hub.run}-3`, state);
    // Resets and states come first, then the replay.
    expect(newTopic.events().map((e) => `${e.event}:${String(e.data.topic)}:${String(e.data.n)}`)).toEqual([
      'reset:site:new:undefined',
      'state:site:new:undefined',
      'aggregate:fleet:4',
    ]);
    expect(hub.stats().resets).toBe(5);
  });

  it('writes a heartbeat comment to every client each interval', () => {
    const scheduler = newScheduler();
    scheduler.run(({ flush }) => {
      const { hub } = makeHub(scheduler);
      const [a, b] = [new MemorySink(), new MemorySink()];
      hub.connect(a, ['fleet'], undefined, noState);
      hub.connect(b, ['alerts'], undefined, noState);
      scheduler.schedule(() => hub.close(), 3_500);
      flush();
      expect(a.text().match(/: heartbeat\n\n/g)).toHaveLength(3);
      expect(b.text().match(/: heartbeat\n\n/g)).toHaveLength(3);
      expect(a.closed && b.closed).toBe(true);
    });
  });

  it('drops a client that does not read, and goes on serving the one that does', () => {
    const { hub } = makeHub(newScheduler(), { maxBufferedBytes: 500 });
    const [slow, good] = [new MemorySink(), new MemorySink()];
    hub.connect(slow, ['alerts'], undefined, noState);
    hub.connect(good, ['alerts'], undefined, noState);
    for (let n = 0; n < 20; n++) {
      hub.publish('alerts', 'alert', { n, text: 'x'.repeat(100) });
      // The slow peer reads nothing: its backlog is everything written to it.
      slow.backlog = slow.text().length;
    }
    expect(slow.closed).toBe(true);
    const slowEvents = slow.events().length;
    expect(slowEvents).toBeLessThan(5);
    expect(good.events().map((e) => e.data.n)).toEqual([...Array(20).keys()]);
    expect(hub.stats()).toMatchObject({ clients: 1, droppedSlow: 1 });
  });

  it('writes what a client gets within one turn in one write, and large fan-outs in slices of turns', () => {
    const turns: Array<() => void> = [];
    const { hub } = makeHub(newScheduler(), { defer: (flush) => turns.push(flush), flushSliceClients: 2 });
    const sinks = [new MemorySink(), new MemorySink(), new MemorySink()];
    for (const sink of sinks) hub.connect(sink, ['fleet'], undefined, noState);
    expect(turns).toHaveLength(1);
    turns.shift()!();
    expect(turns).toHaveLength(1);
    turns.shift()!();
    expect(sinks.map((s) => s.writes)).toEqual([1, 1, 1]);
    // The fleet and four regions in one turn: five events, one write per client.
    for (const id of ['fleet', 'north', 'south', 'east', 'west']) hub.publish('fleet', 'aggregate', { id });
    expect(sinks.map((s) => s.writes)).toEqual([1, 1, 1]);
    turns.shift()!();
    // The first slice: two clients; the third waits for the next turn.
    expect(sinks.map((s) => s.writes)).toEqual([2, 2, 1]);
    expect(turns).toHaveLength(1);
    turns.shift()!();
    expect(sinks.map((s) => s.writes)).toEqual([2, 2, 2]);
    for (const sink of sinks) expect(sink.events().map((e) => e.data.id)).toEqual(['fleet', 'north', 'south', 'east', 'west']);
  });

  it('drops a client whose queued events alone pass the bound, before they reach its socket', () => {
    const turns: Array<() => void> = [];
    const { hub } = makeHub(newScheduler(), { defer: (flush) => turns.push(flush), maxBufferedBytes: 1_000 });
    const sink = new MemorySink();
    hub.connect(sink, ['alerts'], undefined, noState);
    for (let n = 0; n < 20; n++) hub.publish('alerts', 'alert', { n, text: 'x'.repeat(100) });
    expect(sink.closed).toBe(true);
    for (const turn of turns.splice(0)) turn();
    expect(sink.writes).toBe(0);
    expect(hub.stats()).toMatchObject({ clients: 0, droppedSlow: 1 });
  });

  it('refuses a client beyond maxClients and takes one again after another left', () => {
    const { hub } = makeHub(newScheduler(), { maxClients: 2 });
    const a = hub.connect(new MemorySink(), ['fleet'], undefined, noState);
    hub.connect(new MemorySink(), ['fleet'], undefined, noState);
    expect(() => hub.connect(new MemorySink(), ['fleet'], undefined, noState)).toThrow(StreamHubFullError);
    hub.disconnect(a);
    expect(() => hub.connect(new MemorySink(), ['fleet'], undefined, noState)).not.toThrow();
    expect(hub.stats()).toMatchObject({ clients: 2, refusedFull: 1 });
  });

  it('refuses an owner beyond maxClientsPerOwner while others still connect, and takes it again once one of its streams closed', () => {
    const { hub } = makeHub(newScheduler(), { maxClientsPerOwner: 2 });
    const first = hub.connect(new MemorySink(), ['fleet'], undefined, noState, 'greedy');
    hub.connect(new MemorySink(), ['fleet'], undefined, noState, 'greedy');
    expect(hub.admit('greedy')).toMatchObject({ limit: 'owner' });
    expect(() => hub.connect(new MemorySink(), ['fleet'], undefined, noState, 'greedy')).toThrow(StreamHubFullError);
    expect(hub.admit('other')).toBeUndefined();
    hub.connect(new MemorySink(), ['fleet'], undefined, noState, 'other');
    expect(hub.owners().sort()).toEqual(['greedy', 'other']);
    hub.disconnect(first);
    expect(hub.admit('greedy')).toBeUndefined();
    expect(hub.stats()).toMatchObject({ clients: 2, refusedPerOwner: 2, refusedFull: 0 });
  });

  it('keeps a topic for its grace period after its last client left, then forgets it', () => {
    const scheduler = newScheduler();
    scheduler.run(({ flush }) => {
      const { hub, active, gone } = makeHub(scheduler);
      const client = hub.connect(new MemorySink(), ['site:a'], undefined, noState);
      expect(active).toEqual(['site:a']);
      scheduler.schedule(() => hub.disconnect(client), 1_500);
      scheduler.schedule(() => {
        expect(hub.hasTopic('site:a')).toBe(true);
        expect(gone).toEqual([]);
      }, 6_400);
      scheduler.schedule(() => {
        expect(hub.hasTopic('site:a')).toBe(false);
        expect(gone).toEqual(['site:a']);
        hub.close();
      }, 7_100);
      flush();
    });
  });
});
