/**
 * The MQTT broker: aedes on TCP with the platform's policy hooks, presence
 * events, a heartbeat and a credential recheck. See README.md for the
 * policy and the choices behind it.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { Aedes, type Client } from 'aedes';
import type { Logger } from 'pino';
import {
  BROKER_HEALTH_TOPIC,
  MAX_PACKET_BYTES,
  SERVICE_ACCOUNTS,
  encodeJson,
  isServiceAccount,
  presenceTopic,
  type PresenceEvent,
  type ServiceAccount,
  type ServiceHealth,
} from '../protocol/index.ts';
import { hashSecret } from '../store/credentials.ts';
import { createAuthenticationHooks, type CredentialSource } from './authenticate.ts';
import { createAuthorizationHooks } from './authorize.ts';
import { createBrokerCounters, type BrokerCounters } from './counters.ts';
import { findExpiredSessions, type DeviceSession } from './credential-recheck.ts';
import { BrokerError } from './errors.ts';
import { guardPacketSize } from './packet-size-guard.ts';
import type { Identity } from './policy.ts';
import { DevicePresence, type DisconnectReason, type PresenceListener } from './presence.ts';
import { listenForRevocations } from './revocations.ts';
import { gateReads, type ReadGate } from './read-gate.ts';
import { createBrokerPersistence } from './retained-index.ts';
import { listenTcp, listenTls, type TcpListener, type TlsCredentials } from './server.ts';
import { Settlements, type BrokerTap } from './tap.ts';
import { DEFAULT_TAP_WINDOW, TapFlowControl, type TapWindow } from './tap-flow-control.ts';
import { ConnectionLimits, FailureThrottle, normalizeAddress, resolveThrottle, type ThrottleLimits, type ThrottleOptions } from './throttle.ts';
import { WriteCoalescer } from './write-coalescer.ts';

export interface BrokerOptions {
  host: string;
  /** 0 picks a free port; read it back from `Broker.address`. */
  port: number;
  /** The registry port, narrowed. Read on every device CONNECT and every credential recheck. */
  credentials: CredentialSource;
  /**
   * One secret per service account, e.g. `{ 'vpp-ingest': s1, 'vpp-control': s2 }`.
   * An account left out cannot connect. What each may do is fixed in
   * `SERVICE_PERMISSIONS` (protocol).
   */
  serviceAccounts: Partial<Record<ServiceAccount, string>>;
  /** Largest accepted packet, fixed header included; default MAX_PACKET_BYTES. */
  maxPacketBytes?: number;
  /** Optional in-process consumer of device telemetry and status. */
  tap?: BrokerTap;
  /** How many tapped publishes may wait for the tap before reads stop; see tap-flow-control.ts. */
  tapWindow?: TapWindow;
  /**
   * In-process listener of presence events, called synchronously with each
   * (see presence.ts); they are also published on `presenceTopic(deviceId)`.
   */
  onPresence?: PresenceListener;
  /** How often connected devices' secrets are checked against the registry; default 5000. */
  credentialRecheckMs?: number;
  /**
   * How many connections on a current secret one recheck looks at (round
   * robin); those on a previous secret are all checked every time. Default 500.
   */
  credentialRecheckSlice?: number;
  /** How often the broker's heartbeat is published on BROKER_HEALTH_TOPIC; default 2000. */
  heartbeatIntervalMs?: number;
  /**
   * The broker clock, ms since the Unix epoch: start time, presence events,
   * heartbeats, `TappedPublish.receivedAtMs`, and the time at which secrets
   * are checked (grace periods). Default Date.now.
   */
  clock?: () => number;
  /**
   * Limits at the door (see throttle.ts and THROTTLE_DEFAULTS): connections
   * per source address and in total, and the delay and lockout after failed
   * authentications per address and per device id.
   */
  throttle?: ThrottleOptions;
  /**
   * MQTT over TLS as well, on `port` (0 = any free port) of the same host:
   * same broker, same authentication, authorization and throttling.
   */
  tls?: TlsOptions;
  logger: Logger;
}

export interface TlsOptions extends TlsCredentials {
  port: number;
}

