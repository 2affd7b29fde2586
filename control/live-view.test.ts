import { describe, expect, it } from 'vitest';
import { aggregateTopic, encodeJson, serviceHealthTopic } from '../protocol/index.ts';
import { createLiveView } from './live-view.ts';
import { T0, makeSnapshot, publishSnapshot } from './test-fixtures.ts';

describe('createLiveView', () => {
  it('keeps the newest snapshot per aggregate topic', () => {
    const live = createLiveView();
    publishSnapshot(live, makeSnapshot('site', 'site-1', T0, { devicesReporting: 1, devicesTotal: 2 }));
    publishSnapshot(live, makeSnapshot('site', 'site-1', T0 + 1000, { devicesReporting: 2, devicesTotal: 2 }));
    publishSnapshot(live, makeSnapshot('region', 'north', T0, { devicesReporting: 2, devicesTotal: 3 }));
    publishSnapshot(live, makeSnapshot('fleet', 'fleet', T0, { devicesReporting: 2, devicesTotal: 3 }));

    expect(live.getAggregate('site', 'site-1')?.coverage).toEqual({ devicesReporting: 2, devicesTotal: 2, ratio: 1 });
    expect(live.getAggregate('region', 'north')?.coverage.devicesTotal).toBe(3);
    expect(live.getAggregate('fleet', 'fleet')?.ts).toBe(T0);
    expect(live.getAggregate('site', 'north')).toBeUndefined();
    expect(live.listAggregates('site').map((s) => s.id)).toEqual(['site-1']);
    expect(live.stats().applied).toBe(4);
  });

  it('tells its aggregate listeners of every snapshot it keeps, and no more after they unsubscribe', () => {
    const live = createLiveView();
    const seen: string[] = [];
    const unsubscribe = live.onAggregate((s) => seen.push(`${s.level}/${s.id}@${s.ts - T0}`));
    publishSnapshot(live, makeSnapshot('site', 'site-1', T0 + 1000, { devicesReporting: 1, devicesTotal: 1 }));
    publishSnapshot(live, makeSnapshot('site', 'site-1', T0, { devicesReporting: 1, devicesTotal: 1 }));
    live.apply(aggregateTopic('region', 'north'), Buffer.from('{not json'));
    publishSnapshot(live, makeSnapshot('region', 'north', T0, { devicesReporting: 1, devicesTotal: 1 }));
    unsubscribe();
    publishSnapshot(live, makeSnapshot('fleet', 'fleet', T0, { devicesReporting: 1, devicesTotal: 1 }));
    expect(seen).toEqual(['site/site-1@1000', 'region/north@0']);
  });

  it('drops an older retained copy that arrives after a newer snapshot', () => {
    const live = createLiveView();
    publishSnapshot(live, makeSnapshot('region', 'north', T0 + 5000, { devicesReporting: 3, devicesTotal: 3 }));
    publishSnapshot(live, makeSnapshot('region', 'north', T0, { devicesReporting: 1, devicesTotal: 3 }));
    expect(live.getAggregate('region', 'north')?.ts).toBe(T0 + 5000);
    expect(live.stats().rejected.stale).toBe(1);
  });

  it('counts invalid messages by reason and keeps the last good snapshot', () => {
    const live = createLiveView();
    const good = makeSnapshot('site', 's1', T0, { devicesReporting: 1, devicesTotal: 1 });
    publishSnapshot(live, good);
    const topic = aggregateTopic('site', 's1');
    live.apply(topic, Buffer.from('{not json'));
    live.apply(topic, encodeJson({ ...good, ts: T0 + 1, coverage: { devicesReporting: -1 } }));
    // A payload about another site on this topic is a publisher bug.
    live.apply(topic, encodeJson(makeSnapshot('site', 's2', T0 + 2, { devicesReporting: 0, devicesTotal: 1 })));
    live.apply('vpp/v1/elsewhere', encodeJson(good));

    expect(live.getAggregate('site', 's1')).toEqual(good);
    expect(live.getAggregate('site', 's2')).toBeUndefined();
    expect(live.stats().rejected).toEqual({ 'not-json': 1, schema: 1, 'topic-mismatch': 1, 'unknown-topic': 1, stale: 0 });
  });

  it('forgets an aggregate when its retained message is cleared', () => {
    const live = createLiveView();
    publishSnapshot(live, makeSnapshot('site', 's1', T0, { devicesReporting: 1, devicesTotal: 1 }));
    publishSnapshot(live, makeSnapshot('fleet', 'fleet', T0, { devicesReporting: 1, devicesTotal: 1 }));
    live.apply(aggregateTopic('site', 's1'), Buffer.alloc(0));
    live.apply(aggregateTopic('fleet', 'fleet'), Buffer.alloc(0));
    expect(live.getAggregate('site', 's1')).toBeUndefined();
    expect(live.getAggregate('fleet', 'fleet')).toBeUndefined();
    expect(live.stats().cleared).toBe(2);
  });

  it('keeps the latest heartbeat per service', () => {
    const live = createLiveView();
    const beat = { service: 'vpp-ingest', ts: T0, ok: true, counters: { received: 10 } };
    live.apply(serviceHealthTopic('vpp-ingest'), encodeJson(beat));
    live.apply(serviceHealthTopic('vpp-ingest'), encodeJson({ ...beat, ts: T0 + 5000, ok: false, detail: 'store down' }));
    live.apply(serviceHealthTopic('vpp-broker'), encodeJson({ ...beat, service: 'vpp-ingest' }));
    expect(live.getServiceHealth('vpp-ingest')).toMatchObject({ ok: false, detail: 'store down' });
    expect(live.listServiceHealth().map((h) => h.service)).toEqual(['vpp-ingest']);
    expect(live.stats().rejected['topic-mismatch']).toBe(1);
  });
});
