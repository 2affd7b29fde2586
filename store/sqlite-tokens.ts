/**
 * TokenStore over SQLite, on the connection the other ports share: the API
 * tokens of operators, each stored by the SHA-256 of its secret
 * (credentials.ts, hashTokenSecret), never the secret itself.
 *
 * authenticate runs on every request: one lookup of the unique index on the
 * hash. It writes only when the token's recorded use is a minute old or
 * more, so a burst of requests writes once. Nothing is cached, so a token
 * revoked by another process is refused at its next request.
 *
 * Names are unique among tokens that are not revoked (a partial unique
 * index, so it holds whichever process writes); revoking a token frees its
 * name. Input is checked before anything is written.
 */
import type Database from 'better-sqlite3';
import { TOKEN_SECRET_HASH } from './credentials.ts';
import { guard, immediateTransaction, isOperatorRole, isPlainObject, isUuid, requireSafeInteger, toStoreError, UUID_PROBLEM } from './sqlite-common.ts';
import { MAX_TOKEN_NAME_CHARS, OPERATOR_ROLES, StoreError, type ApiToken, type OperatorRole, type TokenStore } from './types.ts';

/** A token's use is recorded at most this often. */
export const TOKEN_USE_RECORD_INTERVAL_MS = 60_000;

/**
 * What a name may not hold: control characters, line and paragraph
 * separators, and lone surrogates. A name is shown in listings and the
 * audit log, where such characters would forge or hide lines.
 */
const UNPRINTABLE = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}]/u;

interface TokenRow {
  id: string;
  name: string;
  role: OperatorRole;
  secret_hash: string;
  created_at_ms: number;
  last_used_at_ms: number | null;
  expires_at_ms: number | null;
  revoked_at_ms: number | null;
}

interface InsertParams {
  id: string;
  name: string;
  role: OperatorRole;
  secretHash: string;
  createdAtMs: number;
  expiresAtMs: number | null;
}

const TOKEN_COLUMNS = 'id, name, role, secret_hash, created_at_ms, last_used_at_ms, expires_at_ms, revoked_at_ms';

function tokenFromRow(row: TokenRow): ApiToken {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdAtMs: row.created_at_ms,
    lastUsedAtMs: row.last_used_at_ms,
    expiresAtMs: row.expires_at_ms,
    revokedAtMs: row.revoked_at_ms,
  };
}

function isActive(row: TokenRow, nowMs: number): boolean {
  return row.revoked_at_ms === null && (row.expires_at_ms === null || row.expires_at_ms > nowMs);
}

/** Checks a new token; 'invalid' listing every problem, before any write. The secret hash itself is never quoted. */
function checkNewToken(input: Parameters<TokenStore['createToken']>[0], nowMs: number): InsertParams {
  if (!isPlainObject(input)) throw new StoreError('invalid', 'create token: the token must be an object');
  const problems: string[] = [];
  if (!isUuid(input.id)) problems.push(UUID_PROBLEM);
  const name: unknown = input.name;
  if (typeof name !== 'string' || name.length < 1 || name.length > MAX_TOKEN_NAME_CHARS) {
    problems.push(`name must be a string of 1 to ${MAX_TOKEN_NAME_CHARS} characters`);
  } else if (UNPRINTABLE.test(name)) {
    problems.push('name must hold no control characters, line separators or lone surrogates');
  } else if (name.trim() !== name) {
    problems.push('name must not begin or end with white space');
  }
  if (!isOperatorRole(input.role)) problems.push(`role must be one of ${OPERATOR_ROLES.join(', ')}, got ${String(input.role)}`);
  if (typeof input.secretHash !== 'string' || !TOKEN_SECRET_HASH.test(input.secretHash)) {
    problems.push('secretHash must be the SHA-256 of the token in lowercase hex (hashTokenSecret)');
  }
  const nowIsTime = Number.isSafeInteger(nowMs);
  if (!nowIsTime) problems.push(`nowMs must be an integer within ±(2^53 - 1), got ${String(nowMs)}`);
  if (input.expiresAtMs !== null) {
    if (!Number.isSafeInteger(input.expiresAtMs)) problems.push(`expiresAtMs must be null or an integer within ±(2^53 - 1), got ${String(input.expiresAtMs)}`);
    else if (nowIsTime && input.expiresAtMs <= nowMs) problems.push(`expiresAtMs must be after nowMs (${nowMs}), got ${input.expiresAtMs}`);
  }
  if (problems.length > 0) throw new StoreError('invalid', `create token: ${problems.join('; ')}`);
  return { id: input.id, name: input.name, role: input.role, secretHash: input.secretHash, createdAtMs: nowMs, expiresAtMs: input.expiresAtMs };
}

