import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { buildControlApp } from './app.ts';
import { toErrorReply } from './plugins/errors.ts';
import { ALERT_RULES, T0 } from './test-fixtures.ts';
import { ADMIN_TOKEN, AUTH, useControlTest } from './test-helper.ts';

const t = useControlTest();

interface OpenApiOperation {
  security?: Array<Record<string, string[]>>;
  responses: Record<string, { description: string; headers?: Record<string, { schema: object }>; content?: Record<string, { schema: object }> }>;
  parameters?: Array<{ in: string; name: string; schema: object }>;
  requestBody?: { content: Record<string, { schema: object }> };
}

const EXPECTED_OPERATIONS = [
  'get /healthz',
  'get /readyz',
  'get /api/v1/devices',
  'post /api/v1/devices',
  'get /api/v1/devices/{id}',
  'delete /api/v1/devices/{id}',
  'post /api/v1/devices/{id}/secret',
  'get /api/v1/devices/{id}/telemetry',
  'get /api/v1/sites',
  'post /api/v1/sites',
  'get /api/v1/sites/overview',
  'get /api/v1/sites/{id}',
  'get /api/v1/sites/{id}/history',
  'get /api/v1/regions/{id}/history',
  'get /api/v1/fleet',
  'get /api/v1/fleet/history',
  'get /api/v1/dead-letters',
  'get /api/v1/services',
  'get /api/v1/alerts',
  'get /api/v1/alerts/{id}',
  'post /api/v1/alerts/{id}/ack',
  'post /api/v1/alerts/{id}/resolve',
  'get /api/v1/alert-rules',
  'get /api/v1/alert-deliveries',
  'post /api/v1/devices/{id}/commands',
  'get /api/v1/commands',
  'get /api/v1/commands/{id}',
  'post /api/v1/dispatches',
  'get /api/v1/dispatches',
  'get /api/v1/dispatches/{id}',
  'post /api/v1/dispatches/{id}/cancel',
  'post /api/v1/tokens',
  'get /api/v1/tokens',
  'delete /api/v1/tokens/{id}',
  'get /api/v1/audit',
  'get /api/v1/me',
  'get /api/v1/stream',
  'post /api/v1/stream/tickets',
  'get /api/v1/stream/stats',
];

describe('OpenAPI document', () => {
  it('is served at /docs/json without a token and lists every route with valid schemas', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/docs/json' });
    expect(response.statusCode).toBe(200);
    const doc = response.json() as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, OpenApiOperation>>;
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBeTruthy();
    expect(doc.info.version).toBeTruthy();
    expect(doc.components.securitySchemes.bearerAuth).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));

    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ key: `${method} ${path}`, path, operation })),
    );
    expect(operations.map((o) => o.key).sort()).toEqual([...EXPECTED_OPERATIONS].sort());

    // Every schema in the document must be valid JSON Schema 2020-12, the dialect of OpenAPI 3.1.
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    for (const { key, path, operation } of operations) {
      expect(Object.keys(operation.responses).some((status) => status.startsWith('2')), key).toBe(true);
      if (path.startsWith('/api/v1/')) {
        expect(operation.security, key).toEqual([{ bearerAuth: [] }]);
        // The guard answers these on every route; the route table adds them to the document.
        for (const status of ['401', '403', '429']) expect(operation.responses[status], `${key} ${status}`).toBeDefined();
        expect((operation as { description?: string }).description, key).toMatch(/Needs the \*\*(viewer|operator|admin)\*\* role/);
      }
      const schemas = [
        ...(operation.parameters ?? []).map((p) => p.schema),
        ...Object.values(operation.requestBody?.content ?? {}).map((c) => c.schema),
        ...Object.values(operation.responses).flatMap((r) => Object.values(r.content ?? {}).map((c) => c.schema)),
      ];
      for (const schema of schemas) {
        expect(() => ajv.compile(schema), key).not.toThrow();
      }
    }
    const telemetry = doc.paths['/api/v1/devices/{id}/telemetry']!.get!;
    expect(telemetry.parameters!.map((p) => `${p.in}:${p.name}`).sort()).toEqual(
      ['path:id', 'query:format', 'query:from', 'query:limit', 'query:metric', 'query:resolution', 'query:to'],
    );
    const sendCommand = doc.paths['/api/v1/devices/{id}/commands']!.post!;
    expect(sendCommand.parameters!.map((p) => `${p.in}:${p.name}`).sort()).toEqual(['header:idempotency-key', 'path:id']);
    expect(Object.keys(sendCommand.responses['201']!.headers ?? {})).toEqual(['location']);
    expect(Object.keys(sendCommand.responses['200']!.headers ?? {})).toEqual(['idempotent-replayed']);
  });

  it('documents Cache-Control: no-store on exactly the responses that carry a secret', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, OpenApiOperation>>;
    };
    const carriesSecret = (schema: unknown): boolean => {
      if (schema === null || typeof schema !== 'object') return false;
      const properties = (schema as { properties?: Record<string, unknown> }).properties ?? {};
      return ['secret', 'password', 'token'].some((name) => name in properties) || Object.values(schema).some(carriesSecret);
    };
    const withSecret: string[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (!carriesSecret(response.content)) continue;
          withSecret.push(`${method} ${path} ${status}`);
          expect(response.headers?.['cache-control']?.schema, `${method} ${path}`).toMatchObject({ const: 'no-store' });
        }
      }
    }
    // A new route that answers a secret must be added here, with a test that it sends the header.
    expect(withSecret.sort()).toEqual(['post /api/v1/devices 201', 'post /api/v1/devices/{id}/secret 200', 'post /api/v1/tokens 201']);
  });

  it('serves the UI at /docs', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/text\/html/);
  });
});

