import fs from 'node:fs';
import path from 'node:path';
import Fastify from 'fastify';
import { beforeEach, describe, expect, it } from 'vitest';
import { OPERATOR_ROLES, type OperatorRole } from '../../store/types.ts';
import { useControlTest } from '../test-helper.ts';
import { ROUTE_ROLES, declareRouteRoles } from './access.ts';

const t = useControlTest();

interface TableRoute {
  key: string;
  method: string;
  /** The pattern with `:id` filled in. */
  url: string;
  role: OperatorRole;
}

const ROUTES: TableRoute[] = Object.entries(ROUTE_ROLES).map(([key, role]) => {
  const [method, pattern] = key.split(' ') as [string, string];
  return { key, method, url: pattern.replace(':id', 'x-1'), role };
});
const rank = (role: OperatorRole) => OPERATOR_ROLES.indexOf(role);

/** `METHOD /pattern` of every route in fastify's printed tree under /api/v1, HEAD left out (it follows GET). */
function registeredApiRoutes(tree: string): string[] {
  const stack: string[] = [];
  const out: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+) \(([^)]+)\)$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    const full = (stack[depth - 1] ?? '') + match[2]!;
    stack.push(full);
    if (!full.startsWith('/api/v1/')) continue;
    for (const method of match[3]!.split(', ')) if (method !== 'HEAD') out.push(`${method} ${full}`);
  }
  return out.sort();
}

describe('the route table', () => {
  it('covers exactly the routes fastify has registered under /api/v1', async () => {
    await t.app.ready();
    const registered = registeredApiRoutes(t.app.printRoutes({ commonPrefix: false }));
    expect(registered.length).toBeGreaterThan(20);
    expect(registered).toEqual(Object.keys(ROUTE_ROLES).sort());
  });

  it('fails startup for a route without a declared role', async () => {
    const app = Fastify();
    declareRouteRoles(app, () => ({}), { 'GET /api/v1/known': 'viewer' });
    const start = async () => {
      await app.register(
        async (scope) => {
          scope.get('/known', async () => ({}));
          scope.post('/forgotten', async () => ({}));
        },
        { prefix: '/api/v1' },
      );
      await app.ready();
    };
    await expect(start()).rejects.toThrow('POST /api/v1/forgotten: no role declared for this route');
    await app.close();
  });

  it('is the table of README\'s Access section, route for route', () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const section = readme.split(/^## /m).find((s) => s.startsWith('Access\n'));
    expect(section, 'README.md has an "## Access" section').toBeDefined();
    const rows = [...section!.matchAll(/^\| `([A-Z]+ \/api\/v1\/[^`]*)` \| (viewer|operator|admin) \|/gm)].map((m) => [m[1]!, m[2]!]);
    expect(Object.fromEntries(rows)).toEqual(ROUTE_ROLES);
    expect(rows).toHaveLength(Object.keys(ROUTE_ROLES).length);
  });
});

describe('roles, for every route of the table', () => {
  let viewer = '';
  let operator = '';
  beforeEach(async () => {
    viewer = await t.createToken('viewer', 'viewer-1');
    operator = await t.createToken('operator', 'operator-1');
  });

  it.each(ROUTES)('$key without a token → 401', async ({ method, url }) => {
    const response = await t.app.inject({ method: method as 'GET', url });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ code: 'unauthorized' });
  });

  it.each(ROUTES.filter((r) => rank(r.role) > rank('viewer')))('$key with a viewer token → 403 naming the $role role', async ({ key, method, url, role }) => {
    const response = await t.requestAs(viewer, { method: method as 'GET', url });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toEqual({ code: 'forbidden', message: `${key} needs the ${role} role; token "viewer-1" has viewer` });
  });

  it.each(ROUTES.filter((r) => r.role === 'admin'))('$key with an operator token → 403', async ({ method, url }) => {
    const response = await t.requestAs(operator, { method: method as 'GET', url });
    expect(response.statusCode).toBe(403);
    expect(response.json().message).toContain('needs the admin role; token "operator-1" has operator');
  });

  it.each(ROUTES.filter((r) => r.role === 'viewer'))('$key with a viewer token passes the guard', async ({ method, url }) => {
    const response = await t.requestAs(viewer, { method: method as 'GET', url });
    expect([401, 403, 429]).not.toContain(response.statusCode);
  });

  it.each(ROUTES.filter((r) => r.role === 'operator'))('$key with an operator token passes the guard', async ({ method, url }) => {
    const response = await t.requestAs(operator, { method: method as 'POST', url, payload: {} });
    expect([401, 403, 429]).not.toContain(response.statusCode);
  });
});

describe('the guard', () => {
  it('answers 404 to any valid token on a path no route has, 401 without one', async () => {
    const viewer = await t.createToken('viewer');
    expect((await t.requestAs(viewer, { method: 'POST', url: '/api/v1/nothing' })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/nothing' })).statusCode).toBe(401);
  });

  it('checks the role before the body: a viewer\'s invalid body is a 403, not a 400', async () => {
    const viewer = await t.createToken('viewer');
    const response = await t.requestAs(viewer, { method: 'POST', url: '/api/v1/devices', payload: { type: 'nonsense' } });
    expect(response.statusCode).toBe(403);
  });

  it('treats HEAD as the GET it follows', async () => {
    const viewer = await t.createToken('viewer');
    expect((await t.requestAs(viewer, { method: 'HEAD', url: '/api/v1/sites' })).statusCode).toBe(200);
    expect((await t.requestAs(viewer, { method: 'HEAD', url: '/api/v1/tokens' })).statusCode).toBe(403);
  });
});
