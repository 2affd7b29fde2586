/**
 * Prometheus metrics of one process: one registry (prom-client) holding the
 * process metrics and the metrics of each part the process runs, each part
 * registered once by the service that starts it; and a plain HTTP server
 * that serves the registry at GET /metrics (no authentication, like
 * /healthz: keep the port off the public network).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';

export const METRICS_PATH = '/metrics';

/** A fresh registry with the process metrics (CPU, memory, event loop lag, GC, handles: prom-client's defaults). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Runs `register` (a part's collector) on `registry` and returns what undoes
 * it: the metrics it added are removed, so that a service stopped and started
 * again in the same process registers them anew.
 */
export function registerPartMetrics(registry: Registry, register: (registry: Registry) => void): () => void {
  const before = new Set(registry.getMetricsAsArray().map((m) => m.name));
  register(registry);
  const added = registry.getMetricsAsArray().map((m) => m.name).filter((name) => !before.has(name));
  return () => {
    for (const name of added) registry.removeSingleMetric(name);
  };
}

export interface MetricsServer {
  /** `http://host:port/metrics`. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * A collection of every part's metrics costs the process some tens of
 * milliseconds of CPU (store gauges included): requests within this long of
 * one share its answer, and concurrent ones its collection, so however
 * often /metrics is asked, the parts pay for at most one collection per
 * second.
 */
export const METRICS_REUSE_MS = 1_000;

/** registry.metrics(), shared by concurrent callers and reused for METRICS_REUSE_MS after it settles. */
export function sharedCollection(registry: Pick<Registry, 'metrics'>, clock: () => number = Date.now): () => Promise<string> {
  let latest: { promise: Promise<string>; settledAtMs: number | undefined } | undefined;
  return () => {
    if (latest && (latest.settledAtMs === undefined || clock() - latest.settledAtMs < METRICS_REUSE_MS)) return latest.promise;
    const entry: { promise: Promise<string>; settledAtMs: number | undefined } = { promise: registry.metrics(), settledAtMs: undefined };
    latest = entry;
    entry.promise.then(
      () => (entry.settledAtMs = clock()),
      // A failed collection is not reused: the next request collects again.
      () => (latest = latest === entry ? undefined : latest),
    );
    return entry.promise;
  };
}

/**
 * Serves `registry` at GET (and HEAD) /metrics on host:port (0: a free
 * port); any other path is 404, any other method 405. A scrape that fails
 * (a collector threw) answers 500 and is logged at warn. Collections are
 * shared (see sharedCollection).
 */
export async function startMetricsServer(options: { host: string; port: number; registry: Registry; logger: Logger }): Promise<MetricsServer> {
  const { registry, logger } = options;
  const collect = sharedCollection(registry);
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== METRICS_PATH) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    collect().then(
      (text) => {
        response.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        logger.warn({ err: error }, 'metrics scrape failed');
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics could not be collected\n');
      },
    );
  });
  // Scrapers keep connections open; they must not hold up stop().
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}${METRICS_PATH}`,
    port,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
