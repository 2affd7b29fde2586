/**
 * What a stream client may watch, written `fleet`, `alerts`, `sites`,
 * `region:<id>`, `site:<id>`, `device:<id>` or `dispatch:<id>`, comma
 * separated in the `topics` query parameter.
 */
import { DEVICE_ID_PATTERN, type AggregateLevel } from '../../protocol/index.ts';

export const MAX_TOPICS_PER_CLIENT = 16;

export type TopicKind = 'fleet' | 'alerts' | 'sites' | 'region' | 'site' | 'device' | 'dispatch';

export interface ParsedTopic {
  name: string;
  kind: TopicKind;
  /** The entity of region, site, device and dispatch topics. */
  id?: string;
}

const ENTITY_KINDS = new Set<TopicKind>(['region', 'site', 'device', 'dispatch']);
const PLAIN_KINDS = new Set<TopicKind>(['fleet', 'alerts', 'sites']);
const ID_PATTERN = new RegExp(DEVICE_ID_PATTERN);
/** Dispatch ids are UUIDs; anything else of this shape is simply unknown (404). */
const DISPATCH_ID_PATTERN = /^[0-9a-f-]{1,64}$/;

/** Parses a topic list; returns the topics (duplicates dropped, order kept) or a problem for a 400. */
export function parseTopics(text: string | undefined): { topics: ParsedTopic[] } | { problem: string } {
  if (text === undefined || text.trim() === '') return { problem: 'topics: name at least one topic, e.g. topics=fleet,alerts' };
  const names = [...new Set(text.split(',').map((t) => t.trim()))];
  if (names.length > MAX_TOPICS_PER_CLIENT) return { problem: `topics: at most ${MAX_TOPICS_PER_CLIENT} per connection, got ${names.length}` };
  const topics: ParsedTopic[] = [];
  for (const name of names) {
    const colon = name.indexOf(':');
    const kind = (colon < 0 ? name : name.slice(0, colon)) as TopicKind;
    if (colon < 0) {
      if (!PLAIN_KINDS.has(kind)) return { problem: `topics: unknown topic '${name.slice(0, 80)}' (fleet, alerts, sites, region:<id>, site:<id>, device:<id>, dispatch:<id>)` };
      topics.push({ name, kind });
      continue;
    }
    const id = name.slice(colon + 1);
    if (!ENTITY_KINDS.has(kind)) return { problem: `topics: unknown topic kind '${kind.slice(0, 40)}'` };
    const pattern = kind === 'dispatch' ? DISPATCH_ID_PATTERN : ID_PATTERN;
    if (!pattern.test(id)) return { problem: `topics: '${name.slice(0, 80)}' has no valid ${kind} id` };
    topics.push({ name, kind, id });
  }
  return { topics };
}

/** The topics a live aggregate goes to: the fleet topic takes the fleet and every region. */
export function aggregateTopics(level: AggregateLevel, id: string): string[] {
  if (level === 'fleet') return ['fleet'];
  if (level === 'region') return ['fleet', `region:${id}`];
  return [`site:${id}`];
}
