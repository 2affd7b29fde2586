/**
 * MQTT topic filter matching (MQTT-4.7), shared by the retained message
 * index and the service permissions. Pure.
 */

/**
 * MQTT-4.7: `+` matches one level, a trailing `#` the parent level and any
 * below; a filter starting with a wildcard does not match a topic starting
 * with `$` (MQTT-4.7.2-1).
 */
export function matchesFilter(filterLevels: readonly string[], topic: string): boolean {
  const first = filterLevels[0];
  if (topic.startsWith('$') && (first === '+' || first === '#')) return false;
  const topicLevels = topic.split('/');
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i]!;
    if (level === '#') return true;
    if (i >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

