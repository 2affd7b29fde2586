import type { StoredDeadLetter } from '../../store/types.ts';
import { isoTime } from './device.ts';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Shows stored payload bytes as text when they are valid UTF-8, as base64 otherwise, so binary garbage survives JSON. */
export function presentPayload(payload: Buffer): { encoding: 'utf8' | 'base64'; data: string; bytes: number } {
  try {
    return { encoding: 'utf8', data: strictUtf8.decode(payload), bytes: payload.byteLength };
  } catch {
    return { encoding: 'base64', data: payload.toString('base64'), bytes: payload.byteLength };
  }
}

export function presentDeadLetter(letter: StoredDeadLetter) {
  return {
    id: letter.id,
    receivedAt: isoTime(letter.receivedAtMs),
    topic: letter.topic,
    clientId: letter.clientId,
    reason: letter.reason,
    detail: letter.detail,
    payload: presentPayload(letter.payload),
    payloadBytes: letter.payloadBytes,
    payloadSha256: letter.payloadSha256,
    truncated: letter.truncated,
  };
}
