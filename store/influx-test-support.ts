/**
 * Test helpers for the InfluxDB store: a registry stand-in for
 * describeDevice, and a proxy in front of a real server that injects write
 * failures and holds answers, so tests can prove when a write is
 * acknowledged without sleeping.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { logInfluxClientTo } from './influx-connection.ts';
import type { DescribeDevice } from './influx-schema.ts';
import type { DeviceType } from '../protocol/index.ts';

/** The client logs every failed attempt to the console; tests provoke them on purpose. */
export function silenceInfluxClient(): void {
  logInfluxClientTo(pino({ enabled: false }));
}

/** Any device id is known: its type from the id's characters (so a contract's devices spread over every measurement). */
export const describeAnyDevice: DescribeDevice = (deviceId) => {
  const types: DeviceType[] = ['battery', 'solar', 'meter'];
  let sum = 0;
  for (const c of deviceId) sum += c.charCodeAt(0);
  return { type: types[sum % types.length]!, siteId: `site-of-${deviceId}`, region: 'north' };
};

export type WriteFault =
  /** Answer with this status without forwarding. */
  | { kind: 'status'; status: number }
  /** Forward (the server stores it), then answer 503 as if the answer were lost. */
  | { kind: 'store-then-fail' }
  /** Forward, then hold the answer until released. */
  | { kind: 'hold'; arrived: () => void; released: Promise<void> };

export interface FaultyProxy {
  url: string;
  /** Faults for the next write requests, in order; a write without one is forwarded as is. */
  faults: WriteFault[];
  /** Write requests seen. */
  writes(): number;
  /** /query requests seen. */
  queries(): number;
  close(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** A loopback HTTP proxy to `target` that applies `faults` to write requests (/write, /api/v2/write). */
export async function startFaultyProxy(target: string): Promise<FaultyProxy> {
  const faults: WriteFault[] = [];
  let writes = 0;
  let queries = 0;
  const server: Server = createServer((request, response) => {
    void (async () => {
      const body = await readBody(request);
      const path = request.url ?? '/';
      const isWrite = path.startsWith('/write') || path.startsWith('/api/v2/write');
      const fault = isWrite ? faults.shift() : undefined;
      if (isWrite) writes++;
      if (path.startsWith('/query')) queries++;
      if (fault?.kind === 'status') {
        response.writeHead(fault.status, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: `injected ${fault.status}` }));
        return;
      }
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'content-encoding', 'authorization']) {
        const value = request.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      const upstream = await fetch(`${target}${path}`, {
        method: request.method ?? 'GET',
        headers,
        ...(request.method === 'GET' || request.method === 'HEAD' ? {} : { body: new Uint8Array(body) }),
      });
      const answer = Buffer.from(await upstream.arrayBuffer());
      if (fault?.kind === 'store-then-fail') {
        response.writeHead(503, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: 'injected 503 after storing' }));
        return;
      }
      if (fault?.kind === 'hold') {
        fault.arrived();
        await fault.released;
      }
      const type = upstream.headers.get('content-type');
      response.writeHead(upstream.status, type ? { 'content-type': type } : {});
      response.end(answer);
    })().catch((error: unknown) => {
      response.writeHead(502);
      response.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    faults,
    writes: () => writes,
    queries: () => queries,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A held write: `arrived` resolves when the server has it, `release()` lets its answer go. */
export function holdWrite(): { fault: WriteFault; arrived: Promise<void>; release: () => void } {
  let arrive!: () => void;
  let release!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  return { fault: { kind: 'hold', arrived: arrive, released }, arrived, release };
}
