/**
 * PUBLISH and SUBSCRIBE policy as aedes hooks, and the hand-over to the tap.
 *
 * aedes runs authorizePublish before it acknowledges or routes a publish
 * (lib/handlers/publish.js: authorizePublish, then enqueuePublish, which
 * writes the PUBACK and then publishes). Calling its callback late therefore
 * holds both the PUBACK and the routing; calling it with an error closes the
 * connection without an acknowledgement. aedes also runs this hook for a
 * client's last will, after the connection has closed. Publishes the broker
 * makes itself (presence events, its heartbeat) go through `aedes.publish`,
 * which runs no hook.
 */
import type { AedesOptions, Client, PublishPacket } from 'aedes';
import type { Logger } from 'pino';
import { SERVICE_ACCOUNTS, isValidDeviceId, parseDeviceTopic } from '../protocol/index.ts';
import { BrokerError } from './errors.ts';
import type { MutableBrokerCounters } from './counters.ts';
import {
  devicePublishChannel,
  mayDeviceRetain,
  mayPublishRetained,
  mayServicePublish,
  maySubscribe,
  serviceAccountOfClientId,
  type Identity,
} from './policy.ts';
import { handOverToTap, type TapHandOver, type TappedPublish } from './tap.ts';
import type { WriteCoalescer } from './write-coalescer.ts';

type AuthorizePublishHandler = NonNullable<AedesOptions['authorizePublish']>;
type AuthorizeSubscribeHandler = NonNullable<AedesOptions['authorizeSubscribe']>;

export interface AuthorizationDeps {
  identities: WeakMap<Client, Identity>;
  /** The tap and what handing over to it needs; undefined without a tap. */
  tap: TapHandOver | undefined;
  /** Batches the PUBACKs that a tap acknowledges together. */
  writes: WriteCoalescer;
  counters: MutableBrokerCounters;
  clock: () => number;
  logger: Logger;
}

export function createAuthorizationHooks(deps: AuthorizationDeps): {
  authorizePublish: AuthorizePublishHandler;
  authorizeSubscribe: AuthorizeSubscribeHandler;
} {
  const { identities, tap, writes, counters, clock, logger } = deps;

  const authorizePublish: AuthorizePublishHandler = (client, packet, callback) => {
    // A closed (or, for wills restored from persistence, absent) client means
    // aedes is publishing a last will.
    if (client === null || client.closed) {
      authorizeWill(client, packet, callback);
      return;
    }
    counters.publishesReceived += 1;
    const identity = identities.get(client);
    if (identity?.kind === 'device') {
      const channel = devicePublishChannel(identity.deviceId, packet.topic);
      if (channel === undefined) {
        refusePublish(client, packet, callback);
      } else if (packet.retain && !mayDeviceRetain(channel)) {
        refuseRetain(client, packet, callback);
      } else if (tap !== undefined && (channel === 'telemetry' || channel === 'status')) {
        handOverToTap(tap, toTappedPublish(identity.deviceId, channel, packet, false), client, (err) => {
          // aedes writes the PUBACK within this call; a tap settles whole batches at once.
          if (err === null && packet.qos > 0 && !client.closed) writes.hold(client.conn);
          callback(err);
        });
      } else {
        callback(null);
      }
      return;
    }
    if (identity === undefined || !mayServicePublish(identity.account, packet.topic)) {
      refusePublish(client, packet, callback);
      return;
    }
    if (!mayPublishRetained(identity, packet.topic, packet.retain)) {
      refuseRetain(client, packet, callback);
      return;
    }
    callback(null);
  };

  function refusePublish(client: Client, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    counters.unauthorizedPublishes += 1;
    logger.warn({ clientId: client.id, topic: packet.topic }, 'publish not authorized; closing connection');
    callback(new BrokerError('publish-not-authorized', `client ${client.id} may not publish on ${packet.topic}`));
  }

  function refuseRetain(client: Client, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    counters.retainRefused += 1;
    logger.warn({ clientId: client.id, topic: packet.topic }, 'retained publish outside the status topic; closing connection');
    callback(new BrokerError('publish-not-authorized', `client ${client.id} may not retain on ${packet.topic}`));
  }

  function authorizeWill(
    client: Client | null,
    will: PublishPacket,
    callback: (error?: Error | null) => void,
  ): void {
    // A will from a live connection was checked at CONNECT; the owner of one
    // restored from persistence (no client) is read from the will itself.
    const identity: Identity | undefined = client === null ? willOwner(will) : identities.get(client);
    if (identity === undefined || !mayPublishRetained(identity, will.topic, will.retain)) {
      callback(new BrokerError('publish-not-authorized', `will on ${will.topic} not authorized`));
      return;
    }
    const channel = identity.kind === 'device' ? devicePublishChannel(identity.deviceId, will.topic) : undefined;
    if (tap === undefined || identity.kind !== 'device' || (channel !== 'telemetry' && channel !== 'status')) {
      counters.willsPublished += 1;
      callback(null);
      return;
    }
    const tapped = toTappedPublish(identity.deviceId, channel, will, true);
    handOverToTap(tap, tapped, null, () => {
      // Published even when the tap refused it: see BrokerTap.
      counters.willsPublished += 1;
      callback(null);
    });
  }

  function toTappedPublish(
    deviceId: string,
    channel: TappedPublish['channel'],
    packet: PublishPacket,
    isWill: boolean,
  ): TappedPublish {
    return {
      deviceId,
      topic: packet.topic,
      channel,
      payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
      qos: packet.qos,
      retain: packet.retain,
      isWill,
      receivedAtMs: clock(),
    };
  }

  const authorizeSubscribe: AuthorizeSubscribeHandler = (client, subscription, callback) => {
    const identity = identities.get(client);
    if (identity === undefined || !maySubscribe(identity, subscription.topic)) {
      counters.unauthorizedSubscriptions += 1;
      logger.debug({ clientId: client.id, filter: subscription.topic }, 'subscription not authorized');
      // A null subscription makes aedes answer 0x80 (failure) for this filter
      // and keep the connection (MQTT-3.9.3).
      callback(null, null);
      return;
    }
    callback(null, subscription);
  };

  return { authorizePublish, authorizeSubscribe };
}

/**
 * Owner of a will restored from persistence (its connection is gone). It
 * passed the CONNECT check, so its client id tells: a service's fixed client
 * id, or a device id, which must also be the device its topic names. Wills
 * stored without a client id fall back to the topic.
 */
function willOwner(will: PublishPacket): Identity | undefined {
  const clientId: unknown = (will as PublishPacket & { clientId?: unknown }).clientId;
  const device = parseDeviceTopic(will.topic);
  if (typeof clientId === 'string') {
    const account = serviceAccountOfClientId(clientId);
    if (account !== undefined) return { kind: 'service', account };
    if (device === undefined || device.deviceId !== clientId || !isValidDeviceId(clientId)) return undefined;
    return { kind: 'device', deviceId: clientId };
  }
  if (device !== undefined) return { kind: 'device', deviceId: device.deviceId };
  const account = SERVICE_ACCOUNTS.find((name) => mayServicePublish(name, will.topic));
  return account === undefined ? undefined : { kind: 'service', account };
}
