/**
 * CONNECT policy (MQTT-3.1.3): who may connect, as whom.
 *
 * - A device connects with client id == username == its device id and its
 *   secret as password, checked against the registry's active secret hash.
 *   A revoked device has no active hash and is refused like an unknown one.
 * - A service account connects with its username and secret; its client id
 *   is free-form but may not be the id of a registered device.
 * - A last will must be on a topic the client may publish to.
 *
 * Return codes: 4 (bad user name or password) when the credentials do not
 * check out, whatever the reason, so a caller cannot probe which device ids
 * exist; 2 (identifier rejected, MQTT-3.1.3-9) for a client id that does not
 * fit the identity; 5 (not authorized) for a will outside the client's
 * topics; 3 (server unavailable) when the registry cannot be read.
 */
import type { AedesOptions, AuthenticateError, Client } from 'aedes';
import type { Logger } from 'pino';
import { isValidDeviceId } from '../protocol/index.ts';
import { generateSecret, hashSecret, verifySecret } from '../store/credentials.ts';
import type { MutableBrokerCounters } from './counters.ts';
import { mayPublish, type Identity } from './policy.ts';

/** The registry port, narrowed to what the broker needs. */
export interface CredentialSource {
  /** The secret hash of an active (not revoked) device, or undefined. */
  getActiveSecretHash(deviceId: string): string | undefined;
}

type RefusalReason =
  | 'missing-credentials'
  | 'unknown-device'
  | 'bad-secret'
  | 'client-id-rejected'
  | 'will-not-authorized'
  | 'server-error';

type ConnackRefusalCode = 2 | 3 | 4 | 5;

const UNKNOWN_DEVICE_HASH = hashSecret(generateSecret());

const REFUSALS: Record<RefusalReason, { returnCode: ConnackRefusalCode; counter: keyof MutableBrokerCounters }> = {
  'missing-credentials': { returnCode: 4, counter: 'connectionsRefusedMissingCredentials' },
  'unknown-device': { returnCode: 4, counter: 'connectionsRefusedUnknownDevice' },
  'bad-secret': { returnCode: 4, counter: 'connectionsRefusedBadSecret' },
  'client-id-rejected': { returnCode: 2, counter: 'connectionsRefusedClientIdRejected' },
  'will-not-authorized': { returnCode: 5, counter: 'connectionsRefusedWillNotAuthorized' },
  'server-error': { returnCode: 3, counter: 'connectionsRefusedServerError' },
};

export interface AuthenticationDeps {
  credentials: CredentialSource;
  /** Service account username -> hash of its secret (see credentials.ts). */
  serviceSecretHashes: ReadonlyMap<string, string>;
  /** Filled here on success; the authorize hooks read it. */
  identities: WeakMap<Client, Identity>;
  /** Who holds each connected client id, to keep devices and services from taking over each other's sessions. */
  connectedIdentity(clientId: string): Identity | undefined;
  counters: MutableBrokerCounters;
  logger: Logger;
}

type PreConnectHandler = NonNullable<AedesOptions['preConnect']>;
type AuthenticateHandler = NonNullable<AedesOptions['authenticate']>;

export function createAuthenticationHooks(deps: AuthenticationDeps): {
  preConnect: PreConnectHandler;
  authenticate: AuthenticateHandler;
} {
  const { credentials, serviceSecretHashes, identities, connectedIdentity, counters, logger } = deps;
  // aedes hands the CONNECT packet only to preConnect; authenticate needs its will.
  const willTopics = new WeakMap<Client, string>();

  const preConnect: PreConnectHandler = (client, packet, callback) => {
    if (packet.will) willTopics.set(client, packet.will.topic);
    callback(null, true);
  };

  const authenticate: AuthenticateHandler = (client, username, password, callback) => {
    let outcome: Identity | RefusalReason;
    try {
      outcome = identify(client.id, username, password);
    } catch (err) {
      logger.error({ err, username }, 'credentials lookup failed; refusing connection');
      outcome = 'server-error';
    }
    if (typeof outcome !== 'string') {
      const willTopic = willTopics.get(client);
      if (willTopic !== undefined && !mayPublish(outcome, willTopic)) outcome = 'will-not-authorized';
    }
    if (typeof outcome === 'string') {
      const refusal = REFUSALS[outcome];
      counters[refusal.counter] += 1;
      counters.connectionsRefused += 1;
      logger.debug({ reason: outcome, username, clientId: client.id }, 'connection refused');
      const error = Object.assign(new Error(`connection refused: ${outcome}`), {
        returnCode: refusal.returnCode,
      }) as AuthenticateError;
      callback(error, false);
      return;
    }
    identities.set(client, outcome);
    callback(null, true);
  };

  function identify(
    clientId: string,
    username: string | undefined,
    password: Buffer | undefined,
  ): Identity | RefusalReason {
    if (username === undefined || username === '' || password === undefined || password.length === 0) {
      return 'missing-credentials';
    }
    const secret = password.toString('utf8');
    const serviceHash = serviceSecretHashes.get(username);
    if (serviceHash !== undefined) {
      if (!verifySecret(secret, serviceHash)) return 'bad-secret';
      const holder = connectedIdentity(clientId);
      const isDeviceId =
        holder?.kind === 'device' ||
        (isValidDeviceId(clientId) && credentials.getActiveSecretHash(clientId) !== undefined);
      if (isDeviceId) return 'client-id-rejected';
      return { kind: 'service', account: username };
    }
    const deviceHash = isValidDeviceId(username) ? credentials.getActiveSecretHash(username) : undefined;
    if (deviceHash === undefined) {
      // Same work as for a known device, so response time does not tell which ids exist.
      verifySecret(secret, UNKNOWN_DEVICE_HASH);
      return 'unknown-device';
    }
    if (!verifySecret(secret, deviceHash)) return 'bad-secret';
    if (clientId !== username || connectedIdentity(clientId)?.kind === 'service') return 'client-id-rejected';
    return { kind: 'device', deviceId: username };
  }

  return { preConnect, authenticate };
}
