/**
 * A real HTTP receiver for the tests: a node:http server on a free loopback
 * port that records every request and answers as the test says.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Date.now() when the whole body had arrived. */
  atMs: number;
}

/** Answers one request; may never answer (a hanging receiver). */
export type Responder = (request: ReceivedRequest, response: ServerResponse) => void | Promise<void>;

export interface Receiver {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: ReceivedRequest[];
  respond: Responder;
  close(): Promise<void>;
}

export const answer =
  (status: number, body = '', headers: Record<string, string> = {}): Responder =>
  (_request, response) => {
    response.writeHead(status, { 'Content-Type': 'text/plain', ...headers });
    response.end(body);
  };

export async function startReceiver(respond: Responder = answer(200, 'ok')): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const receiver: Receiver = {
    url: '',
    requests,
    respond,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        atMs: Date.now(),
      };
      requests.push(request);
      // A client that gave up (timeout, bounded read) resets the socket: not the test's concern.
      res.on('error', () => undefined);
      void Promise.resolve(receiver.respond(request, res)).catch(() => undefined);
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

/** A loopback URL where nothing listens (the port was free a moment ago). */
export async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** Answers `status` with `totalBytes` of body, written in 64 KiB chunks as fast as the client reads. */
export function hugeAnswer(status: number, totalBytes: number): Responder {
  return (_request, response) => {
    response.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': String(totalBytes) });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    const write = (): void => {
      while (sent < totalBytes && !response.destroyed) {
        const size = Math.min(chunk.length, totalBytes - sent);
        sent += size;
        if (!response.write(chunk.subarray(0, size))) {
          response.once('drain', write);
          return;
        }
      }
      if (!response.destroyed) response.end();
    };
    write();
  };
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
