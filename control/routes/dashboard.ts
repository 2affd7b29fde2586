/**
 * The dashboard's files, served at `/` from the built folder (see
 * dashboard/README.md): `index.html` and `assets/*`, read once at start and
 * kept in memory (the bundle is small), so serving them touches no disk.
 * Asset names carry a hash of their content: cached for a year, immutable.
 * The page itself is never cached, so a new build is picked up at the next
 * load. The dashboard has its own Content-Security-Policy: its scripts,
 * styles and connections from this origin only, nothing inline, no framing.
 *
 * The page is public (it holds no data); everything it shows comes from the
 * API with the operator's token.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/** Larger than any bundle this project builds; a bigger folder is a mistake, not something to hold in memory. */
const MAX_DASHBOARD_BYTES = 20 * 1024 * 1024;

interface StaticFile {
  body: Buffer;
  contentType: string;
  etag: string;
}

function loadFile(path: string): StaticFile {
  const body = readFileSync(path);
  return {
    body,
    contentType: CONTENT_TYPES[extname(path)] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
  };
}

/** Reads the built dashboard; undefined when the folder has no index.html (not built). Throws when it is larger than 20 MiB. */
export function loadDashboard(dir: string): { index: StaticFile; assets: Map<string, StaticFile> } | undefined {
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  const assets = new Map<string, StaticFile>();
  const assetDir = join(dir, 'assets');
  let total = 0;
  if (existsSync(assetDir)) {
    for (const name of readdirSync(assetDir)) {
      const path = join(assetDir, name);
      if (!statSync(path).isFile()) continue;
      const file = loadFile(path);
      total += file.body.length;
      if (total > MAX_DASHBOARD_BYTES) throw new Error(`dashboard: ${dir} holds more than ${MAX_DASHBOARD_BYTES} bytes of assets; is it the built dashboard?`);
      assets.set(name, file);
    }
  }
  return { index: loadFile(join(dir, 'index.html')), assets };
}

function send(reply: FastifyReply, file: StaticFile, ifNoneMatch: string | undefined, cacheControl: string) {
  reply.header('content-security-policy', DASHBOARD_CSP).header('cache-control', cacheControl).header('etag', file.etag);
  if (ifNoneMatch === file.etag) return reply.code(304).send();
  return reply.type(file.contentType).send(file.body);
}

export const dashboardRoutes: FastifyPluginAsync<{ dir: string | undefined }> = async (app, { dir }) => {
  const dashboard = dir === undefined ? undefined : loadDashboard(dir);
  if (dir !== undefined && dashboard === undefined) {
    app.log.warn({ dir }, 'the dashboard is not built (no index.html); `/` answers 503 until `npm run build:dashboard` and a restart');
  }
  const hidden = { schema: { hide: true } };
  app.get('/', hidden, async (request, reply) => {
    if (!dashboard) {
      return reply
        .code(dir === undefined ? 404 : 503)
        .type('text/plain; charset=utf-8')
        .send(dir === undefined ? 'no dashboard here: see /docs for the API' : 'the dashboard is not built: run `npm run build:dashboard` and restart');
    }
    return send(reply, dashboard.index, request.headers['if-none-match'], 'no-cache');
  });
  app.get<{ Params: { name: string } }>('/assets/:name', hidden, async (request, reply) => {
    const file = dashboard?.assets.get(request.params.name);
    if (!file) return reply.code(404).type('text/plain; charset=utf-8').send('no such asset');
    return send(reply, file, request.headers['if-none-match'], 'public, max-age=31536000, immutable');
  });
};