function prepareStatements(db: Database.Database) {
  return {
    byId: db.prepare<[string], TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = ?`),
    // Every request runs this: one lookup of the unique index on the hash.
    bySecretHash: db.prepare<[string], TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = ?`),
    activeNameExists: db.prepare<[string], number>('SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at_ms IS NULL').pluck(),
    secretHashExists: db.prepare<[string], number>('SELECT 1 FROM api_tokens WHERE secret_hash = ?').pluck(),
    insert: db.prepare<InsertParams>(
      `INSERT INTO api_tokens (id, name, role, secret_hash, created_at_ms, last_used_at_ms, expires_at_ms, revoked_at_ms)
       VALUES (@id, @name, @role, @secretHash, @createdAtMs, NULL, @expiresAtMs, NULL)`,
    ),
    // Records a use unless one was recorded less than a minute before; repeats the
    // active check, so a token revoked or expired since the lookup is not touched.
    recordUse: db.prepare<{ id: string; nowMs: number; intervalMs: number }, TokenRow>(
      `UPDATE api_tokens SET last_used_at_ms = @nowMs
       WHERE id = @id AND revoked_at_ms IS NULL AND (expires_at_ms IS NULL OR expires_at_ms > @nowMs)
         AND (last_used_at_ms IS NULL OR last_used_at_ms <= @nowMs - @intervalMs)
       RETURNING ${TOKEN_COLUMNS}`,
    ),
    list: db.prepare<[], TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at_ms DESC, id DESC`),
    revoke: db.prepare<[number, string]>('UPDATE api_tokens SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteTokens implements TokenStore {
  private readonly stmt: Statements;
  private readonly createTx: (token: InsertParams) => ApiToken;

  constructor(db: Database.Database) {
    const stmt = prepareStatements(db);
    this.stmt = stmt;
    this.createTx = immediateTransaction(db, (token: InsertParams) => {
      if (stmt.byId.get(token.id) !== undefined) throw new StoreError('conflict', `token ${token.id} exists`);
      if (stmt.activeNameExists.get(token.name) !== undefined) {
        throw new StoreError('conflict', `a token that is not revoked is named ${JSON.stringify(token.name)}`);
      }
      if (stmt.secretHashExists.get(token.secretHash) !== undefined) throw new StoreError('conflict', 'a token with this secret exists');
      stmt.insert.run(token);
      return tokenFromRow(stmt.byId.get(token.id)!);
    });
  }

  /**
   * See TokenStore.createToken. Checked first ('invalid' listing every
   * problem, nothing written): id a lowercase UUID; name 1 to
   * MAX_TOKEN_NAME_CHARS characters with no control characters, line or
   * paragraph separators or lone surrogates, not beginning or ending with
   * white space; a known role; secretHash as hashTokenSecret makes it (64
   * lowercase hex digits); nowMs an integer; expiresAtMs null or an integer
   * after nowMs. Then 'conflict' for an id that exists, a name a token that
   * is not revoked has (expired or not), or a secret hash any token has.
   */
  createToken(input: { id: string; name: string; role: OperatorRole; secretHash: string; expiresAtMs: number | null }, nowMs: number): ApiToken {
    const checked = checkNewToken(input, nowMs);
    return guard('create token', () => this.createTx(checked));
  }

  /**
   * See TokenStore.authenticate: undefined for an unknown, revoked or
   * expired (expiresAtMs ≤ nowMs) token, and for a secretHash that is not
   * of hashTokenSecret's form (without a lookup). When the recorded use is
   * TOKEN_USE_RECORD_INTERVAL_MS or more before nowMs (or none), records
   * nowMs and returns the token with it; otherwise writes nothing.
   * Recording is best effort: if the database is busy or cannot be written
   * ('unavailable'), the token is still returned, with its use unrecorded
   * until a later request. 'invalid' for a nowMs that is not an integer.
   */
  authenticate(secretHash: string, nowMs: number): ApiToken | undefined {
    requireSafeInteger('authenticate: nowMs', nowMs);
    if (typeof secretHash !== 'string' || !TOKEN_SECRET_HASH.test(secretHash)) return undefined;
    const row = guard('authenticate', () => this.stmt.bySecretHash.get(secretHash));
    if (row === undefined || !isActive(row, nowMs)) return undefined;
    if (row.last_used_at_ms !== null && nowMs - row.last_used_at_ms < TOKEN_USE_RECORD_INTERVAL_MS) return tokenFromRow(row);
    let updated: TokenRow | undefined;
    try {
      updated = this.stmt.recordUse.get({ id: row.id, nowMs, intervalMs: TOKEN_USE_RECORD_INTERVAL_MS });
    } catch (error) {
      const storeError = toStoreError(error, 'authenticate: record use');
      if (storeError.code !== 'unavailable') throw storeError;
      return tokenFromRow(row);
    }
    if (updated !== undefined) return tokenFromRow(updated);
    // Another process revoked the token or recorded a use since the lookup: read it again.
    const again = guard('authenticate', () => this.stmt.bySecretHash.get(secretHash));
    return again !== undefined && isActive(again, nowMs) ? tokenFromRow(again) : undefined;
  }

  /** See TokenStore.listTokens: newest first (by creation, then id), revoked ones included. */
  listTokens(): ApiToken[] {
    return guard('list tokens', () => this.stmt.list.all().map(tokenFromRow));
  }

  /** See TokenStore.getToken. */
  getToken(id: string): ApiToken | undefined {
    if (typeof id !== 'string') return undefined;
    const row = guard('get token', () => this.stmt.byId.get(id));
    return row === undefined ? undefined : tokenFromRow(row);
  }

  /** See TokenStore.revokeToken. 'invalid' for a nowMs that is not an integer; false for an id that is not a string. */
  revokeToken(id: string, nowMs: number): boolean {
    requireSafeInteger('revoke token: nowMs', nowMs);
    if (typeof id !== 'string') return false;
    return guard('revoke token', () => this.stmt.revoke.run(nowMs, id).changes > 0);
  }
}
