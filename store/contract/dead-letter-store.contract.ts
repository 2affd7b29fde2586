/**
 * Contract of DeadLetterStore, run by every implementation against a fresh,
 * empty store per test. The suite chooses the limits of each store it opens,
 * so that the bounds can be checked with small payloads.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { storedDeadLetterBytes, type DeadLetter, type DeadLetterLimits, type DeadLetterStore } from '../types.ts';
import type { OpenStore } from './open-store.ts';

/** Opens a fresh, empty store that applies `limits`. */
export type OpenDeadLetterStore = (limits: DeadLetterLimits) => ReturnType<OpenStore<DeadLetterStore>>;

const DAY_MS = 86_400_000;
/** Limits no test but the bounded ones comes near. */
const ROOMY: DeadLetterLimits = { maxPayloadBytes: 4_096, maxTotalBytes: 1_048_576, retentionMs: DAY_MS };

function sha256Hex(payload: Buffer): string {
  return createHash('sha256').update(payload).digest('hex');
}

/** `n` bytes that differ from one position to the next, so a cut in the wrong place shows. */
function bytes(n: number, seed = 0): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) % 256));
}

export function describeDeadLetterStoreContract(name: string, open: OpenDeadLetterStore): void {
  describe(`DeadLetterStore contract: ${name}`, () => {
    let closers: Array<() => Promise<void>> = [];

    async function openWith(limits: DeadLetterLimits = ROOMY): Promise<DeadLetterStore> {
      const { store, close } = await open(limits);
      closers.push(close);
      return store;
    }

    afterEach(async () => {
      for (const close of closers) await close();
      closers = [];
    });

    function letter(n: number, reason: string, payload: Buffer = Buffer.from(`payload ${n}`)): DeadLetter {
      return {
        receivedAtMs: 1_000 + n,
        topic: `vpp/v1/devices/dev-${n}/telemetry`,
        clientId: n % 2 === 0 ? `dev-${n}` : null,
        reason,
        detail: `detail ${n}`,
        payload,
      };
    }

    it('round-trips every field, including arbitrary and empty payload bytes', async () => {
      const letters = await openWith();
      const binary = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x7b, 0x0a, 0xc3, 0x28]);
      letters.addDeadLetters([letter(1, 'not-json', binary), letter(2, 'schema', Buffer.alloc(0))]);
      const [second, first] = letters.listDeadLetters({ limit: 10 });
      expect(first).toMatchObject({
        receivedAtMs: 1_001,
        topic: 'vpp/v1/devices/dev-1/telemetry',
        clientId: null,
        reason: 'not-json',
        detail: 'detail 1',
        payloadBytes: 8,
        payloadSha256: sha256Hex(binary),
        truncated: false,
      });
      expect(Buffer.compare(first!.payload, binary)).toBe(0);
      expect(second).toMatchObject({ clientId: 'dev-2', reason: 'schema', payloadBytes: 0, payloadSha256: sha256Hex(Buffer.alloc(0)), truncated: false });
      expect(second!.payload.length).toBe(0);
      expect(first!.id).toBeLessThan(second!.id);
    });

    it('lists newest first and pages with beforeId until nothing is left', async () => {
      const letters = await openWith();
      letters.addDeadLetters(Array.from({ length: 7 }, (_, i) => letter(i, 'schema')));
      const seen: string[] = [];
      let beforeId: number | undefined;
      for (;;) {
        const page = letters.listDeadLetters({ limit: 3, ...(beforeId === undefined ? {} : { beforeId }) });
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(3);
        seen.push(...page.map((l) => l.detail));
        beforeId = page.at(-1)!.id;
      }
      expect(seen).toEqual([6, 5, 4, 3, 2, 1, 0].map((n) => `detail ${n}`));
    });

    it('filters by reason, also while paging', async () => {
      const letters = await openWith();
      letters.addDeadLetters([letter(0, 'schema'), letter(1, 'not-json'), letter(2, 'schema'), letter(3, 'schema')]);
      letters.addDeadLetters([letter(4, 'unknown-device')]);
      const page = letters.listDeadLetters({ limit: 2, reason: 'schema' });
      expect(page.map((l) => l.detail)).toEqual(['detail 3', 'detail 2']);
      const next = letters.listDeadLetters({ limit: 2, reason: 'schema', beforeId: page.at(-1)!.id });
      expect(next.map((l) => l.detail)).toEqual(['detail 0']);
      expect(letters.listDeadLetters({ limit: 10, reason: 'absurd-value' })).toEqual([]);
    });

    it('counts by reason', async () => {
      const letters = await openWith();
      expect(letters.countDeadLettersByReason()).toEqual({});
      letters.addDeadLetters([letter(0, 'schema'), letter(1, 'not-json'), letter(2, 'schema')]);
      letters.addDeadLetters([letter(3, 'future-timestamp')]);
      letters.addDeadLetters([]);
      expect(letters.countDeadLettersByReason()).toEqual({ schema: 2, 'not-json': 1, 'future-timestamp': 1 });
    });

    it('keeps the first maxPayloadBytes of a payload with the size and SHA-256 of the whole, and the first 1,000 characters of the detail', async () => {
      const letters = await openWith({ ...ROOMY, maxPayloadBytes: 16 });
      const long = bytes(40, 1);
      const exact = bytes(16, 2);
      const short = bytes(3, 3);
      const longDetail = Array.from({ length: 1_500 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
      letters.addDeadLetters([{ ...letter(1, 'schema', long), detail: longDetail }, letter(2, 'schema', exact), letter(3, 'schema', short)]);
      const [shortOne, exactOne, longOne] = letters.listDeadLetters({ limit: 10 });

      expect(longOne).toMatchObject({ payloadBytes: 40, payloadSha256: sha256Hex(long), truncated: true });
      expect(longOne!.payload.toString('hex')).toBe(long.subarray(0, 16).toString('hex'));
      expect(longOne!.detail).toBe(longDetail.slice(0, 1_000));

      expect(exactOne).toMatchObject({ payloadBytes: 16, payloadSha256: sha256Hex(exact), truncated: false, detail: 'detail 2' });
      expect(exactOne!.payload.toString('hex')).toBe(exact.toString('hex'));
      expect(shortOne).toMatchObject({ payloadBytes: 3, payloadSha256: sha256Hex(short), truncated: false });
      expect(shortOne!.payload.toString('hex')).toBe(short.toString('hex'));
    });

    it('deletes the oldest letters once the stored letters exceed maxTotalBytes, keeping the newest', async () => {
      const ten = (n: number) => letter(n, n % 2 === 0 ? 'schema' : 'not-json', bytes(10, n));
      // Room for three of these letters (each counts its payload, topic, client id, reason and detail), not four.
      const size = Math.max(...[0, 1, 2, 3].map((n) => storedDeadLetterBytes(ten(n))));
      const letters = await openWith({ ...ROOMY, maxPayloadBytes: 10, maxTotalBytes: 3 * size + 5 });
      letters.addDeadLetters([ten(0), ten(1), ten(2)]);
      expect(letters.listDeadLetters({ limit: 10 }).map((l) => l.detail)).toEqual(['detail 2', 'detail 1', 'detail 0']);

      letters.addDeadLetters([ten(3)]);
      expect(letters.listDeadLetters({ limit: 10 }).map((l) => l.detail)).toEqual(['detail 3', 'detail 2', 'detail 1']);

      // One call past the cap keeps its own newest letters.
      letters.addDeadLetters([ten(4), ten(5), ten(6), ten(7), ten(8)]);
      expect(letters.listDeadLetters({ limit: 10 }).map((l) => l.detail)).toEqual(['detail 8', 'detail 7', 'detail 6']);
      expect(letters.countDeadLettersByReason()).toEqual({ schema: 2, 'not-json': 1 });

      // A payload counts with its stored (cut) size: 100 received bytes take 10.
      letters.addDeadLetters([letter(9, 'schema', bytes(100, 9))]);
      const left = letters.listDeadLetters({ limit: 10 });
      expect(left.map((l) => l.detail)).toEqual(['detail 9', 'detail 8', 'detail 7']);
      expect(left[0]).toMatchObject({ payloadBytes: 100, truncated: true });

      // Every field counts: letters with empty payloads but long details are bounded too.
      const wordy = (n: number): DeadLetter => ({ ...letter(n, 'schema', Buffer.alloc(0)), detail: `${n}`.padEnd(900, '.') });
      letters.addDeadLetters([wordy(10)]);
      expect(letters.listDeadLetters({ limit: 10 }).map((l) => l.detail.slice(0, 2))).toEqual(['10']);
      // A letter larger than the cap on its own is still kept: the newest always is.
      letters.addDeadLetters([wordy(11)]);
      expect(letters.listDeadLetters({ limit: 10 }).map((l) => l.detail.slice(0, 2))).toEqual(['11']);
    });

    it('prunes letters older than the retention and returns how many', async () => {
      const letters = await openWith({ ...ROOMY, retentionMs: 1_000 });
      const at = (receivedAtMs: number): DeadLetter => ({ ...letter(receivedAtMs, 'schema'), receivedAtMs, detail: `at ${receivedAtMs}` });
      letters.addDeadLetters([at(1_500), at(0), at(999), at(1_000), at(500)]);
      expect(letters.pruneDeadLetters(2_000)).toBe(3);
      expect(letters.listDeadLetters({ limit: 10 }).map((l) => l.detail)).toEqual(['at 1000', 'at 1500']);
      expect(letters.pruneDeadLetters(2_000)).toBe(0);
      expect(letters.countDeadLettersByReason()).toEqual({ schema: 2 });
      expect(letters.pruneDeadLetters(2_001)).toBe(1);
      expect(letters.listDeadLetters({ limit: 10 }).map((l) => l.detail)).toEqual(['at 1500']);
    });

    it('stops listing before maxBytes of payloads, but always lists one letter when any matches', async () => {
      const letters = await openWith();
      // Stored sizes, oldest to newest.
      const sizes = [4, 8, 6, 12, 5];
      letters.addDeadLetters(sizes.map((size, i) => letter(i, i === 2 ? 'not-json' : 'schema', bytes(size, i))));
      const listedSizes = (query: Parameters<DeadLetterStore['listDeadLetters']>[0]) => letters.listDeadLetters(query).map((l) => l.payload.length);

      expect(listedSizes({ limit: 10 })).toEqual([5, 12, 6, 8, 4]);
      expect(listedSizes({ limit: 10, maxBytes: 17 })).toEqual([5, 12]);
      expect(listedSizes({ limit: 10, maxBytes: 22 })).toEqual([5, 12]);
      expect(listedSizes({ limit: 10, maxBytes: 23 })).toEqual([5, 12, 6]);
      expect(listedSizes({ limit: 2, maxBytes: 1_000 })).toEqual([5, 12]);
      expect(listedSizes({ limit: 10, maxBytes: 3 })).toEqual([5]);
      expect(listedSizes({ limit: 10, maxBytes: 0 })).toEqual([5]);
      expect(listedSizes({ limit: 10, reason: 'schema', maxBytes: 25 })).toEqual([5, 12, 8]);

      // Paging goes on where a byte-bounded page stopped.
      const first = letters.listDeadLetters({ limit: 10, maxBytes: 17 });
      expect(listedSizes({ limit: 10, maxBytes: 17, beforeId: first.at(-1)!.id })).toEqual([6, 8]);
      expect(letters.listDeadLetters({ limit: 10, maxBytes: 100, reason: 'absurd-value' })).toEqual([]);
    });
  });
}
