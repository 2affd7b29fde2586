/**
 * Load generator of the stream scenario, in its own process: thousands of
 * live-stream (Server-Sent Events) clients, each its own HTTP/1.1
 * connection over node:net to `GET /api/v1/stream?topics=…` with a bearer
 * token, as a wall screen's EventSource would hold it.
 *
 * The parser is deliberately light, so that one process holds thousands of
 * streams without becoming the bottleneck: the answer's status line is read,
 * then the body is only scanned, never decoded: frames are counted by their
 * `\n\n` terminator and aggregates by their `event: aggregate` line (both
 * found across chunk boundaries). No JSON is parsed; whole-event checks are
 * the scenario's probe clients' job (control/stream/test-sse-client.ts).
 *
 * Per connection the generator keeps when it last received a frame and an
 * aggregate, so a sample tells how many clients were served within the last
 * `windowMs`, beside connect failures (socket errors, timeouts), answers
 * other than 200 by status, and streams the server ended.
 *
 * Started by bench/scenarios/stream.ts with its settings as JSON in the
 * SSE_CLIENTS_SETTINGS environment variable (not argv: it holds a token);
 * driven over IPC: `ramp` (open connections up to a target),
 * `sample`, `stop`. Every request carries an id; the reply has the same id.
 */
import { connect, type Socket } from 'node:net';

export interface SseClientsSettings {
  host: string;
  port: number;
  /** Path and query, e.g. `/api/v1/stream?topics=fleet`. */
  path: string;
  token: string;
  /** No answer head within this: a connect failure. */
  connectTimeoutMs: number;
  /** Local addresses to connect from, round robin (empty: the system's choice). */
  localAddresses: string[];
}

/** Counters since the generator started, and gauges now. */
export interface SseClientsSample {
  atMs: number;
  /** Gauge: streams answered 200 and still open. */
  open: number;
  /** Gauge: sockets opened, answer head not yet received. */
  connecting: number;
  /** Gauge: open streams that received an aggregate within the window. */
  servedAggregate: number;
  /** Gauge: open streams that received any bytes within the window. */
  servedAny: number;
  attempts: number;
  /** Socket errors and timeouts before the answer's head. */
  connectFailures: number;
  /** Answers other than 200, by status. */
  statuses: Record<string, number>;
  /** Streams answered 200 that the server (or the network) ended. */
  lost: number;
  frames: number;
  aggregates: number;
  bytes: number;
  /** Worst lateness of this process's 100 ms timer since the previous sample (ms). */
  loopLagMaxMs: number;
}

export type SseClientsRequest =
  /** Opens streams until `target` are open (or attempted and failed); replies when the ramp has settled. */
  | { id: number; type: 'ramp'; target: number; concurrency: number; maxFailures: number }
  | { id: number; type: 'sample'; windowMs: number }
  | { id: number; type: 'stop' };

export type SseClientsReply =
  /** `connectMs`: from opening the socket to the answer's head, for every stream the ramp opened. */
  | { id: number; type: 'ramped'; sample: SseClientsSample; durationMs: number; connectMs: number[] }
  | { id: number; type: 'sampled'; sample: SseClientsSample }
  | { id: number; type: 'stopped'; sample: SseClientsSample }
  | { id: number; type: 'failed'; message: string };

const FRAME_END = Buffer.from('\n\n');
const AGGREGATE = Buffer.from('event: aggregate\n');
const HEAD_END = Buffer.from('\r\n\r\n');
/** Longest answer head accepted; beyond, the answer is not a stream. */
const MAX_HEAD_BYTES = 16 * 1024;

/** Occurrences of `pattern` in `chunk`, counting one that straddles `tail` (the previous chunk's end) and `chunk`. */
function countWithCarry(tail: Buffer, chunk: Buffer, pattern: Buffer): number {
  let count = 0;
  if (tail.length > 0) {
    const seam = Buffer.concat([tail, chunk.subarray(0, pattern.length - 1)]);
    // Only matches that start in the tail and end in the chunk: wholly-in-tail ones were counted before.
    for (let at = seam.indexOf(pattern); at >= 0 && at < tail.length; at = seam.indexOf(pattern, at + 1)) {
      if (at + pattern.length > tail.length) count++;
    }
  }
  for (let at = chunk.indexOf(pattern); at >= 0; at = chunk.indexOf(pattern, at + pattern.length)) count++;
  return count;
}

