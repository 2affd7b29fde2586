/**
 * Registry over SQLite: sites, devices and their credentials.
 *
 * The broker reads getAcceptedSecretHashes on every CONNECT, so that lookup
 * is one primary-key read and compares times in JavaScript, not in SQL.
 */
import type Database from 'better-sqlite3';
import { isDeviceType } from '../protocol/index.ts';
import { guard, immediateTransaction, requireSafeInteger, sqliteCode } from './sqlite-common.ts';
import { StoreError, type DeviceCounts, type DeviceRecord, type NewDevice, type Registry, type Site } from './types.ts';

interface DeviceRow {
  id: string;
  type: string;
  site_id: string;
  created_at_ms: number;
  revoked_at_ms: number | null;
}

interface SecretRow {
  secret_hash: string;
  previous_secret_hash: string | null;
  previous_secret_valid_until_ms: number | null;
}

const DEVICE_COLUMNS = 'id, type, site_id, created_at_ms, revoked_at_ms';

function deviceFromRow(row: DeviceRow): DeviceRecord {
  if (!isDeviceType(row.type)) throw new StoreError('invalid', `device ${row.id} has unknown type ${row.type}`);
  return { id: row.id, type: row.type, siteId: row.site_id, createdAtMs: row.created_at_ms, revokedAtMs: row.revoked_at_ms };
}

