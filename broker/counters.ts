/**
 * Broker counters: plain numbers incremented on the hot path, read as a
 * snapshot. Names say what was counted; refusals are split by reason.
 */
export interface BrokerCounters {
  /** TCP connections accepted by the server (TLS ones once their handshake is done), before any MQTT packet. */
  readonly socketsOpened: number;
  /** TLS handshakes that failed (a client that does not trust the certificate, or not speaking TLS). */
  readonly tlsHandshakeFailures: number;
  /** CONNECTs that passed authentication and were registered (CONNACK 0 follows). */
  readonly connectionsAccepted: number;
  /** All refused CONNECTs; the sum of the reasons below. */
  readonly connectionsRefused: number;
  /** No username or no password (CONNACK 4). */
  readonly connectionsRefusedMissingCredentials: number;
  /** Device id not registered, or revoked, or a service account this broker was not given (CONNACK 4). */
  readonly connectionsRefusedUnknownDevice: number;
  /** Secret matches none of the device's accepted hashes, or not the service account's (CONNACK 4). */
  readonly connectionsRefusedBadSecret: number;
  /** Device client id differs from its username, or a service did not use its fixed client id (CONNACK 2). */
  readonly connectionsRefusedClientIdRejected: number;
  /** Last will on a topic the client may not publish to, or retained where it may not retain (CONNACK 5). */
  readonly connectionsRefusedWillNotAuthorized: number;
  /** The credentials port threw (CONNACK 3, server unavailable). */
  readonly connectionsRefusedServerError: number;
  /** The source address already held `throttle.maxConnectionsPerAddress` connections (CONNACK 3). */
  readonly connectionsRefusedTooManyPerAddress: number;
  /** The broker already held `throttle.maxConnections` connections (CONNACK 3). */
  readonly connectionsRefusedTooMany: number;
  /**
   * The source address or the device id had used up its failed
   * authentications for the window; refused without checking the secret (CONNACK 4).
   */
  readonly connectionsRefusedThrottled: number;
  /** CONNECTs whose answer was held back because of earlier failures from their address or id. */
  readonly connectionsDelayed: number;
  /** Gauge: source addresses and device ids with failures in their current window. */
  readonly throttleTrackedKeys: number;
  /** Addresses and ids forgotten early because `throttle.maxTrackedKeys` was reached. */
  readonly throttleKeysEvicted: number;
  /** Gauge: clients connected now. */
  readonly clientsConnected: number;
  /** PUBLISH packets received from connected clients (wills not included). */
  readonly publishesReceived: number;
  /** Publishes refused by the ACL; each closes the connection. */
  readonly unauthorizedPublishes: number;
  /** Topic filters refused by the ACL (SUBACK 0x80). */
  readonly unauthorizedSubscriptions: number;
  /**
   * Retained device publishes outside the device's status topic (each closes
   * the connection), and retained device wills outside it (each also counted
   * as a CONNECT refused with connectionsRefusedWillNotAuthorized).
   */
  readonly retainRefused: number;
  /** Device publishes handed to the tap (wills included). */
  readonly tapHandedOver: number;
  /** Gauge: handed to the tap, `done` not called yet. */
  readonly tapPending: number;
  /** Publishes the tap refused with `done(err)`. */
  readonly tapRefused: number;
  /** Times a client's reads were stopped because too many of its (or all) publishes waited for the tap. */
  readonly tapReadPauses: number;
  /** Gauge: clients whose reads are stopped now. */
  readonly tapPausedClients: number;
  /** Last wills published after an unclean disconnect. */
  readonly willsPublished: number;
  /** Packets whose declared size exceeded the limit; each closes the connection. */
  readonly oversizedPackets: number;
  /** Messages on the revocations topic. */
  readonly revocationsReceived: number;
  /** Revocation messages that were not `{"deviceId": "<valid id>"}`. */
  readonly revocationsInvalid: number;
  /** Device connections closed by disconnectDevice or a revocation. */
  readonly devicesDisconnected: number;
  /** Runs of the credential recheck over connected devices. */
  readonly credentialRechecks: number;
  /** Credential rechecks cut short because the credentials port threw; connections are kept. */
  readonly credentialRecheckFailures: number;
  /**
   * Device connections closed by the credential recheck because the secret
   * they connected with is no longer accepted: its grace period ended, it
   * was replaced at once, or the device was revoked.
   */
  readonly devicesDisconnectedSecretExpired: number;
  /** Presence events built (a device connection registered or ended). */
  readonly presenceEvents: number;
  /** Presence events that aedes failed to publish. */
  readonly presencePublishFailures: number;
  /** Connections that ended with an error (protocol error, reset, refusal by the tap or ACL). */
  readonly clientErrors: number;
}

export type MutableBrokerCounters = { -readonly [K in keyof BrokerCounters]: number };

export function createBrokerCounters(): MutableBrokerCounters {
  return {
    socketsOpened: 0,
    tlsHandshakeFailures: 0,
    connectionsAccepted: 0,
    connectionsRefused: 0,
    connectionsRefusedMissingCredentials: 0,
    connectionsRefusedUnknownDevice: 0,
    connectionsRefusedBadSecret: 0,
    connectionsRefusedClientIdRejected: 0,
    connectionsRefusedWillNotAuthorized: 0,
    connectionsRefusedServerError: 0,
    connectionsRefusedTooManyPerAddress: 0,
    connectionsRefusedTooMany: 0,
    connectionsRefusedThrottled: 0,
    connectionsDelayed: 0,
    throttleTrackedKeys: 0,
    throttleKeysEvicted: 0,
    clientsConnected: 0,
    publishesReceived: 0,
    unauthorizedPublishes: 0,
    unauthorizedSubscriptions: 0,
    retainRefused: 0,
    tapHandedOver: 0,
    tapPending: 0,
    tapRefused: 0,
    tapReadPauses: 0,
    tapPausedClients: 0,
    willsPublished: 0,
    oversizedPackets: 0,
    revocationsReceived: 0,
    revocationsInvalid: 0,
    devicesDisconnected: 0,
    credentialRechecks: 0,
    credentialRecheckFailures: 0,
    devicesDisconnectedSecretExpired: 0,
    presenceEvents: 0,
    presencePublishFailures: 0,
    clientErrors: 0,
  };
}
