/**
 * The MQTT broker: aedes on TCP with the platform's policy hooks. See
 * README.md for the policy and the choices behind it.
 */
import type { EventEmitter } from 'node:events';
import { Aedes, type Client } from 'aedes';
import type { Logger } from 'pino';
import { MAX_PACKET_BYTES } from '../protocol/index.ts';
import { createAuthenticationHooks, type CredentialSource } from './authenticate.ts';
import { createAuthorizationHooks } from './authorize.ts';
import { createBrokerCounters, type BrokerCounters } from './counters.ts';
import { hashSecret } from '../store/credentials.ts';
import { BrokerError } from './errors.ts';
import { guardPacketSize } from './packet-size-guard.ts';
import type { Identity } from './policy.ts';
import { listenForRevocations } from './revocations.ts';
import { gateReads, type ReadGate } from './read-gate.ts';
import { createBrokerPersistence } from './retained-index.ts';
import { listenTcp, type TcpListener } from './server.ts';
import type { BrokerTap } from './tap.ts';
import { DEFAULT_TAP_WINDOW, TapFlowControl, type TapWindow } from './tap-flow-control.ts';
import { WriteCoalescer } from './write-coalescer.ts';

export interface BrokerOptions {
  host: string;
  /** 0 picks a free port; read it back from `Broker.address`. */
  port: number;
  /** The registry port, narrowed. Read on every device CONNECT. */
  credentials: CredentialSource;
  /**
   * Service account username -> secret, e.g. `{ 'vpp-ingest': s, 'vpp-control': s }`.
   * Services may publish and subscribe anywhere under `vpp/v1/`.
   */
  serviceAccounts: Record<string, string>;
  /** Largest accepted packet, fixed header included; default MAX_PACKET_BYTES. */
  maxPacketBytes?: number;
  /** Optional in-process consumer of device telemetry and status. */
  tap?: BrokerTap;
  /** How many tapped publishes may wait for the tap before reads stop; see tap-flow-control.ts. */
  tapWindow?: TapWindow;
  /** Clock for `TappedPublish.receivedAtMs`; default Date.now. */
  clock?: () => number;
  logger: Logger;
}

export interface Broker {
  readonly address: { host: string; port: number };
  /** `mqtt://host:port`, usable by a client on this machine. */
  readonly url: string;
  /** A snapshot of the counters. */
  counters(): BrokerCounters;
  /** Closes the device's connection (its will is published); false when it is not connected. */
  disconnectDevice(deviceId: string): boolean;
  /** Stops accepting, closes every client and the server. Idempotent. */
  close(): Promise<void>;
}

/** Longest client id aedes accepts from MQTT 3.1 clients; device ids have up to 64 characters. */
const MAX_CLIENT_ID_LENGTH = 128;

export async function startBroker(options: BrokerOptions): Promise<Broker> {
  const maxPacketBytes = options.maxPacketBytes ?? MAX_PACKET_BYTES;
  validateOptions(options, maxPacketBytes);
  const logger = options.logger.child({ component: 'broker' });
  const counters = createBrokerCounters();
  const identities = new WeakMap<Client, Identity>();
  // Connected clients by client id, filled when aedes registers a client,
  // which is just before it writes the CONNACK.
  const connected = new Map<string, { client: Client; identity: Identity }>();
  const serviceSecretHashes = new Map(
    Object.entries(options.serviceAccounts).map(([account, secret]) => [account, hashSecret(secret)]),
  );

  const authentication = createAuthenticationHooks({
    credentials: options.credentials,
    serviceSecretHashes,
    identities,
    connectedIdentity: (clientId) => connected.get(clientId)?.identity,
    counters,
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
    tap: options.tap,
    flow,
    writes: new WriteCoalescer(),
    counters,
    clock: options.clock ?? Date.now,
    logger,
  });

  const aedes = await Aedes.createBroker({
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

  aedes.on('client', (client) => {
    const identity = identities.get(client);
    if (identity === undefined) return;
    counters.connectionsAccepted += 1;
    connected.set(client.id, { client, identity });
  });
  aedes.on('clientDisconnect', (client) => {
    if (connected.get(client.id)?.client === client) connected.delete(client.id);
  });
  aedes.on('clientError', (client, err) => {
    counters.clientErrors += 1;
    logger.debug({ clientId: client.id, err }, 'client connection ended with an error');
  });
  aedes.on('connectionError', (_client, err) => {
    counters.clientErrors += 1;
    logger.debug({ err }, 'connection ended with an error before CONNECT');
  });
  // aedes emits 'error' for persistence failures; its typings leave the event out.
  const emitter: EventEmitter = aedes;
  emitter.on('error', (err: unknown) => {
    logger.error({ err }, 'broker error');
  });

  function disconnectDevice(deviceId: string): boolean {
    const entry = connected.get(deviceId);
    if (entry === undefined || entry.identity.kind !== 'device') return false;
    counters.devicesDisconnected += 1;
    entry.client.close();
    return true;
  }

  await listenForRevocations(aedes, disconnectDevice, counters, logger);

  let listener: TcpListener;
  try {
    listener = await listenTcp(options.host, options.port, (socket) => {
      counters.socketsOpened += 1;
      // Small packets (PUBACKs) go out at once; where several are due together
      // they are coalesced explicitly (write-coalescer.ts), not by Nagle's delay.
      socket.setNoDelay(true);
      const client = aedes.handle(socket);
      gates.set(client, gateReads(socket));
      guardPacketSize(socket, maxPacketBytes, (totalBytes) => {
        counters.oversizedPackets += 1;
        logger.debug({ clientId: client.id, totalBytes, maxPacketBytes }, 'oversized packet; closing connection');
        // Synchronous: close() detaches the parser before aedes parses this chunk.
        client.close();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw err;
  }

  const address = { host: listener.host, port: listener.port };
  const url = `mqtt://${urlHost(address.host)}:${address.port}`;
  logger.info({ url, maxPacketBytes, tap: options.tap !== undefined }, 'broker listening');

  let closing: Promise<void> | undefined;
  return {
    address,
    url,
    counters: () => ({ ...counters, clientsConnected: connected.size }),
    disconnectDevice,
    close(): Promise<void> {
      closing ??= (async () => {
        const serverClosed = listener.close();
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        await serverClosed;
        logger.info('broker closed');
      })();
      return closing;
    },
  };
}

function validateOptions(options: BrokerOptions, maxPacketBytes: number): void {
  const problems: string[] = [];
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    problems.push(`port must be an integer in 0..65535, got ${options.port}`);
  }
  if (!Number.isInteger(maxPacketBytes) || maxPacketBytes < 2) {
    problems.push(`maxPacketBytes must be an integer >= 2, got ${maxPacketBytes}`);
  }
  for (const [name, limit] of Object.entries(options.tapWindow ?? {})) {
    if (!Number.isInteger(limit) || limit < 1) problems.push(`tapWindow.${name} must be an integer >= 1, got ${limit}`);
  }
  for (const [account, secret] of Object.entries(options.serviceAccounts)) {
    if (account === '') problems.push('a service account has an empty username');
    if (secret === '') problems.push(`service account ${account} has an empty secret`);
  }
  if (problems.length > 0) {
    throw new BrokerError('invalid-options', `invalid broker options: ${problems.join('; ')}`);
  }
}

/** A wildcard listen address is reached through loopback; IPv6 needs brackets in a URL. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