export const BROKER_DEFAULTS = {
  credentialRecheckMs: 5_000,
  credentialRecheckSlice: 500,
  heartbeatIntervalMs: 2_000,
} as const;

export interface Broker {
  readonly address: { host: string; port: number };
  /** `mqtt://host:port`, usable by a client on this machine. */
  readonly url: string;
  /** Where MQTT over TLS listens, when `tls` was given. */
  readonly tlsAddress: { host: string; port: number } | undefined;
  /** `mqtts://host:port`, when `tls` was given. */
  readonly tlsUrl: string | undefined;
  /** Broker clock when this run started; in every presence event and heartbeat. */
  readonly startedAtMs: number;
  /** A snapshot of the counters. */
  counters(): BrokerCounters;
  /** Closes the device's connection (its will is published; presence reason 'revoked'); false when it is not connected. */
  disconnectDevice(deviceId: string): boolean;
  /**
   * Stops accepting, sends a 'broker-closing' presence event for every
   * connected device, closes every client and the server. Idempotent.
   */
  close(): Promise<void>;
}

/** Longest client id aedes accepts from MQTT 3.1 clients; device ids have up to 64 characters. */
const MAX_CLIENT_ID_LENGTH = 128;
/** How long close() waits for the 'broker-closing' events to reach subscribers. */
const PRESENCE_DRAIN_ON_CLOSE_MS = 1_000;

/** A registered connection. */
interface Connection {
  client: Client;
  identity: Identity;
  /** Devices only: the accepted hash their secret matched at CONNECT. */
  secretHash: string | undefined;
  /** Devices only: that hash was a previous secret in its grace period. */
  onGraceSecret: boolean;
}

