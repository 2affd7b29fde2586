import { describe, expect, it } from 'vitest';
import {
  AGGREGATES_FILTER,
  BROKER_HEALTH_TOPIC,
  DEVICE_CHANNELS,
  REVOCATIONS_TOPIC,
  SERVICE_ACCOUNTS,
  SERVICE_PERMISSIONS,
  aggregateTopic,
  allDevicesFilter,
  deviceTopic,
  presenceTopic,
  serviceHealthTopic,
} from '../protocol/index.ts';
import {
  devicePublishChannel,
  mayDeviceRetain,
  mayPublish,
  mayPublishRetained,
  mayServicePublish,
  mayServiceSubscribe,
  maySubscribe,
  serviceAccountOfClientId,
} from './policy.ts';

describe('broker policy', () => {
  const device = { kind: 'device', deviceId: 'bat-1' } as const;
  const ingest = { kind: 'service', account: 'vpp-ingest' } as const;
  const control = { kind: 'service', account: 'vpp-control' } as const;

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

  it('lets a device retain only its status', () => {
    expect(mayDeviceRetain('status')).toBe(true);
    expect(mayDeviceRetain('telemetry')).toBe(false);
    expect(mayDeviceRetain('acks')).toBe(false);
    expect(mayPublishRetained(device, deviceTopic('bat-1', 'status'), true)).toBe(true);
    expect(mayPublishRetained(device, deviceTopic('bat-1', 'telemetry'), true)).toBe(false);
    expect(mayPublishRetained(device, deviceTopic('bat-1', 'telemetry'), false)).toBe(true);
    expect(mayPublishRetained(device, deviceTopic('bat-2', 'status'), true)).toBe(false);
  });

  it('lets a service publish only where one of its entries matches, as an MQTT filter', () => {
    expect(mayPublish(ingest, 'vpp/v1/fleet')).toBe(true);
    expect(mayPublish(ingest, aggregateTopic('region', 'north'))).toBe(true);
    expect(mayPublish(ingest, aggregateTopic('site', 's-1'))).toBe(true);
    expect(mayPublish(ingest, serviceHealthTopic('ingest'))).toBe(true);
    expect(mayPublish(control, REVOCATIONS_TOPIC)).toBe(true);
    for (const topic of [
      'vpp/v1/fleetx',
      'vpp/v1',
      serviceHealthTopic('control'),
      BROKER_HEALTH_TOPIC,
      REVOCATIONS_TOPIC,
      presenceTopic('bat-1'),
      '$SYS/x',
    ]) {
      expect(mayPublish(ingest, topic)).toBe(false);
    }
    expect(mayPublish(control, aggregateTopic('fleet', ''))).toBe(false);
    expect(mayPublish(control, `${REVOCATIONS_TOPIC}/x`)).toBe(false);
  });

  it('never lets a service publish on a device topic', () => {
    for (const channel of DEVICE_CHANNELS) {
      expect(mayPublish(ingest, deviceTopic('bat-1', channel))).toBe(false);
      expect(mayPublish(control, deviceTopic('bat-1', channel))).toBe(false);
    }
    expect(mayServicePublish('vpp-ingest', 'vpp/v1/devices/bat-1/anything')).toBe(false);
  });

  it('lets a service subscribe only to filters equal to one of its entries', () => {
    for (const account of SERVICE_ACCOUNTS) {
      for (const filter of SERVICE_PERMISSIONS[account].subscribe) expect(mayServiceSubscribe(account, filter)).toBe(true);
    }
    expect(maySubscribe(ingest, allDevicesFilter('telemetry'))).toBe(true);
    expect(maySubscribe(ingest, deviceTopic('bat-1', 'telemetry'))).toBe(false);
    expect(maySubscribe(ingest, 'vpp/v1/devices/#')).toBe(false);
    expect(maySubscribe(ingest, 'vpp/v1/#')).toBe(false);
    expect(maySubscribe(ingest, '#')).toBe(false);
    expect(maySubscribe(ingest, AGGREGATES_FILTER)).toBe(false);
    expect(maySubscribe(control, AGGREGATES_FILTER)).toBe(true);
    expect(maySubscribe(control, aggregateTopic('region', 'north'))).toBe(false);
    expect(maySubscribe(control, allDevicesFilter('status'))).toBe(false);
  });

  it('knows each service by its fixed client id', () => {
    expect(serviceAccountOfClientId(SERVICE_PERMISSIONS['vpp-ingest'].clientId)).toBe('vpp-ingest');
    expect(serviceAccountOfClientId(SERVICE_PERMISSIONS['vpp-control'].clientId)).toBe('vpp-control');
    expect(serviceAccountOfClientId('bat-1')).toBeUndefined();
  });
});
