/**
 * The live stream of one control app: its hub, its sources and its ticket
 * issuer, made together and closed with the app (before the server stops
 * listening, so open event streams do not hold up shutdown).
 */
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { interval } from 'rxjs';
import { isTokenActive } from '../../store/types.ts';
import { BOOTSTRAP_TOKEN_NAME } from '../plugins/auth.ts';
import type { ControlDeps, StreamOptions } from '../deps.ts';
import { ControlError } from '../errors.ts';
import { StreamHub } from './hub.ts';
import { StreamSources } from './sources.ts';
import { createStreamTickets, type StreamTickets } from './tickets.ts';

export const DEFAULT_STREAM: Readonly<Required<Omit<StreamOptions, 'scheduler'>>> = {
  maxClients: 10_000,
  maxClientsPerToken: 100,
  heartbeatMs: 15_000,
  minIntervalMs: 1_000,
  pollMs: 1_000,
  sitesIntervalMs: 5_000,
  maxBufferedBytes: 1024 * 1024,
  historyPerTopic: 256,
  historyBytesPerTopic: 4 * 1024 * 1024,
  topicGraceMs: 60_000,
};

export interface LiveStream {
  hub: StreamHub;
  sources: StreamSources;
  tickets: StreamTickets;
  /** Sockets that carried a stream and are still open; ended when the app closes. */
  sockets: Set<Socket>;
}

/** The stream options with defaults filled in; throws at boot for a value that is not a positive integer. */
export function resolveStreamOptions(options: StreamOptions | undefined): Required<Omit<StreamOptions, 'scheduler'>> & Pick<StreamOptions, 'scheduler'> {
  const resolved = { ...DEFAULT_STREAM, ...options };
  const problems: string[] = [];
  for (const key of Object.keys(DEFAULT_STREAM) as (keyof typeof DEFAULT_STREAM)[]) {
    const value = resolved[key];
    if (!Number.isSafeInteger(value) || value < 1) problems.push(`stream.${key}: must be a positive integer, not ${String(value)}`);
  }
  if (problems.length > 0) throw new ControlError('invalid-config', problems.join('; '));
  return resolved;
}

export function createLiveStream(app: FastifyInstance, deps: ControlDeps): LiveStream {
  const options = resolveStreamOptions(deps.stream);
  // The hub calls the sources, which publish to the hub: the sources exist once both are made.
  const late: { sources?: StreamSources } = {};
  const hub = new StreamHub({
    clock: deps.clock,
    scheduler: options.scheduler,
    heartbeatMs: options.heartbeatMs,
    maxBufferedBytes: options.maxBufferedBytes,
    maxClients: options.maxClients,
    maxClientsPerOwner: options.maxClientsPerToken,
    historyPerTopic: options.historyPerTopic,
    historyBytesPerTopic: options.historyBytesPerTopic,
    topicGraceMs: options.topicGraceMs,
    retryMs: 2_000,
    onTopicActive: (topic) => late.sources?.topicActive(topic),
    onTopicGone: (topic) => late.sources?.topicGone(topic),
  });
  const sources = (late.sources = new StreamSources(hub, deps, {
    minIntervalMs: options.minIntervalMs,
    pollMs: options.pollMs,
    sitesIntervalMs: options.sitesIntervalMs,
    scheduler: options.scheduler,
    logger: deps.logger.child({ component: 'stream' }),
  }));
  sources.start();
  // A revoked or expired token's open streams end within a heartbeat interval.
  const accessCheck = interval(options.heartbeatMs, options.scheduler).subscribe(() => {
    const nowMs = deps.clock();
    for (const owner of hub.owners()) {
      if (owner === BOOTSTRAP_TOKEN_NAME) continue;
      try {
        const token = deps.tokens.getToken(owner);
        if (token === undefined || !isTokenActive(token, nowMs)) hub.closeOwner(owner);
      } catch {
        // The token store unreadable: keep the streams; the next tick checks again.
      }
    }
  });
  const sockets = new Set<Socket>();
  app.addHook('preClose', async () => {
    accessCheck.unsubscribe();
    sources.stop();
    hub.close();
    for (const socket of sockets) socket.destroy();
  });
  return { hub, sources, tickets: createStreamTickets(deps), sockets };
}

export { StreamHub, StreamHubFullError, sseFrame, type StreamSink, type StreamStats } from './hub.ts';
export { parseTopics, MAX_TOPICS_PER_CLIENT } from './topics.ts';
export { TICKET_TTL_MS } from './tickets.ts';
