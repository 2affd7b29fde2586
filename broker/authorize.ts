/**
 * PUBLISH and SUBSCRIBE policy as aedes hooks, and the hand-over to the tap.
 *
 * aedes runs authorizePublish before it acknowledges or routes a publish
 * (lib/handlers/publish.js: authorizePublish, then enqueuePublish, which
 * writes the PUBACK and then publishes). Calling its callback late therefore
 * holds both the PUBACK and the routing; calling it with an error closes the
 * connection without an acknowledgement. aedes also runs this hook for a
 * client's last will, after the connection has closed.
 */
import type { AedesOptions, Client, PublishPacket } from 'aedes';
import type { Logger } from 'pino';
import { parseDeviceTopic } from '../protocol/index.ts';
import { BrokerError } from './errors.ts';
import type { MutableBrokerCounters } from './counters.ts';
import { devicePublishChannel, mayPublish, mayServiceUse, maySubscribe, type Identity } from './policy.ts';
import { handOverToTap, type BrokerTap, type TappedPublish } from './tap.ts';
import type { TapFlowControl } from './tap-flow-control.ts';
import type { WriteCoalescer } from './write-coalescer.ts';

type AuthorizePublishHandler = NonNullable<AedesOptions['authorizePublish']>;
type AuthorizeSubscribeHandler = NonNullable<AedesOptions['authorizeSubscribe']>;

export interface AuthorizationDeps {
  identities: WeakMap<Client, Identity>;
  tap: BrokerTap | undefined;
  flow: TapFlowControl;
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
  const { identities, tap, flow, writes, counters, clock, logger } = deps;

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
      } else if (tap !== undefined && (channel === 'telemetry' || channel === 'status')) {
        handOverToTap(tap, toTappedPublish(identity.deviceId, channel, packet, false), client, flow, counters, (err) => {
          // aedes writes the PUBACK within this call; a tap settles whole batches at once.
          if (err === null && packet.qos > 0 && !client.closed) writes.hold(client.conn);
          callback(err);
        });
      } else {
        callback(null);
      }
      return;
    }
    if (identity === undefined || !mayServiceUse(packet.topic)) {
      refusePublish(client, packet, callback);
      return;
    }
    callback(null);
  };

  function refusePublish(client: Client, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    counters.unauthorizedPublishes += 1;
    logger.warn({ clientId: client.id, topic: packet.topic }, 'publish not authorized; closing connection');
    callback(new BrokerError('publish-not-authorized', `client ${client.id} may not publish on ${packet.topic}`));
  }

  function authorizeWill(
    client: Client | null,
    will: PublishPacket,
    callback: (error?: Error | null) => void,
  ): void {
    // A will from a live connection was checked at CONNECT; one restored
    // from persistence (no client) belongs to the device its topic names.
    const identity: Identity | undefined =
      client === null ? willOwner(will.topic) : identities.get(client);
    if (identity === undefined || !mayPublish(identity, will.topic)) {
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
    handOverToTap(tap, tapped, null, flow, counters, () => {
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

/** Owner of a will restored from persistence: it passed the CONNECT check, so its topic tells. */
function willOwner(topic: string): Identity | undefined {
  const parsed = parseDeviceTopic(topic);
  if (parsed !== undefined) return { kind: 'device', deviceId: parsed.deviceId };
  return mayServiceUse(topic) ? { kind: 'service', account: '' } : undefined;
}
