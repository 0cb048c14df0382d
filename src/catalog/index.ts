import type { Logger } from '../logger.js';
import type { Database } from './database.js';
import { PostgresDatabase, safeUrl } from './postgres.js';
import { SqliteDatabase } from './sqlite.js';
import { CatalogStore } from './store.js';

export { CatalogStore } from './store.js';
export type * from './types.js';

export interface CatalogConfig {
  /** postgres:// URL; empty = SQLite at sqlitePath. */
  url: string;
  sqlitePath: string;
  connectTimeoutSeconds: number;
  maxConnections: number;
}

/** The catalog's database could not be opened or brought to this version's schema: the node must not start. */
export class CatalogStartError extends Error {}

export function openDatabase(config: CatalogConfig, log: Logger): Database {
  return config.url
    ? new PostgresDatabase(config.url, { connectTimeoutSeconds: config.connectTimeoutSeconds, maxConnections: config.maxConnections, log })
    : new SqliteDatabase(config.sqlitePath);
}

/**
 * Opens the configured catalog and applies the migrations it lacks. A database that cannot be
 * reached or migrated is a CatalogStartError naming where it is (never its password) and why.
 */
export async function openCatalog(config: CatalogConfig, log: Logger): Promise<CatalogStore> {
  let db: Database | undefined;
  try {
    db = openDatabase(config, log);
    const store = new CatalogStore(db, log);
    const outcome = await store.migrate();
    log.info(
      { catalog: db.where, engine: db.dialect.name, schemaVersion: outcome.to, applied: outcome.applied.map((m) => m.version) },
      outcome.applied.length ? 'catalog migrated' : 'catalog opened',
    );
    return store;
  } catch (err) {
    await db?.close().catch(() => undefined);
    const where = db?.where ?? (config.url ? safeUrl(config.url) : `sqlite:${config.sqlitePath}`);
    const why = err instanceof Error ? err.message || (err as NodeJS.ErrnoException).code || err.name : String(err);
    throw new CatalogStartError(`cannot open the catalog database at ${where}: ${why} (check catalog.url / catalog.sqlitePath)`, {
      cause: err,
    });
  }
}
