import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ httpPort: 8080, mqttPort: 1883, dataDir: './data', mqttUrl: 'mqtt://127.0.0.1:1883' });
    expect(config.sim).toMatchObject({ sites: 100, speed: 1, regions: ['north', 'south', 'east', 'west'] });
    expect(Object.isFrozen(config.sim)).toBe(true);
  });

  it('lists every problem at once', () => {
    let error: unknown;
    try {
      loadConfig({ VPP_HTTP_PORT: 'eighty', VPP_SIM_SPEED: '-2', VPP_ADMIN_TOKEN: 'short', VPP_LOG_LEVEL: 'loud', VPP_SIM_SITSE: '3' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(/VPP_HTTP_PORT.*VPP_ADMIN_TOKEN.*VPP_LOG_LEVEL.*VPP_SIM_SPEED.*VPP_SIM_SITSE/s);
  });

  it('derives the broker address from the MQTT port', () => {
    expect(loadConfig({ VPP_MQTT_PORT: '2883' }).mqttUrl).toBe('mqtt://127.0.0.1:2883');
  });
});

describe('alert settings', () => {
  it('load the shipped rules file by default', () => {
    const { alerts } = loadConfig({});
    expect(alerts.rules.rules.map((r) => r.id)).toEqual(
      expect.arrayContaining(['battery-overheat', 'soc-implausible-change', 'soc-frozen', 'device-offline', 'device-stale', 'region-coverage-low']),
    );
    expect(alerts.rules.rules.find((r) => r.id === 'battery-overheat')).toMatchObject({
      kind: 'threshold',
      threshold: { metric: 'tempC', above: 55, forSeconds: 30, clearBelow: 50 },
    });
    expect(alerts.webhook).toBeUndefined();
  });

  it('list the rules file’s problems with the other settings’ problems', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpp-rules-'));
    const file = join(dir, 'rules.json');
    writeFileSync(file, JSON.stringify({ rules: [{ id: 'x', severity: 'loud', subject: 'device', summary: 's', offline: {} }] }));
    let error: unknown;
    try {
      loadConfig({ VPP_ALERT_RULES: file, VPP_ALERT_WEBHOOK_URL: 'ftp://nope', VPP_SLACK_WEBHOOK_URL: 'http://127.0.0.1:9/hook', VPP_HTTP_PORT: 'x' });
    } catch (e) {
      error = e;
    }
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain(`VPP_ALERT_RULES (${file}): rules[0].severity: must be one of critical, warning, info`);
    expect(problems).toContain('VPP_ALERT_WEBHOOK_URL="ftp://nope" must be an http:// or https:// URL');
    expect(problems).toContain('VPP_HTTP_PORT');
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuse a webhook without its signing secret, and a rules file that is not YAML', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpp-rules-'));
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, 'rules: [unclosed');
    let error: unknown;
    try {
      loadConfig({ VPP_ALERT_RULES: file, VPP_ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/hook' });
    } catch (e) {
      error = e;
    }
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('VPP_ALERT_WEBHOOK_SECRET is required with VPP_ALERT_WEBHOOK_URL');
    expect(problems).toContain(`VPP_ALERT_RULES (${file}): is not valid YAML`);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('access settings', () => {
  it('read the TLS files at start and list what is wrong with them and with CORS origins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vpp-tls-'));
    const notPem = join(dir, 'cert.txt');
    writeFileSync(notPem, 'hello');
    let error: unknown;
    try {
      loadConfig({ VPP_TLS_CERT: notPem, VPP_TLS_KEY: join(dir, 'missing.key'), VPP_CORS_ORIGINS: 'https://ops.example.com,https://x.example.com/path' });
    } catch (e) {
      error = e;
    }
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain(`VPP_TLS_CERT (${notPem}) is not a PEM file`);
    expect(problems).toContain(`VPP_TLS_KEY (${join(dir, 'missing.key')}) cannot be read`);
    expect(problems).toContain('VPP_CORS_ORIGINS: "https://x.example.com/path" must be an origin');
    expect(problems).not.toContain('"https://ops.example.com"');
    expect(() => loadConfig({ VPP_TLS_CERT: notPem })).toThrow(/VPP_TLS_CERT and VPP_TLS_KEY go together/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('default to no TLS, CORS closed and the documented limits', () => {
    expect(loadConfig({}).access).toMatchObject({
      tls: undefined,
      corsOrigins: [],
      mqttMaxConnectionsPerAddress: 1_000,
      mqttMaxAuthFailures: 20,
      httpRequestsPerTokenPerMinute: 600,
    });
  });
});
