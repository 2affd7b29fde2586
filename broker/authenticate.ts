/**
 * CONNECT policy (MQTT-3.1.3): who may connect, as whom.
 *
 * - A device connects with client id == username == its device id and its
 *   secret as password. The secret must match one of the hashes the registry
 *   accepts for the device now: its current one, or during a rotation's
 *   grace period also the previous one. A revoked device has none and is
 *   refused like an unknown one. The hash that matched is remembered with
 *   the connection, so that the broker can close it once that hash is no
 *   longer accepted (see credential-recheck.ts).
 * - A service account connects with its username, its own secret and its
 *   fixed client id (`SERVICE_PERMISSIONS[account].clientId`). A service
 *   account name is never a device id, so it is never looked up as one.
 * - A last will must be on a topic the client may publish to, and a
 *   device's will may be retained only on its status topic.
 *
 * Return codes: 4 (bad user name or password) when the credentials do not
 * check out, whatever the reason, so a caller cannot probe which device ids
 * exist; 2 (identifier rejected, MQTT-3.1.3-9) for a client id that does not
 * fit the identity; 5 (not authorized) for a will outside the client's
 * topics; 3 (server unavailable) when the registry cannot be read.
 *
 * Before any of that, the door's limits (throttle.ts): a CONNECT beyond the
 * per-address or total connection cap is refused with 3; one from an
 * address or device id that has used up its failed authentications for the
 * window is refused with 4 without looking at the secret; and after earlier
 * failures the answer waits on a timer (other clients are served meanwhile).
 */
import type { AedesOptions, AuthenticateError, Client } from 'aedes';
import type { Logger } from 'pino';
import { SERVICE_PERMISSIONS, isServiceAccount, isValidDeviceId } from '../protocol/index.ts';
import { generateSecret, hashSecret, verifySecret } from '../store/credentials.ts';
import type { MutableBrokerCounters } from './counters.ts';
import { devicePublishChannel, mayDeviceRetain, mayPublish, type Identity } from './policy.ts';
import type { ConnectionLimits, FailureThrottle, ThrottleKeys } from './throttle.ts';

/** The registry port, narrowed to what the broker needs. */
export interface CredentialSource {
  /**
   * The secret hashes `deviceId` may connect with at `nowMs`: the current
   * one first, then the previous one while its grace period lasts. Empty for
   * an unknown or revoked device. Called on every device CONNECT and, for
   * each connected device, on every credential recheck.
   */
  getAcceptedSecretHashes(deviceId: string, nowMs: number): string[];
}

type RefusalReason =
  | 'missing-credentials'
  | 'unknown-device'
  | 'bad-secret'
  | 'client-id-rejected'
  | 'will-not-authorized'
  | 'server-error'
  | 'too-many-per-address'
  | 'too-many'
  | 'throttled';

type ConnackRefusalCode = 2 | 3 | 4 | 5;

const UNKNOWN_DEVICE_HASH = hashSecret(generateSecret());

const REFUSALS: Record<RefusalReason, { returnCode: ConnackRefusalCode; counter: keyof MutableBrokerCounters }> = {
  'missing-credentials': { returnCode: 4, counter: 'connectionsRefusedMissingCredentials' },
  'unknown-device': { returnCode: 4, counter: 'connectionsRefusedUnknownDevice' },
  'bad-secret': { returnCode: 4, counter: 'connectionsRefusedBadSecret' },
  'client-id-rejected': { returnCode: 2, counter: 'connectionsRefusedClientIdRejected' },
  'will-not-authorized': { returnCode: 5, counter: 'connectionsRefusedWillNotAuthorized' },
  'server-error': { returnCode: 3, counter: 'connectionsRefusedServerError' },
  'too-many-per-address': { returnCode: 3, counter: 'connectionsRefusedTooManyPerAddress' },
  'too-many': { returnCode: 3, counter: 'connectionsRefusedTooMany' },
  // Like a bad secret: a caller cannot tell a lockout from a wrong guess.
  throttled: { returnCode: 4, counter: 'connectionsRefusedThrottled' },
};

/** Refusals that count as a failed authentication against the address and the id. */
const FAILURES: ReadonlySet<RefusalReason> = new Set<RefusalReason>(['missing-credentials', 'unknown-device', 'bad-secret']);

/** Who passed authentication. */
export interface Authenticated {
  identity: Identity;
  /** Devices only: the accepted hash their secret matched. */
  secretHash: string | undefined;
  /** Devices only: true when that hash is a previous secret in its grace period, which ends with time. */
  onGraceSecret: boolean;
}

export interface AuthenticationDeps {
  credentials: CredentialSource;
  /** Hash of each configured service account's secret (see store/credentials.ts). */
  serviceSecretHashes: ReadonlyMap<string, string>;
  /** Called once per connection that passed, before aedes registers it. */
  accept(client: Client, authenticated: Authenticated): void;
  /** Who holds each connected client id, to keep devices and services from taking over each other's sessions. */
  connectedIdentity(clientId: string): Identity | undefined;
  /** The client's source address (normalized), as its socket reported it when accepted. */
  addressOf(client: Client): string;
  /** Connection caps; the slot taken at CONNECT is released by the caller when the socket closes. */
  limits: ConnectionLimits;
  throttle: FailureThrottle;
  counters: MutableBrokerCounters;
  clock: () => number;
  logger: Logger;
}

type PreConnectHandler = NonNullable<AedesOptions['preConnect']>;
type AuthenticateHandler = NonNullable<AedesOptions['authenticate']>;

