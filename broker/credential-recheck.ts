/**
 * Credential recheck: which connected devices may no longer stay.
 *
 * A device connects with a secret that matched one of the hashes the
 * registry accepted at that moment. During a rotation the previous hash
 * stays accepted for a grace period, so a device can reconnect with the new
 * secret at its own pace; once the grace period ends (or the secret is
 * reset at once, or the device is revoked), the hash its open connection
 * was accepted with is no longer accepted, and that connection must end as
 * a new CONNECT with the same secret would be refused. The broker runs this
 * every `credentialRecheckMs` over its device connections.
 */
import type { CredentialSource } from './authenticate.ts';

export interface DeviceSession<C> {
  deviceId: string;
  /** The accepted hash the device's secret matched at CONNECT. */
  secretHash: string;
  connection: C;
}

export interface Expired<C> {
  session: DeviceSession<C>;
  /** 'revoked' when the device has no accepted hash at all, else 'secret-expired'. */
  reason: 'revoked' | 'secret-expired';
}

/**
 * The sessions whose hash `credentials` no longer accepts at `nowMs`.
 * Throws what the credentials port throws; the caller keeps every
 * connection then (a registry that cannot be read says nothing about them).
 */
export function findExpiredSessions<C>(
  sessions: Iterable<DeviceSession<C>>,
  credentials: CredentialSource,
  nowMs: number,
): Array<Expired<C>> {
  const expired: Array<Expired<C>> = [];
  for (const session of sessions) {
    const accepted = credentials.getAcceptedSecretHashes(session.deviceId, nowMs);
    if (accepted.includes(session.secretHash)) continue;
    expired.push({ session, reason: accepted.length === 0 ? 'revoked' : 'secret-expired' });
  }
  return expired;
}
