import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, useControlTest } from './test-helper.ts';

// The platform logger as verbose as it gets, with pino's standard serializers,
// whose request serializer logs every header: control must keep secrets out anyway.
const lines: string[] = [];
const logger = pino({ level: 'trace', serializers: pino.stdSerializers }, { write: (line: string) => void lines.push(line) });
const t = useControlTest({ logger });

beforeEach(() => {
  lines.length = 0;
});

describe('request logging', () => {
  it('logs provisioning and rotation without the bearer token or the device secrets', async () => {
    await t.request({ method: 'POST', url: '/api/v1/sites', payload: { id: 'site-1', region: 'north', name: 'Home 1' } });
    const provisioned = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { type: 'battery', siteId: 'site-1', id: 'bat-1' } });
    expect(provisioned.statusCode).toBe(201);
    const rotated = await t.request({ method: 'POST', url: '/api/v1/devices/bat-1/secret' });
    expect(rotated.statusCode).toBe(200);
    const token = await t.request({ method: 'POST', url: '/api/v1/tokens', payload: { name: 'ops', role: 'operator' } });
    expect(token.statusCode).toBe(201);
    // A rejected token is not logged either.
    await t.app.inject({ method: 'GET', url: '/api/v1/devices', headers: { authorization: 'Bearer not-the-token-but-close' } });

    const output = lines.join('');
    // The log is not empty: requests, replies and what was done are all there.
    expect(output).toContain('"msg":"incoming request"');
    expect(output).toContain('"msg":"request completed"');
    expect(output).toContain('"msg":"device provisioned"');
    expect(output).toContain('"msg":"device secret rotated"');
    expect(output).toContain('"msg":"token created"');
    expect(output).toContain('"actor":"bootstrap"');
    expect(output).toContain('"url":"/api/v1/devices/bat-1/secret"');

    const secrets = [ADMIN_TOKEN, 'not-the-token-but-close', provisioned.json().secret as string, rotated.json().secret as string, token.json().token as string];
    for (const secret of secrets) expect(output).not.toContain(secret);
    expect(output.toLowerCase()).not.toContain('authorization');
  });

  it('censors secret fields and headers that a log call passes by mistake', () => {
    t.app.log.info(
      { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, device: { secret: 'device-secret-1', mqtt: { password: 'device-secret-1' } } },
      'careless',
    );
    const output = lines.join('');
    expect(output).toContain('"msg":"careless"');
    expect(output).not.toContain(ADMIN_TOKEN);
    expect(output).not.toContain('device-secret-1');
    expect(output).toContain('[redacted]');
  });
});