export async function startBroker(options: BrokerOptions): Promise<Broker> {
  const maxPacketBytes = options.maxPacketBytes ?? MAX_PACKET_BYTES;
  const credentialRecheckMs = options.credentialRecheckMs ?? BROKER_DEFAULTS.credentialRecheckMs;
  const credentialRecheckSlice = options.credentialRecheckSlice ?? BROKER_DEFAULTS.credentialRecheckSlice;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? BROKER_DEFAULTS.heartbeatIntervalMs;
  const throttleLimits = validateOptions(options, { maxPacketBytes, credentialRecheckMs, credentialRecheckSlice, heartbeatIntervalMs });
  const clock = options.clock ?? Date.now;
  const startedAtMs = clock();
  const logger = options.logger.child({ component: 'broker' });
  const counters = createBrokerCounters();
  const identities = new WeakMap<Client, Identity>();
  const secrets = new WeakMap<Client, { secretHash: string; onGraceSecret: boolean }>();
  // Connected clients by client id, filled when aedes registers a client,
  // which is just before it writes the CONNACK.
  const connected = new Map<string, Connection>();
  const serviceSecretHashes = new Map<string, string>();
  for (const [account, secret] of Object.entries(options.serviceAccounts)) {
    if (secret !== undefined) serviceSecretHashes.set(account, hashSecret(secret));
  }
  const snapshot = (): BrokerCounters => ({ ...counters, clientsConnected: connected.size });

  const presence = new DevicePresence({
    brokerStartedAtMs: startedAtMs,
    clock,
    listener: options.onPresence,
    publish: (event, done) => publishPresence(event, done),
    counters,
    logger,
  });

  // Source address of each client, from its socket when accepted.
  const addresses = new WeakMap<Client, string>();
  const connectionLimits = new ConnectionLimits(throttleLimits);
  const failureThrottle = new FailureThrottle(throttleLimits, clock, counters);
  const { stop: stopAuthentication, ...authentication } = createAuthenticationHooks({
    credentials: options.credentials,
    serviceSecretHashes,
    accept(client, authenticated) {
      const { identity, secretHash, onGraceSecret } = authenticated;
      identities.set(client, identity);
      if (secretHash !== undefined) secrets.set(client, { secretHash, onGraceSecret });
      if (identity.kind === 'device') presence.authenticated(identity.deviceId, client);
    },
    connectedIdentity: (clientId) => connected.get(clientId)?.identity,
    addressOf: (client) => addresses.get(client) ?? 'unknown',
    limits: connectionLimits,
    throttle: failureThrottle,
    counters,
    clock,
    logger,
  });
  const gates = new WeakMap<Client, ReadGate>();
  const flow = new TapFlowControl(
    { ...DEFAULT_TAP_WINDOW, ...options.tapWindow },
    (client) => gates.get(client),
    counters,
  );
  const authorization = createAuthorizationHooks({
    identities,
    tap: options.tap === undefined ? undefined : { tap: options.tap, flow, counters, settlements: new Settlements() },
    writes: new WriteCoalescer(),
    counters,
    clock,
    logger,
  });

  const broker = await Aedes.createBroker({
    ...authentication,
    ...authorization,
    maxClientsIdLength: MAX_CLIENT_ID_LENGTH,
    // Retained messages indexed by topic: a device's SUBSCRIBE to its own
    // commands topic must not scan every device's retained status.
    persistence: createBrokerPersistence(),
    // aedes' message router (mqemitter) queues publishes beyond `concurrency`
    // and drains that queue by synchronous recursion, which overflows the
    // stack under sustained load (seen at ~9k msg/s with 3,000 devices).
    // 0 routes every publish at once; memory stays bounded because device
    // reads stop at the tap window and subscribers' sockets apply their own
    // backpressure.
    concurrency: 0,
  });

  // Called only once clients connect, so after `broker` exists.
  function publishPresence(event: PresenceEvent, done: (err?: Error) => void): void {
    if (broker.closed) {
      done(new Error('broker is closed'));
      return;
    }
    // QoS 1 and not retained: a subscriber with a persistent session gets
    // every event, also those of the time it was away, and nobody gets a
    // stale one as if it were new.
    // In a later turn: most events are emitted from inside aedes closing a
    // client ('clientDisconnect'), and a publish made there, synchronously,
    // never reached a persistent QoS 1 subscriber (seen with a revocation).
    // One device's events still go out in order: the next waits for `done`.
    setImmediate(() => {
      if (broker.closed) {
        done(new Error('broker is closed'));
        return;
      }
      broker.publish(
        { cmd: 'publish', topic: presenceTopic(event.deviceId), payload: encodeJson(event), qos: 1, retain: false, dup: false },
        done,
      );
    });
  }

  broker.on('client', (client) => {
    const identity = identities.get(client);
    if (identity === undefined) return;
    counters.connectionsAccepted += 1;
    const secret = secrets.get(client);
    connected.set(client.id, { client, identity, secretHash: secret?.secretHash, onGraceSecret: secret?.onGraceSecret ?? false });
    if (identity.kind === 'device') presence.opened(identity.deviceId, client);
  });
  broker.on('clientDisconnect', (client) => {
    if (connected.get(client.id)?.client === client) connected.delete(client.id);
    const identity = identities.get(client);
    if (identity?.kind === 'device') presence.closed(identity.deviceId, client);
  });
  broker.on('clientError', (client, err) => {
    counters.clientErrors += 1;
    logger.debug({ clientId: client.id, err }, 'client connection ended with an error');
  });
  broker.on('connectionError', (_client, err) => {
    counters.clientErrors += 1;
    logger.debug({ err }, 'connection ended with an error before CONNECT');
  });
  // aedes emits 'error' for persistence failures; its typings leave the event out.
  const emitter: EventEmitter = broker;
  emitter.on('error', (err: unknown) => {
    logger.error({ err }, 'broker error');
  });

  /** Closes a device connection for `reason`, which its presence event will carry. */
  function closeDevice(connection: Connection, reason: DisconnectReason): void {
    presence.closing(connection.client, reason);
    connection.client.close();
  }

  function disconnectDevice(deviceId: string): boolean {
    const connection = connected.get(deviceId);
    if (connection === undefined || connection.identity.kind !== 'device') return false;
    counters.devicesDisconnected += 1;
    closeDevice(connection, 'revoked');
    return true;
  }

  // Where the round robin over connections on a current secret stands.
  let recheckCursor: Iterator<Connection> | undefined;

  /**
   * The device sessions one recheck looks at: every one on a previous
   * secret (its grace period ends with time, and such sessions are few:
   * devices in the middle of a rotation), and the next
   * `credentialRecheckSlice` of the others, round robin. A session on its
   * current secret can only lose it to a change in the registry, and a
   * revocation reaches the broker at once anyway; so the run stays short
   * however many devices are connected (a registry read each), and a full
   * round over 20,000 connections takes 40 runs at the default slice.
   */
  function* sessionsToRecheck(): Generator<DeviceSession<Connection>> {
    const session = (connection: Connection): DeviceSession<Connection> | undefined =>
      connection.identity.kind !== 'device' || connection.secretHash === undefined || connection.client.closed
        ? undefined
        : { deviceId: connection.identity.deviceId, secretHash: connection.secretHash, connection };
    for (const connection of connected.values()) {
      const due = connection.onGraceSecret ? session(connection) : undefined;
      if (due !== undefined) yield due;
    }
    const seen = new Set<Connection>();
    let wrapped = false;
    let taken = 0;
    while (taken < credentialRecheckSlice) {
      recheckCursor ??= connected.values();
      const next = recheckCursor.next();
      if (next.done === true) {
        // Round again from the start, once per run (all may be ineligible).
        recheckCursor = undefined;
        if (wrapped) return;
        wrapped = true;
        continue;
      }
      // Back where this run started: every connection had its turn.
      if (seen.has(next.value)) return;
      seen.add(next.value);
      const due = next.value.onGraceSecret ? undefined : session(next.value);
      if (due === undefined) continue;
      taken++;
      yield due;
    }
  }

  function recheckCredentials(): void {
    counters.credentialRechecks += 1;
    let expired;
    try {
      expired = findExpiredSessions(sessionsToRecheck(), options.credentials, clock());
    } catch (err) {
      counters.credentialRecheckFailures += 1;
      logger.warn({ err }, 'credential recheck failed; connections kept until the next one');
      return;
    }
    for (const { session, reason } of expired) {
      counters.devicesDisconnectedSecretExpired += 1;
      logger.info({ deviceId: session.deviceId, reason }, 'secret no longer accepted; closing device connection');
      closeDevice(session.connection, reason);
    }
  }

  function publishHeartbeat(): Promise<void> {
    const health: ServiceHealth = { service: 'broker', ts: clock(), ok: true, startedAtMs, counters: { ...snapshot() } };
    return new Promise((resolve) => {
      if (broker.closed) {
        resolve();
        return;
      }
      broker.publish(
        { cmd: 'publish', topic: BROKER_HEALTH_TOPIC, payload: encodeJson(health), qos: 1, retain: true, dup: false },
        (err) => {
          if (err) logger.warn({ err }, 'broker heartbeat not published');
          resolve();
        },
      );
    });
  }

  await listenForRevocations(broker, disconnectDevice, counters, logger);

  /** Every accepted socket, TCP or TLS (after its handshake), becomes an aedes client. */
  function serve(socket: Socket): void {
    counters.socketsOpened += 1;
    // Small packets (PUBACKs) go out at once; where several are due together
    // they are coalesced explicitly (write-coalescer.ts), not by Nagle's delay.
    socket.setNoDelay(true);
    const client = broker.handle(socket);
    // Read now: a destroyed socket no longer knows its peer.
    addresses.set(client, normalizeAddress(socket.remoteAddress));
    socket.once('close', () => connectionLimits.release(client));
    gates.set(client, gateReads(socket));
    guardPacketSize(socket, maxPacketBytes, (totalBytes) => {
      counters.oversizedPackets += 1;
      logger.debug({ clientId: client.id, totalBytes, maxPacketBytes }, 'oversized packet; closing connection');
      // Synchronous: close() detaches the parser before aedes parses this chunk.
      client.close();
    });
  }

  const listeners: TcpListener[] = [];
  let listener: TcpListener;
  let tlsListener: TcpListener | undefined;
  try {
    listener = await listenTcp(options.host, options.port, serve);
    listeners.push(listener);
    if (options.tls !== undefined) {
      tlsListener = await listenTls(options.host, options.tls.port, options.tls, serve, (err) => {
        counters.tlsHandshakeFailures += 1;
        logger.debug({ err }, 'TLS handshake failed');
      });
      listeners.push(tlsListener);
    }
  } catch (err) {
    await Promise.all(listeners.map((open) => open.close()));
    failureThrottle.stop();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw err;
  }

  await publishHeartbeat();
  const heartbeatTimer = setInterval(() => void publishHeartbeat(), heartbeatIntervalMs).unref();
  const recheckTimer = setInterval(recheckCredentials, credentialRecheckMs).unref();

  const address = { host: listener.host, port: listener.port };
  const url = `mqtt://${urlHost(address.host)}:${address.port}`;
  const tlsAddress = tlsListener === undefined ? undefined : { host: tlsListener.host, port: tlsListener.port };
  const tlsUrl = tlsAddress === undefined ? undefined : `mqtts://${urlHost(tlsAddress.host)}:${tlsAddress.port}`;
  logger.info({ url, tlsUrl, maxPacketBytes, tap: options.tap !== undefined, startedAtMs }, 'broker listening');

  let closing: Promise<void> | undefined;
  return {
    address,
    url,
    tlsAddress,
    tlsUrl,
    startedAtMs,
    counters: snapshot,
    disconnectDevice,
    close(): Promise<void> {
      closing ??= (async () => {
        clearInterval(heartbeatTimer);
        clearInterval(recheckTimer);
        failureThrottle.stop();
        for (const open of listeners) open.stopAccepting();
        presence.closeAll();
        await presence.drained(PRESENCE_DRAIN_ON_CLOSE_MS);
        presence.stopPublishing();
        stopAuthentication();
        const serversClosed = Promise.all(listeners.map((open) => open.close()));
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        await serversClosed;
        logger.info('broker closed');
      })();
      return closing;
    },
  };
}