function prepareStatements(db: Database.Database) {
  return {
    upsertSite: db.prepare<[string, string, string]>(
      'INSERT INTO sites (id, region, name) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET region = excluded.region, name = excluded.name',
    ),
    getSite: db.prepare<[string], Site>('SELECT id, region, name FROM sites WHERE id = ?'),
    listSites: db.prepare<[], Site>('SELECT id, region, name FROM sites ORDER BY id'),
    insertDevice: db.prepare<[string, string, string, string, number]>(
      'INSERT INTO devices (id, type, site_id, secret_hash, created_at_ms, revoked_at_ms) VALUES (?, ?, ?, ?, ?, NULL)',
    ),
    // A reset also ends any grace period: the secret it replaces may be the one that leaked.
    resetSecret: db.prepare<[string, string]>(
      'UPDATE devices SET secret_hash = ?, previous_secret_hash = NULL, previous_secret_valid_until_ms = NULL WHERE id = ?',
    ),
    // Every right-hand side reads the row as it was, so the current hash becomes the previous one.
    rotateSecret: db.prepare<[number, string, string]>(
      `UPDATE devices SET previous_secret_hash = secret_hash, previous_secret_valid_until_ms = ?, secret_hash = ?
       WHERE id = ? AND revoked_at_ms IS NULL`,
    ),
    getDevice: db.prepare<[string], DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE id = ?`),
    // The broker runs this on every connect: one primary-key lookup.
    acceptedSecrets: db.prepare<[string], SecretRow>(
      'SELECT secret_hash, previous_secret_hash, previous_secret_valid_until_ms FROM devices WHERE id = ? AND revoked_at_ms IS NULL',
    ),
    listDevices: db.prepare<[], DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices ORDER BY id`),
    listDevicesOfSite: db.prepare<[string], DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE site_id = ? ORDER BY id`),
    revokeDevice: db.prepare<[number, string]>('UPDATE devices SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL'),
    countActive: db.prepare<[], { site_id: string; region: string; active: number }>(
      `SELECT s.id AS site_id, s.region AS region, COUNT(d.id) AS active
       FROM sites s LEFT JOIN devices d ON d.site_id = s.id AND d.revoked_at_ms IS NULL
       GROUP BY s.id`,
    ),
  };
}

export class SqliteRegistry implements Registry {
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly rotate: (id: string, secretHash: string, previousValidUntilMs: number) => void;
  /** Registry writes made through this connection (other connections show in `data_version`). */
  private registryWrites = 0;

  constructor(private readonly db: Database.Database) {
    const stmt = prepareStatements(db);
    this.stmt = stmt;
    this.rotate = immediateTransaction(db, (id: string, secretHash: string, previousValidUntilMs: number) => {
      if (stmt.rotateSecret.run(previousValidUntilMs, secretHash, id).changes > 0) return;
      const device = stmt.getDevice.get(id);
      if (device === undefined) throw new StoreError('not-found', `device ${id} does not exist`);
      throw new StoreError('conflict', `device ${id} is revoked; its secret cannot be rotated`);
    });
  }

  upsertSite(site: Site): void {
    guard('upsert site', () => this.stmt.upsertSite.run(site.id, site.region, site.name));
    this.registryWrites++;
  }

  getSite(id: string): Site | undefined {
    return guard('get site', () => this.stmt.getSite.get(id));
  }

  listSites(): Site[] {
    return guard('list sites', () => this.stmt.listSites.all());
  }

  createDevice(device: NewDevice, nowMs: number): DeviceRecord {
    if (!isDeviceType(device.type)) throw new StoreError('invalid', `unknown device type ${String(device.type)}`);
    requireSafeInteger('createdAtMs', nowMs);
    return guard('create device', () => {
      try {
        this.stmt.insertDevice.run(device.id, device.type, device.siteId, device.secretHash, nowMs);
      } catch (error) {
        const code = sqliteCode(error);
        if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new StoreError('conflict', `device ${device.id} already exists`, { cause: error });
        }
        if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
          throw new StoreError('not-found', `site ${device.siteId} does not exist`, { cause: error });
        }
        throw error;
      }
      this.registryWrites++;
      return { id: device.id, type: device.type, siteId: device.siteId, createdAtMs: nowMs, revokedAtMs: null };
    });
  }

  resetDeviceSecret(id: string, secretHash: string): void {
    const changes = guard('reset device secret', () => this.stmt.resetSecret.run(secretHash, id).changes);
    if (changes === 0) throw new StoreError('not-found', `device ${id} does not exist`);
    this.registryWrites++;
  }

  rotateDeviceSecret(id: string, secretHash: string, previousValidUntilMs: number): void {
    requireSafeInteger('previousValidUntilMs', previousValidUntilMs);
    guard('rotate device secret', () => this.rotate(id, secretHash, previousValidUntilMs));
    this.registryWrites++;
  }

  getDevice(id: string): DeviceRecord | undefined {
    const row = guard('get device', () => this.stmt.getDevice.get(id));
    return row === undefined ? undefined : deviceFromRow(row);
  }

  getAcceptedSecretHashes(id: string, nowMs: number): string[] {
    const row = guard('get secret hashes', () => this.stmt.acceptedSecrets.get(id));
    if (row === undefined) return [];
    const { secret_hash: current, previous_secret_hash: previous, previous_secret_valid_until_ms: validUntilMs } = row;
    return previous !== null && validUntilMs !== null && nowMs < validUntilMs ? [current, previous] : [current];
  }

  listDevices(filter?: { siteId?: string }): DeviceRecord[] {
    const siteId = filter?.siteId;
    const rows = guard('list devices', () => (siteId === undefined ? this.stmt.listDevices.all() : this.stmt.listDevicesOfSite.all(siteId)));
    return rows.map(deviceFromRow);
  }

  revokeDevice(id: string, nowMs: number): boolean {
    requireSafeInteger('revokedAtMs', nowMs);
    const revoked = guard('revoke device', () => this.stmt.revokeDevice.run(nowMs, id).changes > 0);
    if (revoked) this.registryWrites++;
    return revoked;
  }

  /** Every site appears in bySite (0 when it has no active device), every region of a site in byRegion. */
  countActiveDevices(): DeviceCounts {
    const rows = guard('count devices', () => this.stmt.countActive.all());
    const counts: DeviceCounts = { fleet: 0, bySite: new Map(), byRegion: new Map() };
    for (const row of rows) {
      counts.fleet += row.active;
      counts.bySite.set(row.site_id, row.active);
      counts.byRegion.set(row.region, (counts.byRegion.get(row.region) ?? 0) + row.active);
    }
    return counts;
  }

  changeToken(): string {
    // data_version changes when another connection (another process) commits anything;
    // registryWrites counts this connection's own registry writes.
    return guard('read change token', () => `${String(this.db.pragma('data_version', { simple: true }))}/${this.registryWrites}`);
  }
}
