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
