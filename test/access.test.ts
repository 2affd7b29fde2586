/**
 * Operator access end to end, as a user runs it: `vpp up` with a
 * certificate (made here with openssl), reached only with standard clients
 * over TLS: curl for HTTPS, mosquitto_pub for MQTT over TLS.
 *
 * - Both doors speak TLS with the configured certificate.
 * - The admin makes an operator and a viewer token; the viewer is refused
 *   a dispatch (403), the operator makes one; a revoked token is refused.
 * - The audit log shows the provisioning (by `bootstrap`), the dispatch (by
 *   the operator's token name) and the refusals.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, eventually } from './support/platform.ts';
import { useProcessTestBed } from './support/process-bed.ts';
import { freePort, stopVpp } from './support/processes.ts';

function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
  } catch (error) {
    throw new Error('openssl is needed to make the test certificate (Debian: apt-get install openssl)', { cause: error });
  }
  return { cert, key };
}

/** curl over HTTPS trusting only the test certificate; returns status and body. */
function curl(cert: string, method: string, url: string, token: string | undefined, body?: unknown): { status: number; body: string } {
  const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '--cacert', cert, '-X', method, url];
  if (token) args.push('-H', `Authorization: Bearer ${token}`);
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data', JSON.stringify(body));
  const out = execFileSync('curl', args, { encoding: 'utf8' });
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
}

describe('operator access', () => {
  const bed = useProcessTestBed();
  const certDir = mkdtempSync(join(tmpdir(), 'vpp-cert-'));
  afterAll(() => rmSync(certDir, { recursive: true, force: true }));

  it('serves both doors over TLS, keeps roles apart and audits who did what', { timeout: 120_000 }, async () => {
    const { cert, key } = makeCertificate(certDir);
    const mqttsPort = await freePort();
    const { env, httpPort } = await bed.env({ VPP_SIM_SITES: '2', VPP_TLS_CERT: cert, VPP_TLS_KEY: key, VPP_MQTTS_PORT: String(mqttsPort) });
    const up = bed.spawn('up', env);
    await up.waitForOutput(/virtual power plant is up/);
    expect(up.output()).toContain(`mqtts://127.0.0.1:${mqttsPort}`);
    const api = `https://127.0.0.1:${httpPort}/api/v1`;

    // HTTPS with the configured certificate; plain HTTP is not served on that port.
    expect(curl(cert, 'GET', `${api}/fleet`, ADMIN_TOKEN).status).toBe(200);
    expect(() => execFileSync('curl', ['-s', '-f', `http://127.0.0.1:${httpPort}/healthz`], { stdio: 'ignore' })).toThrow();

    // Provisioning by the bootstrap admin; the new device publishes over MQTT with TLS.
    expect(curl(cert, 'POST', `${api}/sites`, ADMIN_TOKEN, { id: 'tls-site', region: 'north', name: 'TLS' }).status).toBe(201);
    const provisioned = curl(cert, 'POST', `${api}/devices`, ADMIN_TOKEN, { type: 'battery', siteId: 'tls-site' });
    expect(provisioned.status).toBe(201);
    const device = JSON.parse(provisioned.body) as { id: string; secret: string };
    execFileSync('mosquitto_pub', [
      '--cafile', cert, '-h', '127.0.0.1', '-p', String(mqttsPort), '-V', 'mqttv311', '-q', '1',
      '-i', device.id, '-u', device.id, '-P', device.secret,
      '-t', `vpp/v1/devices/${device.id}/telemetry`,
      '-m', JSON.stringify({ ts: Date.now(), seq: 1, metrics: { socPct: 55, powerW: 100 } }),
    ]);
    await eventually(() => {
      const samples = JSON.parse(curl(cert, 'GET', `${api}/devices/${device.id}/telemetry?resolution=raw`, ADMIN_TOKEN).body) as { samples: unknown[] };
      return samples.samples.length === 1 ? true : undefined;
    }, 10_000, 'the sample sent over TLS stored');

    // Tokens: an operator and a viewer.
    const make = (name: string, role: string) => JSON.parse(curl(cert, 'POST', `${api}/tokens`, ADMIN_TOKEN, { name, role }).body) as { id: string; token: string };
    const operator = make('grid-desk', 'operator');
    const viewer = make('wall-screen', 'viewer');
    const dispatchBody = { target: { fleet: true }, powerW: 1000, durationSeconds: 600, allowPartial: true };
    expect(curl(cert, 'GET', `${api}/fleet`, viewer.token).status).toBe(200);
    expect(curl(cert, 'POST', `${api}/dispatches`, viewer.token, dispatchBody).status).toBe(403);
    expect(curl(cert, 'POST', `${api}/tokens`, operator.token, { name: 'x', role: 'admin' }).status).toBe(403);
    const dispatched = curl(cert, 'POST', `${api}/dispatches`, operator.token, dispatchBody);
    expect(dispatched.status).toBe(201);
    const dispatchId = (JSON.parse(dispatched.body) as { id: string }).id;

    // Revoked at once.
    expect(curl(cert, 'DELETE', `${api}/tokens/${viewer.id}`, ADMIN_TOKEN).status).toBe(204);
    expect(curl(cert, 'GET', `${api}/fleet`, viewer.token).status).toBe(401);

    // The audit trail: who provisioned, who dispatched, what was refused; admins only.
    expect(curl(cert, 'GET', `${api}/audit`, operator.token).status).toBe(403);
    const audit = JSON.parse(curl(cert, 'GET', `${api}/audit?limit=500`, ADMIN_TOKEN).body) as {
      records: Array<{ actor: string | null; role: string | null; action: string; target: string | null; status: number; outcome: string; summary: Record<string, unknown> | null }>;
    };
    const find = (action: string, actor: string | null, status: number) => audit.records.find((r) => r.action === action && r.actor === actor && r.status === status);
    expect(find('POST /api/v1/devices', 'bootstrap', 201)).toMatchObject({ role: 'admin', outcome: 'ok' });
    expect(find('POST /api/v1/dispatches', 'grid-desk', 201)).toMatchObject({ role: 'operator', outcome: 'ok', summary: expect.objectContaining({ powerW: 1000 }) });
    expect(find('POST /api/v1/dispatches', 'wall-screen', 403)).toMatchObject({ role: 'viewer', outcome: 'refused' });
    expect(find('GET /api/v1/fleet', null, 401)).toMatchObject({ outcome: 'refused' });
    expect(find('DELETE /api/v1/tokens/:id', 'bootstrap', 204)).toMatchObject({ target: viewer.id });
    // The provisioning's record keeps no secret, nor any token.
    expect(JSON.stringify(audit.records)).not.toContain(device.secret);
    expect(JSON.stringify(audit.records)).not.toContain(operator.token);
    expect(curl(cert, 'GET', `${api}/dispatches/${dispatchId}`, operator.token).status).toBe(200);
    expect(await stopVpp(up, 'SIGINT')).toBe(0);
  });
});
