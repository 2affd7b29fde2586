/** /api/v1/devices: registry, provisioning, twins, revocation and telemetry. */
import { sendHistory } from '../presenters/history.ts';
import type { ControlPlugin } from '../type-provider.ts';
import { deviceTopic } from '../../protocol/index.ts';
import { provisionDevice } from '../commands/provision-device.ts';
import { revokeDevice } from '../commands/revoke-device.ts';
import { rotateDeviceSecret } from '../commands/rotate-device-secret.ts';
import { notFound } from '../errors.ts';
import { operatorOf } from '../plugins/auth.ts';
import { setNoStore, withNoStoreHeader } from '../plugins/no-store.ts';
import { isoTime, presentDevices, presentDeviceSummary, presentDeviceTwin } from '../presenters/device.ts';
import { queryDeviceControl, queryDeviceControls } from '../queries/commands.ts';
import { queryDeviceTelemetry } from '../queries/device-telemetry.ts';
import { BEARER_SECURITY, IdParamsSchema, errorResponses } from '../schemas/common.ts';
import {
  DeviceListQuerySchema,
  DeviceListSchema,
  DeviceTwinSchema,
  ProvisionDeviceBodySchema,
  ProvisionedDeviceSchema,
  RotatedSecretSchema,
} from '../schemas/devices.ts';
import { DeviceTelemetrySchema, TelemetryQuerySchema } from '../schemas/history.ts';
import { Type } from '@sinclair/typebox';

export const deviceRoutes: ControlPlugin = async (app, { deps }) => {
  app.get(
    '/devices',
    {
      schema: {
        tags: ['devices'],
        summary: 'List devices with presence',
        security: BEARER_SECURITY,
        querystring: DeviceListQuerySchema,
        response: { 200: DeviceListSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { siteId, type, after } = request.query;
      const limit = request.query.limit ?? 1_000;
      const matching = deps.registry
        .listDevices(siteId === undefined ? undefined : { siteId })
        .filter((d) => (type === undefined || d.type === type) && (after === undefined || d.id > after));
      const devices = matching.slice(0, limit);
      const states = deps.twins.listDeviceStates(devices.map((d) => d.id));
      const controls = queryDeviceControls(deps, devices, states);
      const nextAfter = matching.length > limit ? devices.at(-1)!.id : null;
      return { items: presentDevices(devices, states, controls, presentDeviceSummary), nextAfter };
    },
  );

  app.post(
    '/devices',
    {
      schema: {
        tags: ['devices'],
        summary: 'Provision a device',
        description:
          'Registers a device and returns its MQTT credentials. The secret is shown only in this response. An unknown site is a 404 unless `site` is given, which creates it.',
        security: BEARER_SECURITY,
        body: ProvisionDeviceBodySchema,
        response: { 201: withNoStoreHeader(ProvisionedDeviceSchema), ...errorResponses(400, 401, 404, 409) },
      },
      onSend: setNoStore,
    },
    async (request, reply) => {
      const { device, secret } = provisionDevice(deps, request.body);
      request.log.info({ deviceId: device.id, siteId: device.siteId, type: device.type, actor: operatorOf(request) }, 'device provisioned');
      return reply.code(201).send({
        id: device.id,
        type: device.type,
        siteId: device.siteId,
        createdAt: isoTime(device.createdAtMs),
        secret,
        mqtt: {
          username: device.id,
          password: secret,
          clientId: device.id,
          topics: {
            telemetry: deviceTopic(device.id, 'telemetry'),
            status: deviceTopic(device.id, 'status'),
            commands: deviceTopic(device.id, 'commands'),
            acks: deviceTopic(device.id, 'acks'),
          },
        },
      });
    },
  );

  app.get(
    '/devices/:id',
    {
      schema: {
        tags: ['devices'],
        summary: 'A device and its twin (latest state)',
        description:
          '`control` puts what the platform wants the device to do (`desired`: its newest command while pending, sent or accepted and not expired; null means local control) next to what the device says it does (`reported`, from its latest status), and whether they `agree`.',
        security: BEARER_SECURITY,
        params: IdParamsSchema,
        response: { 200: DeviceTwinSchema, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const device = deps.registry.getDevice(request.params.id);
      if (!device) throw notFound(`device '${request.params.id}' does not exist`);
      const state = deps.twins.getDeviceState(device.id);
      return presentDeviceTwin(device, state, queryDeviceControl(deps, device, state));
    },
  );

  app.delete(
    '/devices/:id',
    {
      schema: {
        tags: ['devices'],
        summary: 'Revoke a device',
        description:
          'Marks the device revoked (it cannot connect again) and asks the broker to end its open session. Revoking again answers 409 and repeats the disconnect request.',
        security: BEARER_SECURITY,
        params: IdParamsSchema,
        response: { 204: Type.Null({ description: 'revoked' }), ...errorResponses(401, 404, 409, 502) },
      },
    },
    async (request, reply) => {
      await revokeDevice(deps, request.params.id);
      request.log.info({ deviceId: request.params.id, actor: operatorOf(request) }, 'device revoked');
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/devices/:id/secret',
    {
      schema: {
        tags: ['devices'],
        summary: 'Rotate the secret of a device',
        description:
          'Issues a new secret, shown only in this response. The secret the device had before stays accepted until `previousSecretValidUntil` (the grace period), so the device can switch without losing its connection; after that only the new one is. Rotating again during a grace period ends the grace of the older secret. A revoked device answers 409.',
        security: BEARER_SECURITY,
        params: IdParamsSchema,
        response: { 200: withNoStoreHeader(RotatedSecretSchema), ...errorResponses(401, 404, 409) },
      },
      onSend: setNoStore,
    },
    async (request) => {
      const rotated = rotateDeviceSecret(deps, request.params.id);
      const previousSecretValidUntil = isoTime(rotated.previousSecretValidUntilMs);
      request.log.info({ deviceId: rotated.deviceId, previousSecretValidUntil, actor: operatorOf(request) }, 'device secret rotated');
      return { deviceId: rotated.deviceId, secret: rotated.secret, previousSecretValidUntil };
    },
  );

  app.get(
    '/devices/:id/telemetry',
    {
      schema: {
        tags: ['devices'],
        summary: 'Telemetry history of a device',
        description:
          '`from`/`to` take ISO 8601 or ms since the epoch (default: the last hour). `raw` spans at most 7 days; rollups at most 400 days and 10 000 points per metric. ' +
          'Rollups come as points (one object per bucket) or, with `format=columns`, as one array per field; raw samples only as points.',
        security: BEARER_SECURITY,
        params: IdParamsSchema,
        querystring: TelemetryQuerySchema,
        response: { 200: DeviceTelemetrySchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const { resolution = 'raw', limit = 1000, format = 'points', ...range } = request.query;
      return sendHistory(reply, await queryDeviceTelemetry(deps, request.params.id, { ...range, resolution, limit, format }));
    },
  );
};
