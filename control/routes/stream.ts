/**
 * /api/v1/stream: the live stream as Server-Sent Events, the tickets a
 * browser opens it with, and its figures. See stream/ for the fan-out, the
 * sources and the tickets.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, RawServerDefault } from 'fastify';
import type { ControlDeps } from '../deps.ts';
import { ControlError, badRequest, notFound } from '../errors.ts';
import { findOperator } from '../plugins/auth.ts';
import { setNoStore, withNoStoreHeader } from '../plugins/no-store.ts';
import { BEARER_SECURITY, IsoTimeSchema, errorResponses } from '../schemas/common.ts';
import { isoTime } from '../presenters/device.ts';
import type { LiveStream } from '../stream/index.ts';
import { parseTopics, type ParsedTopic } from '../stream/topics.ts';
import type { TypeBoxTypeProvider } from '../type-provider.ts';

export const STREAM_PATH = '/stream';

const StreamQuerySchema = Type.Object({
  topics: Type.String({ minLength: 1, maxLength: 2_000, description: 'comma separated: fleet, alerts, sites, region:<id>, site:<id>, device:<id>, dispatch:<id> (at most 16)' }),
  ticket: Type.Optional(Type.String({ maxLength: 512, description: 'from POST /api/v1/stream/tickets, instead of the Authorization header (EventSource cannot send one)' })),
  lastEventId: Type.Optional(Type.String({ maxLength: 100, description: 'resume after this event (the Last-Event-ID header does the same)' })),
});

const TicketSchema = Type.Object(
  {
    ticket: Type.String({ description: 'put it in the stream URL as `ticket`; good for 60 s, for any number of connections of this token' }),
    expiresAt: IsoTimeSchema,
  },
  { title: 'StreamTicket' },
);

const StreamStatsSchema = Type.Object(
  {
    clients: Type.Integer(),
    topics: Type.Integer({ description: 'topics watched now or within their grace period' }),
    published: Type.Integer({ description: 'events published since start (each once, whatever the number of clients)' }),
    framesWritten: Type.Integer(),
    bytesWritten: Type.Integer(),
    connected: Type.Integer(),
    resumed: Type.Integer({ description: 'connections that came with a last event id' }),
    resets: Type.Integer({ description: 'topics that could not be resumed without a gap' }),
    droppedSlow: Type.Integer({ description: 'clients dropped because they did not read fast enough' }),
    refusedFull: Type.Integer({ description: 'connections refused at the client limit' }),
    refusedPerOwner: Type.Integer({ description: 'connections refused because their token had its most streams open' }),
    failedReads: Type.Integer({ description: 'reads of the stores for a topic that failed (retried at the next tick)' }),
  },
  { title: 'StreamStats' },
);

function checkTopicsExist(deps: ControlDeps, topics: readonly ParsedTopic[]): void {
  for (const { kind, id, name } of topics) {
    if (id === undefined) continue;
    const exists =
      kind === 'site'
        ? deps.registry.getSite(id) !== undefined
        : kind === 'device'
          ? deps.registry.getDevice(id) !== undefined
          : kind === 'dispatch'
            ? deps.dispatches.getDispatch(id) !== undefined
            : deps.live.getAggregate('region', id) !== undefined || deps.registry.listSites().some((s) => s.region === id);
    if (!exists) throw notFound(`topics: ${name}: no such ${kind}`);
  }
}

export const streamRoutes: FastifyPluginAsync<{ deps: ControlDeps; stream: LiveStream }, RawServerDefault, TypeBoxTypeProvider> = async (app, { deps, stream }) => {
  app.post(
    `${STREAM_PATH}/tickets`,
    {
      schema: {
        tags: ['stream'],
        summary: 'A ticket to open the live stream with',
        description: 'For browsers: EventSource cannot send an Authorization header, so the page asks for a ticket with its token and puts it in the stream URL. Good for 60 s; revoking the token ends it.',
        security: BEARER_SECURITY,
        response: { 201: withNoStoreHeader(TicketSchema), ...errorResponses(401) },
      },
      onSend: setNoStore,
    },
    async (request, reply) => {
      const operator = findOperator(request)!;
      const { ticket, expiresAtMs } = stream.tickets.issue(operator);
      return reply.code(201).send({ ticket, expiresAt: isoTime(expiresAtMs) });
    },
  );

  app.get(
    `${STREAM_PATH}/stats`,
    {
      schema: { tags: ['stream'], summary: 'Figures of the live stream of this control process', security: BEARER_SECURITY, response: { 200: StreamStatsSchema, ...errorResponses(401) } },
    },
    async () => ({ ...stream.hub.stats(), failedReads: stream.sources.failures() }),
  );

  app.get(
    STREAM_PATH,
    {
      schema: {
        tags: ['stream'],
        summary: 'The live stream (Server-Sent Events) of the topics named',
        description:
          'Events: `aggregate` {topic, snapshot}, `site-devices` {topic, devices}, `device` {topic, device}, `alert` {topic, alert, transition}, `dispatch` {topic, dispatch}, `sites` {topic, columns}, `reset` {topic, reason}. ' +
          'A fresh connection first gets each topic\'s current state; one that sends Last-Event-ID (or `lastEventId`) gets what it missed, or a `reset` for a topic whose events are no longer held. ' +
          'A comment every 15 s keeps the connection open; a client that does not read is dropped. Authenticate with the Authorization header or a `ticket`.',
        security: BEARER_SECURITY,
        querystring: StreamQuerySchema,
        response: { 200: Type.String({ description: 'text/event-stream' }), ...errorResponses(400, 401, 404, 429, 503) },
      },
    },
    async (request, reply) => {
      const parsed = parseTopics(request.query.topics);
      if ('problem' in parsed) throw badRequest(parsed.problem);
      checkTopicsExist(deps, parsed.topics);
      const owner = findOperator(request)?.id;
      const refused = stream.hub.admit(owner);
      if (refused?.limit === 'full') throw new ControlError('unavailable', refused.message);
      if (refused) {
        reply.header('retry-after', '10');
        throw new ControlError('too-many-requests', refused.message);
      }
      const header = request.headers['last-event-id'];
      const lastEventId = (typeof header === 'string' ? header : undefined) ?? request.query.lastEventId;

      reply.hijack();
      const raw = reply.raw;
      // The security headers fastify's hooks set so far, then the stream's own.
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) raw.setHeader(name, value);
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        // Tells reverse proxies (nginx) not to buffer the stream.
        'x-accel-buffering': 'no',
      });
      request.raw.socket.setNoDelay(true);
      const client = stream.hub.connect(
        {
          write: (chunk) => void raw.write(chunk),
          bufferedBytes: () => raw.writableLength,
          close: () => raw.destroy(),
        },
        parsed.topics.map((t) => t.name),
        lastEventId,
        (topic) => stream.sources.stateOf(topic),
        owner,
      );
      raw.on('close', () => stream.hub.disconnect(client));
      // The socket of a stream is never idle to the HTTP server (its response never ends), so closing
      // the app would wait for it even after the client went away: the app ends it (see createLiveStream).
      const socket = request.raw.socket;
      stream.sockets.add(socket);
      socket.once('close', () => stream.sockets.delete(socket));
      return reply;
    },
  );
};