function validateOptions(
  options: BrokerOptions,
  resolved: { maxPacketBytes: number; credentialRecheckMs: number; credentialRecheckSlice: number; heartbeatIntervalMs: number },
): ThrottleLimits {
  const problems: string[] = [];
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    problems.push(`port must be an integer in 0..65535, got ${options.port}`);
  }
  if (!Number.isInteger(resolved.maxPacketBytes) || resolved.maxPacketBytes < 2) {
    problems.push(`maxPacketBytes must be an integer >= 2, got ${resolved.maxPacketBytes}`);
  }
  for (const name of ['credentialRecheckMs', 'credentialRecheckSlice', 'heartbeatIntervalMs'] as const) {
    const intervalMs = resolved[name];
    if (!Number.isInteger(intervalMs) || intervalMs < 1) problems.push(`${name} must be an integer >= 1, got ${intervalMs}`);
  }
  for (const [name, limit] of Object.entries(options.tapWindow ?? {})) {
    if (!Number.isInteger(limit) || limit < 1) problems.push(`tapWindow.${name} must be an integer >= 1, got ${limit}`);
  }
  for (const [account, secret] of Object.entries(options.serviceAccounts)) {
    if (!isServiceAccount(account)) {
      problems.push(`unknown service account ${JSON.stringify(account)} (known: ${SERVICE_ACCOUNTS.join(', ')})`);
    } else if (typeof secret !== 'string' || secret === '') {
      problems.push(`service account ${account} has an empty secret`);
    }
  }
  const throttle = resolveThrottle(options.throttle, problems);
  if (options.tls !== undefined) {
    const { port, cert, key } = options.tls;
    if (!Number.isInteger(port) || port < 0 || port > 65_535) problems.push(`tls.port must be an integer in 0..65535, got ${port}`);
    else if (port !== 0 && port === options.port) problems.push(`tls.port must differ from port (${port})`);
    if (isEmptyPem(cert)) problems.push('tls.cert is empty');
    if (isEmptyPem(key)) problems.push('tls.key is empty');
    if (!isEmptyPem(cert) && !isEmptyPem(key)) {
      try {
        createSecureContext({ cert, key });
      } catch (err) {
        problems.push(`tls.cert and tls.key are not a usable PEM certificate and key: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  if (problems.length > 0) {
    throw new BrokerError('invalid-options', `invalid broker options: ${problems.join('; ')}`);
  }
  return throttle;
}

function isEmptyPem(pem: unknown): boolean {
  return !(typeof pem === 'string' || Buffer.isBuffer(pem)) || pem.length === 0;
}

/** A wildcard listen address is reached through loopback; IPv6 needs brackets in a URL. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
