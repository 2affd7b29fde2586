/** Contract of DeadLetterStore, run by every implementation against a fresh, empty store per test. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeadLetter, DeadLetterStore } from '../types.ts';
import type { OpenStore } from './open-store.ts';

export function describeDeadLetterStoreContract(name: string, open: OpenStore<DeadLetterStore>): void {
  describe(`DeadLetterStore contract: ${name}`, () => {
    let letters: DeadLetterStore;
    let close: () => Promise<void>;

    beforeEach(async () => {
      ({ store: letters, close } = await open());
    });

    afterEach(async () => {
      await close();
    });

    function letter(n: number, reason: string): DeadLetter {
      return {
        receivedAtMs: 1_000 + n,
        topic: `vpp/v1/devices/dev-${n}/telemetry`,
        clientId: n % 2 === 0 ? `dev-${n}` : null,
        reason,
        detail: `detail ${n}`,
        payload: Buffer.from(`payload ${n}`),
      };
    }

    it('round-trips every field, including arbitrary and empty payload bytes', () => {
      const binary = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x7b, 0x0a, 0xc3, 0x28]);
      letters.addDeadLetters([
        { ...letter(1, 'not-json'), payload: binary },
        { ...letter(2, 'schema'), payload: Buffer.alloc(0) },
      ]);
      const [second, first] = letters.listDeadLetters({ limit: 10 });
      expect(first).toMatchObject({ receivedAtMs: 1_001, topic: 'vpp/v1/devices/dev-1/telemetry', clientId: null, reason: 'not-json', detail: 'detail 1' });
      expect(Buffer.compare(first!.payload, binary)).toBe(0);
      expect(second).toMatchObject({ clientId: 'dev-2', reason: 'schema' });
      expect(second!.payload.length).toBe(0);
      expect(first!.id).toBeLessThan(second!.id);
    });

    it('lists newest first and pages with beforeId until nothing is left', () => {
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

    it('filters by reason, also while paging', () => {
      letters.addDeadLetters([letter(0, 'schema'), letter(1, 'not-json'), letter(2, 'schema'), letter(3, 'schema')]);
      letters.addDeadLetters([letter(4, 'unknown-device')]);
      const page = letters.listDeadLetters({ limit: 2, reason: 'schema' });
      expect(page.map((l) => l.detail)).toEqual(['detail 3', 'detail 2']);
      const next = letters.listDeadLetters({ limit: 2, reason: 'schema', beforeId: page.at(-1)!.id });
      expect(next.map((l) => l.detail)).toEqual(['detail 0']);
      expect(letters.listDeadLetters({ limit: 10, reason: 'absurd-value' })).toEqual([]);
    });

    it('counts by reason', () => {
      expect(letters.countDeadLettersByReason()).toEqual({});
      letters.addDeadLetters([letter(0, 'schema'), letter(1, 'not-json'), letter(2, 'schema')]);
      letters.addDeadLetters([letter(3, 'future-timestamp')]);
      letters.addDeadLetters([]);
      expect(letters.countDeadLettersByReason()).toEqual({ schema: 2, 'not-json': 1, 'future-timestamp': 1 });
    });
  });
}
