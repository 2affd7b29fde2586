/**
 * SqliteTokens: the TokenStore contract on real files, and what only SQLite
 * has: persistence across reopening, two processes on one file (a
 * revocation seen at the next request), a burst of requests writing once,
 * lock timeouts, the schema's own indexes, query plans, and the migration
 * from version 6.
 */
import { describe, expect, it } from 'vitest';
import { describeTokenStoreContract } from './contract/index.ts';
import { hashTokenSecret, type TokenStore } from './index.ts';
import { expectUnavailable, openTempStore, useStoreFiles, uuid } from './test-store-files.ts';

const T0 = 1_000_000;
const MINUTE_MS = 60_000;

const hashOf = (n: number): string => hashTokenSecret(`token-secret-${n}`);

function newToken(n: number, values: Partial<Parameters<TokenStore['createToken']>[0]> = {}): Parameters<TokenStore['createToken']>[0] {
  return { id: uuid(n), name: `token ${n}`, role: 'operator', secretHash: hashOf(n), expiresAtMs: null, ...values };
}

describeTokenStoreContract('SqliteStore.tokens', async () => {
  const { store, close } = await openTempStore('vpp-tokens-');
  return { store: store.tokens, close };
});

describe('hashTokenSecret', () => {
  it('is the SHA-256 of the token in lowercase hex, the same every time', () => {
    expect(hashTokenSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashTokenSecret('abc')).toBe(hashTokenSecret('abc'));
    expect(hashTokenSecret('abd')).not.toBe(hashTokenSecret('abc'));
  });
});