describe('errors', () => {
  it('answers unknown routes with the JSON error shape', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/nothing-here?x=1' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ code: 'not-found', message: 'no route GET /nothing-here' });
  });

  it('answers a store that is down with 503 and the store error code, nothing more', async () => {
    // A closed database makes every call fail, as a lost disk would.
    await t.store.close();
    const response = await t.request({ method: 'GET', url: '/api/v1/sites' });
    expect(response.statusCode).toBe(503);
    expect(Object.keys(response.json()).sort()).toEqual(['code', 'message']);
    expect(response.json().code).toBe('unavailable');
    expect(response.body).not.toMatch(/\bat .*:\d+:\d+/);
  });

  it('turns an unexpected error into a bare 500 and keeps client errors of fastify', () => {
    const unexpected = toErrorReply(Object.assign(new TypeError('secret internals'), { stack: 'TypeError at x.ts:1:1' }));
    expect(unexpected).toEqual({ status: 500, body: { code: 'internal', message: 'internal error; see the server log' }, unexpected: true });
    const tooLarge = toErrorReply(Object.assign(new Error('Request body is too large'), { statusCode: 413 }));
    expect(tooLarge).toEqual({ status: 413, body: { code: 'payload-too-large', message: 'Request body is too large' }, unexpected: false });
  });
});

describe('CORS, closed by default', () => {
  it('sends no CORS header, to answers or preflights', async () => {
    const answer = await t.request({ method: 'GET', url: '/api/v1/sites', headers: { origin: 'https://ops.example.com' } });
    expect(answer.statusCode).toBe(200);
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await t.app.inject({
      method: 'OPTIONS',
      url: '/api/v1/sites',
      headers: { origin: 'https://ops.example.com', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    expect(preflight.headers['access-control-allow-methods']).toBeUndefined();
  });
});

describe('over a real socket', () => {
  it('serves the API over HTTP on a free port', async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const address = t.app.server.address();
    if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
    const base = `http://127.0.0.1:${address.port}`;

    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true });

    const denied = await fetch(`${base}/api/v1/sites`);
    expect(denied.status).toBe(401);
    expect(denied.headers.get('content-type')).toMatch(/application\/json/);

    const created = await fetch(`${base}/api/v1/sites`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'site-1', region: 'north', name: 'Home 1' }),
    });
    expect(created.status).toBe(201);
    const listed = await fetch(`${base}/api/v1/sites`, { headers: AUTH });
    expect(await listed.json()).toMatchObject({ items: [{ id: 'site-1', region: 'north', deviceCount: 0, live: null }] });
  });
});

