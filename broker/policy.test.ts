import { describe, expect, it } from 'vitest';
import { deviceTopic } from '../protocol/index.ts';
import { devicePublishChannel, mayPublish, maySubscribe } from './policy.ts';

describe('broker policy', () => {
  const device = { kind: 'device', deviceId: 'bat-1' } as const;
  const service = { kind: 'service', account: 'vpp-ingest' } as const;

  it('lets a device publish on its own telemetry, status and acks only', () => {
    expect(devicePublishChannel('bat-1', deviceTopic('bat-1', 'telemetry'))).toBe('telemetry');
    expect(devicePublishChannel('bat-1', deviceTopic('bat-1', 'status'))).toBe('status');
    expect(devicePublishChannel('bat-1', deviceTopic('bat-1', 'acks'))).toBe('acks');
    for (const topic of [
      deviceTopic('bat-1', 'commands'),
      deviceTopic('bat-2', 'telemetry'),
      deviceTopic('bat-10', 'telemetry'),
      `${deviceTopic('bat-1', 'telemetry')}/extra`,
      'vpp/v1/devices/bat-1',
      'vpp/v1/devices/bat-1/',
      'vpp/v1/devices/bat-1/xacks',
      'vpp/v1/devices/bat-1xacks',
      'vpp/v1/devices/bat-1/stat',
      'vpp/v1/fleet',
    ]) {
      expect(mayPublish(device, topic)).toBe(false);
    }
  });

  it('lets a device subscribe to its own commands topic by exact name only', () => {
    expect(maySubscribe(device, deviceTopic('bat-1', 'commands'))).toBe(true);
    expect(maySubscribe(device, deviceTopic('bat-2', 'commands'))).toBe(false);
    expect(maySubscribe(device, 'vpp/v1/devices/+/commands')).toBe(false);
    expect(maySubscribe(device, 'vpp/v1/devices/bat-1/#')).toBe(false);
  });

  it('keeps services under vpp/v1/', () => {
    expect(mayPublish(service, deviceTopic('bat-1', 'commands'))).toBe(true);
    expect(maySubscribe(service, 'vpp/v1/#')).toBe(true);
    expect(maySubscribe(service, '#')).toBe(false);
    expect(maySubscribe(service, '+/v1/devices/+/telemetry')).toBe(false);
    expect(mayPublish(service, 'vpp/v1')).toBe(false);
    expect(mayPublish(service, '$SYS/x')).toBe(false);
  });
});
