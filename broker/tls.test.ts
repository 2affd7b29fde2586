import { execFile, execFileSync } from 'node:child_process';
import { connect as connectTcp } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopic } from '../protocol/index.ts';
import { nextEvent, recordingTap, startTestBed, waitUntil, type TestBed } from './test-helpers.ts';

const run = promisify(execFile);

/** A self-signed certificate for 127.0.0.1, made by openssl in a temp dir. */
function makeCertificate(dir: string): { certPath: string; cert: string; key: string } {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath,
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'],
      { stdio: 'pipe' },
    );
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      missing
        ? 'openssl is not installed; the TLS tests need it to make a certificate (Debian: apt-get install openssl)'
        : `openssl could not make a certificate: ${String((err as { stderr?: Buffer }).stderr ?? err)}`,
      { cause: err },
    );
  }
  return { certPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}

describe('broker over TLS', () => {
  let dir: string;
  let certificate: { certPath: string; cert: string; key: string };
  let bed: TestBed;
  const clients: MqttClient[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'broker-tls-'));
    certificate = makeCertificate(dir);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)));
    await bed.close();
  });

  /** Connects over mqtts:// and resolves on CONNACK 0, rejects on a refusal or a TLS error. */
  const connectTls = (options: IClientOptions): Promise<MqttClient> => {
    const client = mqtt.connect(bed.broker.tlsUrl!, { reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 4, ...options });
    clients.push(client);
    return new Promise((resolve, reject) => {
      client.once('connect', () => resolve(client));
      client.once('error', reject);
      client.once('close', () => reject(new Error('connection closed before CONNACK')));
    });
  };

  it('serves MQTT.js and mosquitto_pub over mqtts:// with the same authentication and tap', async () => {
    const recording = recordingTap();
    bed = await startTestBed({ tap: recording.tap, tls: { cert: certificate.cert, key: certificate.key, port: 0 } });
    expect(bed.broker.tlsAddress?.port).toBeGreaterThan(0);
    expect(bed.broker.tlsAddress?.port).not.toBe(bed.broker.address.port);
    expect(bed.broker.tlsUrl).toBe(`mqtts://127.0.0.1:${bed.broker.tlsAddress!.port}`);

    const secret1 = bed.credentials.add('bat-1');
    const device = await connectTls({ ca: certificate.cert, rejectUnauthorized: true, clientId: 'bat-1', username: 'bat-1', password: secret1 });
    await device.publishAsync(deviceTopic('bat-1', 'telemetry'), '{"soc":0.5}', { qos: 1 });

    const secret2 = bed.credentials.add('bat-2');
    try {
      await run('mosquitto_pub', [
        '--cafile', certificate.certPath, '-h', '127.0.0.1', '-p', String(bed.broker.tlsAddress!.port),
        '-V', 'mqttv311', '-i', 'bat-2', '-u', 'bat-2', '-P', secret2,
        '-t', deviceTopic('bat-2', 'telemetry'), '-q', '1', '-m', '{"soc":0.7}',
      ], { timeout: 10_000 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error('mosquitto_pub is not installed (scripts/install-deps.sh installs mosquitto-clients)', { cause: err });
      }
      throw err;
    }

    expect(recording.tapped.map(({ deviceId, channel, payload }) => ({ deviceId, channel, payload: payload.toString('utf8') }))).toEqual([
      { deviceId: 'bat-1', channel: 'telemetry', payload: '{"soc":0.5}' },
      { deviceId: 'bat-2', channel: 'telemetry', payload: '{"soc":0.7}' },
    ]);
    // Same authentication: a wrong secret over TLS gets CONNACK 4.
    await expect(connectTls({ ca: certificate.cert, rejectUnauthorized: true, clientId: 'bat-1', username: 'bat-1', password: 'wrong' })).rejects.toMatchObject({ code: 4 });

    // close() closes the TLS listener's connections too, also one still before its handshake.
    const silent = connectTcp(bed.broker.tlsAddress!.port, '127.0.0.1');
    await nextEvent(silent, 'connect');
    const closed = Promise.all([nextEvent(device, 'close'), nextEvent(silent, 'close')]);
    await bed.broker.close();
    await closed;
  });

  it('refuses a client that does not trust the certificate at the handshake', async () => {
    bed = await startTestBed({ tls: { cert: certificate.cert, key: certificate.key, port: 0 } });
    const secret = bed.credentials.add('bat-1');
    await expect(connectTls({ clientId: 'bat-1', username: 'bat-1', password: secret, rejectUnauthorized: true })).rejects.toMatchObject({
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    });
    await waitUntil(() => bed.broker.counters().tlsHandshakeFailures === 1, 'the broker saw the failed handshake');
    expect(bed.broker.counters()).toMatchObject({ socketsOpened: 0, connectionsAccepted: 0 });
  });

  it('throttles TLS clients by their real address, shared with TCP', async () => {
    bed = await startTestBed({
      tls: { cert: certificate.cert, key: certificate.key, port: 0 },
      throttle: { maxFailuresPerAddress: 2, freeFailures: 10 },
    });
    const secret = bed.credentials.add('bat-1');
    const tls = { ca: certificate.cert, rejectUnauthorized: true, clientId: 'bat-1', username: 'bat-1' };
    await expect(connectTls({ ...tls, password: 'wrong' })).rejects.toMatchObject({ code: 4 });
    await expect(bed.connectDevice('bat-1', 'wrong')).rejects.toMatchObject({ code: 4 });
    // Two failures from 127.0.0.1, one per listener: the address is locked on both.
    await expect(connectTls({ ...tls, password: secret })).rejects.toMatchObject({ code: 4 });
    await expect(bed.connectDevice('bat-1', secret)).rejects.toMatchObject({ code: 4 });
    expect(bed.broker.counters()).toMatchObject({ connectionsRefusedBadSecret: 2, connectionsRefusedThrottled: 2 });
  });

  it('reports no TLS address without the tls option', async () => {
    bed = await startTestBed();
    expect(bed.broker.tlsAddress).toBeUndefined();
    expect(bed.broker.tlsUrl).toBeUndefined();
  });
});