export function createAuthenticationHooks(deps: AuthenticationDeps): {
  preConnect: PreConnectHandler;
  authenticate: AuthenticateHandler;
  /** Cancels the delayed answers still waiting (at broker close). */
  stop(): void;
} {
  const { credentials, serviceSecretHashes, accept, connectedIdentity, addressOf, limits, throttle, counters, clock, logger } = deps;
  const delayed = new Set<NodeJS.Timeout>();
  // aedes hands the CONNECT packet only to preConnect; authenticate needs its will.
  const wills = new WeakMap<Client, { topic: string; retain: boolean }>();

  const preConnect: PreConnectHandler = (client, packet, callback) => {
    if (packet.will) wills.set(client, { topic: packet.will.topic, retain: packet.will.retain === true });
    callback(null, true);
  };

  const authenticate: AuthenticateHandler = (client, username, password, callback) => {
    const address = addressOf(client);
    const refuse = (reason: RefusalReason): void => {
      const refusal = REFUSALS[reason];
      counters[refusal.counter] += 1;
      counters.connectionsRefused += 1;
      logger.debug({ reason, username, clientId: client.id, address }, 'connection refused');
      const error = Object.assign(new Error(`connection refused: ${reason}`), {
        returnCode: refusal.returnCode,
      }) as AuthenticateError;
      callback(error, false);
    };

    const admission = limits.admit(client, address);
    if (admission !== 'admitted') {
      refuse(admission);
      return;
    }
    // A service account's name is not throttled as an id: an attacker's
    // wrong guesses would otherwise lock a platform service out. Its
    // secret is long and random, and the address is throttled all the same.
    const keys: ThrottleKeys = {
      address,
      deviceId: username !== undefined && isValidDeviceId(username) && !isServiceAccount(username) ? username : undefined,
    };
    const { lockedOut, delayMs } = throttle.check(keys);
    if (lockedOut) {
      refuse('throttled');
      return;
    }
    if (delayMs === 0) {
      decide();
      return;
    }
    counters.connectionsDelayed += 1;
    const timer = setTimeout(() => {
      delayed.delete(timer);
      // Gone while it waited: nobody to answer, nothing to check.
      if (client.closed) return;
      // Other CONNECTs may have used up the failures meanwhile.
      if (throttle.isLockedOut(keys)) refuse('throttled');
      else decide();
    }, delayMs);
    delayed.add(timer);

    function decide(): void {
      let outcome: Authenticated | RefusalReason;
      try {
        outcome = identify(client.id, username, password);
      } catch (err) {
        logger.error({ err, username }, 'credentials lookup failed; refusing connection');
        outcome = 'server-error';
      }
      if (typeof outcome !== 'string') {
        const will = wills.get(client);
        if (will !== undefined && !isWillAuthorized(outcome.identity, will)) outcome = 'will-not-authorized';
      }
      if (typeof outcome === 'string') {
        if (FAILURES.has(outcome)) throttle.recordFailure(keys);
        refuse(outcome);
        return;
      }
      if (outcome.identity.kind === 'device') throttle.succeeded(outcome.identity.deviceId);
      accept(client, outcome);
      callback(null, true);
    }
  };

  function isWillAuthorized(identity: Identity, will: { topic: string; retain: boolean }): boolean {
    if (!mayPublish(identity, will.topic)) return false;
    if (identity.kind !== 'device' || !will.retain) return true;
    const channel = devicePublishChannel(identity.deviceId, will.topic);
    if (channel !== undefined && mayDeviceRetain(channel)) return true;
    counters.retainRefused += 1;
    return false;
  }

  function identify(
    clientId: string,
    username: string | undefined,
    password: Buffer | undefined,
  ): Authenticated | RefusalReason {
    if (username === undefined || username === '' || password === undefined || password.length === 0) {
      return 'missing-credentials';
    }
    const secret = password.toString('utf8');
    if (isServiceAccount(username)) {
      const serviceHash = serviceSecretHashes.get(username);
      if (serviceHash === undefined) {
        // An account this broker was not given: refused like an unknown device, after the same work.
        verifySecret(secret, UNKNOWN_DEVICE_HASH);
        return 'unknown-device';
      }
      if (!verifySecret(secret, serviceHash)) return 'bad-secret';
      if (clientId !== SERVICE_PERMISSIONS[username].clientId || connectedIdentity(clientId)?.kind === 'device') {
        return 'client-id-rejected';
      }
      return { identity: { kind: 'service', account: username }, secretHash: undefined, onGraceSecret: false };
    }
    const hashes = isValidDeviceId(username) ? credentials.getAcceptedSecretHashes(username, clock()) : [];
    if (hashes.length === 0) {
      // Same work as for a known device, so response time does not tell which ids exist.
      verifySecret(secret, UNKNOWN_DEVICE_HASH);
      return 'unknown-device';
    }
    // Every accepted hash is checked, so the time taken does not tell which one matched.
    let matched: string | undefined;
    for (const hash of hashes) {
      if (verifySecret(secret, hash)) matched ??= hash;
    }
    if (matched === undefined) return 'bad-secret';
    if (clientId !== username || connectedIdentity(clientId)?.kind === 'service') return 'client-id-rejected';
    return { identity: { kind: 'device', deviceId: username }, secretHash: matched, onGraceSecret: matched !== hashes[0] };
  }

  return {
    preConnect,
    authenticate,
    stop() {
      for (const timer of delayed) clearTimeout(timer);
      delayed.clear();
    },
  };
}