describe('buildControlApp', () => {
  /** Valid dependencies, for the cases that spoil one of them. */
  const validDeps = () => ({
    registry: t.store,
    telemetry: t.store,
    twins: t.store,
    deadLetters: t.store,
    alerts: t.store.alerts,
    alertRules: ALERT_RULES,
    onAlertTransition: () => {},
    commands: t.store.commands,
    onCommandCreated: () => {},
    dispatches: t.store.dispatches,
    dispatcher: t.dispatcher,
    live: t.live,
    revocations: { revokeDevice: async () => {} },
    health: { check: async () => ({ ok: true, components: {} }) },
    clock: () => T0,
    logger: pino({ level: 'silent' }),
    adminToken: ADMIN_TOKEN,
    tokens: t.store.tokens,
    audit: t.store.audit,
    secretGraceMs: 60_000,
  });

  it('refuses access limits that are not positive integers and CORS origins that are not origins, at boot', async () => {
    const deps = validDeps();
    for (const [access, message] of [
      [{ rateLimitPerMinute: 0 }, /^access\.rateLimitPerMinute: must be a positive integer, not 0$/],
      [{ rateLimitPerAddressPerMinute: 1.5 }, /^access\.rateLimitPerAddressPerMinute:/],
      [{ failedAuthPerAddressPerMinute: Number.NaN }, /^access\.failedAuthPerAddressPerMinute:/],
      [{ corsOrigins: ['https://ops.example.com/'] }, /^access\.corsOrigins: "https:\/\/ops\.example\.com\/" is not an origin/],
      [{ corsOrigins: ['*'] }, /^access\.corsOrigins:/],
    ] as const) {
      await expect(buildControlApp({ ...deps, access }), JSON.stringify(access)).rejects.toThrow(message);
    }
  });

  it('serves HTTPS with the key and certificate given', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpp-tls-'));
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-days', '1', '-keyout', keyFile, '-out', certFile,
    ], { stdio: 'ignore' });
    const cert = fs.readFileSync(certFile);
    const app = await buildControlApp(validDeps(), { https: { key: fs.readFileSync(keyFile), cert } });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const address = app.server.address();
      if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
      const get = (url: string, headers: Record<string, string> = {}) =>
        new Promise<{ status: number; body: string; hsts: string | undefined }>((resolve, reject) => {
          // Trusts exactly this certificate, so the check is real TLS verification, host name included.
          const request = https.get(`https://127.0.0.1:${address.port}${url}`, { ca: cert, headers }, (response) => {
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (body += chunk));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, body, hsts: response.headers['strict-transport-security'] }));
          });
          request.on('error', reject);
        });
      const health = await get('/healthz');
      expect(health.status).toBe(200);
      expect(health.hsts).toMatch(/max-age=\d+/);
      const sites = await get('/api/v1/sites', AUTH);
      expect(sites.status).toBe(200);
      expect(JSON.parse(sites.body)).toEqual({ items: [] });
    } finally {
      await app.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a short admin token at boot', async () => {
    await expect(buildControlApp({ ...validDeps(), adminToken: 'short' })).rejects.toThrow(/adminToken: must be at least 16 characters/);
  });

  it('refuses a negative or fractional secret grace period at boot', async () => {
    const deps = validDeps();
    for (const secretGraceMs of [-1, 1.5, Number.NaN]) {
      await expect(buildControlApp({ ...deps, secretGraceMs })).rejects.toThrow(/^secretGraceMs: must be a non-negative integer/);
    }
  });
});

describe('GET /healthz', () => {
  it('answers 200 without a token when every component is healthy', async () => {
    t.health.report = { ok: true, components: { broker: { ok: true }, pipeline: { ok: true }, store: { ok: true, detail: 'wal' } } };
    const response = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual(t.health.report);
  });

  it('answers 503 with the same body when a component is unhealthy', async () => {
    t.health.report = { ok: false, components: { broker: { ok: true }, pipeline: { ok: false, detail: 'no heartbeat for 30 s' } } };
    const response = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual(t.health.report);
  });

  it('answers 503 when the check itself fails', async () => {
    t.health.report = () => {
      throw new Error('store closed');
    };
    const response = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ ok: false, components: { health: { ok: false, detail: 'health check failed: store closed' } } });
  });
});