describe('SqliteTokens on a file', () => {
  const { open, reopen, readRaw, countRows, writeRaw, expectWritesUnavailableWhileLocked, planOf, createAtVersion, expectCurrentVersion } =
    useStoreFiles<'api_tokens'>('vpp-tokens-');

  it('keeps tokens after close and reopen: active ones authenticate, revoked and expired ones do not, names stay taken', async () => {
    const first = open();
    first.tokens.createToken(newToken(1, { role: 'admin' }), T0);
    first.tokens.createToken(newToken(2, { expiresAtMs: T0 + MINUTE_MS }), T0);
    first.tokens.createToken(newToken(3, { name: 'old' }), T0);
    first.tokens.revokeToken(uuid(3), T0 + 1);
    first.tokens.authenticate(hashOf(1), T0 + 5);
    const listed = first.tokens.listTokens();

    const second = await reopen(first);
    expect(second.tokens.listTokens()).toEqual(listed);
    expect(second.tokens.authenticate(hashOf(1), T0 + 10)).toMatchObject({ id: uuid(1), role: 'admin', lastUsedAtMs: T0 + 5 });
    expect(second.tokens.authenticate(hashOf(2), T0 + 10)?.id).toBe(uuid(2));
    expect(second.tokens.authenticate(hashOf(2), T0 + MINUTE_MS)).toBeUndefined();
    expect(second.tokens.authenticate(hashOf(3), T0 + 10)).toBeUndefined();
    expect(() => second.tokens.createToken(newToken(4, { name: 'token 1' }), T0 + 10)).toThrow(expect.objectContaining({ code: 'conflict' }));
    expect(second.tokens.createToken(newToken(4, { name: 'old' }), T0 + 10).name).toBe('old');
  });

  it('lets a second store on the same file (like another process) revoke a token the first refuses at its next request', () => {
    const control = open();
    const api = open();
    control.tokens.createToken(newToken(1), T0);
    expect(api.tokens.authenticate(hashOf(1), T0 + 1)?.id).toBe(uuid(1));
    // Within the minute: nothing to record, and still refused at once.
    expect(control.tokens.revokeToken(uuid(1), T0 + 2)).toBe(true);
    expect(api.tokens.authenticate(hashOf(1), T0 + 3)).toBeUndefined();
    expect(api.tokens.authenticate(hashOf(1), T0 + 2 * MINUTE_MS)).toBeUndefined();
    expect(api.tokens.listTokens()[0]).toMatchObject({ lastUsedAtMs: T0 + 1, revokedAtMs: T0 + 2 });
    // A name freed by one process is taken by the other, and the first sees it.
    api.tokens.createToken(newToken(2, { name: 'token 1' }), T0 + 4);
    expect(() => control.tokens.createToken(newToken(3, { name: 'token 1' }), T0 + 5)).toThrow(expect.objectContaining({ code: 'conflict' }));
  });

  it('writes once for a burst of requests: the file changes at the first use of each minute only', () => {
    const store = open();
    store.tokens.createToken(newToken(1), T0);
    readRaw((watcher) => {
      const version = () => watcher.pragma('data_version', { simple: true }) as number;
      const before = version();
      store.tokens.authenticate(hashOf(1), T0);
      const afterFirst = version();
      expect(afterFirst).not.toBe(before);
      for (let i = 1; i < 200; i++) store.tokens.authenticate(hashOf(1), T0 + i * 100);
      expect(version()).toBe(afterFirst);
      store.tokens.authenticate(hashOf(1), T0 + MINUTE_MS);
      expect(version()).not.toBe(afterFirst);
      // Refused requests write nothing either.
      const afterSecond = version();
      for (let i = 0; i < 20; i++) store.tokens.authenticate(hashOf(2), T0 + 10 * MINUTE_MS);
      expect(version()).toBe(afterSecond);
    });
  });

  it('fails token writes with unavailable while another connection holds the write lock, but still authenticates, recording the use later', () => {
    const store = open({ busyTimeoutMs: 50 });
    store.tokens.createToken(newToken(1), T0);
    store.tokens.authenticate(hashOf(1), T0);
    const writes: Record<string, () => unknown> = {
      createToken: () => store.tokens.createToken(newToken(2), T0),
      revokeToken: () => store.tokens.revokeToken(uuid(1), T0 + 5 * MINUTE_MS),
    };
    expectWritesUnavailableWhileLocked(writes, () => {
      // Requests go on: within the minute nothing is written, past it the use is not recorded yet.
      expect(store.tokens.authenticate(hashOf(1), T0 + 1)?.lastUsedAtMs).toBe(T0);
      expect(store.tokens.authenticate(hashOf(1), T0 + 2 * MINUTE_MS)?.lastUsedAtMs).toBe(T0);
      expect(store.tokens.listTokens()).toHaveLength(1);
    });
    expect(countRows('api_tokens')).toBe(1);
    expect(store.tokens.authenticate(hashOf(1), T0 + 3 * MINUTE_MS)?.lastUsedAtMs).toBe(T0 + 3 * MINUTE_MS);
    for (const write of Object.values(writes)) write();
    expect(store.tokens.listTokens().map((t) => [t.id, t.revokedAtMs])).toEqual([
      [uuid(2), null],
      [uuid(1), T0 + 5 * MINUTE_MS],
    ]);
  });

  it('shares the store’s connection: closing the store makes token calls unavailable', async () => {
    const store = open();
    store.tokens.createToken(newToken(1), T0);
    await store.close();
    expectUnavailable(
      () => store.tokens.authenticate(hashOf(1), T0),
      () => store.tokens.createToken(newToken(2), T0),
      () => store.tokens.listTokens(),
      () => store.tokens.revokeToken(uuid(1), T0),
    );
  });

  it('keeps one token not revoked per name and one token per secret hash in the schema itself', () => {
    open().tokens.createToken(newToken(1, { name: 'ci' }), T0);
    writeRaw((raw) => {
      const insert = (id: number, name: string, hash: string, revokedAtMs: number | null) =>
        raw.prepare('INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)').run(uuid(id), name, 'viewer', hash, T0, revokedAtMs);
      expect(() => insert(2, 'ci', hashOf(2), null)).toThrow(/UNIQUE constraint failed: api_tokens.name/);
      expect(() => insert(2, 'other', hashOf(1), null)).toThrow(/UNIQUE constraint failed: api_tokens.secret_hash/);
      insert(2, 'ci', hashOf(2), T0);
      insert(3, 'ci', hashOf(3), T0);
      expect(() => raw.prepare('UPDATE api_tokens SET revoked_at_ms = NULL WHERE id = ?').run(uuid(2))).toThrow(/UNIQUE constraint failed/);
    });
  });

  it('authenticates with one search of the secret hash index', () => {
    const store = open();
    const plan = (name: string, ...params: unknown[]) => planOf(store.tokens, name, ...params);
    expect(plan('bySecretHash', hashOf(1))).toMatch(/^SEARCH api_tokens USING INDEX api_tokens_secret_hash \(secret_hash=\?\)$/);
    expect(plan('activeNameExists', 'ci')).toMatch(/api_tokens_active_name \(name=\?\)/);
    expect(plan('recordUse', { id: uuid(1), nowMs: T0, intervalMs: MINUTE_MS })).toMatch(/SEARCH api_tokens USING PRIMARY KEY \(id=\?\)/);
  });

  it('migrates a version 6 file with data to version 7, keeping its data and adding an empty token table', () => {
    createAtVersion(6, (raw) => {
      raw.prepare("INSERT INTO sites VALUES ('site-1', 'north', 'One')").run();
      raw.prepare("INSERT INTO devices (id, type, site_id, secret_hash, created_at_ms) VALUES ('bat-1', 'battery', 'site-1', 'h1', 1000)").run();
    });

    const store = open();
    expectCurrentVersion(7);
    expect(store.getAcceptedSecretHashes('bat-1', 2_000)).toEqual(['h1']);
    expect(store.tokens.listTokens()).toEqual([]);
    store.tokens.createToken(newToken(1), T0);
    expect(store.tokens.authenticate(hashOf(1), T0)?.id).toBe(uuid(1));
    expect(countRows('api_tokens')).toBe(1);
  });
});
