/**
 * Storage: the ports (types.ts) and the embedded SQLite implementation.
 * The contract suites live in ./contract/index.ts, apart from this entry
 * point, because they import vitest, which production code must not load.
 */
export * from './types.ts';
export { SqliteStore, openSqliteStore, type SqliteStoreOptions } from './sqlite-store.ts';
export { MIGRATIONS, SCHEMA_VERSION, migrateSchema, type Migration } from './sqlite-schema.ts';
export { DEFAULT_RETENTION, ROLLUP_TIERS, type PruneCounts, type RetentionPolicy, type RollupTierName } from './sqlite-rollups.ts';
export { generateSecret, hashSecret, verifySecret } from './credentials.ts';
