/**
 * Contract of TokenStore, run by every implementation against a fresh,
 * empty store per test: creation and listing, the checks of what callers
 * pass (nothing written when refused), authentication of active tokens
 * only (never revoked or expired ones), the use recorded at most once a
 * minute, names unique among tokens not revoked, and revocation.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashTokenSecret } from '../credentials.ts';
import { StoreError, isTokenActive, type ApiToken, type OperatorRole, type TokenStore } from '../types.ts';
import type { OpenStore } from './open-store.ts';

/** When the tokens below are created, unless a test says otherwise. */
const T0 = 1_000_000;
const MINUTE_MS = 60_000;

/** A UUID that sorts by n, for tests that care about the order of ids. */
function uuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** The secret of token n, and the hash the store keeps. */
const secret = (n: number): string => `token-secret-${n}`;
const hashOf = (n: number): string => hashTokenSecret(secret(n));

type NewToken = Parameters<TokenStore['createToken']>[0];

function newToken(n: number, values: Partial<NewToken> = {}): NewToken {
  return { id: uuid(n), name: `token ${n}`, role: 'operator', secretHash: hashOf(n), expiresAtMs: null, ...values };
}

function expectStoreError(fn: () => unknown, code: StoreError['code']): StoreError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StoreError);
  expect((caught as StoreError).code).toBe(code);
  return caught as StoreError;
}