type State = 'connecting' | 'open' | 'closed';

class Stream {
  state: State = 'connecting';
  closing = false;
  head: Buffer = Buffer.alloc(0);
  /** The last bytes received (for patterns cut by a chunk boundary). */
  tail: Buffer = Buffer.alloc(0);
  lastDataMs = 0;
  lastAggregateMs = 0;
  readonly openedAt = performance.now();
  timer: NodeJS.Timeout | undefined;
  constructor(readonly socket: Socket) {}
}

function main(): void {
  const settings = JSON.parse(process.env.SSE_CLIENTS_SETTINGS ?? '{}') as SseClientsSettings;
  if (!process.send || !settings.port) {
    process.stderr.write('sse-clients: run me through the stream scenario (IPC and settings needed)\n');
    process.exit(2);
  }
  const request = Buffer.from(
    `GET ${settings.path} HTTP/1.1\r\nHost: ${settings.host}:${settings.port}\r\nAuthorization: Bearer ${settings.token}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n`,
  );
  const streams = new Set<Stream>();
  const counts = { open: 0, connecting: 0, attempts: 0, connectFailures: 0, lost: 0, frames: 0, aggregates: 0, bytes: 0 };
  const statuses: Record<string, number> = {};
  let loopLagMaxMs = 0;
  let addressIndex = 0;
  let settle: (() => void) | undefined;
  /** Connect times of the current ramp. */
  let connectMs: number[] = [];

  // Event-loop lateness: if this process falls behind, "not served" could be ours, not the server's.
  let lastTick = performance.now();
  const lagTimer = setInterval(() => {
    const now = performance.now();
    loopLagMaxMs = Math.max(loopLagMaxMs, now - lastTick - 100);
    lastTick = now;
  }, 100);

  const sample = (windowMs: number, resetLag: boolean): SseClientsSample => {
    const now = Date.now();
    let servedAggregate = 0;
    let servedAny = 0;
    for (const s of streams) {
      if (s.state !== 'open') continue;
      if (now - s.lastAggregateMs <= windowMs) servedAggregate++;
      if (now - s.lastDataMs <= windowMs) servedAny++;
    }
    const result: SseClientsSample = { atMs: now, ...counts, servedAggregate, servedAny, statuses: { ...statuses }, loopLagMaxMs: Math.round(loopLagMaxMs) };
    if (resetLag) loopLagMaxMs = 0;
    return result;
  };

  const finish = (stream: Stream, outcome: 'failed' | 'status' | 'lost' | 'closed'): void => {
    if (stream.state === 'closed') return;
    if (stream.timer) clearTimeout(stream.timer);
    if (stream.state === 'connecting') counts.connecting--;
    if (stream.state === 'open') counts.open--;
    stream.state = 'closed';
    streams.delete(stream);
    if (outcome === 'failed') counts.connectFailures++;
    if (outcome === 'lost') counts.lost++;
    stream.socket.destroy();
    settle?.();
  };

  const onHead = (stream: Stream, chunk: Buffer): void => {
    stream.head = stream.head.length === 0 ? chunk : Buffer.concat([stream.head, chunk]);
    const end = stream.head.indexOf(HEAD_END);
    if (end < 0) {
      if (stream.head.length > MAX_HEAD_BYTES) finish(stream, 'failed');
      return;
    }
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(stream.head.subarray(0, 32).toString('latin1'))?.[1] ?? 0);
    if (status !== 200) {
      statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
      finish(stream, 'status');
      return;
    }
    if (stream.timer) clearTimeout(stream.timer);
    stream.timer = undefined;
    stream.state = 'open';
    connectMs.push(Math.round(performance.now() - stream.openedAt));
    counts.connecting--;
    counts.open++;
    const body = stream.head.subarray(end + HEAD_END.length);
    stream.head = Buffer.alloc(0);
    settle?.();
    if (body.length > 0) onBody(stream, body);
  };

  const onBody = (stream: Stream, chunk: Buffer): void => {
    const now = Date.now();
    stream.lastDataMs = now;
    counts.frames += countWithCarry(stream.tail, chunk, FRAME_END);
    const aggregates = countWithCarry(stream.tail, chunk, AGGREGATE);
    if (aggregates > 0) {
      counts.aggregates += aggregates;
      stream.lastAggregateMs = now;
    }
    // Keep just enough of the stream's end (even across tiny chunks) to find a pattern cut by a chunk boundary.
    const keep = AGGREGATE.length - 1;
    stream.tail = chunk.length >= keep ? Buffer.from(chunk.subarray(chunk.length - keep)) : Buffer.concat([stream.tail, chunk]).subarray(-keep);
  };

  const open = (): void => {
    counts.attempts++;
    counts.connecting++;
    const localAddress = settings.localAddresses.length > 0 ? settings.localAddresses[addressIndex++ % settings.localAddresses.length] : undefined;
    const socket = connect({ host: settings.host, port: settings.port, ...(localAddress ? { localAddress } : {}) });
    const stream = new Stream(socket);
    streams.add(stream);
    socket.setNoDelay(true);
    stream.timer = setTimeout(() => finish(stream, 'failed'), settings.connectTimeoutMs);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      counts.bytes += chunk.length;
      if (stream.state === 'connecting') onHead(stream, chunk);
      else if (stream.state === 'open') onBody(stream, chunk);
    });
    socket.on('error', () => finish(stream, stream.state === 'connecting' ? 'failed' : 'lost'));
    socket.on('close', () => {
      if (stream.closing) finish(stream, 'closed');
      else finish(stream, stream.state === 'connecting' ? 'failed' : 'lost');
    });
  };

  const ramp = async (target: number, concurrency: number, maxFailures: number): Promise<void> => {
    // Streams the server ended during the ramp count as failures too, or the ramp would reopen them forever.
    const failures = () => counts.connectFailures + counts.lost + Object.values(statuses).reduce((a, b) => a + b, 0);
    const failuresAtStart = failures();
    const failed = () => failures() - failuresAtStart;
    await new Promise<void>((resolve) => {
      const step = () => {
        const over = failed() > maxFailures;
        if (!over) while (counts.open + counts.connecting < target && counts.connecting < concurrency) open();
        if (counts.connecting === 0 && (over || counts.open >= target)) resolve();
      };
      settle = step;
      step();
    });
    settle = undefined;
  };

  const reply = (message: SseClientsReply): void => {
    process.send?.(message);
  };

  process.on('message', (message: SseClientsRequest) => {
    void (async () => {
      try {
        switch (message.type) {
          case 'ramp': {
            const t0 = performance.now();
            connectMs = [];
            await ramp(message.target, message.concurrency, message.maxFailures);
            reply({ id: message.id, type: 'ramped', sample: sample(5_000, false), durationMs: Math.round(performance.now() - t0), connectMs });
            break;
          }
          case 'sample':
            reply({ id: message.id, type: 'sampled', sample: sample(message.windowMs, true) });
            break;
          case 'stop': {
            const last = sample(5_000, false);
            for (const s of [...streams]) {
              s.closing = true;
              finish(s, 'closed');
            }
            clearInterval(lagTimer);
            reply({ id: message.id, type: 'stopped', sample: last });
            process.disconnect();
            break;
          }
        }
      } catch (error) {
        reply({ id: message.id, type: 'failed', message: (error as Error).message });
      }
    })();
  });
  process.on('disconnect', () => {
    for (const s of [...streams]) {
      s.closing = true;
      finish(s, 'closed');
    }
    clearInterval(lagTimer);
  });
}

main();
