/**
 * A Server-Sent Events client over a real socket, for tests and benchmarks:
 * parses the stream as the EventSource specification says (fields `id`,
 * `event`, `data`, `retry`, comment lines, a blank line dispatches) and
 * keeps what arrived, with the time each event arrived.
 */
import http from 'node:http';
import https from 'node:https';

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
  receivedAtMs: number;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  retryMs: number | undefined;
  closed = false;
  private buffer = '';
  private pending: { id?: string; event?: string; data: string[] } = { data: [] };
  private waiters: Array<() => void> = [];

  private constructor(
    private readonly request: http.ClientRequest,
    readonly status: number,
    readonly headers: http.IncomingHttpHeaders,
    /** The body when the answer was not a stream (an error). */
    readonly body: string,
  ) {}

  /** Opens the stream; resolves once the answer's head (and, for an error, its body) arrived. */
  static open(url: string, headers: Record<string, string> = {}, options: { ca?: string } = {}): Promise<SseClient> {
    return new Promise((resolve, reject) => {
      const get = url.startsWith('https:') ? https.get : http.get;
      const request = get(url, { headers: { accept: 'text/event-stream', ...headers }, ...(options.ca ? { ca: options.ca } : {}) }, (response) => {
        const status = response.statusCode ?? 0;
        if (status !== 200) {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve(new SseClient(request, status, response.headers, body)));
          return;
        }
        const client = new SseClient(request, status, response.headers, '');
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => client.take(chunk));
        response.on('close', () => client.end());
        resolve(client);
      });
      request.on('error', reject);
    });
  }

  /** Events of one type, in arrival order. */
  ofType(event: string): SseEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  /** The id of the last event that had one, as EventSource keeps it. */
  lastEventId(): string | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) if (this.events[i]!.id !== undefined) return this.events[i]!.id;
    return undefined;
  }

  /** Resolves when `check` holds over what arrived; rejects after `timeoutMs` or when the stream ends first. */
  async until<T>(check: (client: SseClient) => T | undefined | false, timeoutMs = 5_000, what = 'the expected events'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check(this);
      if (value !== undefined && value !== false) return value;
      if (this.closed) throw new Error(`the stream ended before ${what}; got ${this.events.map((e) => e.event).join(', ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.events.length} events`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.request.destroy();
    this.end();
  }

  private end(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private take(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      this.line(line);
    }
    this.wake();
  }

  private line(line: string): void {
    if (line === '') {
      const { id, event, data } = this.pending;
      if (data.length > 0) this.events.push({ id, event: event ?? 'message', data: data.join('\n'), receivedAtMs: Date.now() });
      this.pending = { data: [] };
      return;
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') this.pending.data.push(value);
    else if (field === 'event') this.pending.event = value;
    else if (field === 'id') this.pending.id = value;
    else if (field === 'retry') this.retryMs = Number(value);
  }
}