export function describeTokenStoreContract(name: string, open: OpenStore<TokenStore>): void {
  describe(`TokenStore contract: ${name}`, () => {
    let tokens: TokenStore;
    let close: () => Promise<void>;

    beforeEach(async () => {
      ({ store: tokens, close } = await open());
    });

    afterEach(async () => {
      await close();
    });

    describe('creation and listing', () => {
      it('stores a token and gives it back exactly, never its secret or hash', () => {
        const created = tokens.createToken(newToken(1, { name: 'ci deploy', role: 'admin', expiresAtMs: T0 + 1 }), T0);
        expect(created).toEqual({ id: uuid(1), name: 'ci deploy', role: 'admin', createdAtMs: T0, lastUsedAtMs: null, expiresAtMs: T0 + 1, revokedAtMs: null });
        expect(JSON.stringify(created)).not.toContain(hashOf(1));
        expect(tokens.listTokens()).toEqual([created]);
        for (const role of ['viewer', 'operator', 'admin'] as const) {
          const n = { viewer: 2, operator: 3, admin: 4 }[role];
          expect(tokens.createToken(newToken(n, { role }), T0).role).toBe(role);
        }
      });

      it('gives a token by id, revoked and expired ones included, without recording a use', () => {
        const created = tokens.createToken(newToken(1, { expiresAtMs: T0 + 100 }), T0);
        expect(tokens.getToken(uuid(1))).toEqual(created);
        expect(isTokenActive(tokens.getToken(uuid(1))!, T0 + 99)).toBe(true);
        expect(isTokenActive(tokens.getToken(uuid(1))!, T0 + 100)).toBe(false);
        expect(tokens.revokeToken(uuid(1), T0 + 1)).toBe(true);
        expect(tokens.getToken(uuid(1))).toMatchObject({ revokedAtMs: T0 + 1, lastUsedAtMs: null });
        expect(isTokenActive(tokens.getToken(uuid(1))!, T0 + 2)).toBe(false);
        expect(tokens.getToken(uuid(2))).toBeUndefined();
        expect(tokens.getToken('not a uuid')).toBeUndefined();
      });

      it('lists every token newest first (by creation, then id), revoked ones included', () => {
        tokens.createToken(newToken(1), T0);
        tokens.createToken(newToken(3), T0 + 5);
        tokens.createToken(newToken(2), T0 + 5);
        tokens.createToken(newToken(4), T0 + 1);
        expect(tokens.revokeToken(uuid(3), T0 + 10)).toBe(true);
        const listed = tokens.listTokens();
        expect(listed.map((t) => t.id)).toEqual([uuid(3), uuid(2), uuid(4), uuid(1)]);
        expect(listed[0]).toMatchObject({ revokedAtMs: T0 + 10 });
        expect(tokens.listTokens()).toEqual(listed);
      });

      it('lists nothing in an empty store', () => {
        expect(tokens.listTokens()).toEqual([]);
      });

      it('refuses invalid input with invalid, saying what is wrong, and writes nothing', () => {
        const bad: Array<{ what: string; token: NewToken; nowMs?: number; says: RegExp }> = [
          { what: 'id not a UUID', token: newToken(1, { id: 'token-1' }), says: /id/ },
          { what: 'id uppercase', token: newToken(1, { id: uuid(10).toUpperCase() }), says: /id/ },
          { what: 'name empty', token: newToken(1, { name: '' }), says: /name/ },
          { what: 'name too long', token: newToken(1, { name: 'n'.repeat(65) }), says: /name/ },
          { what: 'name not a string', token: newToken(1, { name: 5 as unknown as string }), says: /name/ },
          { what: 'name with a newline', token: newToken(1, { name: 'ci\nadmin' }), says: /name/ },
          { what: 'name with a NUL', token: newToken(1, { name: 'ci\u0000' }), says: /name/ },
          { what: 'name with DEL', token: newToken(1, { name: 'ci\u007f' }), says: /name/ },
          { what: 'name with a line separator', token: newToken(1, { name: 'ci\u2028x' }), says: /name/ },
          { what: 'name with a lone surrogate', token: newToken(1, { name: 'ci\ud800' }), says: /name/ },
          { what: 'name padded', token: newToken(1, { name: ' admin' }), says: /name/ },
          { what: 'name blank', token: newToken(1, { name: '   ' }), says: /name/ },
          { what: 'role unknown', token: newToken(1, { role: 'root' as OperatorRole }), says: /role/ },
          { what: 'hash not hex', token: newToken(1, { secretHash: 'z'.repeat(64) }), says: /secretHash/ },
          { what: 'hash the secret itself', token: newToken(1, { secretHash: secret(1) }), says: /secretHash/ },
          { what: 'hash uppercase', token: newToken(1, { secretHash: hashOf(1).toUpperCase() }), says: /secretHash/ },
          { what: 'hash too short', token: newToken(1, { secretHash: hashOf(1).slice(1) }), says: /secretHash/ },
          { what: 'expiry at nowMs', token: newToken(1, { expiresAtMs: T0 }), says: /expiresAtMs/ },
          { what: 'expiry before nowMs', token: newToken(1, { expiresAtMs: T0 - 1 }), says: /expiresAtMs/ },
          { what: 'expiry fractional', token: newToken(1, { expiresAtMs: T0 + 0.5 }), says: /expiresAtMs/ },
          { what: 'expiry unsafe', token: newToken(1, { expiresAtMs: 1e20 }), says: /expiresAtMs/ },
          { what: 'nowMs fractional', token: newToken(1), nowMs: 1.5, says: /nowMs/ },
          { what: 'nowMs NaN', token: newToken(1), nowMs: Number.NaN, says: /nowMs/ },
        ];
        for (const { what, token, nowMs, says } of bad) {
          const error = expectStoreError(() => tokens.createToken(token, nowMs ?? T0), 'invalid');
          expect(error.message, what).toMatch(says);
          // The refused hash is never echoed back.
          expect(error.message, what).not.toContain(hashOf(1));
        }
        // Every problem is listed at once.
        const many = expectStoreError(() => tokens.createToken(newToken(1, { id: 'x', name: '', role: 'root' as OperatorRole, expiresAtMs: 0 }), T0), 'invalid');
        for (const field of [/id/, /name/, /role/, /expiresAtMs/]) expect(many.message).toMatch(field);

        expect(tokens.listTokens()).toEqual([]);
        expect(tokens.authenticate(hashOf(1), T0)).toBeUndefined();

        // The bounds themselves pass.
        expect(tokens.createToken(newToken(1, { name: 'n'.repeat(64) }), T0).name).toBe('n'.repeat(64));
        expect(tokens.createToken(newToken(2, { name: 'Zoë 🔋 ops', expiresAtMs: T0 + 1 }), T0)).toMatchObject({ name: 'Zoë 🔋 ops', expiresAtMs: T0 + 1 });
        expect(tokens.createToken(newToken(3, { name: 'x' }), T0).name).toBe('x');
      });

      it('refuses an id or a secret hash that exists with conflict, keeping the first', () => {
        const first = tokens.createToken(newToken(1), T0);
        expectStoreError(() => tokens.createToken(newToken(1, { name: 'other', secretHash: hashOf(2) }), T0 + 1), 'conflict');
        const error = expectStoreError(() => tokens.createToken(newToken(2, { secretHash: hashOf(1) }), T0 + 1), 'conflict');
        expect(error.message).not.toContain(hashOf(1));
        // Even once revoked: a secret is never reused.
        tokens.revokeToken(uuid(1), T0 + 2);
        expectStoreError(() => tokens.createToken(newToken(2, { secretHash: hashOf(1) }), T0 + 3), 'conflict');
        expect(tokens.listTokens()).toEqual([{ ...first, revokedAtMs: T0 + 2 }]);
      });
    });

    describe('names', () => {
      it('refuses the name of a token that is not revoked, expired or not, writing nothing', () => {
        const first = tokens.createToken(newToken(1, { name: 'ci', expiresAtMs: T0 + 10 }), T0);
        const error = expectStoreError(() => tokens.createToken(newToken(2, { name: 'ci' }), T0 + 1), 'conflict');
        expect(error.message).toContain('ci');
        // Expired but not revoked: the name is still taken (revoke it to free it).
        expectStoreError(() => tokens.createToken(newToken(2, { name: 'ci' }), T0 + 100), 'conflict');
        expect(tokens.listTokens()).toEqual([first]);
        expect(tokens.authenticate(hashOf(2), T0 + 1)).toBeUndefined();
        // Names are compared exactly.
        expect(tokens.createToken(newToken(3, { name: 'CI' }), T0 + 1).name).toBe('CI');
      });

      it('lets a revoked token’s name be used again, and keeps one token not revoked per name', () => {
        tokens.createToken(newToken(1, { name: 'ci' }), T0);
        expect(tokens.revokeToken(uuid(1), T0 + 1)).toBe(true);
        const second = tokens.createToken(newToken(2, { name: 'ci', role: 'viewer' }), T0 + 2);
        expectStoreError(() => tokens.createToken(newToken(3, { name: 'ci' }), T0 + 3), 'conflict');
        tokens.revokeToken(uuid(2), T0 + 4);
        tokens.createToken(newToken(3, { name: 'ci' }), T0 + 5);
        expect(tokens.listTokens().map((t) => [t.id, t.name, t.revokedAtMs])).toEqual([
          [uuid(3), 'ci', null],
          [uuid(2), 'ci', T0 + 4],
          [uuid(1), 'ci', T0 + 1],
        ]);
        expect(tokens.authenticate(hashOf(2), T0 + 6)).toBeUndefined();
        expect(tokens.authenticate(hashOf(3), T0 + 6)?.id).toBe(uuid(3));
        expect(second.role).toBe('viewer');
      });
    });

    describe('authentication', () => {
      it('finds the active token by the hash of its secret, and nothing for any other hash', () => {
        const created = tokens.createToken(newToken(1, { role: 'admin' }), T0);
        tokens.createToken(newToken(2), T0);
        expect(tokens.authenticate(hashOf(1), T0 + 5)).toEqual({ ...created, lastUsedAtMs: T0 + 5 });
        expect(tokens.authenticate(hashOf(2), T0 + 5)?.id).toBe(uuid(2));
        expect(tokens.authenticate(hashOf(3), T0 + 5)).toBeUndefined();
        // The secret itself, another hash form, garbage: nothing.
        for (const hash of [secret(1), hashOf(1).toUpperCase(), '', 'x'.repeat(10_000), 5 as unknown as string, null as unknown as string]) {
          expect(tokens.authenticate(hash, T0 + 5)).toBeUndefined();
        }
        expectStoreError(() => tokens.authenticate(hashOf(1), 1.5), 'invalid');
      });

      it('refuses an expired token from its expiry on, and a revoked one at once', () => {
        tokens.createToken(newToken(1, { expiresAtMs: T0 + 10 * MINUTE_MS }), T0);
        tokens.createToken(newToken(2), T0);
        expect(tokens.authenticate(hashOf(1), T0 + 10 * MINUTE_MS - 1)?.id).toBe(uuid(1));
        expect(tokens.authenticate(hashOf(1), T0 + 10 * MINUTE_MS)).toBeUndefined();
        expect(tokens.authenticate(hashOf(1), T0 + 20 * MINUTE_MS)).toBeUndefined();

        expect(tokens.authenticate(hashOf(2), T0 + 1)?.id).toBe(uuid(2));
        expect(tokens.revokeToken(uuid(2), T0 + 2)).toBe(true);
        expect(tokens.authenticate(hashOf(2), T0 + 2)).toBeUndefined();
        // Within the minute of its last recorded use too.
        expect(tokens.authenticate(hashOf(2), T0 + 3)).toBeUndefined();
        // Neither use was recorded after the end.
        const listed = new Map(tokens.listTokens().map((t) => [t.id, t]));
        expect(listed.get(uuid(1))?.lastUsedAtMs).toBe(T0 + 10 * MINUTE_MS - 1);
        expect(listed.get(uuid(2))).toMatchObject({ lastUsedAtMs: T0 + 1, revokedAtMs: T0 + 2 });
      });

      it('records the use at most once a minute, so a burst of requests changes nothing after the first', () => {
        tokens.createToken(newToken(1), T0);
        const lastUsed = () => tokens.listTokens()[0]!.lastUsedAtMs;
        expect(lastUsed()).toBeNull();
        expect(tokens.authenticate(hashOf(1), T0 + 100)?.lastUsedAtMs).toBe(T0 + 100);
        for (let i = 0; i < 50; i++) expect(tokens.authenticate(hashOf(1), T0 + 100 + i * 1_000)?.lastUsedAtMs).toBe(T0 + 100);
        expect(tokens.authenticate(hashOf(1), T0 + 100 + MINUTE_MS - 1)?.lastUsedAtMs).toBe(T0 + 100);
        expect(lastUsed()).toBe(T0 + 100);
        expect(tokens.authenticate(hashOf(1), T0 + 100 + MINUTE_MS)?.lastUsedAtMs).toBe(T0 + 100 + MINUTE_MS);
        expect(lastUsed()).toBe(T0 + 100 + MINUTE_MS);
        // A clock behind the recorded use does not move it back.
        expect(tokens.authenticate(hashOf(1), T0)?.lastUsedAtMs).toBe(T0 + 100 + MINUTE_MS);
        expect(tokens.authenticate(hashOf(1), T0 + 10 * MINUTE_MS)?.lastUsedAtMs).toBe(T0 + 10 * MINUTE_MS);
        expect(lastUsed()).toBe(T0 + 10 * MINUTE_MS);
      });
    });

    describe('revocation', () => {
      it('revokes at once and says false when unknown or already revoked', () => {
        const created = tokens.createToken(newToken(1), T0);
        expect(tokens.revokeToken(uuid(2), T0 + 1)).toBe(false);
        expect(tokens.revokeToken(uuid(1), T0 + 1)).toBe(true);
        expect(tokens.revokeToken(uuid(1), T0 + 2)).toBe(false);
        expect(tokens.listTokens()).toEqual([{ ...created, revokedAtMs: T0 + 1 } satisfies ApiToken]);
        expect(tokens.revokeToken('not a uuid', T0 + 2)).toBe(false);
      });

      it('revokes an expired token too, which frees its name', () => {
        tokens.createToken(newToken(1, { name: 'ci', expiresAtMs: T0 + 1 }), T0);
        expect(tokens.revokeToken(uuid(1), T0 + 5)).toBe(true);
        expect(tokens.createToken(newToken(2, { name: 'ci' }), T0 + 6).name).toBe('ci');
      });

      it('refuses a revocation time that is not an integer with invalid, revoking nothing', () => {
        tokens.createToken(newToken(1), T0);
        for (const nowMs of [1.5, Number.NaN, 1e20]) expectStoreError(() => tokens.revokeToken(uuid(1), nowMs), 'invalid');
        expect(tokens.listTokens()[0]!.revokedAtMs).toBeNull();
        expect(tokens.authenticate(hashOf(1), T0 + 1)?.id).toBe(uuid(1));
      });
    });
  });
}
