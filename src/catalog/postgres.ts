import pg from 'pg';
import type { Logger } from '../logger.js';
import type { Database, Dialect, Param, Row, Sql } from './database.js';

const DIALECT: Dialect = { name: 'postgres', bigint: 'BIGINT' };
/** The advisory lock every catalog writer holds in its transaction (the number: 16). */
const WRITE_LOCK = 16_016;
const INT8_OID = 20;

/** `?` placeholders as PostgreSQL's `$1, $2, …` (the catalog's SQL never has `?` inside a literal). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** The URL without its password, for logs and errors. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/**
 * The shared catalog: PostgreSQL through a `pg` pool. Times are BIGINT, read back as numbers
 * (milliseconds fit a double exactly). A server that goes away fails the queries in flight; the
 * pool connects afresh when it is back.
 */
export class PostgresDatabase implements Database {
  readonly dialect = DIALECT;
  readonly where: string;
  private readonly pool: pg.Pool;

  constructor(url: string, opts: { connectTimeoutSeconds: number; maxConnections: number; log: Logger }) {
    this.where = safeUrl(url);
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.maxConnections,
      connectionTimeoutMillis: opts.connectTimeoutSeconds * 1000,
      idleTimeoutMillis: 30_000,
      // A statement that hangs (a server that stopped answering) must not hold a lesson's write for ever.
      query_timeout: opts.connectTimeoutSeconds * 2000,
      types: {
        // BIGINT (times in ms) as numbers; every other type as pg parses it.
        getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
          oid === INT8_OID ? (v: string) => Number(v) : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
      },
    });
    // An idle connection whose server went away errors here; unhandled, it would end the process.
    this.pool.on('error', (err) => opts.log.warn({ err: err.message, catalog: this.where }, 'catalog connection lost'));
  }

  async all<T = Row>(sql: string, params: Param[] = []): Promise<T[]> {
    return (await this.pool.query(numbered(sql), params)).rows as T[];
  }

  async run(sql: string, params: Param[] = []): Promise<number> {
    return (await this.pool.query(numbered(sql), params)).rowCount ?? 0;
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const tx: Sql = {
      all: async <R>(sql: string, params: Param[] = []) => (await client.query(numbered(sql), params)).rows as R[],
      run: async (sql: string, params: Param[] = []) => (await client.query(numbered(sql), params)).rowCount ?? 0,
    };
    let broken: unknown;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK]);
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
      throw err;
    } finally {
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
